//! [`Arch`]: the named EfficientDet architectures and the one table of their settings.
//!
//! The D-rows follow the reference port (and google/automl `hparams_config.py`):
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
//!
//! Everything else that depends on the architecture (the network configuration
//! [`super::EfficientDetConfig::new`], a model file's reference metadata, the key checks of
//! an import) is derived from this table.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::config::Fusion::{FastAttention as FA, Sum};
use super::config::{Activation, BackboneConfig, BackboneFamily, Fusion};
use crate::detector::maths::anchors::AnchorConfig;
use crate::detector::maths::letterbox::Normalization;
use crate::detector::settings::ConfigError;

/// A named detector architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// EfficientDet-D`n`, n = 0..=8 (8 is D7x, the reference's `compound_coef=8`).
    /// Parsing never gives `n > 8`, and [`super::EfficientDetConfig::new`] refuses it.
    D(u8),
    /// EfficientDet-Lite0 on the EfficientNet-Lite0 backbone.
    Lite0,
}

/// One row of the architecture table.
struct ArchSpec {
    input_size: u32,
    backbone_family: BackboneFamily,
    /// B`n` or Lite`n`.
    backbone_index: u8,
    fpn_width: usize,
    fpn_repeats: usize,
    head_repeats: usize,
    anchor_scale: f64,
    max_level: u32,
    fusion: Fusion,
    /// Whether the `p*_w*` fusion weights exist even with `Sum` fusion (the reference port
    /// creates them for D6+, unused).
    fusion_weight_params: bool,
}

/// A D-row: input size, backbone B`n`, BiFPN (width, repeats), head repeats, anchors
/// (scale, highest level), fusion.
const fn d_row(
    input_size: u32,
    backbone_index: u8,
    (fpn_width, fpn_repeats): (usize, usize),
    head_repeats: usize,
    (anchor_scale, max_level): (f64, u32),
    fusion: Fusion,
) -> ArchSpec {
    ArchSpec {
        input_size,
        backbone_family: BackboneFamily::EfficientNet,
        backbone_index,
        fpn_width,
        fpn_repeats,
        head_repeats,
        anchor_scale,
        max_level,
        fusion,
        fusion_weight_params: true,
    }
}

