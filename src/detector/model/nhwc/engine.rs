//! The network plan: EfficientDet's layers re-expressed with the NHWC kernels.

use tch::{Device, Kind, Tensor};

use super::depthwise::Depthwise;
use super::map::{BufferPool, FeatureMap};
use super::parallel::{for_row_blocks, restore_threads};
use super::pointwise::Pointwise;
use super::resample::{fuse, max_pool_same, upsample_nearest};
use super::simd::activate_in_place;
use super::stem::Stem;
use crate::detector::model::backbone::MbConvBlock;
use crate::detector::model::bifpn::{BiFpnLayer, FUSION_EPS};
use crate::detector::model::heads::Head;
use crate::detector::model::layers::SeparableConvBlock;
use crate::detector::model::norm::BatchNorm2d;
use crate::detector::model::same_pad::{SameConv2d, SameMaxPool2d};
use crate::detector::model::{Activation, EfficientDet, EfficientDetOutput, Fusion, ModelError};

type Result<T> = std::result::Result<T, ModelError>;

/// Fails unless `bn` has been folded into the conv before it.
fn folded(bn: &BatchNorm2d) -> Result<()> {
    if bn.folded {
        Ok(())
    } else {
        Err(ModelError::NotFolded)
    }
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(
        t.detach().to_kind(Kind::Float).flatten(0, -1),
    )?)
}

/// Squeeze-excitation gates from channel means: two small dense layers.
#[derive(Debug)]
struct Excitation {
    /// `[C, S]` and `[S]`.
    reduce: (Vec<f32>, Vec<f32>),
    /// `[S, C]` and `[C]`.
    expand: (Vec<f32>, Vec<f32>),
    act: Activation,
}

impl Excitation {
    /// A 1×1 conv on a `[B, C_in, 1, 1]` map as a dense layer: `[C_in, C_out]` weights
    /// and the bias.
    fn dense(conv: &SameConv2d) -> Result<(Vec<f32>, Vec<f32>)> {
        let s = conv.ws.size();
        let w = conv
            .ws
            .detach()
            .view([s[0], s[1]])
            .transpose(0, 1)
            .contiguous();
        let b = match &conv.bs {
            Some(b) => to_vec(b)?,
            None => vec![0.0; s[0] as usize],
        };
        Ok((to_vec(&w)?, b))
    }

