//! Training data: loading a labelled folder or a COCO file, the train/val split, and a
//! background loader that decodes and augments images in parallel (rayon) into a bounded
//! prefetch queue, so the training step never waits on JPEG decoding.
//!
//! Pre-processing is the inference letterbox ([`letterbox_rgb`](crate::detector::maths::letterbox::letterbox_rgb): resize by
//! `size / max(w, h)`, top-left on a zero-after-normalisation canvas). With augmentation
//! off, a training image is bit-identical to what inference sees. With it on, the image
//! goes through the transforms of [`super::augment`] (colour jitter, flip, scale jitter,
//! rotation, mosaic, copy-paste), each drawn from a ChaCha8 RNG seeded by
//! `(seed, epoch, image index)` so that a run is reproducible whatever the thread count.
//!
//! Mosaic and copy-paste need the set ([`prepare_in`], as the [`Loader`] calls it). A box
//! cut by any augmentation keeps its label when at least [`tile_crop::MIN_VISIBLE`](super::tile_crop::MIN_VISIBLE) (40 %)
//! of it stays visible.
//!
//! By concept: the labelled images and the split ([`Dataset`], `dataset`), reading them
//! from a folder or a COCO file ([`load_dataset`], `load`), turning one image into a
//! network input ([`prepare`], `preprocess`), and the epoch order, batching and
//! background [`Loader`] (`loader`).

mod dataset;
mod load;
mod loader;
mod preprocess;

use std::path::PathBuf;

pub use super::augment::PASTE_MAX_OVERLAP;
pub use dataset::{DataSource, Dataset, Sample, ValSplit};
pub use load::load_dataset;
pub use loader::{batches, epoch_order, Batch, Loader};
pub(super) use preprocess::place_on_canvas;
pub use preprocess::{prepare, prepare_in, Prepared, Preprocess};

/// Why the data could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("no labelled images in {0} (label files are looked up beside the images or in the labels folder)")]
    NoImages(PathBuf),
    #[error("the training set has no boxes at all; label some objects first")]
    NoBoxes,
    #[error(
        "class(es) without any training box: {0}; label some, or remove them from the class list"
    )]
    ClassesWithoutBoxes(String),
    #[error("the validation set uses class(es) the training set does not have: {0}")]
    UnknownValClasses(String),
    #[error("decoding {path}: {reason}")]
    Decode { path: PathBuf, reason: String },
}

/// A 40×30 sample at `path` with one box of class 0 (unit tests).
#[cfg(test)]
fn sample_at(path: PathBuf) -> Sample {
    use crate::geometry::BoxXyxy;
    Sample {
        path,
        width: 40,
        height: 30,
        boxes: vec![BoxXyxy::new(5.0, 5.0, 20.0, 20.0)],
        classes: vec![0],
    }
}
