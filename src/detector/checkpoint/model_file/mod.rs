//! detlab's model file: one `.safetensors` whose `__metadata__` carries everything needed
//! to run the model — architecture, class names, input size, normalisation, anchors.
//!
//! Metadata keys (all values are strings, as safetensors requires):
//!
//! | key | value |
//! |---|---|
//! | `format` | `detlab` |
//! | `detlab.format_version` | `1` |
//! | `detlab.arch` | `d0` … `d8`, `lite0` |
//! | `detlab.class_names` | JSON array of strings (class id = index) |
//! | `detlab.input_size` | square input side in pixels |
//! | `detlab.normalization` | JSON `{"pixel_scale", "mean": [3], "std": [3]}` |
//! | `detlab.anchors` | JSON `{"anchor_scale", "scales": [..], "ratios": [[x, y], ..], "min_level", "max_level"}` |
//! | `detlab.partial` | `true` when some model parameters are absent (e.g. backbone-only) |
//! | `detlab.source` | optional free text: where the weights came from |
//! | `detlab.train_tile` | optional: the tile size of a tiled training run |
//! | `detlab.cross_validation` | optional JSON [`CrossValidation`]: how the recipe scored in k-fold cross-validation |
//!
//! By concept: [`ModelMeta`] and its metadata keys (`meta`), the cross-validation part of
//! the model card ([`CrossValidation`], `cross_validation`), the errors (`error`); this
//! module reads and writes the file itself.

mod cross_validation;
mod error;
mod meta;
#[cfg(test)]
mod tests;

use std::path::Path;

use super::dtype::DType;
use super::expected_keys::{compare_keys, ExpectedKeys};
use super::tensor::CheckpointTensor;
pub use crate::detector::maths::letterbox::Normalization;
pub use cross_validation::{CrossValidation, MeanSd};
pub use error::{ModelFileError, ModelFileErrorKind};
pub use meta::ModelMeta;
use meta::KEY_FORMAT;

/// The version of the metadata layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A model: its settings and its named tensors (`f32` parameters; integer buffers may appear).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFile {
    pub meta: ModelMeta,
    pub tensors: Vec<CheckpointTensor>,
}

impl ModelFile {
    /// Reads and checks a model file (metadata, dtypes); see [`ModelFile::check_keys`] for the weights.
    pub fn read(path: &Path) -> Result<Self, ModelFileError> {
        let bytes = std::fs::read(path).map_err(|e| ModelFileErrorKind::Io(e).at(path))?;
        Self::from_bytes(&bytes).map_err(|k| k.at(path))
    }

    /// Reads a model file and checks its weights against the keys/shapes the model expects.
    pub fn read_validated(path: &Path, expected: &ExpectedKeys) -> Result<Self, ModelFileError> {
        let m = Self::read(path)?;
        m.check_keys(expected).map_err(|k| k.at(path))?;
        Ok(m)
    }

    /// Parses a model file held in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelFileErrorKind> {
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| ModelFileErrorKind::SafeTensors(e.to_string()))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| ModelFileErrorKind::SafeTensors(e.to_string()))?;
        let meta = header
            .metadata()
            .as_ref()
            .ok_or(ModelFileErrorKind::NotDetlab)?;
        if meta.get(KEY_FORMAT).map(String::as_str) != Some("detlab") {
            return Err(ModelFileErrorKind::NotDetlab);
        }
        let meta = ModelMeta::from_metadata(meta)?;
        let mut tensors = Vec::with_capacity(st.len());
        for name in header.offset_keys() {
            let view = st
                .tensor(&name)
                .map_err(|e| ModelFileErrorKind::SafeTensors(e.to_string()))?;
            let dtype = DType::from_safetensors(view.dtype()).ok_or_else(|| {
                ModelFileErrorKind::UnsupportedDtype {
                    name: name.clone(),
                    dtype: format!("{:?}", view.dtype()),
                }
            })?;
            tensors.push(CheckpointTensor {
                name,
                dtype,
                shape: view.shape().to_vec(),
                data: view.data().to_vec(),
            });
        }
        Ok(Self { meta, tensors })
    }

    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelFileErrorKind> {
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = self.tensors.iter().find(|t| !seen.insert(t.name.as_str())) {
            return Err(ModelFileErrorKind::Duplicate(dup.name.clone()));
        }
        let views = self.tensors.iter().map(|t| (t.name.as_str(), t));
        safetensors::serialize(views, Some(self.meta.to_metadata()?))
            .map_err(|e| ModelFileErrorKind::SafeTensors(e.to_string()))
    }

    /// Writes the file atomically (temp file in the same folder, then rename).
    pub fn write(&self, path: &Path) -> Result<(), ModelFileError> {
        let bytes = self.to_bytes().map_err(|k| k.at(path))?;
        crate::atomic::write_atomic(path, &bytes).map_err(|e| ModelFileErrorKind::Io(e).at(path))
    }

    /// Refuses a model with a NaN or infinite weight
    /// ([`ModelFileErrorKind::NonFinite`], naming the first).
    pub fn check_finite(&self) -> Result<(), ModelFileErrorKind> {
        match super::import::first_non_finite(&self.tensors) {
            Some(f) => Err(ModelFileErrorKind::NonFinite {
                tensor: f.tensor,
                index: f.index,
                value: f.value,
            }),
            None => Ok(()),
        }
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&CheckpointTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Checks the tensors against the model's `(name, shape)` list: every expected key
    /// present (unless the file is [`ModelMeta::partial`]) with its shape, nothing else,
    /// and every weight floating-point. `num_batches_tracked` buffers are ignored unless
    /// expected.
    pub fn check_keys(&self, expected: &ExpectedKeys) -> Result<(), ModelFileErrorKind> {
        let mut mismatch = compare_keys(
            self.tensors
                .iter()
                .filter(|t| {
                    !t.name.ends_with("num_batches_tracked")
                        || expected.iter().any(|(n, _)| *n == t.name)
                })
                .map(|t| (t.name.as_str(), t.shape_i64())),
            expected,
        );
        if self.meta.partial {
            mismatch.missing.clear();
        }
        if !mismatch.is_empty() {
            return Err(ModelFileErrorKind::Keys {
                arch: self.meta.arch,
                mismatch,
            });
        }
        match self
            .tensors
            .iter()
            .find(|t| !t.dtype.is_float() && !t.name.ends_with("num_batches_tracked"))
        {
            Some(t) => Err(ModelFileErrorKind::NotFloat {
                tensor: t.name.clone(),
                dtype: t.dtype,
            }),
            None => Ok(()),
        }
    }
}

impl safetensors::View for &CheckpointTensor {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype.to_safetensors()
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }
}