    /// `σ(expand(act(reduce(means))))` per image: `[batch × C]`.
    fn gates(&self, means: &[f32]) -> Vec<f32> {
        let apply = |x: &[f32], (w, b): &(Vec<f32>, Vec<f32>)| -> Vec<f32> {
            let mut y = b.clone();
            for (xi, row) in x.iter().zip(w.chunks_exact(b.len())) {
                for (yj, wj) in y.iter_mut().zip(row) {
                    *yj += xi * wj;
                }
            }
            y
        };
        let c = self.expand.1.len();
        means
            .chunks_exact(c)
            .flat_map(|m| {
                let mut hidden = apply(m, &self.reduce);
                activate_in_place(self.act, &mut hidden);
                let mut gates = apply(&hidden, &self.expand);
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
struct Block {
    expand: Option<Pointwise>,
    depthwise: Depthwise,
    excitation: Option<Excitation>,
    project: Pointwise,
    residual: bool,
    act: Activation,
}

impl Block {
    fn new(b: &MbConvBlock) -> Result<Self> {
        let expand = match &b.expand {
            Some((conv, bn)) => {
                folded(bn)?;
                Some(Pointwise::from_conv(conv)?)
            }
            None => None,
        };
        if !b.is_folded() {
            return Err(ModelError::NotFolded);
        }
        let excitation = match &b.se {
            Some(se) => Some(Excitation {
                reduce: Excitation::dense(&se.reduce)?,
                expand: Excitation::dense(&se.expand)?,
                act: b.activation,
            }),
            None => None,
        };
        Ok(Self {
            expand,
            depthwise: Depthwise::from_conv(&b.depthwise)?,
            excitation,
            project: Pointwise::from_conv(&b.project)?,
            residual: b.residual,
            act: b.activation,
        })
    }

    fn run(&self, pool: &BufferPool, x: &FeatureMap, threads: usize) -> Result<FeatureMap> {
        let se = self.excitation.is_some();
        let act = Some(self.act);
        let (dw, means) = match &self.expand {
            Some(expand) if x.height > FUSE_MIN_ROWS * threads => {
                self.expand_depthwise(pool, x, expand, threads)?
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
}

impl Block {
    /// Expansion and depthwise convolution fused: the expanded map (the largest of the
    /// block, up to 6× its input) is never written out. Its rows are computed just in
    /// time, a few at a time, into a ring of rows that stays in cache, and the depthwise
    /// kernel reads them from there. Returns the depthwise output and, with
    /// squeeze-excitation, its channel means.
    fn expand_depthwise(
        &self,
        pool: &BufferPool,
        x: &FeatureMap,
        expand: &Pointwise,
        threads: usize,
    ) -> Result<(FeatureMap, Option<Vec<f32>>)> {
        let (h, w, c_in) = (x.height, x.width, x.channels);
        let hidden = expand.out_channels;
        // Rows per matrix product (at least ~256 pixels), and a ring that holds every row
        // an output row reads plus one product's worth, in whole products.
        let step = (256 / w).clamp(1, h);
        let ring = (self.depthwise.kernel() + step - 1).div_ceil(step) * step;
        let g = self.depthwise.geometry(h, w, ring);
        let mut out = pool.map(x.batch, g.out_h, g.out_w, hidden);
        let se = self.excitation.is_some();
        let mut means = se.then(|| vec![0.0f32; x.batch * hidden]);
        let out_row = g.out_w * hidden;
        for b in 0..x.batch {
            let image = &x.values()[b * x.image_len()..(b + 1) * x.image_len()];
            let out_image =
                &mut out.values_mut()[b * g.out_h * out_row..(b + 1) * g.out_h * out_row];
            // Each thread takes a band of output rows, with a ring of its own.
            let bands = for_row_blocks(threads, out_image, out_row, |first_row, band| {
                let mut rows = pool.map(1, ring, w, hidden);
                let mut sums = vec![0.0f64; if se { hidden } else { 0 }];
                let first_needed = self
                    .depthwise
                    .input_rows(&g, first_row, first_row + 1)
                    .start;
                let mut next = first_needed / step * step;
                for (i, dst) in band.chunks_exact_mut(out_row).enumerate() {
                    let oy = first_row + i;
                    let needed = self.depthwise.input_rows(&g, oy, oy + 1);
                    while next < needed.end {
                        // `next` is a multiple of `step`, and so is `ring`: no wrap-around.
                        let n = step.min(h - next);
                        let slot = next % ring;
                        expand.rows_into(
                            &image[next * w * c_in..(next + n) * w * c_in],
                            &mut rows.values_mut()[slot * w * hidden..(slot + n) * w * hidden],
                            Some(self.act),
                        )?;
                        next += n;
                    }
                    self.depthwise
                        .rows_into(rows.values(), g, oy, dst, Some(self.act), &mut sums);
                }
                pool.give(rows);
                Ok::<_, ModelError>(sums)
            });
            let mut sums = vec![0.0f64; if se { hidden } else { 0 }];
            for band in bands {
                for (s, v) in sums.iter_mut().zip(band?) {
                    *s += v;
                }
            }
            if let Some(means) = &mut means {
                let scale = 1.0 / (g.out_h * g.out_w) as f64;
                for (m, s) in means[b * hidden..(b + 1) * hidden].iter_mut().zip(sums) {
                    *m = (s * scale) as f32;
                }
            }
        }
        Ok((out, means))
    }
}

/// Maps with at most this many rows are expanded whole (the ring would be most of them).
const FUSE_MIN_ROWS: usize = 16;

/// Depthwise 3×3 → pointwise (BN folded) → optional activation.
#[derive(Debug)]
struct Separable {
    depthwise: Depthwise,
    pointwise: Pointwise,
    act: Option<Activation>,
}

impl Separable {
    fn new(b: &SeparableConvBlock) -> Result<Self> {
        if let Some(bn) = &b.bn {
            folded(bn)?;
        }
        Ok(Self {
            depthwise: Depthwise::from_conv(&b.depthwise)?,
            pointwise: Pointwise::from_conv(&b.pointwise)?,
            act: b.activation,
        })
    }

    fn run(&self, pool: &BufferPool, x: &FeatureMap, threads: usize) -> Result<FeatureMap> {
        let (d, _) = self.depthwise.run(pool, x, None, false, threads);
        let out = self
            .pointwise
            .run(pool, &d, self.act, None, None, threads)?;
        pool.give(d);
        Ok(out)
    }
}

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
struct FpnLayer {
    first: Option<FirstInputs>,
    up: Vec<Node>,
    down: Vec<Node>,
    act: Activation,
    levels: usize,
}

impl FpnLayer {
    fn new(layer: &BiFpnLayer) -> Result<Self> {
        let node = |n: &crate::detector::model::bifpn::Node| -> Result<Node> {
            let weights = match (layer.fusion, &n.weights) {
                (Fusion::FastAttention, Some(p)) => {
                    let w = tch::no_grad(|| {
                        let w = p.detach().relu();
                        &w / (w.sum(None) + FUSION_EPS)
                    });
                    Some(to_vec(&w)?)
                }
                _ => None,
            };
            Ok(Node {
                conv: Separable::new(&n.conv)?,
                weights,
            })
        };
        let projection = |cb: &crate::detector::model::layers::ConvBn| -> Result<Pointwise> {
            folded(&cb.bn)?;
            Ok(Pointwise::from_conv(&cb.conv)?)
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
    fn run(
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

/// A box or class head with every level's BatchNorms folded into its own conv copies.
#[derive(Debug)]
struct HeadPlan {
    levels: Vec<Vec<Separable>>,
    header: Separable,
    per_anchor: usize,
}

impl HeadPlan {
    fn new(head: &Head) -> Result<Self> {
        let folded = head.folded.as_ref().ok_or(ModelError::NotFolded)?;
        let levels = folded
            .iter()
            .map(|convs| {
                convs
                    .iter()
                    .map(|c| {
                        let mut s = Separable::new(c)?;
                        s.act = Some(head.activation);
                        Ok(s)
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            levels,
            header: Separable::new(&head.header)?,
            per_anchor: head.per_anchor as usize,
        })
    }

    /// `[B, Σ H·W·A, per_anchor]`, levels concatenated P3 first.
    fn run(&self, pool: &BufferPool, features: &[FeatureMap], threads: usize) -> Result<Tensor> {
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

/// A BatchNorm-folded EfficientDet compiled for channels-last CPU inference; see the
/// [module documentation](super).
#[derive(Debug)]
pub struct NhwcEfficientDet {
    stem: Stem,
    blocks: Vec<Block>,
    /// Blocks whose outputs are C3, C4, C5.
    taps: [usize; 3],
    fpn: Vec<FpnLayer>,
    regressor: HeadPlan,
    classifier: HeadPlan,
    pool: BufferPool,
    /// The threads of multi-threaded passes, built on first use.
    workers: std::sync::Mutex<Option<rayon::ThreadPool>>,
}

impl NhwcEfficientDet {
    /// Compiles `net`, whose BatchNorms must be folded ([`EfficientDet::fold_batchnorm`]).
    /// The weights are copied; `net` can be dropped.
    pub fn new(net: &EfficientDet) -> Result<Self> {
        tch::no_grad(|| {
            let bb = &net.backbone;
            let t = &bb.taps[bb.taps.len() - 3..];
            Ok(Self {
                stem: {
                    folded(&bb.bn0)?;
                    Stem::new(&bb.stem, bb.activation)?
                },
                blocks: bb.blocks.iter().map(Block::new).collect::<Result<_>>()?,
                taps: [t[0], t[1], t[2]],
                fpn: net
                    .bifpn
                    .layers
                    .iter()
                    .map(FpnLayer::new)
                    .collect::<Result<_>>()?,
                regressor: HeadPlan::new(&net.regressor)?,
                classifier: HeadPlan::new(&net.classifier)?,
                pool: BufferPool::default(),
                workers: std::sync::Mutex::new(None),
            })
        })
    }

    /// Runs a normalised `[B, 3, H, W]` CPU batch with libtorch's current thread count, and
    /// returns what [`EfficientDet::forward_t`] returns in eval mode (features as NCHW
    /// views of NHWC data).
    pub fn forward(&self, xs: &Tensor) -> Result<EfficientDetOutput> {
        self.forward_threads(xs, tch::get_num_threads().max(1) as usize)
    }

    /// [`NhwcEfficientDet::forward`] on `threads` threads: a rayon pool of the engine's
    /// own runs the whole pass, so that splitting a layer over the threads costs a work
    /// steal rather than a cross-thread wake-up.
    pub fn forward_threads(&self, xs: &Tensor, threads: usize) -> Result<EfficientDetOutput> {
        if threads <= 1 {
            return self.forward_on(xs, 1);
        }
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        if workers
            .as_ref()
            .is_none_or(|p| p.current_num_threads() != threads)
        {
            *workers = Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()?,
            );
        }
        let workers = workers.as_ref().expect("built above");
        let xs = xs.shallow_clone();
        let result = workers.install(move || self.forward_on(&xs, threads));
        restore_threads(threads);
        result
    }

    /// The pass itself, on the current thread (and rayon pool).
    fn forward_on(&self, xs: &Tensor, threads: usize) -> Result<EfficientDetOutput> {
        let size = xs.size();
        if size.len() != 4 || size[1] != 3 || size[0] < 1 || size[2] < 1 || size[3] < 1 {
            return Err(ModelError::InputShape(size));
        }
        tch::no_grad(|| {
            let pool = &self.pool;
            let xs = xs.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
            let mut current = self.stem.run(pool, &xs, threads)?;
            let mut taps = Vec::with_capacity(3);
            for (i, block) in self.blocks.iter().enumerate() {
                let next = block.run(pool, &current, threads)?;
                let done = std::mem::replace(&mut current, next);
                if i > 0 && self.taps.contains(&(i - 1)) {
                    taps.push(done);
                } else {
                    pool.give(done);
                }
            }
            taps.push(current);
            let mut features = taps;
            for layer in &self.fpn {
                let next = layer.run(pool, &features, threads)?;
                for m in std::mem::replace(&mut features, next) {
                    pool.give(m);
                }
            }
            let regression = self.regressor.run(pool, &features, threads)?;
            let classification = self.classifier.run(pool, &features, threads)?;
            let features = features
                .into_iter()
                .map(|m| {
                    let t = m.to_nchw();
                    pool.give(m);
                    t
                })
                .collect();
            Ok(EfficientDetOutput {
                features,
                regression,
                classification,
            })
        })
    }
}
