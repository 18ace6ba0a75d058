//! BiFPN layers on channels-last maps; see [`crate::detector::model::bifpn`] for the
//! structure.

use super::engine::{folded, Result};
use super::map::{BufferPool, FeatureMap};
use super::params;
use super::pointwise::Pointwise;
use super::resample::{fuse, max_pool_same, upsample_nearest};
use super::separable::Separable;
use crate::detector::model::bifpn::{BiFpnLayer, FUSION_EPS};
use crate::detector::model::same_pad::SameMaxPool2d;
use crate::detector::model::{Activation, Fusion};
use crate::detector::precision::Precision;

/// A BiFPN fusion node.
#[derive(Debug)]
struct Node {
    conv: Separable,
    /// Normalised fusion weights `relu(p) / (Σ relu(p) + ε)`; `None` for a plain sum.
    weights: Option<Vec<f32>>,
}

/// The first BiFPN layer's projections of C3, C4, C5.
#[derive(Debug)]
struct FirstInputs {
    down: [Pointwise; 3],
    p5_to_p6: Pointwise,
    down2: [Pointwise; 2],
}

#[derive(Debug)]
pub struct FpnLayer {
    first: Option<FirstInputs>,
    up: Vec<Node>,
    down: Vec<Node>,
    act: Activation,
    levels: usize,
}

impl FpnLayer {
    pub fn new(layer: &BiFpnLayer, precision: Precision) -> Result<Self> {
        let node = |n: &crate::detector::model::bifpn::Node| -> Result<Node> {
            let weights = match (layer.fusion, &n.weights) {
                (Fusion::FastAttention, Some(p)) => {
                    let w = tch::no_grad(|| {
                        let w = p.detach().relu();
                        &w / (w.sum(None) + FUSION_EPS)
                    });
                    Some(params::values(&w)?)
                }
                _ => None,
            };
            Ok(Node {
                conv: Separable::new(&n.conv, precision)?,
                weights,
            })
        };
        let projection = |cb: &crate::detector::model::layers::ConvBn| -> Result<Pointwise> {
            folded(&cb.bn)?;
            Ok(Pointwise::from_conv(&cb.conv, precision)?)
        };
        let first = match &layer.first {
            Some(f) => Some(FirstInputs {
                down: [
                    projection(&f.down_channel[0])?,
                    projection(&f.down_channel[1])?,
                    projection(&f.down_channel[2])?,
                ],
                p5_to_p6: projection(&f.p5_to_p6)?,
                down2: [
                    projection(&f.down_channel_2[0])?,
                    projection(&f.down_channel_2[1])?,
                ],
            }),
            None => None,
        };
        Ok(Self {
            first,
            up: layer.up.iter().map(node).collect::<Result<_>>()?,
            down: layer.down.iter().map(node).collect::<Result<_>>()?,
            act: layer.activation,
            levels: layer.num_levels,
        })
    }

    /// C3, C4, C5 (first layer) or P3..Pn → P3..Pn, as [`BiFpnLayer::forward_t`].
    pub fn run(
        &self,
        pool: &BufferPool,
        inputs: &[FeatureMap],
        threads: usize,
    ) -> Result<Vec<FeatureMap>> {
        let n = self.levels;
        let pw = |p: &Pointwise, x: &FeatureMap| p.run(pool, x, None, None, None, threads);
        let mut projected = Vec::new();
        let mut second = Vec::new();
        if let Some(first) = &self.first {
            let (c3, c4, c5) = (&inputs[0], &inputs[1], &inputs[2]);
            projected = vec![
                pw(&first.down[0], c3)?,
                pw(&first.down[1], c4)?,
                pw(&first.down[2], c5)?,
            ];
            let p6 = pw(&first.p5_to_p6, c5)?;
            let mut top = max_pool_same(pool, &p6, SameMaxPool2d::DOWN2);
            pool.give(p6);
            while projected.len() < n - 1 {
                let next = max_pool_same(pool, &top, SameMaxPool2d::DOWN2);
                projected.push(top);
                top = next;
            }
            projected.push(top);
            second = vec![pw(&first.down2[0], c4)?, pw(&first.down2[1], c5)?];
        }
        let lateral: &[FeatureMap] = if self.first.is_some() {
            &projected
        } else {
            inputs
        };

        // Top-down.
        let mut up: Vec<Option<FeatureMap>> = (0..n - 1).map(|_| None).collect();
        for i in (0..n - 1).rev() {
            let above = match up.get(i + 1).and_then(Option::as_ref) {
                Some(u) => u,
                None => &lateral[n - 1],
            };
            let target = lateral[i].size();
            let node = &self.up[i];
            let fused = if above.size() == target {
                fuse(
                    pool,
                    &[&lateral[i], above],
                    node.weights.as_deref(),
                    self.act,
                )
            } else {
                let resized = upsample_nearest(pool, above, target);
                let fused = fuse(
                    pool,
                    &[&lateral[i], &resized],
                    node.weights.as_deref(),
                    self.act,
                );
                pool.give(resized);
                fused
            };
            up[i] = Some(node.conv.run(pool, &fused, threads)?);
            pool.give(fused);
        }
        let mut up: Vec<FeatureMap> = up.into_iter().map(|u| u.expect("filled")).collect();

        // Bottom-up.
        let mut outputs = vec![up.remove(0)];
        for i in 1..n {
            let target = lateral[i].size();
            let prev = &outputs[i - 1];
            let pool_op = SameMaxPool2d::to_size(
                (prev.height as i64, prev.width as i64),
                (target.0 as i64, target.1 as i64),
            );
            let below = max_pool_same(pool, prev, pool_op);
            let lat = match i {
                1 | 2 if !second.is_empty() => &second[i - 1],
                _ => &lateral[i],
            };
            let node = &self.down[i - 1];
            let fused = if i < n - 1 {
                fuse(
                    pool,
                    &[lat, &up[i - 1], &below],
                    node.weights.as_deref(),
                    self.act,
                )
            } else {
                fuse(pool, &[lat, &below], node.weights.as_deref(), self.act)
            };
            pool.give(below);
            outputs.push(node.conv.run(pool, &fused, threads)?);
            pool.give(fused);
        }
        for m in up.into_iter().chain(projected).chain(second) {
            pool.give(m);
        }
        Ok(outputs)
    }
}
