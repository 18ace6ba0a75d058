//! Settings shared by the network, inference and training: the one [`ConfigError`], the
//! [`Setting`] an invalid value belongs to, and the one [`DeviceChoice`].
//!
//! Messages speak of settings ("the learning rate"), never of a front end's controls: the
//! CLI and the app each name their own flag or field from [`ConfigError::setting`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A setting of a model or of a training run, as the library names it in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setting {
    /// The architecture (`lite0`, `d0` … `d8`).
    Arch,
    /// The compute device.
    Device,
    /// The square network input side.
    InputSize,
    /// The number of epochs.
    Epochs,
    /// Images per step.
    BatchSize,
    /// The peak learning rate.
    LearningRate,
    /// The anchor aspect ratios.
    AnchorRatios,
    /// The validation fraction (or set).
    Validation,
    /// Flip, scale and colour jitter.
    Augmentation,
    /// The EMA decay of the weights.
    Ema,
    /// The gradient-norm clip.
    GradClip,
    /// CPU threads.
    Threads,
    /// Float16 mixed precision.
    MixedPrecision,
    /// The loss preset.
    Loss,
    /// The optimiser.
    Optimizer,
}

impl Setting {
    /// The setting's name in a sentence ("the learning rate" without the article).
    pub fn describe(self) -> &'static str {
        match self {
            Setting::Arch => "architecture",
            Setting::Device => "device",
            Setting::InputSize => "input size",
            Setting::Epochs => "number of epochs",
            Setting::BatchSize => "batch size",
            Setting::LearningRate => "learning rate",
            Setting::AnchorRatios => "anchor ratios",
            Setting::Validation => "validation split",
            Setting::Augmentation => "augmentation",
            Setting::Ema => "EMA decay",
            Setting::GradClip => "gradient clip",
            Setting::Threads => "threads",
            Setting::MixedPrecision => "mixed precision",
            Setting::Loss => "loss preset",
            Setting::Optimizer => "optimizer",
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The largest square network input side detlab accepts, in a setting or a model file:
/// above the largest reference size (1536, D7) with room to spare, and far below sizes
/// whose input buffers alone could not be allocated.
pub const MAX_INPUT_SIZE: u32 = 2048;

/// The most classes a model file may declare.
pub const MAX_CLASSES: usize = 10_000;

/// The most anchor scales, and the most anchor ratios, a model may use (the reference has
/// three of each).
pub const MAX_ANCHOR_SHAPES: usize = 16;

/// The range of an anchor ratio's `x` or `y` multiplier, of an octave scale, and of the
/// anchor scale (the reference values are 0.7–1.4, 1–1.6 and 3–5).
pub const ANCHOR_VALUE_RANGE: (f64, f64) = (1e-3, 1e3);

/// Checks a square network input side: a multiple of 8 from `min` to [`MAX_INPUT_SIZE`].
/// The message is about the value only, for the caller to put in context.
pub fn check_input_size(size: u32, min: u32) -> Result<(), String> {
    if size < min || size > MAX_INPUT_SIZE || !size.is_multiple_of(8) {
        return Err(format!(
            "input size {size} must be a multiple of 8 from {min} to {MAX_INPUT_SIZE}"
        ));
    }
    Ok(())
}

/// Checks anchor aspect ratios `(x, y)`: one to [`MAX_ANCHOR_SHAPES`] pairs of finite
/// multipliers in [`ANCHOR_VALUE_RANGE`].
pub fn check_anchor_ratios(ratios: &[(f64, f64)]) -> Result<(), String> {
    let (lo, hi) = ANCHOR_VALUE_RANGE;
    let ok = |v: f64| v.is_finite() && (lo..=hi).contains(&v);
    if ratios.is_empty()
        || ratios.len() > MAX_ANCHOR_SHAPES
        || !ratios.iter().all(|&(x, y)| ok(x) && ok(y))
    {
        return Err(format!(
            "anchor ratios {ratios:?} must be 1 to {MAX_ANCHOR_SHAPES} (x, y) pairs of multipliers from {lo} to {hi}"
        ));
    }
    Ok(())
}

/// A setting that names nothing known, or a value that cannot work.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ConfigError {
    /// Not `d0` … `d8`, `d7x` or `lite0`.
    #[error("unknown architecture {0:?} (expected d0..d8, d7x or lite0)")]
    UnknownArch(String),
    /// Not an EfficientNet B0–B7 or Lite0–4 backbone.
    #[error("unknown backbone {0}")]
    UnknownBackbone(String),
    /// Not `auto`, `cpu`, `cuda` or `cuda:N`.
    #[error("unknown device {0:?} (expected auto, cpu, cuda or cuda:N)")]
    UnknownDevice(String),
    /// Not `reference` or `official`.
    #[error("unknown loss preset {0:?} (expected reference or official)")]
    UnknownLoss(String),
    /// Not `adamw` or `sgd`.
    #[error("unknown optimizer {0:?} (expected adamw or sgd)")]
    UnknownOptimizer(String),
    /// A value out of range, or settings that do not go together.
    #[error("invalid training setting: {message}")]
    Invalid {
        /// The setting to change.
        setting: Setting,
        /// What is wrong, in words about settings.
        message: String,
    },
}

impl ConfigError {
    /// An invalid value of `setting`.
    pub fn invalid(setting: Setting, message: impl Into<String>) -> Self {
        Self::Invalid {
            setting,
            message: message.into(),
        }
    }

