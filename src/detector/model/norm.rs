//! Batch normalisation with the reference's settings and parameter names.
//!
//! TensorFlow's EfficientNet/EfficientDet use a moving-average decay of 0.99 and ε = 1e-3; in
//! PyTorch's convention that is `momentum = 1 − 0.99 = 0.01`. tch's `BatchNormConfig` defaults
//! (ε 1e-5, momentum 0.1, weights uniform in [0, 1)) are wrong for imported weights, so this
//! module owns its parameters: `weight` (1), `bias` (0), `running_mean` (0), `running_var`
//! (1) and the int64 `num_batches_tracked` counter that PyTorch state dicts carry.

use tch::nn::{self, Init, ModuleT};
use tch::{Kind, Tensor};

/// ε of every BatchNorm in the network.
pub const BN_EPS: f64 = 1e-3;
/// Running-statistics momentum (PyTorch convention) of every BatchNorm in the network.
pub const BN_MOMENTUM: f64 = 0.01;

/// `BatchNorm2d(channels, eps=1e-3, momentum=0.01)`.
#[derive(Debug)]
pub struct BatchNorm2d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub num_batches_tracked: Tensor,
    pub eps: f64,
    pub momentum: f64,
    /// Set once the normalisation has been folded into the preceding convolution
    /// ([`super::same_pad::SameConv2d::fold_bn`]); the layer is then the identity.
    pub folded: bool,
}

impl BatchNorm2d {
    pub fn new(p: &nn::Path, channels: i64) -> Self {
        let weight = p.var("weight", &[channels], Init::Const(1.0));
        let bias = p.var("bias", &[channels], Init::Const(0.0));
        let running_mean = p.zeros_no_train("running_mean", &[channels]);
        let running_var = p.ones_no_train("running_var", &[channels]);
        let counter = Tensor::zeros([], (Kind::Int64, p.device()));
        let num_batches_tracked = p.add("num_batches_tracked", counter, false);
        Self {
            weight,
            bias,
            running_mean,
            running_var,
            num_batches_tracked,
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
            folded: false,
        }
    }

    /// Per-channel `(scale, shift)` such that, in eval mode, `bn(x) = x·scale + shift`
    /// (for folding into a preceding convolution).
    pub fn eval_affine(&self) -> (Tensor, Tensor) {
        let scale = &self.weight / (&self.running_var + self.eps).sqrt();
        let shift = &self.bias - &self.running_mean * &scale;
        (scale, shift)
    }
}

impl ModuleT for BatchNorm2d {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if self.folded {
            return xs.shallow_clone();
        }
        if train {
            tch::no_grad(|| {
                let mut counter = self.num_batches_tracked.shallow_clone();
                let _ = counter.g_add_scalar_(1);
            });
        }
        xs.batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            self.momentum,
            self.eps,
            true,
        )
    }
}

/// Test helper: randomises every BatchNorm's running statistics and scale in `vs`, so that
/// folding them into the convolutions is not the identity.
#[cfg(test)]
pub(crate) fn randomise_statistics(vs: &nn::VarStore) {
    let opts = (Kind::Float, tch::Device::Cpu);
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            let n = v.size();
            if name.ends_with("running_var") {
                v.copy_(&(Tensor::rand(&n, opts) + 0.5));
            } else if name.ends_with("running_mean") {
                v.copy_(&(Tensor::randn(&n, opts) * 0.1));
            } else if name.contains("bn") && name.ends_with("weight") {
                v.copy_(&(Tensor::rand(&n, opts) + 0.5));
            }
        }
    });
}
