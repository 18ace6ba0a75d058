//! BiFPN: the bidirectional, weighted feature pyramid of EfficientDet.
//!
//! One layer over levels P3..Pn (n = 7, or 8 for D7x) runs a top-down pass
//!
//! ```text
//! Pi_up  = conv_i_up( act( fuse(Pi_in, up(P(i+1)_up)) ) )        i = n−1 … 3   (P3_up is P3_out)
//! ```
//!
//! and a bottom-up pass
//!
//! ```text
//! Pi_out = conv_i_down( act( fuse(Pi_in′, Pi_up, down(P(i−1)_out)) ) )   i = 4 … n−1
//! Pn_out = conv_n_down( act( fuse(Pn_in, down(P(n−1)_out)) ) )
//! ```
//!
//! where `conv_*` are separable convs with BN and no activation, `up` is nearest resampling
//! and `down` a SAME max-pool, both *to the target level's size* (so inputs that are not
//! multiples of 128 work). `fuse` is either fast normalised fusion
//! `Σ relu(wᵢ)·inᵢ / (Σ relu(wⱼ) + 1e-4)` with learned scalars `w` (D0–D5), or a plain sum
//! (D6+, Lite).
//!
//! The first layer builds its inputs from the backbone taps C3, C4, C5: 1×1 conv + BN for
//! P3..P5 (`p{3,4,5}_down_channel`), P6 = 1×1 conv + BN of C5 then max-pool (`p5_to_p6`),
//! P7 (P8) = max-pool of the level below; and, as in the reference, the bottom-up inputs
//! P4_in′/P5_in′ come from a *second* pair of projections (`p4_down_channel_2`,
//! `p5_down_channel_2`). Later layers use `Pi_in′ = Pi_in`.

use tch::nn::{self, Init, ModuleT};
use tch::Tensor;

use super::config::{Activation, EfficientDetConfig, Fusion};
use super::layers::{downsample_to, spatial_size, upsample_to, ConvBn, SeparableConvBlock};
use super::same_pad::SameMaxPool2d;

/// ε of fast normalised fusion.
pub const FUSION_EPS: f64 = 1e-4;

/// The first layer's input projections.
#[derive(Debug)]
pub(crate) struct FirstLayerInputs {
    /// P3, P4, P5 projections of C3, C4, C5.
    pub(crate) down_channel: [ConvBn; 3],
    /// P6 projection of C5 (followed by a max-pool).
    pub(crate) p5_to_p6: ConvBn,
    /// Second projections of C4, C5 for the bottom-up path.
    pub(crate) down_channel_2: [ConvBn; 2],
}

/// A fusion node: its separable conv and (optional) learned fusion weights.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) conv: SeparableConvBlock,
    pub(crate) weights: Option<Tensor>,
}

/// One BiFPN layer (`bifpn.N`).
#[derive(Debug)]
pub struct BiFpnLayer {
    pub(crate) first: Option<FirstLayerInputs>,
    /// Top-down nodes, index i → level i+3 (levels 3 … n−1).
    pub(crate) up: Vec<Node>,
    /// Bottom-up nodes, index i → level i+4 (levels 4 … n).
    pub(crate) down: Vec<Node>,
    pub(crate) fusion: Fusion,
    pub(crate) activation: Activation,
    pub(crate) num_levels: usize,
}

/// The reference port's fusion-weight names: the ones its checkpoints carry.
const REFERENCE_WEIGHTS: [&str; 8] = [
    "p6_w1", "p5_w1", "p4_w1", "p3_w1", "p4_w2", "p5_w2", "p6_w2", "p7_w2",
];
/// Their lengths (inputs of the P3–P7 nodes).
const REFERENCE_WEIGHT_LEN: [i64; 8] = [2, 2, 2, 2, 3, 3, 3, 2];

