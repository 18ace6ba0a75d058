//! The box and class heads on channels-last maps.

use tch::Tensor;

use super::engine::Result;
use super::map::{BufferPool, FeatureMap};
use super::separable::Separable;
use crate::detector::model::heads::Head;
use crate::detector::model::ModelError;
use crate::detector::precision::Precision;

/// A box or class head with every level's BatchNorms folded into its own conv copies.
#[derive(Debug)]
pub struct HeadPlan {
    levels: Vec<Vec<Separable>>,
    header: Separable,
    per_anchor: usize,
}

impl HeadPlan {
    pub fn new(head: &Head, precision: Precision) -> Result<Self> {
        let folded = head.folded.as_ref().ok_or(ModelError::NotFolded)?;
        let levels = folded
            .iter()
            .map(|convs| {
                convs
                    .iter()
                    .map(|c| {
                        let mut s = Separable::new(c, precision)?;
                        s.act = Some(head.activation);
                        Ok(s)
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            levels,
            header: Separable::new(&head.header, precision)?,
            per_anchor: head.per_anchor as usize,
        })
    }

    /// `[B, Σ H·W·A, per_anchor]`, levels concatenated P3 first.
    pub fn run(
        &self,
        pool: &BufferPool,
        features: &[FeatureMap],
        threads: usize,
    ) -> Result<Tensor> {
        let mut outs = Vec::with_capacity(features.len());
        for (feature, convs) in features.iter().zip(&self.levels) {
            let mut current: Option<FeatureMap> = None;
            for conv in convs {
                let next = conv.run(pool, current.as_ref().unwrap_or(feature), threads)?;
                if let Some(old) = current.replace(next) {
                    pool.give(old);
                }
            }
            let out = self
                .header
                .run(pool, current.as_ref().unwrap_or(feature), threads)?;
            if let Some(old) = current {
                pool.give(old);
            }
            outs.push(out);
        }
        let batch = features[0].batch;
        let per_image: usize = outs.iter().map(FeatureMap::image_len).sum();
        let mut data = Vec::with_capacity(batch * per_image);
        for b in 0..batch {
            for o in &outs {
                data.extend_from_slice(&o.values()[b * o.image_len()..(b + 1) * o.image_len()]);
            }
        }
        for o in outs {
            pool.give(o);
        }
        Ok(Tensor::from_slice(&data).view([batch as i64, -1, self.per_anchor as i64]))
    }
}
