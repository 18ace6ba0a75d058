//! The architectures a detlab model file can hold.
//!
//! There is one architecture type in detlab, [`crate::detector::model::Arch`], which owns
//! the one table of per-architecture settings; `ModelArch` is the name the checkpoint code
//! has always used for it.

pub use crate::detector::model::arch::Arch as ModelArch;

/// Unknown architecture name (the error of `"…".parse::<ModelArch>()`).
pub type UnknownArch = crate::detector::settings::ConfigError;

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
