//! The architectures a detlab model file can hold, with their reference settings
//! (spec §1.1 for D0–D7x, §3.2 for Lite0).

use std::fmt;
use std::str::FromStr;

/// An EfficientDet variant. `D8` is D7x (Zylo117's `compound_coef=8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelArch {
    D0,
    D1,
    D2,
    D3,
    D4,
    D5,
    D6,
    D7,
    D8,
    Lite0,
}

/// Unknown architecture name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture `{0}` (expected d0..d8 or lite0)")]
pub struct UnknownArch(pub String);

impl ModelArch {
    pub const ALL: [ModelArch; 10] = [
        Self::D0,
        Self::D1,
        Self::D2,
        Self::D3,
        Self::D4,
        Self::D5,
        Self::D6,
        Self::D7,
        Self::D8,
        Self::Lite0,
    ];

    /// The lowercase name used on the command line and in model files (`d0`, `lite0`).
    pub fn name(self) -> &'static str {
        match self {
            Self::D0 => "d0",
            Self::D1 => "d1",
            Self::D2 => "d2",
            Self::D3 => "d3",
            Self::D4 => "d4",
            Self::D5 => "d5",
            Self::D6 => "d6",
            Self::D7 => "d7",
            Self::D8 => "d8",
            Self::Lite0 => "lite0",
        }
    }

    /// Zylo117's compound coefficient (0–8); `None` for Lite0.
    pub fn compound_coef(self) -> Option<usize> {
        Self::ALL[..9].iter().position(|&a| a == self)
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
            Self::D7 => 5.0,
            Self::Lite0 => 3.0,
            _ => 4.0,
        }
    }

    /// Highest pyramid level (the lowest is always P3).
    pub fn max_level(self) -> u32 {
        if self == Self::D8 {
            8
        } else {
            7
        }
    }

    /// Whether the model uses ReLU6 and (x−127)/128 inputs (the Lite family).
    pub fn is_lite(self) -> bool {
        self == Self::Lite0
    }
}

impl fmt::Display for ModelArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelArch {
    type Err = UnknownArch;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let lower = if lower == "d7x" {
            "d8".to_string()
        } else {
            lower
        };
        Self::ALL
            .iter()
            .copied()
            .find(|a| a.name() == lower)
            .ok_or_else(|| UnknownArch(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in ModelArch::ALL {
            assert_eq!(a.name().parse::<ModelArch>().unwrap(), a);
        }
        assert_eq!("D7x".parse::<ModelArch>().unwrap(), ModelArch::D8);
        assert!("d9".parse::<ModelArch>().is_err());
        assert_eq!(ModelArch::D3.compound_coef(), Some(3));
        assert_eq!(ModelArch::Lite0.compound_coef(), None);
    }
}
