//! Everything that defines a training run: model, loss preset, optimiser, schedule,
//! augmentation, stages, validation and stopping rules.
//!
//! The defaults ([`TrainConfig::default`]) are the best recipe we know, the one that trained
//! the shipped model (`models/README.md`, AP 0.662 on cola-sprite/val): EfficientDet-Lite0
//! at 384 × 384, 33 epochs of batch 8, AdamW at 1e-3 with weight decay 0.01, one warm-up
//! epoch then cosine decay to 1 %, gradient clipping at 10, two frozen-backbone epochs,
//! the `official` loss, an EMA of the weights (0.998), horizontal flip 0.5, scale jitter
//! 0.6–1.4 and colour jitter 0.1. Anchor ratios fitted to the boxes complete the recipe;
//! they depend on the data, so [`super::prepare()`] fits them ([`super::AnchorChoice`]).
//! The recipe is for sets of 100 images or more; [`super::prepare()`] adapts it to a smaller
//! one ([`super::small_set_rule`]).

use serde::{Deserialize, Serialize};

pub use super::loss_preset::{BoxLoss, LossParams, LossPreset, Normaliser};
use crate::detector::checkpoint::{ModelArch, ModelMeta};
use crate::detector::settings::{check_anchor_ratios, check_input_size};
pub use crate::detector::settings::{ConfigError, DeviceChoice, Setting};

/// The optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// AdamW (β 0.9 / 0.999, ε 1e-8, decoupled weight decay).
    #[default]
    AdamW,
    /// SGD with momentum (0.9 by default) and L2 weight decay.
    Sgd,
}

impl std::str::FromStr for OptimizerKind {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.to_ascii_lowercase().as_str() {
            "adamw" => Ok(Self::AdamW),
            "sgd" => Ok(Self::Sgd),
            _ => Err(ConfigError::UnknownOptimizer(s.to_string())),
        }
    }
}

/// Data augmentation of training images (validation images are only letterboxed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Probability of a horizontal flip.
    pub hflip: f64,
    /// Scale jitter: the letterboxed image is resized by a factor drawn uniformly from
    /// `[scale_min, scale_max]`, then cropped (at a random offset) or padded (bottom/right,
    /// as at inference) back to the input size. `1.0, 1.0` disables it.
    pub scale_min: f64,
    pub scale_max: f64,
    /// Colour jitter strength: brightness, contrast and saturation factors are drawn from
    /// `[1 − s, 1 + s]`. `0` disables it.
    pub color: f64,
    /// Small random rotations: the image turns about its centre by an angle drawn
    /// uniformly from `[−rotate_deg, rotate_deg]` degrees (corners filled with the mean
    /// colour); each box becomes the axis-aligned box of its rotated inscribed ellipse,
    /// clipped, and keeps its label when 40 % of it stays in. `0` disables it.
    #[serde(default)]
    pub rotate_deg: f64,
    /// Probability of a mosaic: the input is four training images (this one and three
    /// others drawn from its RNG), each at half the input size times its own scale
    /// jitter, in the four quadrants around a random centre. `0` disables it.
    #[serde(default)]
    pub mosaic: f64,
    /// Probability of copy-paste: up to [`AugmentConfig::copy_paste_max`] labelled boxes
    /// cut from other training images are pasted at free places of this one (overlapping
    /// no box by more than 10 % of the smaller of the two). `0` disables it.
    #[serde(default)]
    pub copy_paste: f64,
    /// Most boxes pasted by one copy-paste.
    #[serde(default = "default_copy_paste_max")]
    pub copy_paste_max: usize,
}

fn default_copy_paste_max() -> usize {
    3
}