impl BiFpnLayer {
    /// A layer under `p` (`bifpn.N`). `first` layers take the backbone taps with
    /// `tap_channels` channels; later layers take the previous layer's W-channel maps.
    pub fn new(
        p: &nn::Path,
        cfg: &EfficientDetConfig,
        first: bool,
        tap_channels: [i64; 3],
    ) -> Self {
        let w = cfg.fpn_channels;
        let num_levels = cfg.num_levels();
        let max_level = 3 + num_levels - 1;
        // Fusion weights: one scalar per node input. Under `Sum` fusion the reference still
        // registers its fixed set (unused); those keep the reference's shapes even where a
        // D7x node has a different number of inputs (`p7_w2` is [2] there).
        let weight = |name: String, inputs: i64| -> Option<Tensor> {
            let reference = REFERENCE_WEIGHTS.iter().position(|&n| n == name);
            match (cfg.fusion, reference) {
                (Fusion::FastAttention, _) => Some(p.var(&name, &[inputs], Init::Const(1.0))),
                (Fusion::Sum, Some(idx)) if cfg.fusion_weight_params => {
                    Some(p.var(&name, &[REFERENCE_WEIGHT_LEN[idx]], Init::Const(1.0)))
                }
                _ => None,
            }
        };
        // Created in the reference's registration order (cosmetic for a VarStore).
        let up_weights: Vec<Option<Tensor>> = (3..max_level)
            .rev()
            .map(|l| weight(format!("p{l}_w1"), 2))
            .collect();
        let down_weights: Vec<Option<Tensor>> = (4..=max_level)
            .map(|l| weight(format!("p{l}_w2"), if l == max_level { 2 } else { 3 }))
            .collect();
        let sep = |name: String| SeparableConvBlock::new(&(p / name), w, w, true, None);
        let mut up: Vec<Node> = (3..max_level)
            .rev()
            .zip(up_weights)
            .map(|(l, weights)| Node {
                conv: sep(format!("conv{l}_up")),
                weights,
            })
            .collect();
        up.reverse();
        let down: Vec<Node> = (4..=max_level)
            .zip(down_weights)
            .map(|(l, weights)| Node {
                conv: sep(format!("conv{l}_down")),
                weights,
            })
            .collect();
        let first = first.then(|| {
            let [c3, c4, c5] = tap_channels;
            FirstLayerInputs {
                down_channel: [
                    ConvBn::new(&(p / "p3_down_channel"), c3, w),
                    ConvBn::new(&(p / "p4_down_channel"), c4, w),
                    ConvBn::new(&(p / "p5_down_channel"), c5, w),
                ],
                p5_to_p6: ConvBn::new(&(p / "p5_to_p6"), c5, w),
                down_channel_2: [
                    ConvBn::new(&(p / "p4_down_channel_2"), c4, w),
                    ConvBn::new(&(p / "p5_down_channel_2"), c5, w),
                ],
            }
        });
        Self {
            first,
            up,
            down,
            fusion: cfg.fusion,
            activation: cfg.activation,
            num_levels,
        }
    }

    /// Folds every BatchNorm of the layer into its conv (inference only).
    pub fn fold_batchnorm(&mut self) {
        for node in self.up.iter_mut().chain(self.down.iter_mut()) {
            node.conv.fold_batchnorm();
        }
        if let Some(first) = &mut self.first {
            for cb in first
                .down_channel
                .iter_mut()
                .chain(first.down_channel_2.iter_mut())
            {
                cb.fold_batchnorm();
            }
            first.p5_to_p6.fold_batchnorm();
        }
    }

    /// Combines `inputs` with the node's fusion rule, then applies the activation.
    fn fuse(&self, node: &Node, inputs: &[&Tensor]) -> Tensor {
        let sum = match (self.fusion, &node.weights) {
            (Fusion::FastAttention, Some(param)) => {
                let w = param.relu();
                let w = &w / (w.sum(None) + FUSION_EPS);
                inputs
                    .iter()
                    .enumerate()
                    .map(|(i, x)| w.get(i as i64) * *x)
                    .reduce(|a, b| a + b)
                    .expect("fusion has inputs")
            }
            _ => inputs
                .iter()
                .map(|x| x.shallow_clone())
                .reduce(|a, b| a + b)
                .expect("fusion has inputs"),
        };
        self.activation.apply(&sum)
    }

