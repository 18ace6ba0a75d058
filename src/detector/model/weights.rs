//! Copying named tensors (a checkpoint's state dict) into a model's `VarStore`, with a clear
//! account of missing, unexpected and mis-shaped keys.
//!
//! Reading checkpoint *files* is the job of `detector::checkpoint`; this module only matches
//! names and shapes. A plain-dict zip `.pt` (what the parity fixtures are) can be read with
//! [`read_pt`], which uses libtorch's own loader.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Tensor};
use thiserror::Error;

/// A shape disagreement between the model and a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeMismatch {
    pub key: String,
    pub model: Vec<i64>,
    pub checkpoint: Vec<i64>,
}

/// How a checkpoint's keys compare with a model's variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyReport {
    /// Model variables the checkpoint lacks (left at their initial values when allowed).
    pub missing: Vec<String>,
    /// Checkpoint tensors the model has no variable for (ignored when allowed).
    pub unexpected: Vec<String>,
    /// Keys present in both with different shapes (never copied).
    pub mismatched: Vec<ShapeMismatch>,
    /// Number of tensors copied.
    pub loaded: usize,
}

impl KeyReport {
    /// No missing, unexpected or mis-shaped keys.
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl fmt::Display for KeyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOW: usize = 20;
        write!(
            f,
            "{} loaded, {} missing, {} unexpected, {} mis-shaped",
            self.loaded,
            self.missing.len(),
            self.unexpected.len(),
            self.mismatched.len()
        )?;
        let list = |f: &mut fmt::Formatter<'_>, title: &str, keys: &[String]| -> fmt::Result {
            if keys.is_empty() {
                return Ok(());
            }
            write!(f, "\n  {title}:")?;
            for k in keys.iter().take(SHOW) {
                write!(f, "\n    {k}")?;
            }
            if keys.len() > SHOW {
                write!(f, "\n    … and {} more", keys.len() - SHOW)?;
            }
            Ok(())
        };
        list(f, "missing from the checkpoint", &self.missing)?;
        list(f, "not in the model", &self.unexpected)?;
        if !self.mismatched.is_empty() {
            write!(f, "\n  mis-shaped (model vs checkpoint):")?;
            for m in self.mismatched.iter().take(SHOW) {
                write!(f, "\n    {} {:?} vs {:?}", m.key, m.model, m.checkpoint)?;
            }
            if self.mismatched.len() > SHOW {
                write!(f, "\n    … and {} more", self.mismatched.len() - SHOW)?;
            }
        }
        Ok(())
    }
}

/// Which disagreements [`load_named`] tolerates. Shape mismatches are never tolerated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadPolicy {
    pub allow_missing: bool,
    pub allow_unexpected: bool,
}

impl LoadPolicy {
    /// Every key must match exactly.
    pub const STRICT: LoadPolicy = LoadPolicy {
        allow_missing: false,
        allow_unexpected: false,
    };
}

/// Why weights could not be loaded.
#[derive(Debug, Error)]
pub enum WeightsError {
    #[error("checkpoint does not match the model: {0}")]
    Keys(KeyReport),
    #[error("reading {path}: {source}")]
    Read { path: String, source: tch::TchError },
    #[error("copying {key}: {source}")]
    Copy { key: String, source: tch::TchError },
}

/// Compares `tensors` with the variables of `vs` without copying anything.
pub fn compare_keys(vs: &VarStore, tensors: &HashMap<String, Tensor>) -> KeyReport {
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut report = KeyReport::default();
    for (name, var) in &vars {
        match tensors.get(name) {
            None => report.missing.push(name.clone()),
            Some(src) if src.size() != var.size() => report.mismatched.push(ShapeMismatch {
                key: name.clone(),
                model: var.size(),
                checkpoint: src.size(),
            }),
            Some(_) => {}
        }
    }
    let mut unexpected: Vec<String> = tensors
        .keys()
        .filter(|k| !vars.contains_key(*k))
        .cloned()
        .collect();
    unexpected.sort();
    report.unexpected = unexpected;
    report
}

/// Copies `tensors` into the variables of `vs` with the same names (converting dtype and
/// device to the variable's). Fails, copying nothing, when the keys disagree beyond
/// `policy`; returns the report otherwise.
pub fn load_named(
    vs: &mut VarStore,
    tensors: impl IntoIterator<Item = (String, Tensor)>,
    policy: LoadPolicy,
) -> Result<KeyReport, WeightsError> {
    let tensors: HashMap<String, Tensor> = tensors.into_iter().collect();
    let mut report = compare_keys(vs, &tensors);
    if !report.mismatched.is_empty()
        || (!policy.allow_missing && !report.missing.is_empty())
        || (!policy.allow_unexpected && !report.unexpected.is_empty())
    {
        return Err(WeightsError::Keys(report));
    }
    let mut loaded = 0;
    tch::no_grad(|| -> Result<(), WeightsError> {
        for (name, mut var) in vs.variables() {
            if let Some(src) = tensors.get(&name) {
                var.f_copy_(src).map_err(|source| WeightsError::Copy {
                    key: name.clone(),
                    source,
                })?;
                loaded += 1;
            }
        }
        Ok(())
    })?;
    report.loaded = loaded;
    Ok(report)
}

/// Reads a plain-dict zip-format `.pt` (`torch.save(dict(...))`) onto `device`.
pub fn read_pt(path: &Path, device: Device) -> Result<Vec<(String, Tensor)>, WeightsError> {
    Tensor::loadz_multi_with_device(path, device).map_err(|source| WeightsError::Read {
        path: path.display().to_string(),
        source,
    })
}
