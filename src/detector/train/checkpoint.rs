//! The files a run writes into its folder, all atomically (temp file, fsync, rename):
//!
//! * `last.safetensors`: the model after the latest complete epoch;
//! * `best.safetensors`: the model of the best validation AP so far (the lowest training
//!   loss when there is no validation set);
//! * `resume.safetensors`: live weights, optimiser moments (`opt.m.*`, `opt.v.*`), EMA
//!   averages (`ema.*`) and, in its metadata, the [`ResumeState`] (config, epoch, step
//!   counts, best metric, early-stopping counter). Being one file, it is always consistent;
//! * `resume.json`: a readable copy of the [`ResumeState`] (informational).
//!
//! Model files are detlab's one-file format ([`ModelFile`]): when EMA is on they hold the
//! averaged weights. Because the optimiser is detlab's own ([`super::optimizer`]), resuming
//! restores its state exactly; the data order and augmentations are functions of
//! `(seed, epoch)`, and libtorch's RNG is re-seeded at every epoch, so a resumed run
//! continues as the uninterrupted run would have.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

use super::config::TrainConfig;
use super::events::ValMetrics;
use crate::detector::checkpoint::varstore::{from_tch, from_varstore, load_into, to_tch};
use crate::detector::checkpoint::{CheckpointTensor, ModelFile, ModelMeta};

/// File names inside the run folder.
pub const LAST: &str = "last.safetensors";
pub const BEST: &str = "best.safetensors";
pub const RESUME: &str = "resume.safetensors";
pub const RESUME_JSON: &str = "resume.json";
/// The run's event log (one JSON object per line).
pub const METRICS: &str = "metrics.jsonl";
/// Every file a run writes into its folder.
pub const RUN_FILES: [&str; 5] = [METRICS, LAST, BEST, RESUME, RESUME_JSON];
const RESUME_KEY: &str = "detlab.resume";

/// Reading or writing a run file failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFileError {
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{path} is not a detlab resume file: {reason}")]
    BadResume { path: PathBuf, reason: String },
    #[error("{path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
}

fn io_err(path: &Path, e: impl ToString) -> CheckpointFileError {
    CheckpointFileError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// The best epoch so far.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestSoFar {
    pub epoch: usize,
    /// AP (or minus the training loss without validation).
    pub metric: f64,
    pub ap: Option<f64>,
    pub ap50: Option<f64>,
}

/// Everything about a run's progress besides tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumeState {
    pub config: TrainConfig,
    pub class_names: Vec<String>,
    /// Epochs completed (the next epoch is `epochs_completed + 1`).
    pub epochs_completed: usize,
    /// Optimisation steps taken (the LR schedule position).
    pub global_step: usize,
    pub optimizer_steps: i64,
    pub ema_updates: i64,
    pub best: Option<BestSoFar>,
    /// Epochs since the early-stopping metric last improved by `min_delta`.
    pub epochs_without_improvement: usize,
    pub early_stop_reference: Option<f64>,
    /// Training seconds so far (excluding this process's start-up).
    pub seconds: f64,
    /// Where the initial weights came from.
    pub init: String,
    /// The mixed-precision loss scale (`None` without mixed precision).
    #[serde(default)]
    pub loss_scale: Option<f64>,
    /// The validation of every completed epoch, `(epoch, scores)` ascending, over all the
    /// processes that worked on the run (absent from older resume files: empty).
    #[serde(default)]
    pub validations: Vec<(usize, ValMetrics)>,
}

/// A model file of the VarStore's current weights.
pub fn model_file(vs: &VarStore, meta: &ModelMeta) -> Result<ModelFile, String> {
    let tensors = from_varstore(vs).map_err(|e| e.to_string())?;
    Ok(ModelFile {
        meta: meta.clone(),
        tensors,
    })
}

/// Writes the VarStore's weights as a model file, atomically.
pub fn save_model(path: &Path, vs: &VarStore, meta: &ModelMeta) -> Result<(), CheckpointFileError> {
    let file = model_file(vs, meta).map_err(|e| io_err(path, e))?;
    file.write(path).map_err(|e| io_err(path, e))
}

