//! Dynamic loss scaling for float16 mixed precision, with the rules of PyTorch's
//! `GradScaler`: the loss is multiplied by `scale` before the backward pass so that small
//! gradients survive float16; the optimiser sees the gradients divided by `scale` again
//! (see [`super::optimizer::Optimizer::clip_grad_norm`]); a step whose gradients overflow is
//! skipped and the scale halved; after [`GROWTH_INTERVAL`] clean steps in a row it doubles.

use tch::Tensor;

/// The first scale (2¹⁶, as PyTorch).
pub const INITIAL_SCALE: f64 = 65_536.0;
/// Clean steps in a row before the scale doubles.
pub const GROWTH_INTERVAL: usize = 2000;
/// Below this scale an overflow is no longer a scaling problem but a diverged run.
pub const MIN_SCALE: f64 = 1.0;

/// The loss scale and its bookkeeping.
#[derive(Clone, Debug, PartialEq)]
pub struct GradScaler {
    pub scale: f64,
    clean_steps: usize,
}

/// What to do with a step after the backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaledStep {
    /// Gradients are finite: unscale them and step.
    Apply,
    /// Gradients overflowed: skip the step; the scale was halved.
    SkipOverflow,
    /// Gradients are not finite even at [`MIN_SCALE`]: the run diverged.
    Diverged,
}

impl Default for GradScaler {
    fn default() -> Self {
        Self::new(INITIAL_SCALE)
    }
}

impl GradScaler {
    pub fn new(scale: f64) -> Self {
        Self {
            scale,
            clean_steps: 0,
        }
    }

    /// `loss · scale`, to call `backward` on.
    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        loss * self.scale
    }

    /// Updates the scale after a backward pass whose gradients were (not) all finite.
    pub fn update(&mut self, grads_finite: bool) -> ScaledStep {
        if grads_finite {
            self.clean_steps += 1;
            if self.clean_steps >= GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.clean_steps = 0;
            }
            ScaledStep::Apply
        } else if self.scale <= MIN_SCALE {
            ScaledStep::Diverged
        } else {
            self.scale = (self.scale / 2.0).max(MIN_SCALE);
            self.clean_steps = 0;
            ScaledStep::SkipOverflow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_on_overflow_doubles_after_clean_steps_and_reports_divergence() {
        let mut s = GradScaler::new(8.0);
        assert_eq!(s.update(false), ScaledStep::SkipOverflow);
        assert_eq!(s.scale, 4.0);
        for _ in 0..GROWTH_INTERVAL - 1 {
            assert_eq!(s.update(true), ScaledStep::Apply);
        }
        assert_eq!(s.scale, 4.0);
        assert_eq!(s.update(true), ScaledStep::Apply);
        assert_eq!(s.scale, 8.0);
        // An overflow resets the clean-step count.
        s.update(true);
        s.update(false);
        assert_eq!(s.scale, 4.0);
        for _ in 0..GROWTH_INTERVAL - 1 {
            s.update(true);
        }
        assert_eq!(s.scale, 4.0);
        let mut low = GradScaler::new(2.0);
        assert_eq!(low.update(false), ScaledStep::SkipOverflow);
        assert_eq!(low.scale, MIN_SCALE);
        assert_eq!(low.update(false), ScaledStep::Diverged);
    }

    #[test]
    fn scaled_loss_gives_scaled_gradients() {
        let p = Tensor::from_slice(&[2f32]).set_requires_grad(true);
        let s = GradScaler::new(1024.0);
        s.scale_loss(&(&p * 3.0).sum(tch::Kind::Float)).backward();
        assert_eq!(p.grad().double_value(&[0]), 3072.0);
    }
}
