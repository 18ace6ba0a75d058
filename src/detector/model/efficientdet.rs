//! The full detector: EfficientNet backbone → BiFPN → box and class heads.
//!
//! Parameter names equal the reference port's `state_dict` keys (`backbone_net.model.*`,
//! `bifpn.N.*`, `regressor.*`, `classifier.*`), so its checkpoints load by name
//! (`crate::detector::checkpoint`). Fresh parameters follow the reference initialisation:
//! every conv weight normal with `std = sqrt(1/fan_in)`, biases zero, BN weight 1 / bias
//! 0, fusion weights 1, and the class-head output bias at `−log(99)` (probability 0.01).

use tch::nn;
use tch::{Device, Kind, Tensor};
use thiserror::Error;

use super::backbone::EfficientNet;
use super::bifpn::BiFpn;
use super::config::EfficientDetConfig;
use super::heads::{class_prior_bias, Head};
use crate::detector::maths::anchors::{generate_anchors, AnchorError, Anchors};

/// Errors from building or running the detector.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("number of classes must be at least 1, got {0}")]
    NumClasses(i64),
    #[error("expected an input batch of shape [B, 3, H, W], got {0:?}")]
    InputShape(Vec<i64>),
    #[error(transparent)]
    Anchors(#[from] AnchorError),
    #[error(
        "the channels-last CPU engine needs the BatchNorms folded into the convolutions first"
    )]
    NotFolded,
    #[error("starting the inference threads: {0}")]
    Threads(#[from] rayon::ThreadPoolBuildError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// What the network computes for a batch.
#[derive(Debug)]
pub struct EfficientDetOutput {
    /// BiFPN outputs P3..P7 (P3..P8 for D7x), each `[B, W, H_l, W_l]`.
    pub features: Vec<Tensor>,
    /// Box deltas `[B, N, 4]` in `(dy, dx, dh, dw)` order, one row per anchor.
    pub regression: Tensor,
    /// Class **logits** `[B, N, C]` (apply `sigmoid` for scores).
    pub classification: Tensor,
}

/// Which parts of the network run in training mode (BatchNorm batch statistics, stochastic
/// depth). Fine-tuning a head on a frozen backbone keeps the frozen parts in eval mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainModes {
    pub backbone: bool,
    pub bifpn: bool,
    pub heads: bool,
}

impl TrainModes {
    /// Every part in the same mode.
    pub fn all(train: bool) -> Self {
        Self {
            backbone: train,
            bifpn: train,
            heads: train,
        }
    }
}

/// An EfficientDet (D0–D7x or Lite0).
#[derive(Debug)]
pub struct EfficientDet {
    pub config: EfficientDetConfig,
    pub num_classes: i64,
    pub backbone: EfficientNet,
    pub bifpn: BiFpn,
    pub regressor: Head,
    pub classifier: Head,
}

impl EfficientDet {
    /// Builds the detector's parameters under `p` (normally a `VarStore`'s root) with the
    /// reference initialisation. `EfficientDet::from_model_file` (in `detector::inference`)
    /// builds one with a model file's weights.
    pub fn new(
        p: &nn::Path,
        cfg: &EfficientDetConfig,
        num_classes: i64,
    ) -> Result<Self, ModelError> {
        if num_classes < 1 {
            return Err(ModelError::NumClasses(num_classes));
        }
        let backbone = EfficientNet::new(&(p / "backbone_net" / "model"), &cfg.backbone, None);
        let taps = cfg.backbone.tap_channels();
        let bifpn = BiFpn::new(&(p / "bifpn"), cfg, taps);
        let anchors = cfg.anchors_per_location() as i64;
        let (w, levels) = (cfg.fpn_channels, cfg.num_levels());
        let regressor = Head::new(
            &(p / "regressor"),
            w,
            cfg.head_repeats,
            levels,
            anchors,
            4,
            0.0,
            cfg.activation,
        );
        let classifier = Head::new(
            &(p / "classifier"),
            w,
            cfg.head_repeats,
            levels,
            anchors,
            num_classes,
            class_prior_bias(),
            cfg.activation,
        );
        Ok(Self {
            config: cfg.clone(),
            num_classes,
            backbone,
            bifpn,
            regressor,
            classifier,
        })
    }

    /// Runs the network on a normalised `[B, 3, H, W]` batch (any H, W; the reference sizes
    /// are multiples of 128, Lite0 uses 320). For inference call with `train = false` inside
    /// `tch::no_grad`. Panics if `xs` is not a 4-D 3-channel tensor; see
    /// [`EfficientDet::f_forward_t`].
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> EfficientDetOutput {
        self.forward_modes(xs, TrainModes::all(train))
    }

    /// [`EfficientDet::forward_t`] that checks the input shape first.
    pub fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<EfficientDetOutput, ModelError> {
        let size = xs.size();
        if size.len() != 4 || size[1] != 3 || size[2] < 1 || size[3] < 1 || size[0] < 1 {
            return Err(ModelError::InputShape(size));
        }
        Ok(self.forward_t(xs, train))
    }

