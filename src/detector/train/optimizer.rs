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
use super::flat::{concat, FlatLayout};

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

/// A first-order optimiser over named parameters.
///
/// The moments of all parameters live in two flat buffers, and an update works on the
/// concatenated gradients of each contiguous run of trainable parameters: a handful of
/// kernels per run plus one subtraction per parameter, instead of a dozen kernels per
/// parameter (on a GPU the per-kernel launch cost, not the arithmetic, bounds a step of
/// these small networks).
pub struct Optimizer {
    settings: OptimizerSettings,
    names: Vec<String>,
    params: Vec<Tensor>,
    /// Where each parameter lives in the flat buffers.
    layout: FlatLayout,
    /// AdamW first moments, or the SGD momentum buffers, concatenated.
    m: Tensor,
    /// AdamW second moments, concatenated (unused by SGD).
    v: Tensor,
    /// Factor the next step applies to the gradients (clipping and loss-scale removal
    /// from [`Optimizer::clip_grad_norm`]).
    grad_factor: f64,
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
        let options = params
            .first()
            .map_or((Kind::Float, tch::Device::Cpu), |(_, p)| {
                (p.kind(), p.device())
            });
        let (names, params): (Vec<String>, Vec<Tensor>) = params.into_iter().unzip();
        let layout = FlatLayout::of(&params);
        let total = layout.total;
        Self {
            settings,
            names,
            params,
            layout,
            m: Tensor::zeros([total], options),
            v: Tensor::zeros(
                [if settings.kind == OptimizerKind::AdamW {
                    total
                } else {
                    0
                }],
                options,
            ),
            grad_factor: 1.0,
            step_count: 0,
        }
    }

    /// Number of optimised tensors.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Clears every gradient.
    pub fn zero_grad(&mut self) {
        self.grad_factor = 1.0;
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// The runs `[first, last]` of consecutive parameters that have a gradient.
    fn runs_with_grad(&self) -> Vec<(usize, usize)> {
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (i, p) in self.params.iter().enumerate() {
            if !p.grad().defined() {
                continue;
            }
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == i => *last = i,
                _ => runs.push((i, i)),
            }
        }
        runs
    }

    /// The flat buffer range `(offset, length)` of a run of parameters.
    fn span(&self, (first, last): (usize, usize)) -> (i64, i64) {
        let start = self.layout.offset(first);
        let end = self.layout.offset(last) + self.params[last].numel() as i64;
        (start, end - start)
    }

    /// The gradients (or, with `values`, the parameters) of a run, concatenated.
    fn flat(&self, (first, last): (usize, usize), values: bool) -> Tensor {
        concat(
            self.params[first..=last]
                .iter()
                .map(|p| if values { p.detach() } else { p.grad() }),
        )
    }

    /// The global L2 norm of the defined gradients; the next [`Optimizer::step`] clips them
    /// to `max_norm` when given. `grad_scale` is the loss scale of mixed precision
    /// ([`super::grad_scaler`]; 1 without it): the gradients are that many times the true
    /// ones, the step divides them by it in the same pass, and the norm returned is the
    /// true one. A non-finite norm is returned as an error.
    pub fn clip_grad_norm(
        &mut self,
        max_norm: Option<f64>,
        grad_scale: f64,
    ) -> Result<f64, NonFiniteGrad> {
        let runs = self.runs_with_grad();
        if runs.is_empty() {
            return Ok(0.0);
        }
        let sq: Vec<Tensor> = runs
            .iter()
            .map(|&r| self.flat(r, false).square().sum(Kind::Float))
            .collect();
        let norm = Tensor::stack(&sq, 0)
            .sum(Kind::Float)
            .sqrt()
            .double_value(&[])
            / grad_scale;
        if !norm.is_finite() {
            return Err(NonFiniteGrad);
        }
        let clip = match max_norm {
            Some(max) if norm > max => max / (norm + 1e-6),
            _ => 1.0,
        };
        self.grad_factor = clip / grad_scale;
        Ok(norm)
    }

    /// One update with learning rate `lr`. Parameters without a gradient (a frozen
    /// backbone) and their moments are left as they are.
    pub fn step(&mut self, lr: f64) {
        self.step_count += 1;
        let st = self.settings;
        let t = self.step_count as f64;
        tch::no_grad(|| {
            for run in self.runs_with_grad() {
                let (offset, len) = self.span(run);
                let mut g = self.flat(run, false);
                if self.grad_factor != 1.0 {
                    g *= self.grad_factor;
                }
                let mut m = self.m.narrow(0, offset, len);
                let update = match st.kind {
                    OptimizerKind::AdamW => {
                        let mut v = self.v.narrow(0, offset, len);
                        m *= st.beta1;
                        m += &g * (1.0 - st.beta1);
                        v *= st.beta2;
                        v += g.square() * (1.0 - st.beta2);
                        let bc1 = 1.0 - st.beta1.powf(t);
                        let bc2 = 1.0 - st.beta2.powf(t);
                        let denom = (&v / bc2).sqrt() + st.eps;
                        let mut u = (&m / denom) * (lr / bc1);
                        if st.weight_decay > 0.0 {
                            u += self.flat(run, true) * (lr * st.weight_decay);
                        }
                        u
                    }
                    OptimizerKind::Sgd => {
                        let d = if st.weight_decay > 0.0 {
                            g + self.flat(run, true) * st.weight_decay
                        } else {
                            g
                        };
                        m *= st.momentum;
                        m += d;
                        &m * lr
                    }
                };
                for i in run.0..=run.1 {
                    let p = &mut self.params[i];
                    let n = p.numel() as i64;
                    *p -= update
                        .narrow(0, self.layout.offset(i) - offset, n)
                        .view_as(p);
                }
            }
        });
        self.grad_factor = 1.0;
    }

    /// The state tensors, named `opt.m.<param>` and `opt.v.<param>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(self.params.len() * 2);
        for (i, name) in self.names.iter().enumerate() {
            out.push((format!("opt.m.{name}"), self.moment(&self.m, i)));
            if self.settings.kind == OptimizerKind::AdamW {
                out.push((format!("opt.v.{name}"), self.moment(&self.v, i)));
            }
        }
        out
    }

    /// Parameter `i`'s part of a flat moment buffer, shaped like the parameter (a view).
    fn moment(&self, buffer: &Tensor, i: usize) -> Tensor {
        self.layout.view(buffer, i, &self.params[i])
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
        let adam = self.settings.kind == OptimizerKind::AdamW;
        tch::no_grad(|| {
            for i in 0..self.params.len() {
                for (prefix, buffer) in [("opt.m.", &self.m), ("opt.v.", &self.v)] {
                    if prefix == "opt.v." && !adam {
                        continue;
                    }
                    let key = format!("{prefix}{}", self.names[i]);
                    let mut dst = self.moment(buffer, i);
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

    /// Element-wise reference of one step (f64), for a parameter with gradient `g`.
    fn reference_step(
        st: &OptimizerSettings,
        t: f64,
        lr: f64,
        p: &mut [f64],
        g: &[f64],
        m: &mut [f64],
        v: &mut [f64],
    ) {
        for i in 0..p.len() {
            match st.kind {
                OptimizerKind::AdamW => {
                    p[i] *= 1.0 - lr * st.weight_decay;
                    m[i] = st.beta1 * m[i] + (1.0 - st.beta1) * g[i];
                    v[i] = st.beta2 * v[i] + (1.0 - st.beta2) * g[i] * g[i];
                    let mh = m[i] / (1.0 - st.beta1.powf(t));
                    let vh = v[i] / (1.0 - st.beta2.powf(t));
                    p[i] -= lr * mh / (vh.sqrt() + st.eps);
                }
                OptimizerKind::Sgd => {
                    m[i] = st.momentum * m[i] + g[i] + st.weight_decay * p[i];
                    p[i] -= lr * m[i];
                }
            }
        }
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap()
    }

    /// Three parameters, the middle one frozen (no gradient): the flat-buffer update equals
    /// the element-wise formulas, and the frozen parameter and its moments do not move.
    #[test]
    fn flat_update_matches_the_formulas_and_skips_frozen_parameters() {
        for kind in [OptimizerKind::AdamW, OptimizerKind::Sgd] {
            let st = OptimizerSettings {
                weight_decay: 0.05,
                ..settings(kind)
            };
            let shapes: [&[i64]; 3] = [&[2, 3], &[4], &[3, 1, 2]];
            let params: Vec<Tensor> = shapes
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let n: i64 = s.iter().product();
                    (Tensor::arange(n, (Kind::Float, tch::Device::Cpu)) * 0.3 - 0.5 + i as f64)
                        .view(*s)
                        .set_requires_grad(i != 1)
                })
                .collect();
            let named = params
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("p{i}"), p.shallow_clone()))
                .collect();
            let mut opt = Optimizer::new(st, named);
            let mut want: Vec<Vec<f64>> = params.iter().map(values).collect();
            let mut m: Vec<Vec<f64>> = want.iter().map(|p| vec![0.0; p.len()]).collect();
            let mut v = m.clone();
            for step in 1..=3 {
                opt.zero_grad();
                let loss = params[0].square().sum(Kind::Float) * (step as f64)
                    + (&params[2] * 2.0).sin().sum(Kind::Float);
                loss.backward();
                opt.clip_grad_norm(None, 1.0).unwrap();
                let grads: Vec<Option<Vec<f64>>> = params
                    .iter()
                    .map(|p| p.grad().defined().then(|| values(&p.grad())))
                    .collect();
                opt.step(0.1);
                for i in [0, 2] {
                    let g = grads[i].as_ref().unwrap();
                    reference_step(&st, step as f64, 0.1, &mut want[i], g, &mut m[i], &mut v[i]);
                }
            }
            for (i, p) in params.iter().enumerate() {
                for (a, b) in values(p).iter().zip(&want[i]) {
                    assert!((a - b).abs() < 1e-5, "{kind:?} p{i}: {a} vs {b}");
                }
            }
            let state = opt.state();
            let m1 = &state.iter().find(|(n, _)| n == "opt.m.p1").unwrap().1;
            assert_eq!(values(m1), vec![0.0; 4], "{kind:?}: frozen moments moved");
            // The state round-trips by name.
            let mut again = Optimizer::new(
                st,
                params
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (format!("p{i}"), p.shallow_clone()))
                    .collect(),
            );
            let missing = again.load_state(
                |k| state.iter().find(|(n, _)| n == k).map(|(_, t)| t.copy()),
                opt.step_count,
            );
            assert!(missing.is_empty());
            for ((n, a), (_, b)) in again.state().iter().zip(&state) {
                assert_eq!(values(a), values(b), "{n}");
            }
        }
    }

    /// Clipping and loss-scale removal act on the next step: with SGD's first step the
    /// parameter moves by `lr ×` the effective gradient.
    #[test]
    fn clipping_and_loss_scale_shape_the_next_step() {
        let cases = [
            // (gradient scale, clip, raw gradient, true norm, effective gradient)
            (1.0, None, 3.0, 3.0, 3.0),
            (1.0, Some(1.0), 30.0, 30.0, 1.0),
            (512.0, Some(10.0), 3.0 * 512.0, 3.0, 3.0),
            (512.0, Some(1.0), 30.0 * 512.0, 30.0, 1.0),
        ];
        for (scale, clip, raw, norm, effective) in cases {
            let p = Tensor::from_slice(&[1f32]).set_requires_grad(true);
            let mut opt = Optimizer::new(
                settings(OptimizerKind::Sgd),
                vec![("p".into(), p.shallow_clone())],
            );
            opt.zero_grad();
            (&p * raw).sum(Kind::Float).backward();
            let got = opt.clip_grad_norm(clip, scale).unwrap();
            assert!((got - norm).abs() < 1e-3, "{got} vs {norm}");
            opt.step(0.1);
            let moved = 1.0 - p.double_value(&[0]);
            assert!((moved - 0.1 * effective).abs() < 1e-5, "{moved}");
        }
        let p = Tensor::from_slice(&[1f32]).set_requires_grad(true);
        let mut opt = Optimizer::new(
            settings(OptimizerKind::AdamW),
            vec![("p".into(), p.shallow_clone())],
        );
        (&p * f64::INFINITY).sum(Kind::Float).backward();
        assert_eq!(opt.clip_grad_norm(Some(1.0), 1.0), Err(NonFiniteGrad));
    }
}
