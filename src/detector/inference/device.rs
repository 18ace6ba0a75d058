//! Which device a model runs on: `auto` (CUDA when available, else CPU), `cpu`, `cuda`
//! (the first GPU) or `cuda:N`.

use std::fmt;
use std::str::FromStr;

use tch::Device;

use super::error::InferenceError;

/// A requested compute device, resolved against what libtorch sees by [`DeviceChoice::resolve`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA device 0 when libtorch sees one, else the CPU.
    #[default]
    Auto,
    Cpu,
    /// CUDA device `N` (`cuda` is `cuda:0`).
    Cuda(usize),
}

impl DeviceChoice {
    /// The tch device, or an error when a requested GPU does not exist.
    pub fn resolve(self) -> Result<Device, InferenceError> {
        match self {
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(index) => {
                let count = tch::Cuda::device_count().max(0) as usize;
                if !tch::Cuda::is_available() || count == 0 {
                    Err(InferenceError::NoCuda(self.to_string()))
                } else if index >= count {
                    Err(InferenceError::CudaIndex { index, count })
                } else {
                    Ok(Device::Cuda(index))
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
    type Err = InferenceError;

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
                .ok_or_else(|| InferenceError::BadDevice(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves() {
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
        assert_eq!(DeviceChoice::Cpu.resolve().unwrap(), Device::Cpu);
        assert!(DeviceChoice::Cuda(10_000).resolve().is_err());
        for d in [DeviceChoice::Auto, DeviceChoice::Cpu, DeviceChoice::Cuda(1)] {
            assert_eq!(d.to_string().parse::<DeviceChoice>().unwrap(), d);
        }
    }
}
