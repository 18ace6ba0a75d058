//! The review model: loading a detlab model file or importing a PyTorch checkpoint, in
//! the background, and the shipped default.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::app::jobs::{repaint, Job};
use crate::app::AppState;
use crate::detector::checkpoint::ModelArch;
use crate::detector::inference::{Detector, DetectorOptions};
use crate::review::ModelId;

/// A model ready to run.
pub struct LoadedModel {
    pub path: PathBuf,
    pub id: ModelId,
    pub arch: ModelArch,
    pub class_names: Vec<String>,
    pub input_size: u32,
    /// The crop size the model was trained on, if it was trained on tiles.
    pub train_tile: Option<u32>,
    pub device: String,
    pub(super) detector: Mutex<Detector>,
}

/// The "Import PyTorch weights" form.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportForm {
    pub pth: String,
    pub arch: ModelArch,
    /// One class name per line, in the checkpoint's class order.
    pub classes: String,
}

/// Reads a model file and readies it to run (blocking: call it off the UI thread).
pub(crate) fn load_model_file(path: &Path) -> Result<LoadedModel, String> {
    let id = ModelId::of_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let detector = Detector::load(path, &DetectorOptions::default())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = detector.meta().clone();
    Ok(LoadedModel {
        path: path.to_path_buf(),
        id,
        arch: meta.arch,
        class_names: meta.class_names.clone(),
        input_size: meta.input_size,
        train_tile: meta.train_tile,
        device: format!("{:?}", detector.device()),
        detector: Mutex::new(detector),
    })
}

fn import_model(form: &ImportForm, out: &Path) -> Result<LoadedModel, String> {
    use crate::detector::checkpoint::import::import_checkpoint;
    use crate::detector::checkpoint::{ImportOptions, ModelMeta};
    let pth = PathBuf::from(form.pth.trim());
    let names: Vec<String> = form
        .classes
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.is_empty() {
        return Err("list the checkpoint's class names, one per line".into());
    }
    let expected = crate::detector::inference::expected_keys(form.arch, names.len())
        .map_err(|e| e.to_string())?;
    let mut meta = ModelMeta::for_arch(form.arch, names);
    meta.source = pth.file_name().map(|n| n.to_string_lossy().into_owned());
    let (model, _) = import_checkpoint(&pth, &expected, meta, ImportOptions { partial: false })
        .map_err(|e| e.to_string())?;
    model
        .write(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    load_model_file(out)
}

impl AppState {
    /// Loads a model file in the background; the review view switches to it when ready.
    pub fn load_model(&mut self, path: PathBuf) {
        // A model chosen explicitly wins over the shipped default.
        self.review.default_requested = true;
        self.review.model_error = None;
        self.review.model_job = Some(Job::spawn("model", repaint(self.ctx.clone()), move |_| {
            load_model_file(&path)
        }));
    }

    /// Loads the shipped model once, when a folder is first opened and no model is set.
    pub fn load_default_model(&mut self) {
        if self.review.default_requested || self.review.model.is_some() {
            return;
        }
        self.review.default_requested = true;
        if let Some(path) = crate::detector::inference::default_model_path() {
            self.load_model(path);
        }
    }

    /// Imports a PyTorch checkpoint beside it as `<name>.safetensors` and loads it.
    pub fn import_model(&mut self, form: ImportForm) {
        let out = PathBuf::from(form.pth.trim()).with_extension("safetensors");
        self.review.default_requested = true;
        self.review.model_error = None;
        self.review.model_job = Some(Job::spawn("import", repaint(self.ctx.clone()), move |_| {
            import_model(&form, &out)
        }));
    }
}
