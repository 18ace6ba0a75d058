//! Box and class heads, shared across pyramid levels.
//!
//! Each head runs, per level, `repeats` × (separable conv → BN → activation) and then an
//! output separable conv. The convolutions are **shared** by all levels (`conv_list.i`,
//! `header`), but every level has its **own** BatchNorms (`bn_list.level.i`), because feature
//! statistics differ between levels. The output `[B, A·K, H, W]` is permuted to
//! `[B, H·W·A, K]` (channel `a·K + k`, so anchors are position-major, type-minor, as the
//! anchor generator enumerates them) and levels are concatenated P3 first.
//!
//! Both heads return raw values: box deltas `(dy, dx, dh, dw)` and class **logits**
//! (apply `sigmoid` at inference; use a logits-based focal loss in training).

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::config::Activation;
use super::layers::SeparableConvBlock;
use super::norm::BatchNorm2d;

/// Prior probability of the class-head bias initialisation (focal-loss paper).
pub const CLASS_PRIOR: f64 = 0.01;

/// The class head's initial output bias, `−log((1 − π) / π)` with π = 0.01 (≈ −4.595), so
/// every anchor starts at probability π and the huge number of easy negatives does not
/// swamp the first training steps.
pub fn class_prior_bias() -> f64 {
    -((1.0 - CLASS_PRIOR) / CLASS_PRIOR).ln()
}

/// A shared-conv, per-level-BN head (`regressor` or `classifier`).
#[derive(Debug)]
pub struct Head {
    convs: Vec<SeparableConvBlock>,
    /// `bns[level][layer]`.
    bns: Vec<Vec<BatchNorm2d>>,
    pub(crate) header: SeparableConvBlock,
    /// After [`Head::fold_batchnorm`]: per level, the shared convs with that level's BNs
    /// folded in.
    pub(crate) folded: Option<Vec<Vec<SeparableConvBlock>>>,
    pub(crate) activation: Activation,
    /// Values per anchor: 4 for boxes, C for classes.
    pub(crate) per_anchor: i64,
}

impl Head {
    /// A head under `p` on `channels`-wide features over `num_levels` levels, predicting
    /// `per_anchor` values for each of `anchors` anchors per position. `bias_init` is the
    /// output bias (0 for boxes, [`class_prior_bias`] for classes).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        p: &nn::Path,
        channels: i64,
        repeats: usize,
        num_levels: usize,
        anchors: i64,
        per_anchor: i64,
        bias_init: f64,
        activation: Activation,
    ) -> Self {
        let convs = (0..repeats)
            .map(|i| {
                SeparableConvBlock::new(&(p / "conv_list" / i), channels, channels, false, None)
            })
            .collect();
        let bns = (0..num_levels)
            .map(|level| {
                (0..repeats)
                    .map(|i| BatchNorm2d::new(&(p / "bn_list" / level / i), channels))
                    .collect()
            })
            .collect();
        let header =
            SeparableConvBlock::header(&(p / "header"), channels, anchors * per_anchor, bias_init);
        Self {
            convs,
            bns,
            header,
            folded: None,
            activation,
            per_anchor,
        }
    }

    /// Folds each level's BatchNorms into per-level copies of the shared convs (inference
    /// only; the depthwise weights stay shared).
    pub fn fold_batchnorm(&mut self) {
        if self.folded.is_some() {
            return;
        }
        let folded = self
            .bns
            .iter()
            .map(|bns| {
                self.convs
                    .iter()
                    .zip(bns)
                    .map(|(c, bn)| c.folded_with(bn))
                    .collect()
            })
            .collect();
        self.folded = Some(folded);
    }

    /// Applies the head to every level and concatenates: `[B, Σ H·W·A, per_anchor]`.
    pub fn forward_t(&self, features: &[Tensor], train: bool) -> Tensor {
        let outputs: Vec<Tensor> = features
            .iter()
            .zip(&self.bns)
            .enumerate()
            .map(|(level, (feature, bns))| {
                let mut ys = feature.shallow_clone();
                match &self.folded {
                    Some(folded) => {
                        for conv in &folded[level] {
                            ys = self.activation.apply(&conv.forward_t(&ys, false));
                        }
                    }
                    None => {
                        for (conv, bn) in self.convs.iter().zip(bns) {
                            let normed = bn.forward_t(&conv.forward_t(&ys, train), train);
                            ys = self.activation.apply(&normed);
                        }
                    }
                }
                let ys = self.header.forward_t(&ys, train).permute([0, 2, 3, 1]);
                let batch = ys.size()[0];
                ys.contiguous().view([batch, -1, self.per_anchor])
            })
            .collect();
        Tensor::cat(&outputs, 1)
    }
}
