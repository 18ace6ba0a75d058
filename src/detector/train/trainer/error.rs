//! Why a training run failed ([`TrainError`]), and the setting to change when one is at
//! fault.

use std::path::PathBuf;

use crate::detector::checkpoint::ModelFileError;
use crate::detector::inference::InferenceError;
use crate::detector::model::ModelError;
use crate::detector::settings::DeviceError;
use crate::detector::train::checkpoint::CheckpointFileError;
use crate::detector::train::config::{ConfigError, Setting};
use crate::detector::train::data::DataError;
use crate::detector::train::init::InitError;
use crate::detector::train::validate::ValidateError;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointFileError),
    #[error("validation failed: {0}")]
    Validate(#[from] ValidateError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    ModelFile(#[from] ModelFileError),
    #[error(transparent)]
    Network(#[from] InferenceError),
    #[error("out of memory at batch size {batch} and input size {input_size}: lower the batch size or the input size ({detail})")]
    OutOfMemory {
        batch: usize,
        input_size: u32,
        detail: String,
    },
    #[error("the loss was not finite for {steps} steps in a row (epoch {epoch}, step {step}); the run diverged: lower the learning rate (now {lr:e}) or check the labels")]
    NonFinite {
        steps: usize,
        epoch: usize,
        step: usize,
        lr: f64,
    },
    /// The weights stopped being finite; nothing of that epoch was saved.
    #[error("the weights are not finite after epoch {epoch} (`{tensor}`): the run diverged, and nothing of this epoch was saved; lower the learning rate (now {lr:e}) or check the labels")]
    NonFiniteWeights {
        /// The epoch that ended with them.
        epoch: usize,
        /// The first variable with a NaN or infinite value.
        tensor: String,
        /// The learning rate of the epoch's last step.
        lr: f64,
    },
    #[error("libtorch failed at epoch {epoch}, step {step}: {detail}")]
    Torch {
        epoch: usize,
        step: usize,
        detail: String,
    },
    #[error("{0}")]
    Resume(String),
    #[error("cannot create {path}: {reason}")]
    OutDir { path: PathBuf, reason: String },
}

impl TrainError {
    /// The setting to change, when one is at fault (an out-of-range value, a batch too
    /// large for the memory, a learning rate that diverged).
    pub fn setting(&self) -> Option<Setting> {
        match self {
            Self::Config(e) => Some(e.setting()),
            Self::Device(_) => Some(Setting::Device),
            Self::OutOfMemory { .. } => Some(Setting::BatchSize),
            Self::NonFinite { .. } | Self::NonFiniteWeights { .. } => Some(Setting::LearningRate),
            _ => None,
        }
    }
}
