//! EfficientDet (D0–D7x, Lite0) on tch, with pure-Rust anchors, box coding and NMS.
//!
//! * [`model`]: the network (tch `VarStore` / `nn::Path`, reference parameter names);
//! * [`maths`]: anchors, box coding, NMS, post-processing, letterboxing (no tch);
//! * [`checkpoint`]: PyTorch `.pth` reading and detlab's one-file `.safetensors` models;
//! * [`settings`]: the device choice and the configuration errors every part shares;
//! * [`precision`]: float32 or bfloat16 inference;
//! * [`inference`] and [`train`]: running and fine-tuning a model (libtorch).

pub mod checkpoint;
#[cfg(feature = "torch")]
pub mod inference;
pub mod maths;
pub mod model;
pub mod onnx;
pub mod precision;
pub mod settings;
#[cfg(feature = "torch")]
pub mod train;
