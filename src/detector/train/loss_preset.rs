//! The loss presets a run trains with ([`LossPreset`]) and the parameters each sets
//! ([`LossParams`]: focal loss, anchor assignment, box loss and its normalisation).

use serde::{Deserialize, Serialize};

use crate::detector::settings::ConfigError;

/// Which loss (and anchor-assignment rule) to train with (spec §2.1, §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LossPreset {
    /// Zylo117's port: γ 2, α 0.25, IoU ≥ 0.5 positive / < 0.4 negative / band ignored,
    /// smooth-L1 β = 1/9, box weight 50, per-image normalisation by `max(num_pos, 1)`.
    Reference,
    /// automl: γ 1.5, α 0.25, IoU ≥ 0.5 positive else negative, plus a forced best-anchor
    /// match per ground truth, Huber δ = 0.1, box weight 50, batch normalisation by
    /// `Σ num_pos + 1`. The recipe's loss.
    #[default]
    Official,
}

impl std::str::FromStr for LossPreset {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.to_ascii_lowercase().as_str() {
            "reference" | "zylo" | "zylo117" => Ok(Self::Reference),
            "official" | "automl" => Ok(Self::Official),
            _ => Err(ConfigError::UnknownLoss(s.to_string())),
        }
    }
}

impl std::fmt::Display for LossPreset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How box-regression errors are penalised.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum BoxLoss {
    /// `0.5·d²/β` for `|d| ≤ β`, else `|d| − 0.5·β`.
    SmoothL1 { beta: f64 },
    /// `0.5·d²` for `|d| ≤ δ`, else `δ·(|d| − 0.5·δ)`.
    Huber { delta: f64 },
}

/// How the two loss terms are normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Normaliser {
    /// Per image: class term / `max(num_pos, 1)`, box term / `(num_pos · 4)` (0 without
    /// positives); then the mean over the batch.
    PerImage,
    /// Over the batch: class term / `(Σ num_pos + 1)`, box term / `((Σ num_pos + 1) · 4)`.
    BatchPlusOne,
}

/// The numbers behind a [`LossPreset`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossParams {
    pub gamma: f64,
    pub alpha: f64,
    /// Anchors with best IoU `≥ pos_iou` are positives.
    pub pos_iou: f64,
    /// Anchors with best IoU `< neg_iou` are negatives; in between they are ignored.
    pub neg_iou: f64,
    /// Give every ground truth its best anchor as a positive, whatever the IoU.
    pub force_match: bool,
    pub box_loss: BoxLoss,
    pub box_weight: f64,
    pub normaliser: Normaliser,
    /// Weight of the GIoU term `1 − GIoU(decoded prediction, ground truth)` on positive
    /// anchors ([`super::loss`]); 0 (every preset's) leaves it out.
    #[serde(default)]
    pub giou_weight: f64,
}

impl LossPreset {
    /// The preset's parameters.
    pub fn params(self) -> LossParams {
        match self {
            Self::Reference => LossParams {
                gamma: 2.0,
                alpha: 0.25,
                pos_iou: 0.5,
                neg_iou: 0.4,
                force_match: false,
                box_loss: BoxLoss::SmoothL1 { beta: 1.0 / 9.0 },
                box_weight: 50.0,
                normaliser: Normaliser::PerImage,
                giou_weight: 0.0,
            },
            Self::Official => LossParams {
                gamma: 1.5,
                alpha: 0.25,
                pos_iou: 0.5,
                neg_iou: 0.5,
                force_match: true,
                box_loss: BoxLoss::Huber { delta: 0.1 },
                box_weight: 50.0,
                normaliser: Normaliser::BatchPlusOne,
                giou_weight: 0.0,
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Official => "official",
        }
    }
}
