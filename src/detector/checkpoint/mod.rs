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
#[cfg(feature = "torch")]
pub mod varstore;
mod zip_format;

pub use arch::ModelArch;
pub use dtype::DType;
pub use error::{CheckpointError, ReadError};
pub use expected_keys::{ExpectedKeys, KeyMismatch};
pub use import::{import_checkpoint, ImportError, ImportOptions, ImportReport};
pub use model_file::{
    CrossValidation, MeanSd, ModelFile, ModelFileError, ModelMeta, Normalization,
};
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
///
/// Views may share a storage, so the output can legitimately exceed the file; it is
/// capped at [`OUTPUT_BUDGET_FACTOR`] times the file size so that a file of many views on
/// one big storage cannot make the reader allocate without bound.
fn assemble(
    top: &pickle::Value,
    storages: &HashMap<String, Vec<u8>>,
    file_len: u64,
) -> Result<Vec<CheckpointTensor>, ReadError> {
    let entries = torch_objects::find_state_dict(top)?;
    let mut budget = file_len.saturating_mul(OUTPUT_BUDGET_FACTOR);
    let mut out = Vec::with_capacity(entries.len());
    for (name, t) in &entries {
        let key = &t.storage.key;
        let bytes = storages
            .get(key)
            .ok_or_else(|| ReadError::MissingStorage { key: key.clone() })?;
        let tensor = tensor::materialize(name, t, bytes, budget.min(file_len)).map_err(|msg| {
            let msg = if budget < file_len {
                format!("{msg} (the tensors before it already take {OUTPUT_BUDGET_FACTOR}x the file's size)")
            } else {
                msg
            };
            ReadError::BadTensor { name: name.clone(), msg }
        })?;
        budget -= tensor.data.len() as u64;
        out.push(tensor);
    }
    Ok(out)
}

/// The tensors read from one file may take at most this many times its size.
const OUTPUT_BUDGET_FACTOR: u64 = 4;

#[cfg(test)]
mod tests;
