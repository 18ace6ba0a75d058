//! Why a model file could not be read or written: [`ModelFileErrorKind`], and
//! [`ModelFileError`], which names the file.

use std::path::{Path, PathBuf};

use super::FORMAT_VERSION;
use crate::detector::checkpoint::arch::ModelArch;
use crate::detector::checkpoint::expected_keys::KeyMismatch;

/// A model file could not be read or written. The message names the file.
#[derive(Debug, thiserror::Error)]
#[error("model file {}: {kind}", path.display())]
pub struct ModelFileError {
    pub path: PathBuf,
    pub kind: ModelFileErrorKind,
}

/// What is wrong with a model file.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileErrorKind {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a valid safetensors file: {0}")]
    SafeTensors(String),
    #[error("not a detlab model (no `format: detlab` metadata); import PyTorch weights with `detlab import-weights`")]
    NotDetlab,
    #[error("written by a newer detlab (format version {0}); this build reads up to version {FORMAT_VERSION}")]
    NewerVersion(u32),
    #[error("metadata `{0}` is missing")]
    MissingMetadata(&'static str),
    #[error("metadata `{key}`: {msg}")]
    BadMetadata { key: &'static str, msg: String },
    #[error("tensor `{name}` has unsupported dtype {dtype}")]
    UnsupportedDtype { name: String, dtype: String },
    #[error("tensor `{0}` is stored twice")]
    Duplicate(String),
    /// A weight is NaN or infinite (a diverged training run, a damaged file).
    #[error("weight `{tensor}` holds {value} at index {index}: the model is broken (a diverged training run?) and cannot be used")]
    NonFinite {
        /// The tensor.
        tensor: String,
        /// The flat index of its first non-finite value.
        index: usize,
        /// That value.
        value: f32,
    },
    /// A weight is stored as integers (or booleans): not the network's values.
    #[error("weight `{tensor}` is stored as {dtype:?}, not as floating-point values: the file is not a trained model's weights")]
    NotFloat {
        /// The tensor.
        tensor: String,
        /// Its element type.
        dtype: crate::detector::checkpoint::DType,
    },
    #[error("the weights do not fit the {arch} model: {mismatch}")]
    Keys {
        arch: ModelArch,
        mismatch: KeyMismatch,
    },
}

impl ModelFileErrorKind {
    pub(super) fn at(self, path: &Path) -> ModelFileError {
        ModelFileError {
            path: path.to_path_buf(),
            kind: self,
        }
    }
}
