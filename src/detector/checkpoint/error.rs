//! Errors of the checkpoint reader: which file, and what is wrong with it.

use std::path::PathBuf;

use super::pickle::PickleError;

/// A checkpoint could not be read. The message names the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot read checkpoint {}: {kind}", path.display())]
pub struct CheckpointError {
    pub path: PathBuf,
    pub kind: ReadError,
}

/// What is wrong with a checkpoint's bytes.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a PyTorch checkpoint (neither a zip archive nor the legacy pickle format)")]
    UnknownFormat,
    #[error("this is the tar-based format of PyTorch < 0.4, which is not supported; re-save it with a newer PyTorch")]
    LegacyTar,
    #[error("this is a TorchScript archive (torch.jit.save), not a state_dict; save `model.state_dict()` with torch.save instead")]
    TorchScript,
    #[error("zip archive: {0}")]
    Zip(String),
    #[error("{what}: {source}")]
    Pickle {
        what: &'static str,
        #[source]
        source: PickleError,
    },
    #[error("big-endian checkpoints are not supported")]
    BigEndian,
    #[error("legacy format: {0}")]
    Legacy(String),
    #[error("storage `{key}` is referenced but missing from the file")]
    MissingStorage { key: String },
    #[error("storage `{key}` claims {claimed} bytes but the file holds {actual}")]
    StorageSize {
        key: String,
        claimed: u64,
        actual: u64,
    },
    #[error("storage `{key}` is used with two different element types or sizes")]
    StorageConflict { key: String },
    #[error("tensor `{name}`: {msg}")]
    BadTensor { name: String, msg: String },
    #[error("no state_dict found: {0}")]
    NoStateDict(String),
}

impl ReadError {
    /// Attaches the file name.
    pub fn at(self, path: impl Into<PathBuf>) -> CheckpointError {
        CheckpointError {
            path: path.into(),
            kind: self,
        }
    }
}
