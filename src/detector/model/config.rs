//! One parameterised description of every supported EfficientDet: D0–D7, D7x ("d8") and
//! EfficientDet-Lite0, with the backbone (EfficientNet B0–B7 or Lite0–4) it sits on.
//!
//! The D-table follows the reference port (and google/automl `hparams_config.py`):
//!
//! | arch | input | backbone | BiFPN W×repeats | head repeats | levels | anchor scale | fusion |
//! |---|---|---|---|---|---|---|---|
//! | d0 | 512 | B0 | 64×3 | 3 | P3–P7 | 4 | fast attention |
//! | d1 | 640 | B1 | 88×4 | 3 | P3–P7 | 4 | fast attention |
//! | d2 | 768 | B2 | 112×5 | 3 | P3–P7 | 4 | fast attention |
//! | d3 | 896 | B3 | 160×6 | 4 | P3–P7 | 4 | fast attention |
//! | d4 | 1024 | B4 | 224×7 | 4 | P3–P7 | 4 | fast attention |
//! | d5 | 1280 | B5 | 288×7 | 4 | P3–P7 | 4 | fast attention |
//! | d6 | 1280 | B6 | 384×8 | 5 | P3–P7 | 4 | sum |
//! | d7 | 1536 | B6 | 384×8 | 5 | P3–P7 | 5 | sum |
//! | d8 (D7x) | 1536 | B7 | 384×8 | 5 | P3–P8 | 4 | sum |
//! | lite0 | 320 | Lite0 | 64×3 | 3 | P3–P7 | 3 | sum (no weights) |

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::detector::maths::anchors::AnchorConfig;

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

/// Per-channel input normalisation on the 0–255 pixel scale: `(pixel − mean) / std`, RGB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalization {
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

impl Normalization {
    /// ImageNet mean/std (the reference D-models): `(x/255 − (0.485,0.456,0.406)) /
    /// (0.229,0.224,0.225)`, written on the 0–255 scale.
    pub const IMAGENET: Normalization = Normalization {
        mean: [0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0],
        std: [0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0],
    };
    /// EfficientNet-Lite's inception-style `(x − 127) / 128`.
    pub const LITE: Normalization = Normalization {
        mean: [127.0; 3],
        std: [128.0; 3],
    };
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

/// A named detector architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// EfficientDet-D`n`, n = 0..=8 (8 is D7x, the reference's `compound_coef=8`).
    D(u8),
    /// EfficientDet-Lite0 on the EfficientNet-Lite0 backbone.
    Lite0,
}

impl Arch {
    /// Every supported architecture.
    pub const ALL: [Arch; 10] = [
        Arch::D(0),
        Arch::D(1),
        Arch::D(2),
        Arch::D(3),
        Arch::D(4),
        Arch::D(5),
        Arch::D(6),
        Arch::D(7),
        Arch::D(8),
        Arch::Lite0,
    ];
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arch::D(n) => write!(f, "d{n}"),
            Arch::Lite0 => f.write_str("lite0"),
        }
    }
}

impl FromStr for Arch {
    type Err = ConfigError;

    /// Parses `d0`..`d8`, `d7x` (= `d8`) and `lite0` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "lite0" => Ok(Arch::Lite0),
            "d7x" => Ok(Arch::D(8)),
            _ => lower
                .strip_prefix('d')
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|&n| n <= 8)
                .map(Arch::D)
                .ok_or_else(|| ConfigError::UnknownArch(s.to_string())),
        }
    }
}

/// Errors in choosing a configuration.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ConfigError {
    #[error("unknown architecture {0:?} (expected d0..d8, d7x or lite0)")]
    UnknownArch(String),
    #[error("unknown backbone {0}")]
    UnknownBackbone(String),
}

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
    pub normalization: Normalization,
}

impl EfficientDetConfig {
    /// The configuration of a named architecture.
    pub fn new(arch: Arch) -> Result<Self, ConfigError> {
        match arch {
            Arch::D(n) => Self::d(n),
            Arch::Lite0 => Ok(Self::lite0()),
        }
    }

    /// EfficientDet-D`n` (n = 0..=8; 8 is D7x), as in the reference port.
    pub fn d(n: u8) -> Result<Self, ConfigError> {
        const INPUT: [i64; 9] = [512, 640, 768, 896, 1024, 1280, 1280, 1536, 1536];
        const BACKBONE: [u8; 9] = [0, 1, 2, 3, 4, 5, 6, 6, 7];
        const W: [i64; 9] = [64, 88, 112, 160, 224, 288, 384, 384, 384];
        const FPN_REPEATS: [usize; 9] = [3, 4, 5, 6, 7, 7, 8, 8, 8];
        const HEAD_REPEATS: [usize; 9] = [3, 3, 3, 4, 4, 4, 5, 5, 5];
        let i = n as usize;
        if i >= INPUT.len() {
            return Err(ConfigError::UnknownArch(format!("d{n}")));
        }
        let anchor_scale = if n == 7 { 5.0 } else { 4.0 };
        let max_level = if n == 8 { 8 } else { 7 };
        Ok(Self {
            arch: Arch::D(n),
            input_size: INPUT[i],
            backbone: BackboneConfig::efficientnet(BACKBONE[i])?,
            fpn_channels: W[i],
            fpn_repeats: FPN_REPEATS[i],
            head_repeats: HEAD_REPEATS[i],
            anchors: AnchorConfig::reference(anchor_scale, max_level),
            fusion: if n < 6 {
                Fusion::FastAttention
            } else {
                Fusion::Sum
            },
            fusion_weight_params: true,
            activation: Activation::Swish,
            normalization: Normalization::IMAGENET,
        })
    }

    /// EfficientDet-Lite0: Lite0 backbone, BiFPN 64×3 with weight-less sum fusion, heads ×3,
    /// ReLU6, anchor scale 3, input 320, `(x − 127) / 128`.
    pub fn lite0() -> Self {
        Self {
            arch: Arch::Lite0,
            input_size: 320,
            backbone: BackboneConfig::lite(0).expect("lite0 exists"),
            fpn_channels: 64,
            fpn_repeats: 3,
            head_repeats: 3,
            anchors: AnchorConfig::reference(3.0, 7),
            fusion: Fusion::Sum,
            fusion_weight_params: false,
            activation: Activation::Relu6,
            normalization: Normalization::LITE,
        }
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

    #[test]
    fn arch_parsing() {
        assert_eq!("d7x".parse::<Arch>().unwrap(), Arch::D(8));
        assert_eq!("D3".parse::<Arch>().unwrap(), Arch::D(3));
        assert_eq!("lite0".parse::<Arch>().unwrap(), Arch::Lite0);
        assert!("d9".parse::<Arch>().is_err());
        for a in Arch::ALL {
            assert_eq!(a.to_string().parse::<Arch>().unwrap(), a);
        }
    }
}
