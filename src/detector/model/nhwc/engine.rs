//! The compiled network: EfficientDet's layers re-expressed with the NHWC kernels.

use rayon::prelude::*;
use tch::Tensor;

use super::bifpn::FpnLayer;
use super::block::Block;
use super::head::HeadPlan;
use super::map::BufferPool;
use super::parallel::{restore_threads, sequential_blas};
use super::stem::Stem;
use crate::detector::model::norm::BatchNorm2d;
use crate::detector::model::{EfficientDet, EfficientDetOutput, ModelError};
use crate::detector::precision::Precision;

pub type Result<T> = std::result::Result<T, ModelError>;

/// Fails unless `bn` has been folded into the conv before it.
pub fn folded(bn: &BatchNorm2d) -> Result<()> {
    if bn.folded {
        Ok(())
    } else {
        Err(ModelError::NotFolded)
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
    precision: Precision,
    /// The threads of multi-threaded passes, built on first use.
    workers: std::sync::Mutex<Option<rayon::ThreadPool>>,
}

impl NhwcEfficientDet {
    /// Compiles `net`, whose BatchNorms must be folded ([`EfficientDet::fold_batchnorm`]),
    /// with its 1×1 convolutions' products in `precision` (which the caller has checked
    /// the CPU can run: [`Precision::effective`]). The weights are copied; `net` can be
    /// dropped.
    pub fn new(net: &EfficientDet, precision: Precision) -> Result<Self> {
        tch::no_grad(|| {
            let bb = &net.backbone;
            let t = &bb.taps[bb.taps.len() - 3..];
            Ok(Self {
                stem: {
                    folded(&bb.bn0)?;
                    Stem::new(&bb.stem, bb.activation)?
                },
                blocks: bb
                    .blocks
                    .iter()
                    .map(|b| Block::new(b, precision))
                    .collect::<Result<_>>()?,
                taps: [t[0], t[1], t[2]],
                fpn: net
                    .bifpn
                    .layers
                    .iter()
                    .map(|l| FpnLayer::new(l, precision))
                    .collect::<Result<_>>()?,
                regressor: HeadPlan::new(&net.regressor, precision)?,
                classifier: HeadPlan::new(&net.classifier, precision)?,
                pool: BufferPool::default(),
                precision,
                workers: std::sync::Mutex::new(None),
            })
        })
    }

    /// The precision of the 1×1 convolutions' products.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Runs a normalised `[B, 3, H, W]` CPU batch with libtorch's current thread count, and
    /// returns what [`EfficientDet::forward_t`] returns in eval mode (features as NCHW
    /// views of NHWC data).
    pub fn forward(&self, xs: &Tensor) -> Result<EfficientDetOutput> {
        self.forward_threads(xs, tch::get_num_threads().max(1) as usize)
    }

    /// [`NhwcEfficientDet::forward`] on `threads` threads. A rayon pool of the engine's
    /// own runs the pass, so that splitting a layer over the threads costs a work steal
    /// rather than a cross-thread wake-up. A batch of at least two images is split by
    /// image instead (each part on one thread, no synchronisation inside the network),
    /// which scales better than splitting every layer.
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
        let batch = xs.size().first().copied().unwrap_or(0);
        let result = if batch >= 2 {
            let parts: Vec<Tensor> = image_parts(batch, threads)
                .into_iter()
                .map(|(start, len)| xs.narrow(0, start, len))
                .collect();
            workers.install(move || {
                let outputs = parts
                    .into_par_iter()
                    .map(|part| {
                        sequential_blas();
                        self.forward_on(&part, 1)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(concat_batches(outputs))
            })
        } else {
            workers.install(move || self.forward_on(&xs, threads))
        };
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
            // The stem takes any device and kind, and reads a CPU float32 copy in place.
            let mut current = self.stem.run(pool, xs, threads)?;
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
            // The two heads are independent: on several threads they run side by side, as
            // their many small maps split poorly by rows (D0, two threads: 3.9 ms for both
            // instead of 7.0).
            let (regression, classification) = if threads > 1 {
                let half = threads / 2;
                let (r, c) = rayon::join(
                    || {
                        sequential_blas();
                        self.regressor.run(pool, &features, half)
                    },
                    || {
                        sequential_blas();
                        self.classifier.run(pool, &features, half)
                    },
                );
                (r?, c?)
            } else {
                (
                    self.regressor.run(pool, &features, 1)?,
                    self.classifier.run(pool, &features, 1)?,
                )
            };
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

/// `(start, len)` of at most `threads` near-equal parts of a batch.
fn image_parts(batch: i64, threads: usize) -> Vec<(i64, i64)> {
    let parts = batch.min(threads as i64).max(1);
    (0..parts)
        .map(|i| {
            let start = batch * i / parts;
            (start, batch * (i + 1) / parts - start)
        })
        .collect()
}

/// The outputs of consecutive parts of a batch, joined along the batch.
fn concat_batches(parts: Vec<EfficientDetOutput>) -> EfficientDetOutput {
    if parts.len() == 1 {
        return parts.into_iter().next().expect("one part");
    }
    let levels = parts[0].features.len();
    let features = (0..levels)
        .map(|l| Tensor::cat(&parts.iter().map(|p| &p.features[l]).collect::<Vec<_>>(), 0))
        .collect();
    EfficientDetOutput {
        features,
        regression: Tensor::cat(&parts.iter().map(|p| &p.regression).collect::<Vec<_>>(), 0),
        classification: Tensor::cat(
            &parts.iter().map(|p| &p.classification).collect::<Vec<_>>(),
            0,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::image_parts;

    #[test]
    fn batches_split_into_contiguous_near_equal_parts() {
        assert_eq!(image_parts(2, 2), [(0, 1), (1, 1)]);
        assert_eq!(image_parts(5, 2), [(0, 2), (2, 3)]);
        assert_eq!(image_parts(3, 8), [(0, 1), (1, 1), (2, 1)]);
        assert_eq!(image_parts(1, 2), [(0, 1)]);
    }
}
