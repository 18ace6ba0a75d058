//! The training loop. It runs on the calling thread, which owns every tensor; a loader
//! thread prepares batches ahead (see [`super::data`]).
//!
//! Per epoch: (stage) freeze or unfreeze the backbone → for each batch: learning rate from
//! the schedule, forward, anchor assignment, loss; a non-finite loss or gradient norm skips
//! the step with a `Warning` event and fails the run after
//! [`TrainConfig::max_nonfinite_steps`] in a row; backward, gradient clipping, optimiser
//! step, EMA update → a check that the weights are finite (a diverged epoch, or one whose
//! every step was skipped, fails the run and saves nothing) → validation with the COCO
//! evaluator → `last` / `best` files, then the resume file → the epoch's events (so an
//! epoch reported complete can always be resumed) → early stopping. An image that cannot
//! be decoded is skipped with a warning. A libtorch failure inside a step (CUDA out of
//! memory included) ends the run with an error that names the batch size and input size.
//!
//! By concept: the run's set-up (`setup`: settings, network, weights, optimiser, data
//! pipelines), the epoch loop (`run`), one optimisation step (`step`), checks on the
//! variables (`vars`) and the errors ([`TrainError`], `error`).

mod error;
mod run;
mod setup;
mod step;
mod vars;

use std::path::{Path, PathBuf};

use tch::nn::VarStore;
use tch::Device;

use super::checkpoint::BestSoFar;
use super::config::{DeviceChoice, TrainConfig};
use super::data::Dataset;
use super::events::{CancelHandle, TrainEvent, ValMetrics};
use super::init::Init;
use crate::detector::checkpoint::{ModelFile, ModelMeta};
use crate::detector::model::EfficientDet;
pub use error::TrainError;

/// What to train and where.
#[derive(Clone, Debug)]
pub struct TrainJob {
    pub config: TrainConfig,
    pub data: Dataset,
    /// The run folder (created if missing).
    pub out_dir: PathBuf,
    pub init: Init,
    /// Continue from `out_dir/resume.safetensors` (its config wins, except `epochs`,
    /// `threads` and `device`).
    pub resume: bool,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSummary {
    pub epochs_completed: usize,
    pub best: Option<BestSoFar>,
    pub last_val: Option<ValMetrics>,
    pub last_path: Option<PathBuf>,
    pub best_path: Option<PathBuf>,
    pub stopped_early: bool,
    pub cancelled: bool,
    pub seconds: f64,
    /// Mean training loss of each completed epoch of this process.
    pub epoch_losses: Vec<f64>,
}

/// The device a choice resolves to ([`DeviceChoice::resolve`]).
pub fn resolve_device(choice: DeviceChoice) -> Result<Device, TrainError> {
    Ok(choice.resolve()?)
}

/// Trains `job`, reporting through `sink`; stops early when `cancel` is set. Emits
/// `Failed` before returning an error.
pub fn train(
    job: &TrainJob,
    sink: &mut dyn FnMut(&TrainEvent),
    cancel: &CancelHandle,
) -> Result<TrainSummary, TrainError> {
    let result = run::run(job, sink, cancel);
    if let Err(e) = &result {
        sink(&TrainEvent::Failed {
            reason: e.to_string(),
        });
    }
    result
}

/// Builds the network of a model file and loads its weights (e.g. to check a trained
/// `best.safetensors`): the file is read once, and a read error names it.
pub fn load_trained(
    path: &Path,
    device: Device,
) -> Result<(VarStore, EfficientDet, ModelMeta), TrainError> {
    let file = ModelFile::read(path)?;
    let vs = VarStore::new(device);
    let model = EfficientDet::from_model_file(&vs, &file, path)?;
    Ok((vs, model, file.meta))
}