impl Default for AugmentConfig {
    /// The recipe's: flip 0.5, scale jitter 0.6–1.4 (worth +0.062 AP over 0.8–1.2 on
    /// cola-sprite), colour jitter 0.1.
    fn default() -> Self {
        Self {
            hflip: 0.5,
            scale_min: 0.6,
            scale_max: 1.4,
            color: 0.1,
            rotate_deg: 0.0,
            mosaic: 0.0,
            copy_paste: 0.0,
            copy_paste_max: default_copy_paste_max(),
        }
    }
}

impl AugmentConfig {
    /// No augmentation at all.
    pub fn none() -> Self {
        Self {
            hflip: 0.0,
            scale_min: 1.0,
            scale_max: 1.0,
            color: 0.0,
            rotate_deg: 0.0,
            mosaic: 0.0,
            copy_paste: 0.0,
            copy_paste_max: default_copy_paste_max(),
        }
    }
}

/// Stop when the validation AP has not improved by `min_delta` for `patience` epochs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    pub patience: usize,
    pub min_delta: f64,
}

/// The recipe's EMA decay of the weights.
pub const RECIPE_EMA_DECAY: f64 = 0.998;

/// A training run's settings. Serialised into `resume.json` and the `Started` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The architecture (written `lite0`, `d0` … `d8` in run files).
    pub arch: ModelArch,
    /// Square network input side (a multiple of 8; 128 multiples match the reference).
    pub input_size: u32,
    pub epochs: usize,
    pub batch_size: usize,
    pub loss: LossPreset,
    /// Weight of the GIoU box term added to the preset's loss ([`LossParams::giou_weight`],
    /// [`super::loss`]); 0, the default, trains the preset unchanged. 1 is the suggested
    /// value when on (see `BENCHMARKS.md`).
    #[serde(default)]
    pub giou_weight: f64,
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    pub lr: f64,
    pub weight_decay: f64,
    /// SGD momentum (ignored by AdamW).
    pub momentum: f64,
    /// Linear warm-up length in epochs (fractions allowed), from `lr · warmup_start`; it
    /// restarts when the backbone is unfrozen.
    pub warmup_epochs: f64,
    pub warmup_start: f64,
    /// The cosine decay ends at `lr · min_lr_ratio`.
    pub min_lr_ratio: f64,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// Exponential moving average of the weights (e.g. 0.998); validation and the saved
    /// models use the averaged weights.
    pub ema_decay: Option<f64>,
    /// First epochs with the backbone frozen (no gradients, BatchNorm in eval mode); the
    /// BiFPN and heads train. Then the whole network trains.
    pub freeze_backbone_epochs: usize,
    /// Anchor aspect ratios `(x, y)` instead of the architecture's reference ones (see
    /// [`super::anchor_fit`]); saved in the model file, so inference uses them too.
    #[serde(default)]
    pub anchor_ratios: Option<Vec<(f64, f64)>>,
    pub augment: AugmentConfig,
    /// Seed of the split, the shuffling, the augmentations and libtorch's RNG.
    pub seed: u64,
    /// CPU threads for libtorch and the decoding pool (`None`: libtorch's default).
    pub threads: Option<usize>,
    pub device: DeviceChoice,
    /// Float16 mixed precision on CUDA: the forward pass under autocast, dynamic loss
    /// scaling ([`super::grad_scaler`]); weights, optimiser state and loss stay float32.
    #[serde(default)]
    pub mixed_precision: bool,
    /// Fraction of the data held out for validation when no validation set is given.
    pub val_fraction: f64,
    pub early_stopping: Option<EarlyStopping>,
    /// Consecutive non-finite losses tolerated (each step skipped) before the run fails.
    pub max_nonfinite_steps: usize,
    /// Batches decoded ahead of the training step.
    pub prefetch_batches: usize,
    /// Cap on steps per epoch (benchmarks and tests); `None` = the whole set.
    pub max_steps_per_epoch: Option<usize>,
    /// Emit a `Step` event every this many steps (≥ 1).
    pub log_every: usize,
    /// Skip validation (no AP; `best` follows the training loss).
    pub skip_validation: bool,
    /// Validate the starting weights before the first step (a
    /// [`super::TrainEvent::Baseline`]): what a fine-tune must beat.
    #[serde(default)]
    pub validate_first: bool,
    /// Warm up the BatchNorm running statistics' momentum as the EMA's decay
    /// ([`super::bn_warmup`]), so that a short run validates and saves statistics of its
    /// own data. Off: the fixed momentum 0.01 of earlier versions.
    #[serde(default = "yes")]
    pub bn_warmup: bool,
    /// Tiled training: random crops of this many original pixels at native resolution
    /// instead of whole photos ([`super::tile_crop`]), for small objects on large photos;
    /// the model file records it, so detection tiles large photos the same way.
    #[serde(default)]
    pub tile: Option<u32>,
}

