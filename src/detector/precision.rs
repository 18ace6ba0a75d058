//! The arithmetic precision of inference: float32, or bfloat16 products with float32
//! accumulation where the hardware has them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The precision the network's matrix products run in.
///
/// `Bf16` rounds the inputs of the 1×1 convolutions (most of the network's arithmetic) to
/// bfloat16 and multiplies them with float32 accumulation: on AMX tiles by the CPU
/// engine's own kernel, or, on a CPU with AVX512-BF16 but no AMX, by oneDNN (whose
/// products are rounded to bfloat16 once, then widened back). Depthwise convolutions,
/// activations, NMS and everything else stay float32. On a CPU without
/// bfloat16 instructions, or off the CPU engine, the detector falls back to float32 and
/// says so ([`Precision::effective`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Float32 throughout.
    #[default]
    Fp32,
    /// Bfloat16 products, float32 accumulation (CPU engine with AVX512-BF16; AMX when
    /// present).
    Bf16,
}

/// A precision name that is neither `fp32` nor `bf16`.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("unknown precision {0:?} (choose fp32 or bf16)")]
pub struct UnknownPrecision(pub String);

impl Precision {
    /// Both precisions, float32 first.
    pub const ALL: [Precision; 2] = [Precision::Fp32, Precision::Bf16];

    /// What this machine can run of `self`, and why not when it falls back: `Bf16` needs
    /// a CPU with AVX512-BF16 (oneDNN's bfloat16 products; AMX when present).
    pub fn effective(self) -> (Precision, Option<&'static str>) {
        match self {
            Precision::Bf16 if !cpu_has_bf16() => (
                Precision::Fp32,
                Some("this CPU has no AVX512-BF16 instructions: running in fp32"),
            ),
            p => (p, None),
        }
    }
}

/// Whether the CPU multiplies bfloat16 natively (AVX512-BF16).
pub fn cpu_has_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        })
    }
}

impl FromStr for Precision {
    type Err = UnknownPrecision;

    /// Parses `fp32` (or `f32`, `float32`) and `bf16` (or `bfloat16`), case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "f32" | "float32" => Ok(Precision::Fp32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            _ => Err(UnknownPrecision(s.to_string())),
        }
    }
}

impl Serialize for Precision {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Precision {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions_parse_print_and_serialise() {
        assert_eq!("BF16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert_eq!("float32".parse::<Precision>().unwrap(), Precision::Fp32);
        assert!("fp16".parse::<Precision>().is_err());
        for p in Precision::ALL {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Precision>(&json).unwrap(), p);
        }
    }

    #[test]
    fn bf16_falls_back_exactly_when_the_cpu_lacks_it() {
        let (p, why) = Precision::Bf16.effective();
        assert_eq!(p == Precision::Bf16, cpu_has_bf16());
        assert_eq!(why.is_some(), !cpu_has_bf16());
        assert_eq!(Precision::Fp32.effective(), (Precision::Fp32, None));
    }
}
