//! One parameterised description of every supported EfficientDet: D0–D7, D7x ("d8") and
//! EfficientDet-Lite0, with the backbone (EfficientNet B0–B7 or Lite0–4) it sits on.
//!
//! The per-architecture numbers live in one table, owned by [`Arch`] (see
//! [`super::arch`]); [`EfficientDetConfig::new`] derives a network's configuration from it.

pub use super::arch::Arch;
use crate::detector::maths::anchors::AnchorConfig;
pub use crate::detector::settings::ConfigError;

/// The non-linearity used throughout a network (backbone, BiFPN fusion, heads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `x · sigmoid(x)` (the reference's memory-efficient swish; SiLU).
    Swish,
    /// `min(max(x, 0), 6)`, EfficientNet-Lite's quantisation-friendly choice.
    Relu6,
}

/// How a BiFPN node combines its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fusion {
    /// Fast normalised fusion: `Σ wᵢ·inᵢ` with `w = relu(p) / (Σ relu(p) + 1e-4)`, where `p`
    /// are learned per-node scalars (initialised to one). Cheaper than a softmax and as good.
    FastAttention,
    /// Unweighted `Σ inᵢ` ("for stability", D6+ and Lite).
    Sum,
}

/// Which EfficientNet family a backbone belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackboneFamily {
    /// lukemelas EfficientNet: SE blocks, swish, stem/head scaled with the width.
    EfficientNet,
    /// EfficientNet-Lite: no SE, ReLU6, fixed 32-channel stem and 1280-channel head, first
    /// and last stage repeats not scaled.
    Lite,
}

/// An EfficientNet backbone: family plus compound scaling coefficients.
#[derive(Clone, Debug, PartialEq)]
pub struct BackboneConfig {
    /// Display name, e.g. `efficientnet-b0`, `efficientnet-lite0`.
    pub name: String,
    pub family: BackboneFamily,
    /// Channel multiplier (`round_filters`).
    pub width: f64,
    /// Block-repeat multiplier (`round_repeats`, ceil).
    pub depth: f64,
    /// Stochastic-depth rate at the last block (0.2); block `i` uses `rate·i/num_blocks`.
    pub drop_connect_rate: f64,
    /// Dropout before the optional ImageNet classifier.
    pub dropout_rate: f64,
}

impl BackboneConfig {
    /// EfficientNet-B`n` (n = 0..=7), lukemelas coefficients.
    pub fn efficientnet(n: u8) -> Result<Self, ConfigError> {
        let (width, depth, dropout_rate) = match n {
            0 => (1.0, 1.0, 0.2),
            1 => (1.0, 1.1, 0.2),
            2 => (1.1, 1.2, 0.3),
            3 => (1.2, 1.4, 0.3),
            4 => (1.4, 1.8, 0.4),
            5 => (1.6, 2.2, 0.4),
            6 => (1.8, 2.6, 0.5),
            7 => (2.0, 3.1, 0.5),
            _ => return Err(ConfigError::UnknownBackbone(format!("efficientnet-b{n}"))),
        };
        Ok(Self {
            name: format!("efficientnet-b{n}"),
            family: BackboneFamily::EfficientNet,
            width,
            depth,
            drop_connect_rate: 0.2,
            dropout_rate,
        })
    }

    /// EfficientNet-Lite`n` (n = 0..=4).
    pub fn lite(n: u8) -> Result<Self, ConfigError> {
        let (width, depth, dropout_rate) = match n {
            0 => (1.0, 1.0, 0.2),
            1 => (1.0, 1.1, 0.2),
            2 => (1.1, 1.2, 0.3),
            3 => (1.2, 1.4, 0.3),
            4 => (1.4, 1.8, 0.3),
            _ => {
                return Err(ConfigError::UnknownBackbone(format!(
                    "efficientnet-lite{n}"
                )))
            }
        };
        Ok(Self {
            name: format!("efficientnet-lite{n}"),
            family: BackboneFamily::Lite,
            width,
            depth,
            drop_connect_rate: 0.2,
            dropout_rate,
        })
    }

