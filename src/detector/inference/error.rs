//! Errors from loading and running a detector.

use std::path::PathBuf;

use crate::dataset::image_info::ImageInfoError;
use crate::detector::checkpoint::model_file::{ModelFileError, ModelFileErrorKind};
use crate::detector::checkpoint::varstore::VarStoreError;
use crate::detector::maths::postprocess::ShapeError;
use crate::detector::model::{ConfigError, ModelError};
use crate::detector::settings::DeviceError;

/// Why a detector could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error(transparent)]
    ModelFile(#[from] ModelFileError),
    #[error("{}: {kind}", path.display())]
    ModelFileAt {
        path: PathBuf,
        kind: ModelFileErrorKind,
    },
    #[error(
        "{}: a partial model file (some parameters missing, e.g. a backbone-only import) \
         cannot run detection; fine-tune it into a full model first",
        path.display()
    )]
    Partial { path: PathBuf },
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("a model needs at least one class")]
    NoClasses,
    #[error(
        "the model's anchor settings give {got} anchors per position; \
         the {arch} network needs {want}"
    )]
    AnchorLayout {
        arch: String,
        got: usize,
        want: usize,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("loading the weights: {0}")]
    Weights(#[from] VarStoreError),
    #[error(
        "the network's BatchNorm is folded, so its weights can no longer be saved or converted"
    )]
    Folded,
    #[error("the channels-last engine runs float32 networks on the CPU with BatchNorm folded")]
    NhwcEngine,
    #[error("expected a network input of shape [B, 3, {size}, {size}], got {got:?}")]
    InputShape { size: u32, got: Vec<i64> },
    #[error(transparent)]
    Image(#[from] ImageInfoError),
    #[error(transparent)]
    Postprocess(#[from] ShapeError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error("the network failed: {0}")]
    Network(String),
}
