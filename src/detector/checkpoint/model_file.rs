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

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::arch::ModelArch;
use super::dtype::DType;
use super::expected_keys::{compare_keys, ExpectedKeys, KeyMismatch};
use super::tensor::CheckpointTensor;
use crate::detector::maths::anchors::AnchorConfig;
pub use crate::detector::maths::letterbox::Normalization;
use crate::detector::settings::{
    check_anchor_ratios, check_input_size, ANCHOR_VALUE_RANGE, MAX_ANCHOR_SHAPES, MAX_CLASSES,
};

/// The version of the metadata layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const KEY_FORMAT: &str = "format";
const KEY_VERSION: &str = "detlab.format_version";
const KEY_ARCH: &str = "detlab.arch";
const KEY_CLASSES: &str = "detlab.class_names";
const KEY_INPUT: &str = "detlab.input_size";
const KEY_NORM: &str = "detlab.normalization";
const KEY_ANCHORS: &str = "detlab.anchors";
const KEY_PARTIAL: &str = "detlab.partial";
const KEY_SOURCE: &str = "detlab.source";
const KEY_TRAIN_TILE: &str = "detlab.train_tile";
const KEY_CROSS_VALIDATION: &str = "detlab.cross_validation";

/// A mean over cross-validation folds and the sample standard deviation around it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanSd {
    pub mean: f64,
    /// The sample standard deviation (n − 1); 0 for a single value.
    pub sd: f64,
}

impl MeanSd {
    /// The mean and sample standard deviation of `values` (NaN for none).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Self { mean, sd }
    }
}

impl std::fmt::Display for MeanSd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.4} ± {:.4}", self.mean, self.sd)
    }
}

/// How the recipe of a model scored in k-fold cross-validation (`detlab train --folds`):
/// part of the model card. The model itself was trained on all `images` afterwards, for
/// `final_epochs` epochs, without validation-based selection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    /// K.
    pub folds: usize,
    /// The seed of the fold assignment.
    pub fold_seed: u64,
    /// The pooled images (training and validation sets) the folds split.
    pub images: usize,
    /// The recipe, in words (the settings every fold and the final model trained with).
    pub recipe: String,
    /// The epochs each fold trained.
    pub epochs: usize,
    /// The epochs the final model trained.
    pub final_epochs: usize,
    /// AP@[.5:.95] on the held-out fold after the last epoch (the honest estimate).
    pub ap: MeanSd,
    /// AP@.5 after the last epoch.
    pub ap50: MeanSd,
    /// AP@.75 after the last epoch.
    pub ap75: MeanSd,
    /// AP@[.5:.95] at each fold's best epoch (chosen on the held-out fold itself, so
    /// optimistic).
    pub best_ap: MeanSd,
    /// The median of the folds' best epochs.
    pub median_best_epoch: f64,
}

impl std::fmt::Display for CrossValidation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-fold cross-validation on {} images (fold seed {}), {} epochs per fold: AP {}, AP50 {}, AP75 {} (mean ± sd over folds, last epoch); best-epoch AP {} (optimistic), median best epoch {}; final model trained on all images for {} epochs; recipe: {}",
            self.folds,
            self.images,
            self.fold_seed,
            self.epochs,
            self.ap,
            self.ap50,
            self.ap75,
            self.best_ap,
            self.median_best_epoch,
            self.final_epochs,
            self.recipe
        )
    }
}

/// Everything about a model except its weights.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelMeta {
    pub arch: ModelArch,
    /// Class names; class id `i` is `class_names[i]`.
    pub class_names: Vec<String>,
    pub input_size: u32,
    pub normalization: Normalization,
    pub anchors: AnchorConfig,
    /// Some parameters are missing (a backbone-only import); such a file can seed
    /// fine-tuning but cannot run detection.
    pub partial: bool,
    /// Where the weights came from (free text), if known.
    pub source: Option<String>,
    /// The model was trained on crops of this many original pixels (tiled training), so
    /// large photos are detected in tiles of that size
    /// ([`Tiling::Auto`](crate::detector::maths::tiling::Tiling::Auto)); `None`: trained on
    /// whole photos.
    pub train_tile: Option<u32>,
    /// How the model's recipe scored in cross-validation, when it was chosen that way.
    pub cross_validation: Option<CrossValidation>,
}

