//! The learning-rate schedule: linear warm-up, then cosine decay.
//!
//! With `T` total steps, step `s` (0-based) has the cosine rate
//! `lr · (r + (1 − r) · ½ · (1 + cos(π · s / T)))` (`r` = `min_lr_ratio`). During the
//! `W` warm-up steps after a (re)start (the run's start, and the step where the backbone
//! is unfrozen) it is scaled by `w0 + (1 − w0) · k / W` after `k` steps.

use super::config::TrainConfig;

/// Where the schedule stands; everything needed to compute the rate of any step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub base_lr: f64,
    pub total_steps: usize,
    pub warmup_steps: usize,
    pub warmup_start: f64,
    pub min_lr_ratio: f64,
    /// Step at which the backbone is unfrozen (a second warm-up), if any.
    pub restart_step: Option<usize>,
}

impl Schedule {
    /// The schedule of `cfg` for `steps_per_epoch`.
    pub fn new(cfg: &TrainConfig, steps_per_epoch: usize) -> Self {
        let spe = steps_per_epoch.max(1);
        let restart = (cfg.freeze_backbone_epochs > 0 && cfg.freeze_backbone_epochs < cfg.epochs)
            .then_some(cfg.freeze_backbone_epochs * spe);
        Self {
            base_lr: cfg.lr,
            total_steps: (cfg.epochs * spe).max(1),
            warmup_steps: (cfg.warmup_epochs * spe as f64).round() as usize,
            warmup_start: cfg.warmup_start,
            min_lr_ratio: cfg.min_lr_ratio,
            restart_step: restart,
        }
    }

    /// The learning rate of global step `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        let progress = (step as f64 / self.total_steps as f64).min(1.0);
        let r = self.min_lr_ratio;
        let cosine = r + (1.0 - r) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        let since = match self.restart_step {
            Some(s) if step >= s => step - s,
            _ => step,
        };
        let warm = if since < self.warmup_steps {
            self.warmup_start + (1.0 - self.warmup_start) * since as f64 / self.warmup_steps as f64
        } else {
            1.0
        };
        self.base_lr * cosine * warm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let cfg = TrainConfig {
            lr: 1.0,
            epochs: 10,
            warmup_epochs: 1.0,
            warmup_start: 0.1,
            min_lr_ratio: 0.0,
            freeze_backbone_epochs: 2,
            ..TrainConfig::default()
        };
        let s = Schedule::new(&cfg, 10);
        assert!((s.lr(0) - 0.1).abs() < 1e-9);
        assert!(s.lr(5) < s.lr(10));
        assert!((s.lr(50) - 0.5).abs() < 1e-9);
        // The second warm-up at the unfreeze step.
        assert!(s.lr(20) < 0.2 && s.lr(30) > 0.5);
        assert!(s.lr(99) < 0.01);
    }
}
