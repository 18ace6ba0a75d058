//! What a detector returns for one image, and the settings of a prediction run.

use crate::detector::maths::letterbox::Letterbox;
use crate::detector::maths::postprocess::{to_original, Candidates, Detection, SelectConfig};
use crate::detector::maths::tiling::Tiling;
use crate::detector::maths::tta::Tta;

/// Settings of [`super::Detector::predict_images`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PredictConfig {
    /// Score threshold, NMS IoU, class-agnostic NMS and the detection cap.
    pub select: SelectConfig,
    /// Pre-NMS candidates are kept when their score is `> candidate_floor`, so that a UI
    /// can lower the threshold down to it without running the network again. `None`: the
    /// select threshold (nothing extra kept).
    pub candidate_floor: Option<f32>,
    /// Keep at most this many candidates per image before NMS (highest scores).
    pub top_k: Option<usize>,
    /// Images per network call (tiles of one photo are batched by the detector itself).
    pub batch_size: usize,
    /// Whole photos or tiles at native resolution ([`Tiling::Auto`]: tiles only for a
    /// model trained on tiles, on photos much larger than its tiles).
    pub tiling: Tiling,
    /// Test-time augmentation: extra passes (mirror image, other scales) whose candidates
    /// are pooled with the plain pass's before NMS ([`Tta::Off`]: one pass).
    pub tta: Tta,
}

impl Default for PredictConfig {
    /// COCO-evaluation settings (score 0.05, IoU 0.5, per class, 100 per image), batch 1,
    /// automatic tiling, no test-time augmentation.
    fn default() -> Self {
        Self {
            select: SelectConfig::default(),
            candidate_floor: None,
            top_k: None,
            batch_size: 1,
            tiling: Tiling::Auto,
            tta: Tta::Off,
        }
    }
}

impl PredictConfig {
    /// The score floor of the kept candidates (never above the select threshold).
    pub fn floor(&self) -> f32 {
        self.candidate_floor
            .map_or(self.select.score_threshold, |f| {
                f.min(self.select.score_threshold)
            })
    }
}

/// The predictions for one image.
#[derive(Clone, Debug, PartialEq)]
pub struct ImagePrediction {
    /// Size of the (EXIF-upright) original image.
    pub width: u32,
    pub height: u32,
    /// Where the image sits in the network input (for a tiled or test-time augmented
    /// prediction, the identity: its candidates are in original pixels).
    pub letterbox: Letterbox,
    /// Pre-NMS candidates in the network-input frame, by descending score.
    pub candidates: Candidates,
    /// Final detections in original-image pixels, by descending score.
    pub detections: Vec<Detection>,
}

impl ImagePrediction {
    /// Post-processes the kept candidates again with other settings (no network run);
    /// boxes in original-image pixels. Thresholds below the candidate floor see only the
    /// candidates that were kept.
    pub fn reselect(&self, cfg: &SelectConfig) -> Vec<Detection> {
        to_original(&self.candidates.select(cfg), &self.letterbox)
    }
}
