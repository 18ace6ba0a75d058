//! Batching and the background loader: the seeded order of an epoch, its batches, and the
//! [`Loader`] thread that prepares them in parallel into a bounded prefetch queue.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::preprocess::{prepare_in, Preprocess};
use super::{DataError, Sample};
use crate::detector::maths::letterbox::Letterbox;

/// A batch of prepared images.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Indices of the images in their set (those that could be prepared).
    pub indices: Vec<usize>,
    /// Images of the batch that could not be decoded (index, file, reason): left out of
    /// it, so that one broken file does not stop a run. The batch may be empty.
    pub skipped: Vec<(usize, PathBuf, String)>,
    /// `[B, 3, size, size]`, row-major.
    pub pixels: Vec<f32>,
    pub input_size: u32,
    pub boxes: Vec<Vec<[f32; 4]>>,
    pub classes: Vec<Vec<i64>>,
    pub letterboxes: Vec<Letterbox>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// The order of the training images in `epoch` (a seeded shuffle).
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed ^ 0x5EED ^ (epoch as u64).wrapping_mul(0x2545_F491_4F6C_DD1D),
    );
    order.shuffle(&mut rng);
    order
}

/// Splits `order` into batches; a trailing batch of one image is dropped when there are
/// others (BatchNorm statistics of a single image are poor), never a larger one.
pub fn batches(order: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    if out.len() > 1 && batch_size > 1 && out.last().is_some_and(|b| b.len() == 1) {
        out.pop();
    }
    out
}

/// A background thread that prepares batches in parallel (on `pool`, or rayon's global
/// pool) and hands them over through a bounded queue of `prefetch` batches. An image that
/// cannot be decoded is left out of its batch and listed in [`Batch::skipped`]. Dropping
/// the loader stops the thread.
pub struct Loader {
    rx: Option<Receiver<Result<Batch, DataError>>>,
    handle: Option<JoinHandle<()>>,
}

impl Loader {
    /// Starts preparing `batches` of `samples` for `epoch`.
    pub fn spawn(
        samples: Arc<Vec<Sample>>,
        batches: Vec<Vec<usize>>,
        epoch: usize,
        pre: Preprocess,
        prefetch: usize,
        pool: Option<Arc<rayon::ThreadPool>>,
    ) -> Self {
        let (tx, rx) = sync_channel(prefetch.max(1));
        let handle = std::thread::spawn(move || {
            for indices in batches {
                let work = || {
                    indices
                        .par_iter()
                        .map(|&i| (i, prepare_in(&samples, i, epoch, &pre)))
                        .collect::<Vec<_>>()
                };
                let prepared = match &pool {
                    Some(p) => p.install(work),
                    None => work(),
                };
                let mut b = Batch {
                    indices: Vec::with_capacity(prepared.len()),
                    skipped: Vec::new(),
                    pixels: Vec::new(),
                    input_size: pre.input_size,
                    boxes: Vec::new(),
                    classes: Vec::new(),
                    letterboxes: Vec::new(),
                };
                for (i, item) in prepared {
                    match item {
                        Ok(p) => {
                            b.indices.push(i);
                            b.pixels.extend_from_slice(&p.pixels);
                            b.boxes.push(p.boxes);
                            b.classes.push(p.classes);
                            b.letterboxes.push(p.letterbox);
                        }
                        Err(e) => {
                            let reason = match e {
                                DataError::Decode { reason, .. } => reason,
                                other => other.to_string(),
                            };
                            b.skipped.push((i, samples[i].path.clone(), reason));
                        }
                    }
                }
                if tx.send(Ok(b)).is_err() {
                    return;
                }
            }
        });
        Self {
            rx: Some(rx),
            handle: Some(handle),
        }
    }
}

impl Iterator for Loader {
    type Item = Result<Batch, DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample_at;
    use super::*;
    use crate::dataset::image_info::read_image_info;
    use crate::detector::maths::letterbox::Normalization;
    use image::RgbImage;

    #[test]
    fn batching_drops_only_a_lonely_tail() {
        assert_eq!(batches(&[0, 1, 2, 3, 4], 2).len(), 2);
        assert_eq!(batches(&[0, 1, 2, 3, 4, 5], 4).len(), 2);
        assert_eq!(batches(&[0], 4).len(), 1);
        let a = epoch_order(10, 1, 0);
        assert_eq!(a, epoch_order(10, 1, 0));
        assert_ne!(a, epoch_order(10, 1, 1));
    }

    /// An image whose header reads but whose pixels do not decode is left out of its batch
    /// and listed as skipped; the rest of the batch is prepared.
    #[test]
    fn the_loader_skips_an_image_that_does_not_decode() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.png");
        RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8, y as u8, 7]))
            .save(&good)
            .unwrap();
        // The same PNG with its pixel data (IDAT) damaged: the header still reads.
        let mut bytes = std::fs::read(&good).unwrap();
        let idat = bytes.windows(4).position(|w| w == b"IDAT").unwrap();
        for b in &mut bytes[idat + 4..idat + 24] {
            *b ^= 0x5A;
        }
        let broken = dir.path().join("broken.png");
        std::fs::write(&broken, &bytes).unwrap();
        read_image_info(&broken).unwrap();
        let samples = Arc::new(vec![sample_at(good), sample_at(broken.clone())]);
        let pre = Preprocess {
            input_size: 64,
            normalization: Normalization::IMAGENET,
            augment: None,
            seed: 0,
            tile: None,
        };
        let mut loader = Loader::spawn(samples, vec![vec![0, 1]], 1, pre, 1, None);
        let batch = loader.next().unwrap().unwrap();
        assert_eq!(batch.indices, vec![0]);
        assert_eq!(batch.pixels.len(), 3 * 64 * 64);
        assert_eq!(batch.skipped.len(), 1);
        assert_eq!((batch.skipped[0].0, &batch.skipped[0].1), (1, &broken));
        assert!(loader.next().is_none());
    }
}
