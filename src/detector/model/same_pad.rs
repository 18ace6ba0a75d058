//! TensorFlow-style "SAME" padding for convolutions and max-pools.
//!
//! EfficientNet/EfficientDet were trained in TensorFlow, whose `padding="SAME"` makes the
//! output size `⌈in / stride⌉` and pads `total = max((⌈in/s⌉ − 1)·s + k − in, 0)` zeros, the
//! *smaller* half before and the larger half after. A stride-2 3×3 conv on an even input thus
//! pads 0 rows on top and 1 at the bottom, which PyTorch's symmetric `padding=1` cannot
//! express: using it shifts every feature by half a pixel and imported weights degrade. The
//! reference port pads explicitly before an unpadded conv/pool (its
//! `Conv2dStaticSamePadding`/`MaxPool2dStaticSamePadding`, hence the extra `.conv` in the
//! parameter names). We compute the same padding at run time from the input size, and when
//! it happens to be symmetric we hand it to the convolution itself, which avoids a copy and
//! gives the same result.
//!
//! Max-pools pad with **zeros**, not −∞, exactly like the reference (`F.pad` then
//! `MaxPool2d`); this matters at the borders of feature maps with negative values.

use tch::nn::{self, Init, ModuleT};
use tch::Tensor;

use super::norm::BatchNorm2d;

/// SAME padding `(before, after)` for one axis of size `input`.
pub fn same_padding(input: i64, kernel: i64, stride: i64, dilation: i64) -> (i64, i64) {
    let out = (input + stride - 1) / stride;
    let effective_kernel = (kernel - 1) * dilation + 1;
    let total = ((out - 1) * stride + effective_kernel - input).max(0);
    (total / 2, total - total / 2)
}

/// Construction options of a [`SameConv2d`].
#[derive(Clone, Copy, Debug)]
pub struct SameConvConfig {
    pub stride: i64,
    pub groups: i64,
    pub bias: bool,
    /// Weight initialisation; `None` uses the reference's variance scaling,
    /// normal with `std = sqrt(1 / fan_in)`.
    pub ws_init: Option<Init>,
    /// Bias initialisation (zero by default).
    pub bs_init: Init,
}

impl Default for SameConvConfig {
    fn default() -> Self {
        Self {
            stride: 1,
            groups: 1,
            bias: true,
            ws_init: None,
            bs_init: Init::Const(0.0),
        }
    }
}

impl SameConvConfig {
    pub fn stride(self, stride: i64) -> Self {
        Self { stride, ..self }
    }
    pub fn groups(self, groups: i64) -> Self {
        Self { groups, ..self }
    }
    pub fn bias(self, bias: bool) -> Self {
        Self { bias, ..self }
    }
    pub fn bs_init(self, bs_init: Init) -> Self {
        Self { bs_init, ..self }
    }
}

/// A 2-D convolution with TF-SAME padding. Its parameters live under `<path>.conv.weight`
/// and `<path>.conv.bias`, as in the reference port.
#[derive(Debug)]
pub struct SameConv2d {
    pub ws: Tensor,
    pub bs: Option<Tensor>,
    pub kernel: i64,
    pub stride: i64,
    pub groups: i64,
}

impl SameConv2d {
    /// A `kernel × kernel` conv from `in_channels` to `out_channels` at `p / "conv"`.
    pub fn new(
        p: &nn::Path,
        in_channels: i64,
        out_channels: i64,
        kernel: i64,
        cfg: SameConvConfig,
    ) -> Self {
        let p = p / "conv";
        let fan_in = (in_channels / cfg.groups) * kernel * kernel;
        let ws_init = cfg.ws_init.unwrap_or(Init::Randn {
            mean: 0.0,
            stdev: (1.0 / fan_in as f64).sqrt(),
        });
        let ws = p.var(
            "weight",
            &[out_channels, in_channels / cfg.groups, kernel, kernel],
            ws_init,
        );
        let bs = cfg
            .bias
            .then(|| p.var("bias", &[out_channels], cfg.bs_init));
        Self {
            ws,
            bs,
            kernel,
            stride: cfg.stride,
            groups: cfg.groups,
        }
    }

    /// Output channels.
    pub fn out_channels(&self) -> i64 {
        self.ws.size()[0]
    }

    /// A conv sharing this one's parameter tensors.
    pub fn shallow_clone(&self) -> Self {
        Self {
            ws: self.ws.shallow_clone(),
            bs: self.bs.as_ref().map(Tensor::shallow_clone),
            kernel: self.kernel,
            stride: self.stride,
            groups: self.groups,
        }
    }