    /// Runs the network with per-part training modes.
    pub fn forward_modes(&self, xs: &Tensor, modes: TrainModes) -> EfficientDetOutput {
        let taps = self.backbone.features_t(xs, modes.backbone);
        let c345 = &taps[taps.len() - 3..];
        let features = self.bifpn.forward_t(c345, modes.bifpn);
        let regression = self.regressor.forward_t(&features, modes.heads);
        let classification = self.classifier.forward_t(&features, modes.heads);
        EfficientDetOutput {
            features,
            regression,
            classification,
        }
    }

    /// Folds every BatchNorm into the convolution before it, for faster inference (fewer
    /// passes over memory). The result computes the same eval-mode function up to float
    /// rounding, but no longer reads the VarStore and must not be trained or saved from.
    pub fn fold_batchnorm(&mut self) {
        self.backbone.fold_batchnorm();
        self.bifpn.fold_batchnorm();
        self.regressor.fold_batchnorm();
        self.classifier.fold_batchnorm();
    }

    /// The anchors matching this network's outputs for a `height × width` input.
    pub fn anchors(&self, height: usize, width: usize) -> Result<Anchors, ModelError> {
        Ok(generate_anchors(&self.config.anchors, height, width)?)
    }
}

/// Anchors as a `[1, N, 4]` float tensor in `(y1, x1, y2, x2)` order, like the reference's
/// `anchors` output.
pub fn anchors_tensor(anchors: &Anchors, device: Device) -> Tensor {
    Tensor::from_slice(&anchors.to_flat())
        .view([1, anchors.len() as i64, 4])
        .to_kind(Kind::Float)
        .to_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::maths::anchors::anchor_count;
    use tch::nn::VarStore;

    #[test]
    fn train_step_on_small_input_has_gradients_and_counts_batches() {
        tch::set_num_threads(1);
        let cfg = EfficientDetConfig::lite0();
        let vs = VarStore::new(Device::Cpu);
        let net = EfficientDet::new(&vs.root(), &cfg, 3).unwrap();
        let xs = Tensor::randn([2, 3, 64, 96], (Kind::Float, Device::Cpu));
        let out = net.forward_t(&xs, true);
        let n = anchor_count(&cfg.anchors, 64, 96).unwrap() as i64;
        assert_eq!(out.regression.size(), [2, n, 4]);
        assert_eq!(out.classification.size(), [2, n, 3]);
        (out.regression.square().mean(Kind::Float) + out.classification.mean(Kind::Float))
            .backward();
        let vars = vs.variables();
        for key in [
            "backbone_net.model._conv_stem.conv.weight",
            "bifpn.0.p5_to_p6.0.conv.weight",
            "classifier.header.pointwise_conv.conv.bias",
            "regressor.bn_list.4.2.weight",
        ] {
            let grad = vars[key].grad();
            assert!(grad.defined(), "{key} has no gradient");
            assert!(grad.abs().sum(Kind::Float).double_value(&[]) > 0.0, "{key}");
        }
        let counter = &vars["backbone_net.model._bn0.num_batches_tracked"];
        assert_eq!(counter.int64_value(&[]), 1);
        // Fresh class bias is the focal-loss prior.
        let bias = &vars["classifier.header.pointwise_conv.conv.bias"];
        assert!((bias.mean(Kind::Float).double_value(&[]) + 4.59512).abs() < 1e-4);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let vs = VarStore::new(Device::Cpu);
        let cfg = EfficientDetConfig::lite0();
        assert!(matches!(
            EfficientDet::new(&vs.root(), &cfg, 0),
            Err(ModelError::NumClasses(0))
        ));
        let net = EfficientDet::new(&vs.root(), &cfg, 1).unwrap();
        let xs = Tensor::zeros([1, 1, 32, 32], (Kind::Float, Device::Cpu));
        assert!(matches!(
            net.f_forward_t(&xs, false),
            Err(ModelError::InputShape(_))
        ));
    }

    #[test]
    fn folding_batchnorm_keeps_outputs() {
        tch::set_num_threads(1);
        tch::manual_seed(7);
        let cfg = EfficientDetConfig::d(0).unwrap();
        let vs = VarStore::new(Device::Cpu);
        let mut net = EfficientDet::new(&vs.root(), &cfg, 2).unwrap();
        tch::no_grad(|| {
            for (name, mut v) in vs.variables() {
                let n = v.size();
                if name.ends_with("running_var") {
                    v.copy_(&(Tensor::rand(&n, (Kind::Float, Device::Cpu)) + 0.5));
                } else if name.ends_with("running_mean") {
                    v.copy_(&(Tensor::randn(&n, (Kind::Float, Device::Cpu)) * 0.1));
                } else if name.contains("bn") && name.ends_with("weight") {
                    v.copy_(&(Tensor::rand(&n, (Kind::Float, Device::Cpu)) + 0.5));
                }
            }
        });
        let xs = Tensor::randn([1, 3, 64, 64], (Kind::Float, Device::Cpu));
        let before = tch::no_grad(|| net.forward_t(&xs, false));
        net.fold_batchnorm();
        let after = tch::no_grad(|| net.forward_t(&xs, false));
        let diff = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
        assert!(diff(&before.regression, &after.regression) < 1e-4);
        assert!(diff(&before.classification, &after.classification) < 1e-4);
        for (a, b) in before.features.iter().zip(&after.features) {
            assert!(diff(a, b) < 1e-4);
        }
    }
}
