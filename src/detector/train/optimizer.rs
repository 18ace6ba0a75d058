//! AdamW and SGD written on tch tensors, so that their state (moments, step count) can be
//! saved in the resume file and restored exactly — tch's libtorch optimisers do not expose
//! their state.
//!
//! * AdamW (Loshchilov & Hutter): `p ← p·(1 − lr·wd)`, `m ← β1·m + (1 − β1)·g`,
//!   `v ← β2·v + (1 − β2)·g²`, `p ← p − lr·(m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε)`.
//! * SGD with momentum (PyTorch form): `b ← μ·b + (g + wd·p)`, `p ← p − lr·b`.
//!
//! Parameters whose gradient is undefined (a frozen backbone) are skipped entirely.

use tch::{Kind, Tensor};

use super::config::OptimizerKind;

/// Optimiser settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizerSettings {
    pub kind: OptimizerKind,
    pub weight_decay: f64,
    pub momentum: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

/// One parameter and its state.
struct Slot {
    name: String,
    param: Tensor,
    /// AdamW first moment, or the SGD momentum buffer.
    m: Tensor,
    /// AdamW second moment (unused by SGD).
    v: Tensor,
}

/// A first-order optimiser over named parameters.
pub struct Optimizer {
    settings: OptimizerSettings,
    slots: Vec<Slot>,
    /// Steps taken (AdamW bias correction).
    pub step_count: i64,
}

/// The global gradient norm was not finite; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonFiniteGrad;

impl Optimizer {
    /// Optimises `params` (name, variable), normally the VarStore's variables that require
    /// gradients, sorted by name.
    pub fn new(settings: OptimizerSettings, params: Vec<(String, Tensor)>) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, param)| Slot {
                m: param.zeros_like().detach(),
                v: param.zeros_like().detach(),
                name,
                param,
            })
            .collect();
        Self {
            settings,
            slots,
            step_count: 0,
        }
    }

    /// Number of optimised tensors.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Clears every gradient.
    pub fn zero_grad(&mut self) {
        for s in &mut self.slots {
            s.param.zero_grad();
        }
    }

    /// The global L2 norm of the defined gradients, and clips them to `max_norm` when given.
    /// A non-finite norm is returned as an error, with the gradients untouched.
    pub fn clip_grad_norm(&mut self, max_norm: Option<f64>) -> Result<f64, NonFiniteGrad> {
        let grads: Vec<Tensor> = self
            .slots
            .iter()
            .map(|s| s.param.grad())
            .filter(Tensor::defined)
            .collect();
        if grads.is_empty() {
            return Ok(0.0);
        }
        let sq: Vec<Tensor> = grads
            .iter()
            .map(|g| g.to_kind(Kind::Float).square().sum(Kind::Float))
            .collect();
        let norm = Tensor::stack(&sq, 0)
            .sum(Kind::Float)
            .sqrt()
            .double_value(&[]);
        if !norm.is_finite() {
            return Err(NonFiniteGrad);
        }
        if let Some(max) = max_norm {
            if norm > max {
                let scale = max / (norm + 1e-6);
                tch::no_grad(|| {
                    for mut g in grads {
                        g *= scale;
                    }
                });
            }
        }
        Ok(norm)
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        self.step_count += 1;
        let st = self.settings;
        let t = self.step_count as f64;
        tch::no_grad(|| {
            for s in &mut self.slots {
                let g = s.param.grad();
                if !g.defined() {
                    continue;
                }
                match st.kind {
                    OptimizerKind::AdamW => {
                        if st.weight_decay > 0.0 {
                            s.param *= 1.0 - lr * st.weight_decay;
                        }
                        s.m *= st.beta1;
                        s.m += &g * (1.0 - st.beta1);
                        s.v *= st.beta2;
                        s.v += g.square() * (1.0 - st.beta2);
                        let bc1 = 1.0 - st.beta1.powf(t);
                        let bc2 = 1.0 - st.beta2.powf(t);
                        let denom = (&s.v / bc2).sqrt() + st.eps;
                        s.param -= (&s.m / denom) * (lr / bc1);
                    }
                    OptimizerKind::Sgd => {
                        let d = if st.weight_decay > 0.0 {
                            &g + &s.param * st.weight_decay
                        } else {
                            g
                        };
                        s.m *= st.momentum;
                        s.m += d;
                        s.param -= &s.m * lr;
                    }
                }
            }
        });
    }

    /// The state tensors, named `opt.m.<param>` and `opt.v.<param>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(self.slots.len() * 2);
        for s in &self.slots {
            out.push((format!("opt.m.{}", s.name), s.m.shallow_clone()));
            if self.settings.kind == OptimizerKind::AdamW {
                out.push((format!("opt.v.{}", s.name), s.v.shallow_clone()));
            }
        }
        out
    }

    /// Restores state saved by [`Optimizer::state`]; `get` looks a tensor up by name.
    /// Returns the names of parameters whose state was missing (left at zero).
    pub fn load_state(
        &mut self,
        get: impl Fn(&str) -> Option<Tensor>,
        step_count: i64,
    ) -> Vec<String> {
        let mut missing = Vec::new();
        self.step_count = step_count;
        tch::no_grad(|| {
            for s in &mut self.slots {
                let adam = self.settings.kind == OptimizerKind::AdamW;
                for (prefix, adam_only) in [("opt.m.", false), ("opt.v.", true)] {
                    if adam_only && !adam {
                        continue;
                    }
                    let key = format!("{prefix}{}", s.name);
                    let dst = if adam_only { &mut s.v } else { &mut s.m };
                    match get(&key) {
                        Some(t) if t.size() == dst.size() => {
                            dst.copy_(&t);
                        }
                        _ => missing.push(key),
                    }
                }
            }
        });
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(kind: OptimizerKind) -> OptimizerSettings {
        OptimizerSettings {
            kind,
            weight_decay: 0.0,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    #[test]
    fn adamw_first_step_moves_by_lr_and_sgd_by_lr_times_grad() {
        for (kind, want) in [
            (OptimizerKind::AdamW, 1.0 - 0.1),
            (OptimizerKind::Sgd, 1.0 - 0.1 * 3.0),
        ] {
            let p = Tensor::from_slice(&[1f32]).set_requires_grad(true);
            let mut opt = Optimizer::new(settings(kind), vec![("p".into(), p.shallow_clone())]);
            opt.zero_grad();
            (&p * 3.0).sum(Kind::Float).backward();
            assert!((opt.clip_grad_norm(None).unwrap() - 3.0).abs() < 1e-6);
            opt.step(0.1);
            assert!((p.double_value(&[0]) - want).abs() < 1e-5, "{kind:?}");
            // Clipping scales the gradient to the maximum norm.
            opt.zero_grad();
            (&p * 30.0).sum(Kind::Float).backward();
            assert!((opt.clip_grad_norm(Some(1.0)).unwrap() - 30.0).abs() < 1e-4);
            assert!((p.grad().double_value(&[0]) - 1.0).abs() < 1e-4);
            let state = opt.state();
            let mut again = Optimizer::new(settings(kind), vec![("p".into(), p.shallow_clone())]);
            let missing = again.load_state(
                |k| state.iter().find(|(n, _)| n == k).map(|(_, t)| t.copy()),
                opt.step_count,
            );
            assert!(missing.is_empty());
        }
    }
}