/// Writes `resume.safetensors` (then `resume.json`) into `dir`.
pub fn write_resume(
    dir: &Path,
    state: &ResumeState,
    vs: &VarStore,
    extra: &[(String, Tensor)],
) -> Result<PathBuf, CheckpointFileError> {
    let path = dir.join(RESUME);
    let json = serde_json::to_string_pretty(state).map_err(|e| io_err(&path, e))?;
    let mut tensors: Vec<CheckpointTensor> = from_varstore(vs).map_err(|e| io_err(&path, e))?;
    for t in &mut tensors {
        t.name = format!("model.{}", t.name);
    }
    for (name, t) in extra {
        tensors.push(from_tch(name, t).map_err(|e| io_err(&path, e))?);
    }
    let meta: HashMap<String, String> = [
        ("format".to_string(), "detlab-resume".to_string()),
        (RESUME_KEY.to_string(), json.clone()),
    ]
    .into_iter()
    .collect();
    let bytes = safetensors::serialize(tensors.iter().map(|t| (t.name.as_str(), t)), Some(meta))
        .map_err(|e| io_err(&path, e))?;
    crate::atomic::write_atomic(&path, &bytes).map_err(|e| io_err(&path, e))?;
    let json_path = dir.join(RESUME_JSON);
    crate::atomic::write_atomic(&json_path, json.as_bytes()).map_err(|e| io_err(&json_path, e))?;
    Ok(path)
}

/// A read resume file: the state and every tensor by name (CPU).
pub struct ResumeFile {
    pub state: ResumeState,
    pub tensors: HashMap<String, Tensor>,
}

impl ResumeFile {
    /// Reads `dir/resume.safetensors`.
    pub fn read(dir: &Path) -> Result<Self, CheckpointFileError> {
        let path = dir.join(RESUME);
        let bad = |reason: String| CheckpointFileError::BadResume {
            path: path.clone(),
            reason,
        };
        let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
        let (_, header) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
        let json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(RESUME_KEY))
            .ok_or_else(|| bad("no resume state in its metadata".into()))?;
        let state: ResumeState = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let mut saved = Vec::new();
        for (name, view) in st.tensors() {
            let dtype = crate::detector::checkpoint::DType::from_safetensors(view.dtype())
                .ok_or_else(|| bad(format!("{name}: unsupported dtype")))?;
            saved.push(CheckpointTensor {
                name,
                dtype,
                shape: view.shape().to_vec(),
                data: view.data().to_vec(),
            });
        }
        // A damaged file, not a diverged run: every saved state was finite when written
        // (a run whose weights stop being finite fails before it saves).
        if let Some(f) = crate::detector::checkpoint::import::first_non_finite(&saved) {
            return Err(CheckpointFileError::Damaged {
                path,
                reason: format!(
                    "`{}` holds {} at index {}; resume from a copy, or start afresh",
                    f.tensor, f.value, f.index
                ),
            });
        }
        let mut tensors = HashMap::new();
        for t in saved {
            let tensor = to_tch(&t).map_err(|e| bad(e.to_string()))?;
            tensors.insert(t.name, tensor);
        }
        Ok(Self { state, tensors })
    }

    /// Copies the saved live weights (`model.*`) into `vs`.
    pub fn load_weights(&self, vs: &VarStore) -> Result<(), CheckpointFileError> {
        let list: Vec<CheckpointTensor> = self
            .tensors
            .iter()
            .filter_map(|(n, t)| n.strip_prefix("model.").map(|k| from_tch(k, t)))
            .collect::<Result<_, _>>()
            .map_err(|e| io_err(Path::new(RESUME), e))?;
        load_into(vs, &list, false).map_err(|e| io_err(Path::new(RESUME), e))?;
        Ok(())
    }

    /// A saved tensor by name (a shallow copy).
    pub fn get(&self, name: &str) -> Option<Tensor> {
        self.tensors.get(name).map(Tensor::shallow_clone)
    }
}

/// Removes the temporary files that killed writes of run files left in `dir` (a killed
/// run can leave a 16 MB `.resume.safetensors.<pid>.<n>.tmp`), except those of a process
/// that is still running. Returns the files removed.
pub fn remove_stale_temp_files(dir: &Path) -> Vec<PathBuf> {
    crate::atomic::remove_stale_temp_files(&RUN_FILES.map(|f| dir.join(f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_writers_temp_files_of_run_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // No process has a pid this large (Linux's limit is 2^22).
        let dead = dir.path().join(".resume.safetensors.99999999.0.tmp");
        let mine = dir
            .path()
            .join(format!(".last.safetensors.{}.0.tmp", std::process::id()));
        let foreign = dir.path().join(".photo.jpg.99999999.0.tmp");
        for p in [&dead, &mine, &foreign] {
            std::fs::write(p, b"partial").unwrap();
        }
        assert_eq!(remove_stale_temp_files(dir.path()), vec![dead.clone()]);
        assert!(!dead.exists() && mine.exists() && foreign.exists());
    }
}