impl ModelMeta {
    /// The reference settings of `arch` for these classes.
    pub fn for_arch(arch: ModelArch, class_names: Vec<String>) -> Self {
        Self {
            arch,
            class_names,
            input_size: arch.input_size(),
            normalization: arch.normalization(),
            anchors: arch.anchors(),
            partial: false,
            source: None,
            train_tile: None,
            cross_validation: None,
        }
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    fn to_metadata(&self) -> Result<HashMap<String, String>, ModelFileErrorKind> {
        self.check()?;
        fn json<T: Serialize>(key: &'static str, v: &T) -> Result<String, ModelFileErrorKind> {
            serde_json::to_string(v).map_err(|e| ModelFileErrorKind::BadMetadata {
                key,
                msg: e.to_string(),
            })
        }
        let mut m = HashMap::new();
        m.insert(KEY_FORMAT.into(), "detlab".into());
        m.insert(KEY_VERSION.into(), FORMAT_VERSION.to_string());
        m.insert(KEY_ARCH.into(), self.arch.name().into());
        m.insert(KEY_CLASSES.into(), json(KEY_CLASSES, &self.class_names)?);
        m.insert(KEY_INPUT.into(), self.input_size.to_string());
        m.insert(KEY_NORM.into(), json(KEY_NORM, &self.normalization)?);
        m.insert(KEY_ANCHORS.into(), json(KEY_ANCHORS, &self.anchors)?);
        m.insert(KEY_PARTIAL.into(), self.partial.to_string());
        if let Some(s) = &self.source {
            m.insert(KEY_SOURCE.into(), s.clone());
        }
        if let Some(t) = self.train_tile {
            m.insert(KEY_TRAIN_TILE.into(), t.to_string());
        }
        if let Some(cv) = &self.cross_validation {
            m.insert(KEY_CROSS_VALIDATION.into(), json(KEY_CROSS_VALIDATION, cv)?);
        }
        Ok(m)
    }

    fn from_metadata(m: &HashMap<String, String>) -> Result<Self, ModelFileErrorKind> {
        let get = |k: &'static str| m.get(k).ok_or(ModelFileErrorKind::MissingMetadata(k));
        let bad = |k: &'static str, msg: String| ModelFileErrorKind::BadMetadata { key: k, msg };
        let version: u32 = get(KEY_VERSION)?
            .parse()
            .map_err(|_| bad(KEY_VERSION, "not an integer".into()))?;
        if version > FORMAT_VERSION {
            return Err(ModelFileErrorKind::NewerVersion(version));
        }
        let arch: ModelArch = get(KEY_ARCH)?
            .parse()
            .map_err(|e: super::arch::UnknownArch| bad(KEY_ARCH, e.to_string()))?;
        let class_names: Vec<String> =
            serde_json::from_str(get(KEY_CLASSES)?).map_err(|e| bad(KEY_CLASSES, e.to_string()))?;
        let input_size: u32 = get(KEY_INPUT)?
            .parse()
            .map_err(|_| bad(KEY_INPUT, "not a positive integer below 2^32".into()))?;
        let normalization: Normalization =
            serde_json::from_str(get(KEY_NORM)?).map_err(|e| bad(KEY_NORM, e.to_string()))?;
        let anchors: AnchorConfig =
            serde_json::from_str(get(KEY_ANCHORS)?).map_err(|e| bad(KEY_ANCHORS, e.to_string()))?;
        let partial = m.get(KEY_PARTIAL).is_some_and(|v| v == "true");
        let source = m.get(KEY_SOURCE).cloned();
        let train_tile = match m.get(KEY_TRAIN_TILE) {
            Some(v) => Some(
                v.parse::<u32>()
                    .ok()
                    .filter(|&t| t >= 8)
                    .ok_or_else(|| bad(KEY_TRAIN_TILE, format!("{v:?} is not a tile size")))?,
            ),
            None => None,
        };
        let cross_validation = match m.get(KEY_CROSS_VALIDATION) {
            Some(v) => Some(
                serde_json::from_str(v).map_err(|e| bad(KEY_CROSS_VALIDATION, e.to_string()))?,
            ),
            None => None,
        };
        let meta = Self {
            arch,
            class_names,
            input_size,
            normalization,
            anchors,
            partial,
            source,
            train_tile,
            cross_validation,
        };
        meta.check()?;
        Ok(meta)
    }

    /// Checks every number against what detlab can run: at least one and at most
    /// [`MAX_CLASSES`] classes, an input size from 8 to
    /// [`MAX_INPUT_SIZE`](crate::detector::settings::MAX_INPUT_SIZE) (a multiple of
    /// 8), finite normalisation with non-zero divisors, and 1 to [`MAX_ANCHOR_SHAPES`]
    /// anchor scales and ratios in [`ANCHOR_VALUE_RANGE`] on ordered levels. A model file
    /// is checked when it is read and before it is written, so that no absurd value (an
    /// input size of a million, which would ask for terabytes) reaches the network.
    pub fn check(&self) -> Result<(), ModelFileErrorKind> {
        let bad = |k: &'static str, msg: String| ModelFileErrorKind::BadMetadata { key: k, msg };
        if self.class_names.is_empty() {
            return Err(bad(KEY_CLASSES, "no classes".into()));
        }
        if self.class_names.len() > MAX_CLASSES {
            return Err(bad(
                KEY_CLASSES,
                format!(
                    "{} classes; detlab accepts at most {MAX_CLASSES}",
                    self.class_names.len()
                ),
            ));
        }
        check_input_size(self.input_size, 8).map_err(|m| bad(KEY_INPUT, m))?;
        if !self.normalization.is_valid() {
            return Err(bad(KEY_NORM, "non-finite values or a zero divisor".into()));
        }
        let anchors = &self.anchors;
        let (lo, hi) = ANCHOR_VALUE_RANGE;
        let in_range = |v: f64| v.is_finite() && (lo..=hi).contains(&v);
        if anchors.scales.is_empty()
            || anchors.scales.len() > MAX_ANCHOR_SHAPES
            || !in_range(anchors.anchor_scale)
            || !anchors.scales.iter().all(|&s| in_range(s))
            || anchors.min_level > anchors.max_level
            || anchors.max_level > 12
        {
            return Err(bad(
                KEY_ANCHORS,
                format!(
                    "the anchor scale and 1 to {MAX_ANCHOR_SHAPES} scales must be from {lo} to {hi}, levels ordered up to 12"
                ),
            ));
        }
        check_anchor_ratios(&anchors.ratios).map_err(|m| bad(KEY_ANCHORS, m))?;
        Ok(())
    }
}

/// A model: its settings and its named tensors (`f32` parameters; integer buffers may appear).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFile {
    pub meta: ModelMeta,
    pub tensors: Vec<CheckpointTensor>,
}

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
    #[error("the weights do not fit the {arch} model: {mismatch}")]
    Keys {
        arch: ModelArch,
        mismatch: KeyMismatch,
    },
}

