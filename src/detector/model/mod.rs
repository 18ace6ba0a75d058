//! The EfficientDet network on tch: configuration, EfficientNet backbone, BiFPN and heads
//! (reference weights load by name through `detector::checkpoint`).
//!
//! ```no_run
//! use detlab::detector::model::{EfficientDet, EfficientDetConfig};
//! let vs = tch::nn::VarStore::new(tch::Device::Cpu);
//! let cfg = EfficientDetConfig::d(0).unwrap();
//! let net = EfficientDet::new(&vs.root(), &cfg, 2).unwrap();
//! let xs = tch::Tensor::zeros([1, 3, 512, 512], (tch::Kind::Float, tch::Device::Cpu));
//! let out = tch::no_grad(|| net.forward_t(&xs, false));
//! let scores = out.classification.sigmoid(); // [1, 49104, 2]
//! ```

pub mod arch;
#[cfg(feature = "torch")]
pub mod backbone;
#[cfg(feature = "torch")]
pub mod bifpn;
pub mod config;
#[cfg(feature = "torch")]
pub mod efficientdet;
#[cfg(feature = "torch")]
pub mod heads;
#[cfg(feature = "torch")]
pub mod layers;
#[cfg(feature = "torch")]
pub mod nhwc;
#[cfg(feature = "torch")]
pub mod norm;
#[cfg(feature = "torch")]
pub mod same_pad;

pub use arch::Arch;
#[cfg(feature = "torch")]
pub use backbone::{lite0_backbone_key, lukemelas_to_same_pad_key, EfficientNet};
pub use config::{
    Activation, BackboneConfig, BackboneFamily, ConfigError, EfficientDetConfig, Fusion,
};
#[cfg(feature = "torch")]
pub use efficientdet::{anchors_tensor, EfficientDet, EfficientDetOutput, ModelError, TrainModes};
#[cfg(feature = "torch")]
pub use nhwc::NhwcEfficientDet;