fn yes() -> bool {
    true
}

impl Default for TrainConfig {
    /// The recipe of `models/README.md` (see the module documentation).
    fn default() -> Self {
        let arch = ModelArch::Lite0;
        Self {
            arch,
            input_size: Self::recommended_input_size(arch),
            epochs: 33,
            batch_size: 8,
            loss: LossPreset::Official,
            giou_weight: 0.0,
            optimizer: OptimizerKind::AdamW,
            lr: 1e-3,
            weight_decay: 1e-2,
            momentum: 0.9,
            warmup_epochs: 1.0,
            warmup_start: 0.1,
            min_lr_ratio: 0.01,
            grad_clip: Some(10.0),
            ema_decay: Some(RECIPE_EMA_DECAY),
            freeze_backbone_epochs: 2,
            anchor_ratios: None,
            augment: AugmentConfig::default(),
            seed: 0,
            threads: None,
            device: DeviceChoice::Auto,
            mixed_precision: false,
            val_fraction: 0.1,
            early_stopping: None,
            max_nonfinite_steps: 10,
            prefetch_batches: 2,
            max_steps_per_epoch: None,
            log_every: 1,
            skip_validation: false,
            validate_first: false,
            bn_warmup: true,
            tile: None,
        }
    }
}

/// Up to this input size the smallest feature map (P7, an input's 128th) is 1×1 pixel.
pub const ONE_PIXEL_P7: u32 = 128;

/// Why a step of one image at an input of [`ONE_PIXEL_P7`] or less cannot train.
pub fn one_value_batchnorm(what: &str) -> String {
    format!(
        "with {what} at an input of {ONE_PIXEL_P7} px or less, the smallest feature map (P7) \
         is 1×1, so each BatchNorm there sees one value per channel and training diverges: \
         use a batch of 2 or more images, or a larger input"
    )
}

impl TrainConfig {
    /// The recipe's settings for another architecture (at its
    /// [`TrainConfig::recommended_input_size`]).
    pub fn for_arch(arch: ModelArch) -> Self {
        Self {
            arch,
            input_size: Self::recommended_input_size(arch),
            ..Self::default()
        }
    }

    /// The input size to train `arch` at: 384 for Lite0 (the recipe's, +0.06 AP over its
    /// native 320 with the wider scale jitter), the native size of the others.
    pub fn recommended_input_size(arch: ModelArch) -> u32 {
        match arch {
            ModelArch::Lite0 => 384,
            other => other.input_size(),
        }
    }

    /// The loss preset's parameters with this run's GIoU weight.
    pub fn loss_params(&self) -> LossParams {
        LossParams {
            giou_weight: self.giou_weight,
            ..self.loss.params()
        }
    }

    /// The model-file metadata a run of these settings writes: the architecture's
    /// reference settings with this input size and, when set, these anchor ratios.
    pub fn model_meta(&self, class_names: Vec<String>) -> ModelMeta {
        let mut meta = ModelMeta::for_arch(self.arch, class_names);
        meta.input_size = self.input_size;
        if let Some(ratios) = &self.anchor_ratios {
            meta.anchors.ratios = ratios.clone();
        }
        meta.train_tile = self.tile;
        meta
    }

