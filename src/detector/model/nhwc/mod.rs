//! A channels-last CPU inference engine for a BatchNorm-folded [`EfficientDet`].
//!
//! libtorch's eager CPU path leaves most of the machine idle on this network: every NCHW
//! convolution is reordered into oneDNN's blocked layout and back, every activation is a
//! separate pass over freshly allocated (and page-faulted) memory, and the depthwise
//! convolutions and the BiFPN's many small maps are dominated by that overhead rather than
//! by arithmetic. This engine keeps every map in NHWC and
//!
//! * runs 1×1 convolutions as BLAS matrix products (libtorch's `mm`, written in place),
//!   block by block, applying bias, activation and residual while a block is in L2 — or,
//!   in bfloat16 on a CPU with AMX, on its own tile kernel ([`amx`]);
//! * runs depthwise convolutions in its own vectorised kernel with bias, activation and
//!   (for squeeze-excitation) channel means fused in, and folds the excitation gates into
//!   a per-image copy of the projection weights;
//! * recycles its buffers between layers and calls;
//! * on several threads, splits a batch by image (each thread runs whole images) and a
//!   single image by row blocks of each layer.
//!
//! It computes the same function as the libtorch path up to float rounding (tests compare
//! the two to 1e-4), for D0–D7x and Lite0, any batch and input size. Training and GPUs use
//! the libtorch path.
//!
//! [`EfficientDet`]: super::EfficientDet

mod amx;
mod bifpn;
mod block;
mod depthwise;
mod engine;
mod head;
mod map;
mod parallel;
mod params;
mod pointwise;
mod resample;
mod separable;
pub(crate) mod simd;
mod stem;

pub use engine::NhwcEfficientDet;

#[cfg(test)]
mod tests;
