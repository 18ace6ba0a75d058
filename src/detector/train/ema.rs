//! An exponential moving average of the model's weights (Polyak averaging), as in the
//! official recipe (decay 0.9998). The effective decay warms up as
//! `min(decay, (1 + n) / (10 + n))` after `n` updates, so early averages are not dominated
//! by the random initialisation. Integer buffers (batch counters) are not averaged: the
//! live ones serve both weight sets.
//!
//! The averages of all floating-point variables live in one flat buffer, so an update is
//! three kernels whatever the number of variables.

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::flat::{concat, FlatLayout};

/// Shadow copies of every floating-point VarStore variable.
pub struct Ema {
    decay: f64,
    names: Vec<String>,
    vars: Vec<Tensor>,
    /// Where each variable lives in `shadow`.
    layout: FlatLayout,
    /// The averages, concatenated.
    shadow: Tensor,
    /// Updates applied.
    pub updates: i64,
}

impl Ema {
    /// Starts the average at the current weights of `vs`.
    pub fn new(vs: &VarStore, decay: f64) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, v)| v.is_floating_point())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, vars): (Vec<String>, Vec<Tensor>) = vars.into_iter().unzip();
        let layout = FlatLayout::of(&vars);
        let mut ema = Self {
            decay,
            names,
            vars,
            layout,
            shadow: Tensor::zeros([0], (Kind::Float, vs.device())),
            updates: 0,
        };
        ema.shadow = ema.live();
        ema
    }

    /// The current weights, concatenated (a copy).
    fn live(&self) -> Tensor {
        if self.vars.is_empty() {
            return self.shadow.copy();
        }
        concat(self.vars.iter().map(|v| v.detach().to_kind(Kind::Float)))
    }

    /// Variable `i`'s average, shaped like the variable (a view into the flat buffer).
    fn average(&self, i: usize) -> Tensor {
        self.layout.view(&self.shadow, i, &self.vars[i])
    }

    /// Folds the current weights into the average.
    pub fn update(&mut self) {
        let n = self.updates as f64;
        let d = self.decay.min((1.0 + n) / (10.0 + n));
        self.updates += 1;
        tch::no_grad(|| {
            let live = self.live();
            self.shadow *= d;
            self.shadow += live * (1.0 - d);
        });
    }

    /// Exchanges the live weights and the averages (call twice to undo).
    pub fn swap(&mut self) {
        tch::no_grad(|| {
            let live = self.live();
            for i in 0..self.vars.len() {
                let avg = self.average(i);
                self.vars[i].copy_(&avg);
            }
            self.shadow.copy_(&live);
        });
    }

    /// The averages, named `ema.<variable>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("ema.{n}"), self.average(i)))
            .collect()
    }

    /// Restores averages saved by [`Ema::state`]; missing ones keep the live weights.
    pub fn load_state(&mut self, get: impl Fn(&str) -> Option<Tensor>, updates: i64) {
        self.updates = updates;
        tch::no_grad(|| {
            for i in 0..self.vars.len() {
                let mut avg = self.average(i);
                if let Some(t) = get(&format!("ema.{}", self.names[i])) {
                    if t.size() == avg.size() {
                        avg.copy_(&t);
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap()
    }

    #[test]
    fn averages_follow_the_warmed_up_decay_and_swap_is_an_exchange() {
        let vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let a = root.var("a", &[2, 2], tch::nn::Init::Const(1.0));
        let b = root.var("b", &[3], tch::nn::Init::Const(-2.0));
        let _counter = root.add(
            "counter",
            Tensor::zeros([], (Kind::Int64, Device::Cpu)),
            false,
        );
        let mut ema = Ema::new(&vs, 0.9);
        let (mut avg_a, mut avg_b) = (1.0, -2.0);
        for step in 0..4 {
            tch::no_grad(|| {
                let _ = a.shallow_clone().fill_(10.0 * (step + 1) as f64);
                let _ = b.shallow_clone().fill_(step as f64);
            });
            let d = 0.9f64.min((1.0 + step as f64) / (10.0 + step as f64));
            avg_a = d * avg_a + (1.0 - d) * 10.0 * (step + 1) as f64;
            avg_b = d * avg_b + (1.0 - d) * step as f64;
            ema.update();
        }
        let state = ema.state();
        assert_eq!(state.len(), 2, "only floating-point variables are averaged");
        for (n, t) in &state {
            let want = if n == "ema.a" { avg_a } else { avg_b };
            assert!(values(t).iter().all(|x| (x - want).abs() < 1e-4), "{n}");
        }
        ema.swap();
        assert!(values(&a).iter().all(|x| (x - avg_a).abs() < 1e-4));
        ema.swap();
        assert_eq!(values(&a), vec![40.0; 4]);
        assert_eq!(values(&b), vec![3.0; 3]);
        // A restored state gives the same averages.
        let mut again = Ema::new(&vs, 0.9);
        again.load_state(
            |k| state.iter().find(|(n, _)| n == k).map(|(_, t)| t.copy()),
            4,
        );
        for ((n, x), (_, y)) in again.state().iter().zip(&state) {
            assert_eq!(values(x), values(y), "{n}");
        }
    }
}