    /// The activation the family uses.
    pub fn activation(&self) -> Activation {
        match self.family {
            BackboneFamily::EfficientNet => Activation::Swish,
            BackboneFamily::Lite => Activation::Relu6,
        }
    }

    /// Whether blocks carry squeeze-and-excitation (ratio 0.25).
    pub fn use_se(&self) -> bool {
        self.family == BackboneFamily::EfficientNet
    }

    /// Scales a channel count by the width multiplier, to a multiple of 8, never more than
    /// 10 % below the exact product (lukemelas `round_filters`).
    pub fn round_filters(&self, filters: i64) -> i64 {
        round_filters(filters, self.width)
    }

    /// Scales a stage's block count by the depth multiplier, rounding up.
    pub fn round_repeats(&self, repeats: i64) -> i64 {
        (self.depth * repeats as f64).ceil() as i64
    }

    /// The scaled block list, one entry per block (after repeats).
    pub fn blocks(&self) -> Vec<BlockConfig> {
        let stages = BASE_STAGES;
        let mut blocks = Vec::new();
        for (idx, stage) in stages.iter().enumerate() {
            let fixed =
                self.family == BackboneFamily::Lite && (idx == 0 || idx == stages.len() - 1);
            let repeats = if fixed {
                stage.repeats
            } else {
                self.round_repeats(stage.repeats)
            };
            let input = self.round_filters(stage.input);
            let output = self.round_filters(stage.output);
            for r in 0..repeats {
                blocks.push(BlockConfig {
                    kernel: stage.kernel,
                    stride: if r == 0 { stage.stride } else { 1 },
                    expand_ratio: stage.expand_ratio,
                    input: if r == 0 { input } else { output },
                    output,
                    se_ratio: self.use_se().then_some(0.25),
                });
            }
        }
        blocks
    }

    /// Stem output channels (fixed 32 for Lite).
    pub fn stem_channels(&self) -> i64 {
        match self.family {
            BackboneFamily::EfficientNet => self.round_filters(32),
            BackboneFamily::Lite => 32,
        }
    }

    /// Channels of the classifier's `_conv_head` (fixed 1280 for Lite).
    pub fn head_channels(&self) -> i64 {
        match self.family {
            BackboneFamily::EfficientNet => self.round_filters(1280),
            BackboneFamily::Lite => 1280,
        }
    }

    /// Channels of the C3, C4, C5 feature taps (strides 8, 16, 32): the reference's
    /// `conv_channel_coef` (40/112/320 for B0).
    pub fn tap_channels(&self) -> [i64; 3] {
        [
            self.round_filters(40),
            self.round_filters(112),
            self.round_filters(320),
        ]
    }
}

/// lukemelas `round_filters` with divisor 8.
pub fn round_filters(filters: i64, width: f64) -> i64 {
    let divisor = 8.0;
    let scaled = filters as f64 * width;
    let mut rounded = ((scaled + divisor / 2.0) as i64 / 8 * 8).max(8);
    if (rounded as f64) < 0.9 * scaled {
        rounded += 8;
    }
    rounded
}

/// One MBConv block after scaling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockConfig {
    pub kernel: i64,
    pub stride: i64,
    pub expand_ratio: i64,
    pub input: i64,
    pub output: i64,
    /// Squeeze-excitation ratio of the block *input* channels, if any.
    pub se_ratio: Option<f64>,
}

struct StageSpec {
    repeats: i64,
    kernel: i64,
    stride: i64,
    expand_ratio: i64,
    input: i64,
    output: i64,
}

/// EfficientNet-B0's seven stages (`r1_k3_s11_e1_i32_o16`, …).
const BASE_STAGES: [StageSpec; 7] = [
    StageSpec {
        repeats: 1,
        kernel: 3,
        stride: 1,
        expand_ratio: 1,
        input: 32,
        output: 16,
    },
    StageSpec {
        repeats: 2,
        kernel: 3,
        stride: 2,
        expand_ratio: 6,
        input: 16,
        output: 24,
    },
    StageSpec {
        repeats: 2,
        kernel: 5,
        stride: 2,
        expand_ratio: 6,
        input: 24,
        output: 40,
    },
    StageSpec {
        repeats: 3,
        kernel: 3,
        stride: 2,
        expand_ratio: 6,
        input: 40,
        output: 80,
    },
    StageSpec {
        repeats: 3,
        kernel: 5,
        stride: 1,
        expand_ratio: 6,
        input: 80,
        output: 112,
    },
    StageSpec {
        repeats: 4,
        kernel: 5,
        stride: 2,
        expand_ratio: 6,
        input: 112,
        output: 192,
    },
    StageSpec {
        repeats: 1,
        kernel: 3,
        stride: 1,
        expand_ratio: 6,
        input: 192,
        output: 320,
    },
];