impl ModelFileErrorKind {
    fn at(self, path: &Path) -> ModelFileError {
        ModelFileError {
            path: path.to_path_buf(),
            kind: self,
        }
    }
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
    /// present (unless the file is [`ModelMeta::partial`]) with its shape, nothing else.
    /// `num_batches_tracked` buffers are ignored unless expected.
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
        if mismatch.is_empty() {
            Ok(())
        } else {
            Err(ModelFileErrorKind::Keys {
                arch: self.meta.arch,
                mismatch,
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, shape: &[usize], values: &[f32]) -> CheckpointTensor {
        CheckpointTensor {
            name: name.into(),
            dtype: DType::F32,
            shape: shape.to_vec(),
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    fn sample() -> ModelFile {
        ModelFile {
            meta: ModelMeta::for_arch(ModelArch::Lite0, vec!["Sprite".into(), "Cola".into()]),
            tensors: vec![
                tensor("a.weight", &[2, 1], &[1.5, -2.0]),
                tensor("b.bias", &[], &[3.0]),
            ],
        }
    }

    #[test]
    fn writes_and_reads_back_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let mut m = sample();
        m.meta.source = Some("unit test".into());
        m.write(&path).unwrap();
        let back = ModelFile::read(&path).unwrap();
        assert_eq!(back.meta, m.meta);
        let mut sorted = back.tensors.clone();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(sorted, m.tensors);
        assert_eq!(back.meta.normalization, Normalization::LITE);
        assert_eq!(back.meta.anchors.anchor_scale, 3.0);
        assert_eq!(back.meta.input_size, 320);
    }

    #[test]
    fn key_check_lists_problems() {
        let m = sample();
        let expected = vec![
            ("a.weight".to_string(), vec![2, 1]),
            ("b.bias".to_string(), vec![]),
        ];
        m.check_keys(&expected).unwrap();
        let expected = vec![
            ("a.weight".to_string(), vec![1, 2]),
            ("c".to_string(), vec![4]),
        ];
        let err = m.check_keys(&expected).unwrap_err().to_string();
        assert!(
            err.contains("1 missing, 1 unexpected and 1 mis-shaped"),
            "{err}"
        );
        assert!(err.contains("lite0"), "{err}");
    }

    #[test]
    fn rejects_foreign_and_broken_files() {
        let plain = safetensors::serialize([("x", &tensor("x", &[1], &[1.0]))], None).unwrap();
        assert!(matches!(
            ModelFile::from_bytes(&plain),
            Err(ModelFileErrorKind::NotDetlab)
        ));
        assert!(matches!(
            ModelFile::from_bytes(b"garbage"),
            Err(ModelFileErrorKind::SafeTensors(_))
        ));
        let mut meta = sample().meta.to_metadata().unwrap();
        meta.insert(KEY_ARCH.into(), "d11".into());
        let bad = safetensors::serialize([("x", &tensor("x", &[1], &[1.0]))], Some(meta)).unwrap();
        let err = ModelFile::from_bytes(&bad).unwrap_err().to_string();
        assert!(err.contains("detlab.arch") && err.contains("d11"), "{err}");
        let mut meta = sample().meta.to_metadata().unwrap();
        meta.insert(KEY_VERSION.into(), "99".into());
        let newer =
            safetensors::serialize([("x", &tensor("x", &[1], &[1.0]))], Some(meta)).unwrap();
        assert!(matches!(
            ModelFile::from_bytes(&newer),
            Err(ModelFileErrorKind::NewerVersion(99))
        ));
    }

    /// Every number of the metadata is checked when a file is read (an input size of a
    /// million once made `predict` abort on a 3 TB allocation) and before one is written.
    #[test]
    fn absurd_numbers_are_refused_on_read_and_write() {
        let x = tensor("x", &[1], &[1.0]);
        let cases: [(&str, &str); 8] = [
            (KEY_INPUT, "1000000"),
            (KEY_INPUT, "2056"),
            (KEY_INPUT, "99999999999"),
            (KEY_INPUT, "0"),
            (
                KEY_ANCHORS,
                r#"{"anchor_scale":1e300,"scales":[1.0],"ratios":[[1.0,1.0]],"min_level":3,"max_level":7}"#,
            ),
            (
                KEY_ANCHORS,
                r#"{"anchor_scale":4.0,"scales":[1.0],"ratios":[[1.0,1e-9]],"min_level":3,"max_level":7}"#,
            ),
            (
                KEY_ANCHORS,
                r#"{"anchor_scale":4.0,"scales":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"ratios":[[1.0,1.0]],"min_level":3,"max_level":7}"#,
            ),
            (
                KEY_NORM,
                r#"{"pixel_scale":255.0,"mean":[0,0,0],"std":[0,1,1]}"#,
            ),
        ];
        for (key, value) in cases {
            let mut meta = sample().meta.to_metadata().unwrap();
            meta.insert(key.into(), value.into());
            let bytes = safetensors::serialize([("x", &x)], Some(meta)).unwrap();
            let err = ModelFile::from_bytes(&bytes).unwrap_err();
            assert!(
                matches!(err, ModelFileErrorKind::BadMetadata { key: k, .. } if k == key),
                "{key} = {value}: {err}"
            );
        }
        let many: Vec<String> = (0..=crate::detector::settings::MAX_CLASSES)
            .map(|i| format!("c{i}"))
            .collect();
        let mut meta = sample().meta.to_metadata().unwrap();
        meta.insert(KEY_CLASSES.into(), serde_json::to_string(&many).unwrap());
        let bytes = safetensors::serialize([("x", &x)], Some(meta)).unwrap();
        let err = ModelFile::from_bytes(&bytes).unwrap_err().to_string();
        assert!(err.contains("detlab.class_names"), "{err}");

        // Read through a path, the error names the file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.safetensors");
        let mut meta = sample().meta.to_metadata().unwrap();
        meta.insert(KEY_INPUT.into(), "1000000".into());
        std::fs::write(
            &path,
            safetensors::serialize([("x", &x)], Some(meta)).unwrap(),
        )
        .unwrap();
        let err = ModelFile::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("huge.safetensors") && err.contains("1000000"),
            "{err}"
        );
        // And no such file is written.
        let mut m = sample();
        m.meta.input_size = 1_000_000;
        let out = dir.path().join("out.safetensors");
        assert!(m.write(&out).is_err());
        assert!(!out.exists());
    }

    #[test]
    fn non_finite_weights_are_found() {
        let mut m = sample();
        m.check_finite().unwrap();
        m.tensors[0] = tensor("a.weight", &[2, 1], &[1.5, f32::NAN]);
        let err = m.check_finite().unwrap_err().to_string();
        assert!(err.contains("a.weight") && err.contains("NaN"), "{err}");
    }

    #[test]
    fn failed_write_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let mut m = sample();
        m.tensors.push(tensor("a.weight", &[1], &[0.0]));
        assert!(m.write(&path).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