    /// Runs the layer. `inputs` are C3, C4, C5 for the first layer, else the previous
    /// layer's outputs P3..Pn; returns P3..Pn.
    pub fn forward_t(&self, inputs: &[Tensor], train: bool) -> Vec<Tensor> {
        let n = self.num_levels;
        // Lateral inputs P3_in..Pn_in, and the bottom-up variants P4_in′, P5_in′.
        let (lateral, lateral2): (Vec<Tensor>, Option<[Tensor; 2]>) = match &self.first {
            Some(first) => {
                let (c3, c4, c5) = (&inputs[0], &inputs[1], &inputs[2]);
                let mut lat = vec![
                    first.down_channel[0].forward_t(c3, train),
                    first.down_channel[1].forward_t(c4, train),
                    first.down_channel[2].forward_t(c5, train),
                ];
                let mut top =
                    SameMaxPool2d::DOWN2.forward_t(&first.p5_to_p6.forward_t(c5, train), train);
                while lat.len() < n - 1 {
                    let next = SameMaxPool2d::DOWN2.forward_t(&top, train);
                    lat.push(top);
                    top = next;
                }
                lat.push(top);
                let second = [
                    first.down_channel_2[0].forward_t(c4, train),
                    first.down_channel_2[1].forward_t(c5, train),
                ];
                (lat, Some(second))
            }
            None => (inputs.iter().map(|t| t.shallow_clone()).collect(), None),
        };

        // Top-down: up[i] for levels 3..n−1 (index 0..n−2).
        let mut up: Vec<Option<Tensor>> = (0..n - 1).map(|_| None).collect();
        let mut above = lateral[n - 1].shallow_clone();
        for i in (0..n - 1).rev() {
            let target = spatial_size(&lateral[i]);
            let fused = self.fuse(&self.up[i], &[&lateral[i], &upsample_to(&above, target)]);
            let out = self.up[i].conv.forward_t(&fused, train);
            above = out.shallow_clone();
            up[i] = Some(out);
        }
        let up: Vec<Tensor> = up.into_iter().map(|t| t.expect("filled")).collect();

        // Bottom-up: outputs for levels 4..n (index 1..n−1).
        let mut outputs = Vec::with_capacity(n);
        outputs.push(up[0].shallow_clone());
        for i in 1..n {
            let target = spatial_size(&lateral[i]);
            let below = downsample_to(&outputs[i - 1], target);
            let lat = match (&lateral2, i) {
                (Some(second), 1) => &second[0],
                (Some(second), 2) => &second[1],
                _ => &lateral[i],
            };
            let node = &self.down[i - 1];
            let fused = if i < n - 1 {
                self.fuse(node, &[lat, &up[i], &below])
            } else {
                self.fuse(node, &[lat, &below])
            };
            outputs.push(node.conv.forward_t(&fused, train));
        }
        outputs
    }
}

/// The stack of BiFPN layers (`bifpn.0`, `bifpn.1`, …).
#[derive(Debug)]
pub struct BiFpn {
    pub layers: Vec<BiFpnLayer>,
}

impl BiFpn {
    /// `cfg.fpn_repeats` layers under `p` (`bifpn`).
    pub fn new(p: &nn::Path, cfg: &EfficientDetConfig, tap_channels: [i64; 3]) -> Self {
        let layers = (0..cfg.fpn_repeats)
            .map(|i| BiFpnLayer::new(&(p / i), cfg, i == 0, tap_channels))
            .collect();
        Self { layers }
    }

    /// Folds every BatchNorm into its conv (inference only).
    pub fn fold_batchnorm(&mut self) {
        for layer in &mut self.layers {
            layer.fold_batchnorm();
        }
    }

    /// C3, C4, C5 → P3..Pn.
    pub fn forward_t(&self, taps: &[Tensor], train: bool) -> Vec<Tensor> {
        let mut features: Vec<Tensor> = taps.iter().map(|t| t.shallow_clone()).collect();
        for layer in &self.layers {
            features = layer.forward_t(&features, train);
        }
        features
    }
}
