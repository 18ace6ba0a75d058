//! The Train page's settings ([`TrainingForm`]), the library's [`TrainRequest`] they make,
//! and error messages that name the page's field at fault.

use std::path::PathBuf;

use crate::detector::train::config::RECIPE_EMA_DECAY;
use crate::detector::train::data::DataSource;
use crate::detector::train::{
    AnchorChoice, AugmentConfig, ConfigError, DeviceChoice, Init, Setting, TrainConfig,
    TrainRequest,
};

/// The settings the training panel edits. Its defaults are the library's
/// ([`TrainRequest::new`]: the recipe of `models/README.md`), as `detlab train`'s are.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingForm {
    /// `lite0` or `d0` … `d8`.
    pub arch: String,
    /// A detlab model file to start from; empty: the architecture's default start.
    pub weights: String,
    /// Start from a fresh network.
    pub from_scratch: bool,
    /// Number of epochs.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Square network input side.
    pub input_size: u32,
    /// Where the run computes.
    pub device: DeviceChoice,
    /// Float16 mixed precision (CUDA only).
    pub mixed_precision: bool,
    /// CPU threads for libtorch and decoding (0: libtorch's default).
    pub threads: usize,
    /// Flip, scale and colour jitter, rotation, mosaic and copy-paste.
    pub augment: AugmentConfig,
    /// Fraction of the images held out for validation.
    pub val_fraction: f64,
    /// First epochs with the backbone frozen.
    pub freeze_backbone_epochs: usize,
    /// An EMA of the weights (decay [`RECIPE_EMA_DECAY`]).
    pub ema: bool,
    /// Weight of the GIoU box term added to the loss (0: off; see `detector::train::loss`).
    pub giou_weight: f64,
    /// Fit anchor aspect ratios to the boxes (see `detector::train::anchor_fit`).
    pub fit_anchors: bool,
    /// Train on crops of `tile_size` photo pixels (tiles) instead of whole photos (see
    /// `detector::train::tile_crop`).
    pub tiles: bool,
    /// The crop side in photo pixels (the input size: native resolution).
    pub tile_size: u32,
    /// The run folder; empty: `<labels>/.detlab/runs/<arch>`.
    pub out_dir: String,
    /// K-fold cross-validation ([`crate::detector::train::run_cross_validation`]): 2 to
    /// [`MAX_FOLDS`] folds, then the final model on every image; 0 (or 1): a plain run.
    pub folds: usize,
}

/// The most folds the Train page offers.
pub const MAX_FOLDS: usize = 10;

impl Default for TrainingForm {
    fn default() -> Self {
        // What `TrainRequest::new` starts from: the library's one set of defaults.
        let c = TrainConfig::default();
        Self {
            arch: c.arch.to_string(),
            weights: String::new(),
            from_scratch: Init::default() == Init::Scratch,
            epochs: c.epochs,
            batch_size: c.batch_size,
            lr: c.lr,
            input_size: c.input_size,
            device: c.device,
            mixed_precision: c.mixed_precision,
            threads: c.threads.unwrap_or(0),
            augment: c.augment,
            val_fraction: c.val_fraction,
            freeze_backbone_epochs: c.freeze_backbone_epochs,
            ema: c.ema_decay.is_some(),
            giou_weight: c.giou_weight,
            fit_anchors: AnchorChoice::default() == AnchorChoice::Fitted,
            tiles: c.tile.is_some(),
            tile_size: c.tile.unwrap_or(c.input_size),
            out_dir: String::new(),
            folds: 0,
        }
    }
}

impl TrainingForm {
    /// The library's request for these settings, on `images` (labels in `labels`, when not
    /// beside the images).
    pub fn request(
        &self,
        images: &std::path::Path,
        labels: Option<&std::path::Path>,
        resume: bool,
    ) -> Result<TrainRequest, ConfigError> {
        let data = DataSource::from_path(images, labels);
        let mut request = TrainRequest::new(data, self.run_dir(labels.unwrap_or(images)));
        let c = &mut request.config;
        c.arch = self.arch.parse()?;
        c.input_size = self.input_size;
        c.epochs = self.epochs;
        c.batch_size = self.batch_size;
        c.lr = self.lr;
        c.device = self.device;
        c.mixed_precision = self.mixed_precision && !self.device.is_cpu();
        c.threads = (self.threads > 0).then_some(self.threads);
        c.augment = self.augment.clone();
        c.val_fraction = self.val_fraction;
        c.freeze_backbone_epochs = self.freeze_backbone_epochs;
        c.ema_decay = self.ema.then_some(RECIPE_EMA_DECAY);
        c.giou_weight = self.giou_weight;
        c.tile = self.tiles.then_some(self.tile_size);
        request.init = match (self.weights.trim(), self.from_scratch) {
            (w, _) if !w.is_empty() => Init::Weights(PathBuf::from(w)),
            (_, true) => Init::Scratch,
            _ => Init::Default,
        };
        request.resume = resume;
        request.anchors = if self.fit_anchors {
            AnchorChoice::Fitted
        } else {
            AnchorChoice::Reference
        };
        Ok(request)
    }

    /// K, when these settings cross-validate.
    pub fn cross_validation(&self) -> Option<usize> {
        (self.folds >= 2).then_some(self.folds.min(MAX_FOLDS))
    }

    /// The run folder for a dataset whose labels live in `labels_dir`.
    pub fn run_dir(&self, labels_dir: &std::path::Path) -> PathBuf {
        if self.out_dir.trim().is_empty() {
            labels_dir.join(".detlab").join("runs").join(&self.arch)
        } else {
            PathBuf::from(self.out_dir.trim())
        }
    }
}

/// The Train page's name for a setting, so that an error points at its field.
fn control(setting: Setting) -> &'static str {
    match setting {
        Setting::Arch => "Model",
        Setting::Device => "Device",
        Setting::InputSize => "Input size",
        Setting::Epochs => "Epochs",
        Setting::BatchSize => "Batch",
        Setting::LearningRate => "Learning rate",
        Setting::AnchorRatios => "Fit anchors to boxes",
        Setting::Validation => "Validation fraction",
        Setting::Augmentation => "Flip probability / Colour jitter / Scale jitter",
        Setting::Ema => "EMA of weights",
        Setting::GradClip => "gradient clip (not on this page)",
        Setting::Threads => "Threads",
        Setting::MixedPrecision => "mixed precision",
        Setting::Loss => "GIoU box weight",
        Setting::Optimizer => "optimizer (not on this page)",
    }
}

/// An error's message, led by the field to change when a setting is at fault.
pub(super) fn with_control(setting: Option<Setting>, message: String) -> String {
    match setting {
        Some(s) => format!("{}: {message}", control(s)),
        None => message,
    }
}
