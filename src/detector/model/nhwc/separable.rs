//! Separable convolutions of the BiFPN and the heads.

use super::depthwise::Depthwise;
use super::engine::{folded, Result};
use super::map::{BufferPool, FeatureMap};
use super::pointwise::Pointwise;
use crate::detector::model::layers::SeparableConvBlock;
use crate::detector::model::Activation;
use crate::detector::precision::Precision;

/// Depthwise 3×3 → pointwise (BN folded) → optional activation.
#[derive(Debug)]
pub struct Separable {
    depthwise: Depthwise,
    pointwise: Pointwise,
    pub act: Option<Activation>,
}

impl Separable {
    pub fn new(b: &SeparableConvBlock, precision: Precision) -> Result<Self> {
        if let Some(bn) = &b.bn {
            folded(bn)?;
        }
        Ok(Self {
            depthwise: Depthwise::from_conv(&b.depthwise)?,
            pointwise: Pointwise::from_conv(&b.pointwise, precision)?,
            act: b.activation,
        })
    }

    pub fn run(&self, pool: &BufferPool, x: &FeatureMap, threads: usize) -> Result<FeatureMap> {
        let (d, _) = self.depthwise.run(pool, x, None, false, threads);
        let out = self
            .pointwise
            .run(pool, &d, self.act, None, None, threads)?;
        pool.give(d);
        Ok(out)
    }
}
