//! MBConv blocks of the backbone: expansion, depthwise convolution, squeeze-excitation
//! and projection.

use super::depthwise::{means_from_sums, Depthwise};
use super::engine::{folded, Result};
use super::map::{BufferPool, FeatureMap};
use super::parallel::for_row_blocks;
use super::pointwise::Pointwise;
use super::simd::activate_in_place;
use crate::detector::model::backbone::MbConvBlock;
use crate::detector::model::{Activation, ModelError};
use crate::detector::precision::Precision;

/// Squeeze-excitation gates from channel means: two 1×1 convs on a single pixel.
#[derive(Debug)]
struct Excitation {
    reduce: Pointwise,
    expand: Pointwise,
    act: Activation,
}

impl Excitation {
    /// `σ(expand(act(reduce(means))))` per image: `[batch × C]`.
    fn gates(&self, means: &[f32]) -> Vec<f32> {
        let c = self.expand.out_channels;
        means
            .chunks_exact(c)
            .flat_map(|m| {
                let mut hidden = self.reduce.dense(m);
                activate_in_place(self.act, &mut hidden);
                let mut gates = self.expand.dense(&hidden);
                gates
                    .iter_mut()
                    .for_each(|g| *g = 1.0 / (1.0 + (-*g).exp()));
                gates
            })
            .collect()
    }
}

/// One MBConv block.
#[derive(Debug)]
pub struct Block {
    expand: Option<Pointwise>,
    depthwise: Depthwise,
    excitation: Option<Excitation>,
    project: Pointwise,
    residual: bool,
    act: Activation,
}

impl Block {
    /// `b`, with its expansion and projection products in `precision`.
    pub fn new(b: &MbConvBlock, precision: Precision) -> Result<Self> {
        let expand = match &b.expand {
            Some((conv, bn)) => {
                folded(bn)?;
                Some(Pointwise::from_conv(conv, precision)?)
            }
            None => None,
        };
        if !b.is_folded() {
            return Err(ModelError::NotFolded);
        }
        let excitation = match &b.se {
            Some(se) => Some(Excitation {
                // Single-pixel products, in float32 whatever the precision.
                reduce: Pointwise::from_conv(&se.reduce, Precision::Fp32)?,
                expand: Pointwise::from_conv(&se.expand, Precision::Fp32)?,
                act: b.activation,
            }),
            None => None,
        };
        Ok(Self {
            expand,
            depthwise: Depthwise::from_conv(&b.depthwise)?,
            excitation,
            project: Pointwise::from_conv(&b.project, precision)?,
            residual: b.residual,
            act: b.activation,
        })
    }

    pub fn run(&self, pool: &BufferPool, x: &FeatureMap, threads: usize) -> Result<FeatureMap> {
        let se = self.excitation.is_some();
        let act = Some(self.act);
        let (dw, means) = match &self.expand {
            // Without squeeze-excitation nothing waits for the whole depthwise map: its
            // rows are projected as they come, and it is never written out either.
            Some(expand) if x.height > FUSE_MIN_ROWS * threads && !se => {
                return Ok(self
                    .expand_depthwise(pool, x, expand, Some(&self.project), threads)?
                    .0);
            }
            Some(expand) if x.height > FUSE_MIN_ROWS * threads => {
                self.expand_depthwise(pool, x, expand, None, threads)?
            }
            Some(expand) => {
                let hidden = expand.run(pool, x, act, None, None, threads)?;
                let result = self.depthwise.run(pool, &hidden, act, se, threads);
                pool.give(hidden);
                result
            }
            None => self.depthwise.run(pool, x, act, se, threads),
        };
        let gates = match (&self.excitation, means) {
            (Some(se), Some(m)) => Some(se.gates(&m)),
            _ => None,
        };
        let residual = self.residual.then_some(x);
        let out = self
            .project
            .run(pool, &dw, None, residual, gates.as_deref(), threads)?;
        pool.give(dw);
        Ok(out)
    }

