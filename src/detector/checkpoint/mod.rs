//! Reading PyTorch checkpoints in pure Rust, and detlab's own model file.
//!
//! - [`read_checkpoint`]: a `torch.save`d state_dict — the zip format (PyTorch ≥ 1.6,
//!   plain `dict` or `collections.OrderedDict`, optionally wrapped as `{'model': ...}`)
//!   or the legacy non-zip format — as an ordered list of [`CheckpointTensor`]s.
//!   The pickle VM is minimal and refuses every global but tensors/storages/OrderedDict,
//!   and every size read from the file is checked before anything is allocated.
//! - [`model_file`]: the `.safetensors` file detlab runs, with all settings in its metadata.
//! - [`import`]: checkpoint → model file, with key remapping and validation against the
//!   keys and shapes a model expects.
//! - [`varstore`]: moving tensors in and out of a `tch::nn::VarStore`.

pub mod arch;
pub mod dtype;
pub mod error;
pub mod expected_keys;
pub mod import;
pub mod keymap;
mod legacy_format;
pub mod lite0_wheel;
pub mod model_file;
pub mod pickle;
pub mod tensor;
mod torch_objects;
pub mod varstore;
mod zip_format;

pub use arch::ModelArch;
pub use dtype::DType;
pub use error::{CheckpointError, ReadError};
pub use expected_keys::{ExpectedKeys, KeyMismatch};
pub use import::{import_checkpoint, ImportError, ImportOptions, ImportReport};
pub use model_file::{AnchorSettings, ModelFile, ModelFileError, ModelMeta, Normalization};
pub use tensor::CheckpointTensor;

use std::collections::HashMap;
use std::path::Path;

/// Reads every tensor of the state_dict in a PyTorch checkpoint, in file order.
pub fn read_checkpoint(path: &Path) -> Result<Vec<CheckpointTensor>, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|e| ReadError::Io(e).at(path))?;
    read_checkpoint_bytes(&bytes).map_err(|e| e.at(path))
}

/// [`read_checkpoint`] on bytes already in memory.
pub fn read_checkpoint_bytes(bytes: &[u8]) -> Result<Vec<CheckpointTensor>, ReadError> {
    let (top, storages) = if bytes.starts_with(b"PK\x03\x04") {
        zip_format::read_zip(bytes)?
    } else if legacy_format::looks_legacy(bytes) {
        legacy_format::read_legacy(bytes)?
    } else if bytes.get(257..262) == Some(b"ustar") {
        return Err(ReadError::LegacyTar);
    } else {
        return Err(ReadError::UnknownFormat);
    };
    assemble(&top, &storages, bytes.len() as u64)
}

/// Gathers the state_dict's tensors out of their storages.
fn assemble(
    top: &pickle::Value,
    storages: &HashMap<String, Vec<u8>>,
    max_bytes: u64,
) -> Result<Vec<CheckpointTensor>, ReadError> {
    let entries = torch_objects::find_state_dict(top)?;
    entries
        .iter()
        .map(|(name, t)| {
            let key = &t.storage.key;
            let bytes = storages
                .get(key)
                .ok_or_else(|| ReadError::MissingStorage { key: key.clone() })?;
            tensor::materialize(name, t, bytes, max_bytes).map_err(|msg| ReadError::BadTensor {
                name: name.clone(),
                msg,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