    /// Checks ranges; every error names its [`Setting`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |setting: Setting, m: String| Err(ConfigError::invalid(setting, m));
        if !self.arch.is_known() {
            return Err(ConfigError::UnknownArch(self.arch.to_string()));
        }
        if let Err(m) = check_input_size(self.input_size, 64) {
            return bad(
                Setting::InputSize,
                format!("{m} (128 multiples match the reference)"),
            );
        }
        if self.epochs == 0 {
            return bad(Setting::Epochs, "epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad(Setting::BatchSize, "batch size must be at least 1".into());
        }
        if self.batch_size == 1 && self.input_size <= ONE_PIXEL_P7 {
            return bad(Setting::BatchSize, one_value_batchnorm("a batch of 1"));
        }
        if !(self.giou_weight.is_finite() && self.giou_weight >= 0.0) {
            return bad(
                Setting::Loss,
                format!(
                    "GIoU weight {} must be 0 (off) or positive",
                    self.giou_weight
                ),
            );
        }
        if let Some(ratios) = &self.anchor_ratios {
            if let Err(m) = check_anchor_ratios(ratios) {
                return bad(Setting::AnchorRatios, m);
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(
                Setting::LearningRate,
                format!("learning rate {} must be positive", self.lr),
            );
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad(
                Setting::Validation,
                format!(
                    "validation fraction {} must be in [0, 1)",
                    self.val_fraction
                ),
            );
        }
        let a = &self.augment;
        let augment_ok = (0.0..=1.0).contains(&a.hflip)
            && a.scale_min > 0.0
            && a.scale_min <= a.scale_max
            && a.scale_max <= 4.0
            && (0.0..1.0).contains(&a.color)
            && (0.0..=45.0).contains(&a.rotate_deg)
            && (0.0..=1.0).contains(&a.mosaic)
            && (0.0..=1.0).contains(&a.copy_paste)
            && (1..=20).contains(&a.copy_paste_max);
        if !augment_ok {
            return bad(
                Setting::Augmentation,
                "augmentation: hflip, mosaic and copy-paste in [0,1], 0 < scale_min ≤ scale_max ≤ 4, \
                 colour in [0,1), rotation in [0,45] degrees, 1 to 20 pasted boxes"
                    .into(),
            );
        }
        if let Some(d) = self.ema_decay {
            if !(0.0..1.0).contains(&d) {
                return bad(Setting::Ema, format!("EMA decay {d} must be in [0, 1)"));
            }
        }
        if let Some(c) = self.grad_clip {
            if c.is_nan() || c <= 0.0 {
                return bad(
                    Setting::GradClip,
                    format!("gradient clip {c} must be positive"),
                );
            }
        }
        if self.threads == Some(0) {
            return bad(Setting::Threads, "threads must be at least 1".into());
        }
        if let Some(t) = self.tile {
            if !(32..=8192).contains(&t) {
                return bad(
                    Setting::Augmentation,
                    format!("tile {t} must be from 32 to 8192 pixels"),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_parsing() {
        let r = LossPreset::Reference.params();
        assert_eq!((r.gamma, r.neg_iou, r.force_match), (2.0, 0.4, false));
        let o = LossPreset::Official.params();
        assert_eq!((o.gamma, o.neg_iou, o.force_match), (1.5, 0.5, true));
        assert_eq!(
            "official".parse::<LossPreset>().unwrap(),
            LossPreset::Official
        );
        assert!("x".parse::<OptimizerKind>().is_err());
        let c = TrainConfig::default();
        c.validate().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), c);
        assert!(TrainConfig {
            input_size: 100,
            ..c.clone()
        }
        .validate()
        .is_err());
        assert!(TrainConfig {
            arch: ModelArch::D(9),
            ..c.clone()
        }
        .validate()
        .is_err());
        let err = TrainConfig { lr: 0.0, ..c }.validate().unwrap_err();
        assert_eq!(err.setting(), Setting::LearningRate);
    }

    /// An absurd input size (which once aborted training on its first allocation) is a
    /// setting error, as is an anchor ratio a model file could not hold.
    #[test]
    fn absurd_sizes_and_ratios_are_setting_errors() {
        let c = TrainConfig::default();
        for size in [1_000_000, crate::detector::settings::MAX_INPUT_SIZE + 8] {
            let err = TrainConfig {
                input_size: size,
                ..c.clone()
            }
            .validate()
            .unwrap_err();
            assert_eq!(err.setting(), Setting::InputSize);
            assert!(err.to_string().contains(&size.to_string()), "{err}");
        }
        let max = TrainConfig {
            input_size: crate::detector::settings::MAX_INPUT_SIZE,
            ..c.clone()
        };
        max.validate().unwrap();
        let err = TrainConfig {
            anchor_ratios: Some(vec![(1.0, 1e9)]),
            ..c
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.setting(), Setting::AnchorRatios);
    }

    /// One image a step with a 1×1 P7 gives BatchNorm one value per channel: refused
    /// (it diverged, and the message blamed the learning rate).
    #[test]
    fn one_image_steps_need_more_than_a_one_pixel_p7() {
        let c = |batch_size, input_size| TrainConfig {
            batch_size,
            input_size,
            ..TrainConfig::default()
        };
        let err = c(1, 128).validate().unwrap_err();
        assert_eq!(err.setting(), Setting::BatchSize);
        assert!(err.to_string().contains("P7"), "{err}");
        c(1, 256).validate().unwrap();
        c(2, 128).validate().unwrap();
    }

    /// The defaults are the recipe of `models/README.md` that reached AP 0.662.
    #[test]
    fn defaults_are_the_recipe() {
        let c = TrainConfig::default();
        assert_eq!((c.arch, c.input_size), (ModelArch::Lite0, 384));
        assert_eq!((c.epochs, c.batch_size, c.lr), (33, 8, 1e-3));
        assert_eq!(c.loss, LossPreset::Official);
        assert_eq!(c.ema_decay, Some(0.998));
        assert_eq!(c.freeze_backbone_epochs, 2);
        assert_eq!((c.augment.scale_min, c.augment.scale_max), (0.6, 1.4));
        assert_eq!((c.augment.hflip, c.augment.color), (0.5, 0.1));
        assert_eq!((c.weight_decay, c.grad_clip), (1e-2, Some(10.0)));
        assert_eq!(TrainConfig::for_arch(ModelArch::D0).input_size, 512);
    }

    /// The GIoU weight is off by default, absent from older files (a `resume.json` written
    /// before it existed loads with it off), and must be finite and ≥ 0.
    #[test]
    fn giou_weight_defaults_off_and_old_files_load() {
        let c = TrainConfig::default();
        assert_eq!(c.giou_weight, 0.0);
        assert_eq!(c.loss_params(), LossPreset::Official.params());
        let mut json = serde_json::to_value(&c).unwrap();
        json.as_object_mut().unwrap().remove("giou_weight").unwrap();
        let old: TrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old, c);
        let mut params = serde_json::to_value(LossPreset::Reference.params()).unwrap();
        params
            .as_object_mut()
            .unwrap()
            .remove("giou_weight")
            .unwrap();
        let old: LossParams = serde_json::from_value(params).unwrap();
        assert_eq!(old, LossPreset::Reference.params());
        let on = TrainConfig {
            giou_weight: 1.5,
            ..c.clone()
        };
        on.validate().unwrap();
        assert_eq!(on.loss_params().giou_weight, 1.5);
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let err = TrainConfig {
                giou_weight: bad,
                ..c.clone()
            }
            .validate()
            .unwrap_err();
            assert_eq!(err.setting(), Setting::Loss, "{bad}");
        }
    }
}