/// D0 … D8, then Lite0 (the order of [`Arch::ALL`]).
const TABLE: [ArchSpec; 10] = [
    d_row(512, 0, (64, 3), 3, (4.0, 7), FA),
    d_row(640, 1, (88, 4), 3, (4.0, 7), FA),
    d_row(768, 2, (112, 5), 3, (4.0, 7), FA),
    d_row(896, 3, (160, 6), 4, (4.0, 7), FA),
    d_row(1024, 4, (224, 7), 4, (4.0, 7), FA),
    d_row(1280, 5, (288, 7), 4, (4.0, 7), FA),
    d_row(1280, 6, (384, 8), 5, (4.0, 7), Sum),
    d_row(1536, 6, (384, 8), 5, (5.0, 7), Sum),
    d_row(1536, 7, (384, 8), 5, (4.0, 8), Sum),
    ArchSpec {
        input_size: 320,
        backbone_family: BackboneFamily::Lite,
        backbone_index: 0,
        fpn_width: 64,
        fpn_repeats: 3,
        head_repeats: 3,
        anchor_scale: 3.0,
        max_level: 7,
        fusion: Sum,
        fusion_weight_params: false,
    },
];

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

    /// EfficientDet-D0 (short names, as the checkpoint code uses them).
    pub const D0: Arch = Arch::D(0);
    /// EfficientDet-D1.
    pub const D1: Arch = Arch::D(1);
    /// EfficientDet-D2.
    pub const D2: Arch = Arch::D(2);
    /// EfficientDet-D3.
    pub const D3: Arch = Arch::D(3);
    /// EfficientDet-D4.
    pub const D4: Arch = Arch::D(4);
    /// EfficientDet-D5.
    pub const D5: Arch = Arch::D(5);
    /// EfficientDet-D6.
    pub const D6: Arch = Arch::D(6);
    /// EfficientDet-D7.
    pub const D7: Arch = Arch::D(7);
    /// D7x (Zylo117's `compound_coef=8`).
    pub const D8: Arch = Arch::D(8);

    /// Whether this is a real architecture (`D(n)` with `n ≤ 8`, or Lite0).
    pub fn is_known(self) -> bool {
        match self {
            Arch::D(n) => n <= 8,
            Arch::Lite0 => true,
        }
    }

    /// The table row (an unknown `D(n)` reads D8's; see [`Arch::is_known`]).
    fn spec(self) -> &'static ArchSpec {
        match self {
            Arch::D(n) => &TABLE[usize::from(n).min(8)],
            Arch::Lite0 => &TABLE[9],
        }
    }

    /// The lowercase name used on the command line and in model files (`d0`, `lite0`).
    pub fn name(self) -> &'static str {
        const D: [&str; 9] = ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"];
        match self {
            Arch::D(n) => D.get(n as usize).copied().unwrap_or("d?"),
            Arch::Lite0 => "lite0",
        }
    }

    /// Zylo117's compound coefficient (0–8); `None` for Lite0.
    pub fn compound_coef(self) -> Option<usize> {
        match self {
            Arch::D(n) if n <= 8 => Some(n as usize),
            _ => None,
        }
    }

    /// Native square input size in pixels.
    pub fn input_size(self) -> u32 {
        self.spec().input_size
    }

    /// BiFPN width (channels).
    pub fn bifpn_width(self) -> usize {
        self.spec().fpn_width
    }

    /// Number of BiFPN layers.
    pub fn bifpn_repeats(self) -> usize {
        self.spec().fpn_repeats
    }

    /// Number of shared separable convs in each head before the header.
    pub fn head_repeats(self) -> usize {
        self.spec().head_repeats
    }

    /// Anchor base size multiplier.
    pub fn anchor_scale(self) -> f64 {
        self.spec().anchor_scale
    }

    /// Highest pyramid level (the lowest is always P3).
    pub fn max_level(self) -> u32 {
        self.spec().max_level
    }

    /// The reference anchors: P3 to [`Arch::max_level`], [`Arch::anchor_scale`], three
    /// octave scales and the reference ratios `(1,1), (1.4,0.7), (0.7,1.4)`.
    pub fn anchors(self) -> AnchorConfig {
        AnchorConfig::reference(self.anchor_scale(), self.max_level())
    }

    /// How a BiFPN node combines its inputs.
    pub fn fusion(self) -> Fusion {
        self.spec().fusion
    }

    /// Whether the fusion weights exist as parameters (even when unused).
    pub fn fusion_weight_params(self) -> bool {
        self.spec().fusion_weight_params
    }

    /// Whether the model uses ReLU6 and (x−127)/128 inputs (the Lite family).
    pub fn is_lite(self) -> bool {
        self.spec().backbone_family == BackboneFamily::Lite
    }

    /// The activation of the BiFPN and the heads.
    pub fn activation(self) -> Activation {
        if self.is_lite() {
            Activation::Relu6
        } else {
            Activation::Swish
        }
    }

    /// The input normalisation the backbone was trained with.
    pub fn normalization(self) -> Normalization {
        if self.is_lite() {
            Normalization::LITE
        } else {
            Normalization::IMAGENET
        }
    }

    /// The backbone's configuration.
    pub fn backbone(self) -> Result<BackboneConfig, ConfigError> {
        let s = self.spec();
        match s.backbone_family {
            BackboneFamily::EfficientNet => BackboneConfig::efficientnet(s.backbone_index),
            BackboneFamily::Lite => BackboneConfig::lite(s.backbone_index),
        }
    }
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

/// Written as its name (`"lite0"`), as model files and run files always have.
impl Serialize for Arch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Arch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_parsing() {
        assert_eq!("d7x".parse::<Arch>().unwrap(), Arch::D(8));
        assert_eq!("D3".parse::<Arch>().unwrap(), Arch::D(3));
        assert_eq!("lite0".parse::<Arch>().unwrap(), Arch::Lite0);
        assert!("d9".parse::<Arch>().is_err());
        for a in Arch::ALL {
            assert_eq!(a.to_string().parse::<Arch>().unwrap(), a);
            assert_eq!(a.name(), a.to_string());
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{a}\""));
            assert_eq!(serde_json::from_str::<Arch>(&json).unwrap(), a);
        }
        assert!(!Arch::D(9).is_known());
    }

    #[test]
    fn table_rows_match_the_reference() {
        let input: Vec<u32> = Arch::ALL.iter().map(|a| a.input_size()).collect();
        assert_eq!(
            input,
            [512, 640, 768, 896, 1024, 1280, 1280, 1536, 1536, 320]
        );
        let w: Vec<usize> = Arch::ALL.iter().map(|a| a.bifpn_width()).collect();
        assert_eq!(w, [64, 88, 112, 160, 224, 288, 384, 384, 384, 64]);
        let heads: Vec<usize> = Arch::ALL.iter().map(|a| a.head_repeats()).collect();
        assert_eq!(heads, [3, 3, 3, 4, 4, 4, 5, 5, 5, 3]);
        assert_eq!(Arch::D7.anchor_scale(), 5.0);
        assert_eq!(Arch::Lite0.anchor_scale(), 3.0);
        assert_eq!(Arch::D8.max_level(), 8);
        assert_eq!(Arch::D8.backbone().unwrap().name, "efficientnet-b7");
        assert_eq!(Arch::D7.backbone().unwrap().name, "efficientnet-b6");
        assert_eq!(Arch::Lite0.normalization(), Normalization::LITE);
    }
}