    /// Expansion and depthwise convolution fused: the expanded map (the largest of the
    /// block, up to 6× its input) is never written out. Its rows are computed just in
    /// time, a few at a time, into a ring of rows that stays in cache, and the depthwise
    /// kernel reads them from there. With `project` (a block without squeeze-excitation),
    /// the depthwise rows are projected (with the residual) a few at a time as well, and
    /// the block's output is returned. Otherwise returns the depthwise output and, with
    /// squeeze-excitation, its channel means.
    fn expand_depthwise(
        &self,
        pool: &BufferPool,
        x: &FeatureMap,
        expand: &Pointwise,
        project: Option<&Pointwise>,
        threads: usize,
    ) -> Result<(FeatureMap, Option<Vec<f32>>)> {
        let (h, w, c_in) = (x.height, x.width, x.channels);
        let hidden = expand.out_channels;
        // Rows per matrix product, and a ring that holds every row an output row reads
        // plus one product's worth, in whole products.
        let (pixels, bf16) = expand.ring_rows();
        let step = (pixels / w).clamp(1, h);
        let ring = (self.depthwise.kernel() + step - 1).div_ceil(step) * step;
        let g = self.depthwise.geometry(h, w, ring);
        // Depthwise rows per projection: as many pixels as an expansion product.
        let (dw_step, out_c) = match project {
            Some(p) => ((pixels / g.out_w).clamp(1, g.out_h), p.out_channels),
            None => (1, hidden),
        };
        let project_bf16 = project.is_some_and(|p| p.bf16_for_rows(dw_step * g.out_w));
        let mut out = pool.map(x.batch, g.out_h, g.out_w, out_c);
        let se = self.excitation.is_some();
        let mut means = se.then(|| vec![0.0f32; x.batch * hidden]);
        let (out_row, dw_row) = (g.out_w * out_c, g.out_w * hidden);
        for b in 0..x.batch {
            let image = &x.values()[b * x.image_len()..(b + 1) * x.image_len()];
            let out_image =
                &mut out.values_mut()[b * g.out_h * out_row..(b + 1) * g.out_h * out_row];
            // Each thread takes a band of output rows, with a ring of its own.
            let bands = for_row_blocks(threads, out_image, out_row, |first_row, band| {
                let mut rows = pool.map(1, ring, w, hidden);
                let mut dw = project.map(|_| pool.map(1, dw_step, g.out_w, hidden));
                let mut sums = vec![0.0f64; if se { hidden } else { 0 }];
                let first_needed = self.depthwise.input_rows(&g, first_row).start;
                let mut next = first_needed / step * step;
                for (i, dst) in band.chunks_mut(dw_step * out_row).enumerate() {
                    let oy0 = first_row + i * dw_step;
                    let count = dst.len() / out_row;
                    let dw_rows = match &mut dw {
                        Some(dw) => &mut dw.values_mut()[..count * dw_row],
                        None => &mut *dst,
                    };
                    for (r, dw_dst) in dw_rows.chunks_exact_mut(dw_row).enumerate() {
                        let needed = self.depthwise.input_rows(&g, oy0 + r);
                        while next < needed.end {
                            // `next` is a multiple of `step`, and so is `ring`: no wrap-around.
                            let n = step.min(h - next);
                            let slot = next % ring;
                            expand.rows_into(
                                &image[next * w * c_in..(next + n) * w * c_in],
                                &mut rows.values_mut()[slot * w * hidden..(slot + n) * w * hidden],
                                Some(self.act),
                                None,
                                bf16,
                            )?;
                            next += n;
                        }
                        self.depthwise.rows_into(
                            rows.values(),
                            g,
                            oy0 + r,
                            dw_dst,
                            Some(self.act),
                            &mut sums,
                        );
                    }
                    if let (Some(p), Some(dw)) = (project, &dw) {
                        // A residual block keeps its size: output row `oy` adds input row `oy`.
                        let residual = self
                            .residual
                            .then(|| &image[oy0 * w * c_in..(oy0 + count) * w * c_in]);
                        p.rows_into(
                            &dw.values()[..count * dw_row],
                            dst,
                            None,
                            residual,
                            project_bf16,
                        )?;
                    }
                }
                pool.give(rows);
                if let Some(dw) = dw {
                    pool.give(dw);
                }
                Ok::<_, ModelError>(sums)
            });
            let sums = bands.into_iter().collect::<Result<Vec<_>>>()?;
            if let Some(means) = &mut means {
                let pixels = g.out_h * g.out_w;
                means_from_sums(sums, pixels, &mut means[b * hidden..(b + 1) * hidden]);
            }
        }
        Ok((out, means))
    }
}

/// Maps with at most this many rows are expanded whole (the ring would be most of them).
const FUSE_MIN_ROWS: usize = 16;
