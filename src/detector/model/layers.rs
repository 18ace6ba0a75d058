//! Small building blocks shared by the BiFPN and the heads: activations, separable
//! convolutions, 1×1 conv + BN projections and size-targeted resampling.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::config::Activation;
use super::norm::BatchNorm2d;
use super::same_pad::{SameConv2d, SameConvConfig, SameMaxPool2d};

impl Activation {
    /// Applies the non-linearity: swish `x·σ(x)` or ReLU6 `min(max(x,0),6)`.
    pub fn apply(self, xs: &Tensor) -> Tensor {
        match self {
            Activation::Swish => xs.silu(),
            Activation::Relu6 => xs.relu6(),
        }
    }
}

/// Depthwise 3×3 (no bias) → pointwise 1×1 (with bias) → optional BN → optional activation.
///
/// Only the pointwise conv has a bias: a bias on the depthwise conv would be redundant with
/// it. Parameter names: `depthwise_conv.conv.weight`, `pointwise_conv.conv.{weight,bias}`,
/// `bn.*`.
#[derive(Debug)]
pub struct SeparableConvBlock {
    pub depthwise: SameConv2d,
    pub pointwise: SameConv2d,
    pub bn: Option<BatchNorm2d>,
    pub activation: Option<Activation>,
}

impl SeparableConvBlock {
    pub fn new(
        p: &nn::Path,
        in_channels: i64,
        out_channels: i64,
        norm: bool,
        activation: Option<Activation>,
    ) -> Self {
        Self::build(
            p,
            in_channels,
            out_channels,
            norm,
            activation,
            nn::Init::Const(0.0),
        )
    }

    /// An output block (no BN, no activation) whose pointwise bias starts at `bias_init`
    /// (the class head's prior bias).
    pub fn header(p: &nn::Path, in_channels: i64, out_channels: i64, bias_init: f64) -> Self {
        Self::build(
            p,
            in_channels,
            out_channels,
            false,
            None,
            nn::Init::Const(bias_init),
        )
    }

    fn build(
        p: &nn::Path,
        in_channels: i64,
        out_channels: i64,
        norm: bool,
        activation: Option<Activation>,
        bs_init: nn::Init,
    ) -> Self {
        let depthwise = SameConv2d::new(
            &(p / "depthwise_conv"),
            in_channels,
            in_channels,
            3,
            SameConvConfig::default().groups(in_channels).bias(false),
        );
        let pointwise = SameConv2d::new(
            &(p / "pointwise_conv"),
            in_channels,
            out_channels,
            1,
            SameConvConfig::default().bs_init(bs_init),
        );
        let bn = norm.then(|| BatchNorm2d::new(&(p / "bn"), out_channels));
        Self {
            depthwise,
            pointwise,
            bn,
            activation,
        }
    }

    /// Folds the block's own BN into the pointwise conv (inference only).
    pub fn fold_batchnorm(&mut self) {
        if let Some(bn) = &mut self.bn {
            self.pointwise.fold_bn(bn);
        }
    }

    /// A copy of this block (sharing the depthwise weights) whose pointwise conv absorbs
    /// `bn`, an external BatchNorm that follows the block (the heads' per-level BNs).
    pub fn folded_with(&self, bn: &BatchNorm2d) -> Self {
        Self {
            depthwise: self.depthwise.shallow_clone(),
            pointwise: self.pointwise.folded_with(bn),
            bn: None,
            activation: self.activation,
        }
    }
}

impl ModuleT for SeparableConvBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = self
            .pointwise
            .forward_t(&self.depthwise.forward_t(xs, train), train);
        let ys = match &self.bn {
            Some(bn) => bn.forward_t(&ys, train),
            None => ys,
        };
        match self.activation {
            Some(act) => act.apply(&ys),
            None => ys,
        }
    }
}

/// 1×1 conv (with bias) followed by BN, no activation: the BiFPN's channel projections.
/// Parameters at `0.conv.{weight,bias}` and `1.*` (a two-element `nn.Sequential` in the
/// reference).
#[derive(Debug)]
pub struct ConvBn {
    pub conv: SameConv2d,
    pub bn: BatchNorm2d,
}

impl ConvBn {
    pub fn new(p: &nn::Path, in_channels: i64, out_channels: i64) -> Self {
        let conv = SameConv2d::new(
            &(p / 0),
            in_channels,
            out_channels,
            1,
            SameConvConfig::default(),
        );
        let bn = BatchNorm2d::new(&(p / 1), out_channels);
        Self { conv, bn }
    }

    /// Folds the BN into the conv (inference only).
    pub fn fold_batchnorm(&mut self) {
        self.conv.fold_bn(&mut self.bn);
    }
}

impl ModuleT for ConvBn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&self.conv.forward_t(xs, train), train)
    }
}

/// Spatial size `(height, width)` of an NCHW tensor.
pub fn spatial_size(xs: &Tensor) -> (i64, i64) {
    let s = xs.size();
    (s[s.len() - 2], s[s.len() - 1])
}

/// Nearest-neighbour up-sampling of `xs` to exactly `(height, width)`. For an exact doubling
/// this is the reference's `Upsample(scale_factor=2)`; for other ratios (a 3×3 P7 under a
/// 5×5 P6, Lite0 at 320) it still lines the maps up, where a fixed ×2 would not.
pub fn upsample_to(xs: &Tensor, size: (i64, i64)) -> Tensor {
    if spatial_size(xs) == size {
        return xs.shallow_clone();
    }
    xs.upsample_nearest2d([size.0, size.1], None, None)
}

/// SAME max-pool of `xs` down to `(height, width)`: the reference's 3×3 stride-2 pool for a
/// halving, automl's `stride = (in−1)/out + 1`, `kernel = stride + 1` in general (per axis).
pub fn downsample_to(xs: &Tensor, size: (i64, i64)) -> Tensor {
    let (h, w) = spatial_size(xs);
    SameMaxPool2d::to_size((h, w), size).forward_t(xs, false)
}
