//! A warm-up of the BatchNorm running statistics, like the EMA's of the weights.
//!
//! Every BatchNorm keeps running averages of its batch statistics with momentum 0.01 (the
//! reference's decay 0.99), and inference (validation, the saved models) uses them. A layer
//! that starts at mean 0 / variance 1 (the new BiFPN and heads), or at ImageNet statistics
//! (the backbone once unfrozen), keeps `0.99^n` of that start after `n` batches: 19 % after
//! the 165 steps of a 35-image run, where the recipe's 444-image run (1,848 steps) forgets
//! it entirely. The network then sees features on another scale at inference than in
//! training, and scores far below what it learnt (a 35-image demo run: validation AP50
//! 0.31 with the running statistics, 0.49 with statistics re-estimated on its images).
//!
//! So the momentum warms up as the EMA's decay does: a layer's `n`-th update uses
//! `max(0.01, 1 − (1 + n) / (10 + n)) = max(0.01, 9 / (10 + n))`, which forgets the start
//! within a few steps and reaches the reference's 0.01 after 890 updates; from there
//! training is exactly as before (so long runs end with the same statistics, to rounding).
//!
//! libtorch updates the statistics inside the forward pass with the layers' fixed momentum
//! `m₀`; [`BnWarmup`] snapshots them before the step and rescales the change after it:
//! `r ← r₀ + (m / m₀)·(r₁ − r₀)`, which is exactly the update with momentum `m`. The
//! backbone's layers count their updates from the step it is unfrozen (frozen, they are in
//! eval mode and do not change).

use tch::nn::VarStore;
use tch::Tensor;

use super::flat::{concat, FlatLayout};
use crate::detector::model::norm::BN_MOMENTUM;

/// The momentum of a BatchNorm layer's update after `n` earlier updates.
pub fn warmed_momentum(n: usize) -> f64 {
    BN_MOMENTUM.max(9.0 / (10.0 + n as f64))
}

/// Running statistics of one part of the network.
struct Group {
    stats: Vec<Tensor>,
    layout: FlatLayout,
    /// The statistics before the forward pass.
    before: Option<Tensor>,
}

impl Group {
    fn new(stats: Vec<Tensor>) -> Self {
        let layout = FlatLayout::of(&stats);
        Self {
            stats,
            layout,
            before: None,
        }
    }

    fn flat(&self) -> Tensor {
        concat(self.stats.iter().map(|t| t.detach()))
    }

    fn snapshot(&mut self, updates: usize) {
        self.before = (!self.stats.is_empty() && warmed_momentum(updates) > BN_MOMENTUM)
            .then(|| tch::no_grad(|| self.flat()));
    }

    fn rescale(&mut self, updates: usize) {
        let Some(before) = self.before.take() else {
            return;
        };
        let k = warmed_momentum(updates) / BN_MOMENTUM;
        tch::no_grad(|| {
            let after = self.flat();
            let warmed = &before + (after - &before) * k;
            for (i, t) in self.stats.iter().enumerate() {
                t.shallow_clone().copy_(&self.layout.view(&warmed, i, t));
            }
        });
    }
}

/// The BatchNorm running statistics of a network, with the warmed-up momentum.
pub struct BnWarmup {
    backbone: Group,
    rest: Group,
}

impl BnWarmup {
    /// Every `running_mean` / `running_var` of `vs`; the backbone's are those under
    /// `backbone_net.`.
    pub fn new(vs: &VarStore) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(n, t)| {
                t.is_floating_point() && (n.ends_with("running_mean") || n.ends_with("running_var"))
            })
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let (backbone, rest): (Vec<_>, Vec<_>) = vars
            .into_iter()
            .partition(|(n, _)| n.starts_with("backbone_net."));
        let take = |v: Vec<(String, Tensor)>| Group::new(v.into_iter().map(|(_, t)| t).collect());
        Self {
            backbone: take(backbone),
            rest: take(rest),
        }
    }

    /// Call before a training step: the backbone's layers have had
    /// `backbone_updates` updates (`None`: frozen, they take none), the others
    /// `other_updates`.
    pub fn before_step(&mut self, backbone_updates: Option<usize>, other_updates: usize) {
        match backbone_updates {
            Some(n) => self.backbone.snapshot(n),
            None => self.backbone.before = None,
        }
        self.rest.snapshot(other_updates);
    }

    /// Call after the step (its backward pass needs the statistics as its forward pass left
    /// them), with the same counts: turns libtorch's update into the warmed-up one.
    pub fn after_step(&mut self, backbone_updates: Option<usize>, other_updates: usize) {
        if let Some(n) = backbone_updates {
            self.backbone.rescale(n);
        }
        self.rest.rescale(other_updates);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::model::norm::BatchNorm2d;
    use tch::nn::ModuleT;
    use tch::{Device, Kind};

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap()
    }

    /// The rescaled update is the update with the warmed-up momentum: after one batch a
    /// fresh layer's mean is 90 % of the batch mean (not 1 %), and the momentum reaches the
    /// reference's after 890 updates.
    #[test]
    fn the_update_uses_the_warmed_up_momentum() {
        assert!((warmed_momentum(0) - 0.9).abs() < 1e-12);
        assert!(warmed_momentum(889) > BN_MOMENTUM);
        assert_eq!(warmed_momentum(890), BN_MOMENTUM);
        let vs = VarStore::new(Device::Cpu);
        let bn = BatchNorm2d::new(&(vs.root() / "head" / "bn"), 2);
        let frozen = BatchNorm2d::new(&(vs.root() / "backbone_net" / "bn"), 2);
        let mut warm = BnWarmup::new(&vs);
        let xs = Tensor::ones([4, 2, 3, 3], (Kind::Float, Device::Cpu)) * 5.0;
        let mut want = 0.0;
        for n in 0..3 {
            warm.before_step(None, n);
            let _ = bn.forward_t(&xs, true);
            let _ = frozen.forward_t(&xs, false);
            warm.after_step(None, n);
            let m = warmed_momentum(n);
            want = (1.0 - m) * want + m * 5.0;
            for v in values(&bn.running_mean) {
                assert!((v - want).abs() < 1e-4, "{v} vs {want}");
            }
        }
        assert!(values(&frozen.running_mean).iter().all(|&v| v == 0.0));
        assert!(values(&bn.running_var).iter().all(|&v| v < 0.01));
    }
}