    /// A conv computing `bn(conv(x))` of the eval-mode `bn` in one step:
    /// `w′ = w·γ/√(σ²+ε)` per output channel and `b′ = (b − μ)·γ/√(σ²+ε) + β`. The new
    /// tensors are detached copies, not VarStore variables, so this is for inference only.
    pub fn folded_with(&self, bn: &BatchNorm2d) -> Self {
        tch::no_grad(|| {
            let (scale, shift) = bn.eval_affine();
            let ws = &self.ws * scale.view([-1, 1, 1, 1]);
            let bs = match &self.bs {
                Some(b) => b * &scale + shift,
                None => shift,
            };
            Self {
                ws: ws.detach(),
                bs: Some(bs.detach()),
                kernel: self.kernel,
                stride: self.stride,
                groups: self.groups,
            }
        })
    }

    /// Folds `bn` (which must directly follow this conv) into it and turns `bn` into the
    /// identity. Inference only; see [`SameConv2d::folded_with`].
    pub fn fold_bn(&mut self, bn: &mut BatchNorm2d) {
        if bn.folded {
            return;
        }
        *self = self.folded_with(bn);
        bn.folded = true;
    }
}

impl ModuleT for SameConv2d {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let size = xs.size();
        let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
        let (top, bottom) = same_padding(h, self.kernel, self.stride, 1);
        let (left, right) = same_padding(w, self.kernel, self.stride, 1);
        let stride = [self.stride, self.stride];
        if top == bottom && left == right {
            xs.conv2d(
                &self.ws,
                self.bs.as_ref(),
                stride,
                [top, left],
                [1, 1],
                self.groups,
            )
        } else {
            xs.constant_pad_nd([left, right, top, bottom]).conv2d(
                &self.ws,
                self.bs.as_ref(),
                stride,
                [0, 0],
                [1, 1],
                self.groups,
            )
        }
    }
}

/// Max-pool with TF-SAME padding (zero-filled, like the reference).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SameMaxPool2d {
    /// `(height, width)` of the window.
    pub kernel: (i64, i64),
    /// `(height, width)` strides.
    pub stride: (i64, i64),
}

impl SameMaxPool2d {
    /// The BiFPN's 3×3 stride-2 down-sampling pool.
    pub const DOWN2: SameMaxPool2d = SameMaxPool2d {
        kernel: (3, 3),
        stride: (2, 2),
    };

    /// The pool that brings an `input` map down to `target` (automl's generalisation, per
    /// axis: `stride = (in − 1) / target + 1`, `kernel = stride + 1`); the usual 3×3 stride-2
    /// pool for a halving.
    pub fn to_size(input: (i64, i64), target: (i64, i64)) -> Self {
        let sh = (input.0 - 1) / target.0.max(1) + 1;
        let sw = (input.1 - 1) / target.1.max(1) + 1;
        SameMaxPool2d {
            kernel: (sh + 1, sw + 1),
            stride: (sh, sw),
        }
    }
}

impl ModuleT for SameMaxPool2d {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let size = xs.size();
        let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
        let (top, bottom) = same_padding(h, self.kernel.0, self.stride.0, 1);
        let (left, right) = same_padding(w, self.kernel.1, self.stride.1, 1);
        let padded = if top + bottom + left + right > 0 {
            xs.constant_pad_nd([left, right, top, bottom])
        } else {
            xs.shallow_clone()
        };
        padded.max_pool2d(
            [self.kernel.0, self.kernel.1],
            [self.stride.0, self.stride.1],
            [0, 0],
            [1, 1],
            false,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_asymmetric_for_even_stride_two() {
        assert_eq!(same_padding(512, 3, 2, 1), (0, 1));
        assert_eq!(same_padding(5, 3, 2, 1), (1, 1));
        assert_eq!(same_padding(64, 5, 2, 1), (1, 2));
        assert_eq!(same_padding(64, 3, 1, 1), (1, 1));
        assert_eq!(same_padding(64, 1, 1, 1), (0, 0));
    }

    #[test]
    fn pool_to_size() {
        assert_eq!(SameMaxPool2d::to_size((5, 5), (3, 3)), SameMaxPool2d::DOWN2);
        assert_eq!(
            SameMaxPool2d::to_size((40, 64), (20, 32)),
            SameMaxPool2d::DOWN2
        );
        let p = SameMaxPool2d::to_size((5, 5), (3, 3));
        let xs = Tensor::ones([1, 1, 5, 5], (tch::Kind::Float, tch::Device::Cpu));
        assert_eq!(p.forward_t(&xs, false).size(), [1, 1, 3, 3]);
    }
}
