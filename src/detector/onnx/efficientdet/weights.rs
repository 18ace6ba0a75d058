//! The model file's weights as the graph needs them: read by name with the shape the
//! network expects, and with each eval-mode BatchNorm folded into the convolution before it.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use super::GraphError;
use crate::detector::checkpoint::{CheckpointTensor, ModelFile};

/// ε of every BatchNorm (`detector::model::norm::BN_EPS`).
const BN_EPS: f64 = 1e-3;

/// A convolution's parameters: `[out, in / groups, k, k]` weights and `[out]` biases.
pub(super) struct ConvParams {
    pub(super) weight: Vec<f32>,
    pub(super) bias: Vec<f32>,
    pub(super) out: usize,
    pub(super) in_per_group: usize,
    pub(super) kernel: usize,
}

/// The model file's tensors by name, read with the shapes the network expects.
pub(super) struct Weights<'a> {
    by_name: HashMap<&'a str, &'a CheckpointTensor>,
    /// The names read so far.
    used: RefCell<HashSet<&'a str>>,
}

impl<'a> Weights<'a> {
    pub(super) fn new(file: &'a ModelFile) -> Self {
        Self {
            by_name: file.tensors.iter().map(|t| (t.name.as_str(), t)).collect(),
            used: RefCell::new(HashSet::new()),
        }
    }

    /// Refuses a file with tensors the graph did not read (another architecture's weights
    /// under this one's name, a stray tensor); BatchNorm step counters do not count.
    pub(super) fn check_all_used(&self) -> Result<(), GraphError> {
        let used = self.used.borrow();
        let mut unused: Vec<&str> = self
            .by_name
            .keys()
            .filter(|n| !used.contains(*n) && !n.ends_with("num_batches_tracked"))
            .copied()
            .collect();
        if unused.is_empty() {
            return Ok(());
        }
        unused.sort_unstable();
        Err(GraphError::Unused {
            count: unused.len(),
            first: unused
                .iter()
                .take(3)
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Counts `name` as the network's though the graph does not read it.
    pub(super) fn known(&self, name: &str) {
        if let Some((&key, _)) = self.by_name.get_key_value(name) {
            self.used.borrow_mut().insert(key);
        }
    }

    pub(super) fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, GraphError> {
        let (&key, &t) = self
            .by_name
            .get_key_value(name)
            .ok_or_else(|| GraphError::Missing(name.to_string()))?;
        self.used.borrow_mut().insert(key);
        if t.shape != shape {
            return Err(GraphError::Shape {
                name: name.to_string(),
                got: t.shape.clone(),
                want: shape.to_vec(),
            });
        }
        if !t.dtype.is_float() {
            return Err(GraphError::NotFloat(name.to_string()));
        }
        Ok(t.to_f32())
    }

    /// `{prefix}.weight` `[out, in_per_group, k, k]` and, with `bias`, `{prefix}.bias`.
    pub(super) fn conv(
        &self,
        prefix: &str,
        out: usize,
        in_per_group: usize,
        kernel: usize,
        bias: bool,
    ) -> Result<ConvParams, GraphError> {
        let weight = self.get(
            &format!("{prefix}.weight"),
            &[out, in_per_group, kernel, kernel],
        )?;
        let bias = if bias {
            self.get(&format!("{prefix}.bias"), &[out])?
        } else {
            vec![0.0; out]
        };
        Ok(ConvParams {
            weight,
            bias,
            out,
            in_per_group,
            kernel,
        })
    }

    /// Folds the eval-mode BatchNorm at `bn` (which follows `conv`) into `conv`:
    /// `w′ = w·γ/√(σ²+ε)`, `b′ = (b − μ)·γ/√(σ²+ε) + β`, computed in f64.
    pub(super) fn fold(&self, conv: &mut ConvParams, bn: &str) -> Result<(), GraphError> {
        let n = [conv.out];
        let gamma = self.get(&format!("{bn}.weight"), &n)?;
        let beta = self.get(&format!("{bn}.bias"), &n)?;
        let mean = self.get(&format!("{bn}.running_mean"), &n)?;
        let var = self.get(&format!("{bn}.running_var"), &n)?;
        let per_out = conv.in_per_group * conv.kernel * conv.kernel;
        for o in 0..conv.out {
            let scale = f64::from(gamma[o]) / (f64::from(var[o]) + BN_EPS).sqrt();
            for w in &mut conv.weight[o * per_out..(o + 1) * per_out] {
                *w = (f64::from(*w) * scale) as f32;
            }
            let b = (f64::from(conv.bias[o]) - f64::from(mean[o])) * scale + f64::from(beta[o]);
            conv.bias[o] = b as f32;
        }
        Ok(())
    }
}
