//! An exponential moving average of the model's weights (Polyak averaging), as in the
//! official recipe (decay 0.9998). The effective decay warms up as
//! `min(decay, (1 + n) / (10 + n))` after `n` updates, so early averages are not dominated
//! by the random initialisation. Integer buffers (batch counters) are copied.

use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// Shadow copies of every VarStore variable.
pub struct Ema {
    decay: f64,
    pairs: Vec<(String, Tensor, Tensor)>,
    /// Updates applied.
    pub updates: i64,
}

impl Ema {
    /// Starts the average at the current weights of `vs`.
    pub fn new(vs: &VarStore, decay: f64) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let pairs = vars
            .into_iter()
            .map(|(n, v)| {
                let shadow = v.detach().copy();
                (n, v, shadow)
            })
            .collect();
        Self {
            decay,
            pairs,
            updates: 0,
        }
    }

    /// Folds the current weights into the average.
    pub fn update(&mut self) {
        let n = self.updates as f64;
        let d = self.decay.min((1.0 + n) / (10.0 + n));
        self.updates += 1;
        tch::no_grad(|| {
            for (_, var, shadow) in &mut self.pairs {
                if matches!(
                    var.kind(),
                    Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
                ) {
                    *shadow *= d;
                    *shadow += var.detach() * (1.0 - d);
                } else {
                    shadow.copy_(var);
                }
            }
        });
    }

    /// Exchanges the live weights and the averages (call twice to undo).
    pub fn swap(&mut self) {
        tch::no_grad(|| {
            for (_, var, shadow) in &mut self.pairs {
                let live = var.detach().copy();
                var.copy_(shadow);
                shadow.copy_(&live);
            }
        });
    }

    /// The averages, named `ema.<variable>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.pairs
            .iter()
            .map(|(n, _, s)| (format!("ema.{n}"), s.shallow_clone()))
            .collect()
    }

    /// Restores averages saved by [`Ema::state`]; missing ones keep the live weights.
    pub fn load_state(&mut self, get: impl Fn(&str) -> Option<Tensor>, updates: i64) {
        self.updates = updates;
        tch::no_grad(|| {
            for (n, _, shadow) in &mut self.pairs {
                if let Some(t) = get(&format!("ema.{n}")) {
                    if t.size() == shadow.size() {
                        shadow.copy_(&t);
                    }
                }
            }
        });
    }
}
