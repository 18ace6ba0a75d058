//! [`ModelMeta`]: everything about a model except its weights, and its mapping to and
//! from the safetensors `__metadata__` strings (the keys are listed in the
//! [module documentation](super)), checked against what detlab can run.

use std::collections::HashMap;

use serde::Serialize;

use super::{CrossValidation, ModelFileErrorKind, Normalization, FORMAT_VERSION};
use crate::detector::checkpoint::arch::{ModelArch, UnknownArch};
use crate::detector::maths::anchors::AnchorConfig;
use crate::detector::settings::{
    check_anchor_ratios, check_input_size, ANCHOR_VALUE_RANGE, MAX_ANCHOR_SHAPES, MAX_CLASSES,
};

pub(super) const KEY_FORMAT: &str = "format";
pub(super) const KEY_VERSION: &str = "detlab.format_version";
pub(super) const KEY_ARCH: &str = "detlab.arch";
pub(super) const KEY_CLASSES: &str = "detlab.class_names";
pub(super) const KEY_INPUT: &str = "detlab.input_size";
pub(super) const KEY_NORM: &str = "detlab.normalization";
pub(super) const KEY_ANCHORS: &str = "detlab.anchors";
pub(super) const KEY_PARTIAL: &str = "detlab.partial";
pub(super) const KEY_SOURCE: &str = "detlab.source";
pub(super) const KEY_TRAIN_TILE: &str = "detlab.train_tile";
pub(super) const KEY_CROSS_VALIDATION: &str = "detlab.cross_validation";

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

    pub(super) fn to_metadata(&self) -> Result<HashMap<String, String>, ModelFileErrorKind> {
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

    pub(super) fn from_metadata(m: &HashMap<String, String>) -> Result<Self, ModelFileErrorKind> {
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
            .map_err(|e: UnknownArch| bad(KEY_ARCH, e.to_string()))?;
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