    /// The setting to change.
    pub fn setting(&self) -> Setting {
        match self {
            Self::UnknownArch(_) | Self::UnknownBackbone(_) => Setting::Arch,
            Self::UnknownDevice(_) => Setting::Device,
            Self::UnknownLoss(_) => Setting::Loss,
            Self::UnknownOptimizer(_) => Setting::Optimizer,
            Self::Invalid { setting, .. } => *setting,
        }
    }
}

/// A requested compute device: `auto` (CUDA device 0 when libtorch sees one, else the
/// CPU), `cpu`, `cuda` (= `cuda:0`) or `cuda:N`. The CLI, the app, training and inference
/// all take this one type; [`DeviceChoice::resolve`] turns it into a libtorch device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeviceChoice {
    /// CUDA device 0 when libtorch sees one, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device `N` (`cuda` is `cuda:0`).
    Cuda(usize),
}

/// A requested CUDA device does not exist.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DeviceError {
    /// libtorch sees no CUDA device at all.
    #[error("device {0} requested, but libtorch sees no CUDA device (choose the CPU device)")]
    NoCuda(String),
    /// The index is past the last device.
    #[error("device cuda:{index} requested, but libtorch sees {count} CUDA device(s)")]
    CudaIndex {
        /// The requested index.
        index: usize,
        /// How many CUDA devices libtorch sees.
        count: usize,
    },
}

impl DeviceChoice {
    /// Whether this choice can never be a GPU.
    pub fn is_cpu(self) -> bool {
        self == DeviceChoice::Cpu
    }

    /// The libtorch device, or an error when a requested GPU does not exist.
    #[cfg(feature = "torch")]
    pub fn resolve(self) -> Result<tch::Device, DeviceError> {
        match self {
            DeviceChoice::Auto => Ok(tch::Device::cuda_if_available()),
            DeviceChoice::Cpu => Ok(tch::Device::Cpu),
            DeviceChoice::Cuda(index) => {
                let count = tch::Cuda::device_count().max(0) as usize;
                if !tch::Cuda::is_available() || count == 0 {
                    Err(DeviceError::NoCuda(self.to_string()))
                } else if index >= count {
                    Err(DeviceError::CudaIndex { index, count })
                } else {
                    Ok(tch::Device::Cuda(index))
                }
            }
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = ConfigError;

    /// Parses `auto`, `cpu`, `cuda`, `gpu` or `cuda:N` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            _ => lower
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| ConfigError::UnknownDevice(s.to_string())),
        }
    }
}

/// Written as its name (`"cuda:1"`); run files written before `cuda:N` existed say
/// `"cuda"`, which reads as `cuda:0`.
impl Serialize for DeviceChoice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_print_and_serialise() {
        assert_eq!("CPU".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!(
            "cuda".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(0)
        );
        assert_eq!(
            "cuda:3".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(3)
        );
        assert!("tpu".parse::<DeviceChoice>().is_err());
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
        for d in [DeviceChoice::Auto, DeviceChoice::Cpu, DeviceChoice::Cuda(1)] {
            assert_eq!(d.to_string().parse::<DeviceChoice>().unwrap(), d);
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(serde_json::from_str::<DeviceChoice>(&json).unwrap(), d);
        }
        // Run files from before `cuda:N`.
        assert_eq!(
            serde_json::from_str::<DeviceChoice>("\"cuda\"").unwrap(),
            DeviceChoice::Cuda(0)
        );
    }

    #[cfg(feature = "torch")]
    #[test]
    fn devices_resolve() {
        assert_eq!(DeviceChoice::Cpu.resolve().unwrap(), tch::Device::Cpu);
        assert!(DeviceChoice::Cuda(10_000).resolve().is_err());
    }

    #[test]
    fn sizes_and_ratios_have_limits() {
        check_input_size(512, 64).unwrap();
        check_input_size(MAX_INPUT_SIZE, 64).unwrap();
        for bad in [0, 56, 100, MAX_INPUT_SIZE + 8, 1_000_000] {
            let m = check_input_size(bad, 64).unwrap_err();
            assert!(m.contains(&bad.to_string()), "{m}");
        }
        check_anchor_ratios(&[(1.0, 1.0), (0.5, 2.0)]).unwrap();
        assert!(check_anchor_ratios(&[]).is_err());
        assert!(check_anchor_ratios(&[(1.0, f64::NAN)]).is_err());
        assert!(check_anchor_ratios(&[(1.0, 1e9)]).is_err());
        assert!(check_anchor_ratios(&vec![(1.0, 1.0); MAX_ANCHOR_SHAPES + 1]).is_err());
    }

    #[test]
    fn errors_name_their_setting() {
        let e = ConfigError::invalid(Setting::LearningRate, "learning rate 0 must be positive");
        assert_eq!(e.setting(), Setting::LearningRate);
        assert_eq!(
            e.to_string(),
            "invalid training setting: learning rate 0 must be positive"
        );
        assert_eq!(
            ConfigError::UnknownDevice("x".into()).setting(),
            Setting::Device
        );
    }
}
