//! The architectures a detlab model file can hold, with their reference settings
//! (spec §1.1 for D0–D7x, §3.2 for Lite0).
//!
//! There is one architecture type in detlab, [`crate::detector::model::Arch`]; `ModelArch`
//! is the name the checkpoint code has always used for it. The helpers here describe an
//! architecture without building its network (for key checks and model-file metadata).

pub use crate::detector::model::config::Arch as ModelArch;
use crate::detector::model::config::Arch;

/// Unknown architecture name (the error of `"…".parse::<ModelArch>()`).
pub type UnknownArch = crate::detector::model::config::ConfigError;

impl Arch {
    /// EfficientDet-D0 (the short names the checkpoint code uses).
    pub const D0: Arch = Arch::D(0);
    pub const D1: Arch = Arch::D(1);
    pub const D2: Arch = Arch::D(2);
    pub const D3: Arch = Arch::D(3);
    pub const D4: Arch = Arch::D(4);
    pub const D5: Arch = Arch::D(5);
    pub const D6: Arch = Arch::D(6);
    pub const D7: Arch = Arch::D(7);
    /// D7x (Zylo117's `compound_coef=8`).
    pub const D8: Arch = Arch::D(8);

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
        match self.compound_coef() {
            Some(c) => [512, 640, 768, 896, 1024, 1280, 1280, 1536, 1536][c],
            None => 320,
        }
    }

    /// BiFPN width (channels).
    pub fn bifpn_width(self) -> usize {
        match self.compound_coef() {
            Some(c) => [64, 88, 112, 160, 224, 288, 384, 384, 384][c],
            None => 64,
        }
    }

    /// Number of BiFPN layers.
    pub fn bifpn_repeats(self) -> usize {
        match self.compound_coef() {
            Some(c) => [3, 4, 5, 6, 7, 7, 8, 8, 8][c],
            None => 3,
        }
    }

    /// Number of shared separable convs in each head before the header.
    pub fn head_repeats(self) -> usize {
        match self.compound_coef() {
            Some(c) => [3, 3, 3, 4, 4, 4, 5, 5, 5][c],
            None => 3,
        }
    }

    /// Anchor base size multiplier.
    pub fn anchor_scale(self) -> f64 {
        match self {
            Arch::D(7) => 5.0,
            Arch::Lite0 => 3.0,
            _ => 4.0,
        }
    }

    /// Highest pyramid level (the lowest is always P3).
    pub fn max_level(self) -> u32 {
        if self == Arch::D(8) {
            8
        } else {
            7
        }
    }

    /// Whether the model uses ReLU6 and (x−127)/128 inputs (the Lite family).
    pub fn is_lite(self) -> bool {
        self == Arch::Lite0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::model::EfficientDetConfig;

    #[test]
    fn names_round_trip() {
        for a in ModelArch::ALL {
            assert_eq!(a.name().parse::<ModelArch>().unwrap(), a);
            assert_eq!(a.name(), a.to_string());
        }
        assert_eq!("D7x".parse::<ModelArch>().unwrap(), ModelArch::D8);
        assert!("d9".parse::<ModelArch>().is_err());
        assert_eq!(ModelArch::D3.compound_coef(), Some(3));
        assert_eq!(ModelArch::Lite0.compound_coef(), None);
    }

    #[test]
    fn helpers_agree_with_the_network_config() {
        for a in ModelArch::ALL {
            let cfg = EfficientDetConfig::new(a).unwrap();
            assert_eq!(i64::from(a.input_size()), cfg.input_size, "{a}");
            assert_eq!(a.bifpn_width() as i64, cfg.fpn_channels, "{a}");
            assert_eq!(a.bifpn_repeats(), cfg.fpn_repeats, "{a}");
            assert_eq!(a.head_repeats(), cfg.head_repeats, "{a}");
            assert_eq!(a.anchor_scale(), cfg.anchors.anchor_scale, "{a}");
            assert_eq!(a.max_level(), cfg.anchors.max_level, "{a}");
        }
    }
}