/// Everything that defines an EfficientDet network and its anchors.
#[derive(Clone, Debug, PartialEq)]
pub struct EfficientDetConfig {
    pub arch: Arch,
    /// Default (square) input side; any size works (feature sizes are derived from it).
    pub input_size: i64,
    pub backbone: BackboneConfig,
    /// BiFPN width W.
    pub fpn_channels: i64,
    /// Number of BiFPN layers.
    pub fpn_repeats: usize,
    /// Separable convs in each head before its output conv.
    pub head_repeats: usize,
    /// Pyramid levels, anchor scale, scales and ratios.
    pub anchors: AnchorConfig,
    pub fusion: Fusion,
    /// Create the `p*_w*` fusion weights even when `fusion` is `Sum` (the reference port does
    /// for D6+, so its checkpoints carry them, unused).
    pub fusion_weight_params: bool,
    /// Activation in the BiFPN and the heads.
    pub activation: Activation,
}

impl EfficientDetConfig {
    /// The configuration of a named architecture, from [`Arch`]'s table.
    pub fn new(arch: Arch) -> Result<Self, ConfigError> {
        if !arch.is_known() {
            return Err(ConfigError::UnknownArch(arch.to_string()));
        }
        Ok(Self {
            arch,
            input_size: i64::from(arch.input_size()),
            backbone: arch.backbone()?,
            fpn_channels: arch.bifpn_width() as i64,
            fpn_repeats: arch.bifpn_repeats(),
            head_repeats: arch.head_repeats(),
            anchors: arch.anchors(),
            fusion: arch.fusion(),
            fusion_weight_params: arch.fusion_weight_params(),
            activation: arch.activation(),
        })
    }

    /// EfficientDet-D`n` (n = 0..=8; 8 is D7x), as in the reference port.
    pub fn d(n: u8) -> Result<Self, ConfigError> {
        Self::new(Arch::D(n))
    }

    /// EfficientDet-Lite0: Lite0 backbone, BiFPN 64×3 with weight-less sum fusion, heads ×3,
    /// ReLU6, anchor scale 3, input 320, `(x − 127) / 128`.
    pub fn lite0() -> Self {
        Self::new(Arch::Lite0).expect("lite0 is in the table")
    }

    /// Number of pyramid levels (5, or 6 for D7x).
    pub fn num_levels(&self) -> usize {
        self.anchors.num_levels()
    }

    /// Anchors per feature-map position (9).
    pub fn anchors_per_location(&self) -> usize {
        self.anchors.anchors_per_location()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_channels_match_reference_table() {
        let want = [
            [40, 112, 320],
            [40, 112, 320],
            [48, 120, 352],
            [48, 136, 384],
            [56, 160, 448],
            [64, 176, 512],
            [72, 200, 576],
            [72, 200, 576],
            [80, 224, 640],
        ];
        for (n, w) in want.iter().enumerate() {
            let cfg = EfficientDetConfig::d(n as u8).unwrap();
            assert_eq!(&cfg.backbone.tap_channels(), w, "d{n}");
        }
        assert_eq!(
            EfficientDetConfig::lite0().backbone.tap_channels(),
            [40, 112, 320]
        );
    }

    #[test]
    fn b0_has_16_blocks_with_known_strides() {
        let blocks = BackboneConfig::efficientnet(0).unwrap().blocks();
        assert_eq!(blocks.len(), 16);
        let s2: Vec<_> = (0..16).filter(|&i| blocks[i].stride == 2).collect();
        assert_eq!(s2, [1, 3, 5, 11]);
    }
}
