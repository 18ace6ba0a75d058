//! Training data: loading a labelled folder or a COCO file, the train/val split, and a
//! background loader that decodes and augments images in parallel (rayon) into a bounded
//! prefetch queue, so the training step never waits on JPEG decoding.
//!
//! Pre-processing is the inference letterbox ([`letterbox_rgb`]: resize by
//! `size / max(w, h)`, top-left on a zero-after-normalisation canvas). With augmentation
//! off, a training image is bit-identical to what inference sees. With it on, the image
//! goes through the transforms of [`super::augment`] (colour jitter, flip, scale jitter,
//! rotation, mosaic, copy-paste), each drawn from a ChaCha8 RNG seeded by
//! `(seed, epoch, image index)` so that a run is reproducible whatever the thread count.
//!
//! Mosaic and copy-paste need the set ([`prepare_in`], as the [`Loader`] calls it). A box
//! cut by any augmentation keeps its label when at least [`tile_crop::MIN_VISIBLE`] (40 %)
//! of it stays visible.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use image::RgbImage;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::augment::{
    augment_resize, color_jitter, copy_paste, keep_visible, mean_fill, mosaic, other_index,
};
use super::config::AugmentConfig;
use super::tile_crop;
use crate::dataset::image_info::{decode_upright_rgb, read_image_info};
use crate::dataset::{load_labels, scan_images, ClassList};
use crate::detector::maths::letterbox::{letterbox_rgb, Letterbox, Normalization};
use crate::export::stratified_split;
use crate::formats::coco::CocoDataset;
use crate::geometry::BoxXyxy;

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

/// One labelled image; boxes in original (upright) image pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<BoxXyxy>,
    /// Class ids (indices into [`Dataset::class_names`]), one per box.
    pub classes: Vec<usize>,
}

/// Where a set of labelled images comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// An image folder (recursive) with VOC / YOLO / CreateML labels beside the images or
    /// in `labels`.
    Folder {
        images: PathBuf,
        labels: Option<PathBuf>,
    },
    /// A COCO JSON; `file_name`s are relative to `images` (default: the JSON's folder).
    Coco {
        json: PathBuf,
        images: Option<PathBuf>,
    },
}

impl DataSource {
    /// A `.json` path is a COCO file, anything else a folder; `aux` is the labels folder
    /// (folder) or the image root (COCO).
    pub fn from_path(path: &Path, aux: Option<&Path>) -> Self {
        let aux = aux.map(Path::to_path_buf);
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Self::Coco {
                json: path.to_path_buf(),
                images: aux,
            }
        } else {
            Self::Folder {
                images: path.to_path_buf(),
                labels: aux,
            }
        }
    }
}

/// How the validation images are chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum ValSplit {
    /// A separate labelled set.
    Source(DataSource),
    /// A seeded, class-stratified fraction of the training source (when the training
    /// folder has `train/` and `val/` sub-folders, those are used instead).
    Fraction { fraction: f64, seed: u64 },
}

/// Training and validation images with one class list.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub class_names: Vec<String>,
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    /// Images left out (no label file, unreadable labels), with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Labelled images whose file cannot be read as an image (empty, not an image, a
    /// broken header), with the reason: [`Dataset::drop_unreadable`] moves them here from
    /// `train` and `val`, and training skips them (with a warning and their count).
    pub unreadable: Vec<(PathBuf, String)>,
}

impl Dataset {
    /// Number of training boxes per class.
    pub fn train_box_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for s in &self.train {
            for &c in &s.classes {
                counts[c] += 1;
            }
        }
        counts
    }

    /// Reads the header of every training and validation image (in parallel, without
    /// decoding the pixels) and moves the images that cannot be read to
    /// [`Dataset::unreadable`]: one 0-byte file or text file named `.jpg` no longer stops
    /// a run at its first batch. Returns how many were moved.
    pub fn drop_unreadable(&mut self) -> usize {
        let before = self.unreadable.len();
        for set in [&mut self.train, &mut self.val] {
            let verdicts: Vec<Option<String>> = set
                .par_iter()
                .map(|s| read_image_info(&s.path).err().map(|e| e.reason))
                .collect();
            if verdicts.iter().all(Option::is_none) {
                continue;
            }
            let all = std::mem::take(set);
            for (sample, verdict) in all.into_iter().zip(verdicts) {
                match verdict {
                    Some(reason) => self.unreadable.push((sample.path, reason)),
                    None => set.push(sample),
                }
            }
        }
        self.unreadable.len() - before
    }

    /// Refuses a set without boxes, or with a class that has no training box.
    pub fn check_trainable(&self) -> Result<(), DataError> {
        let counts = self.train_box_counts();
        if counts.iter().sum::<usize>() == 0 {
            return Err(DataError::NoBoxes);
        }
        let empty: Vec<&str> = self
            .class_names
            .iter()
            .zip(&counts)
            .filter(|(_, &n)| n == 0)
            .map(|(name, _)| name.as_str())
            .collect();
        if !empty.is_empty() {
            return Err(DataError::ClassesWithoutBoxes(empty.join(", ")));
        }
        Ok(())
    }
}

/// Named boxes of one image, before class ids are fixed.
struct RawSample {
    path: PathBuf,
    width: u32,
    height: u32,
    boxes: Vec<(BoxXyxy, String)>,
}

fn read_err(path: &Path, reason: impl ToString) -> DataError {
    DataError::Read {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Loads a source's images and named boxes, with the class order it declares (a class
/// file, or COCO categories by id).
fn load_raw(
    source: &DataSource,
    skipped: &mut Vec<(PathBuf, String)>,
) -> Result<(Vec<RawSample>, Vec<String>), DataError> {
    match source {
        DataSource::Folder { images, labels } => {
            let paths = scan_images(images).map_err(|e| read_err(images, e))?;
            let mut declared = Vec::new();
            for dir in [Some(images.as_path()), labels.as_deref()]
                .into_iter()
                .flatten()
            {
                for name in ["predefined_classes.txt", "classes.txt"] {
                    let p = dir.join(name);
                    if p.is_file() && declared.is_empty() {
                        if let Ok(list) = ClassList::read(&p) {
                            declared = list.names().to_vec();
                        }
                    }
                }
            }
            let results: Vec<_> = paths
                .par_iter()
                .map(|p| (p.clone(), load_labels(p, labels.as_deref())))
                .collect();
            let mut out = Vec::new();
            for (path, r) in results {
                match r {
                    Ok(Some(l)) => {
                        let a = l.annotation;
                        let boxes = a
                            .boxes
                            .into_iter()
                            .map(|b| (b.bbox.normalized(), b.class_name))
                            .filter(|(b, _)| b.is_finite() && b.width() >= 1.0 && b.height() >= 1.0)
                            .collect();
                        out.push(RawSample {
                            path,
                            width: a.width,
                            height: a.height,
                            boxes,
                        });
                    }
                    Ok(None) => skipped.push((path, "no label file".into())),
                    Err(e) => skipped.push((path, e.to_string())),
                }
            }
            if out.is_empty() {
                return Err(DataError::NoImages(images.clone()));
            }
            Ok((out, declared))
        }
        DataSource::Coco { json, images } => {
            let coco = CocoDataset::read(json).map_err(|e| read_err(json, e))?;
            let root = images
                .clone()
                .unwrap_or_else(|| json.parent().map(Path::to_path_buf).unwrap_or_default());
            let mut cats: Vec<_> = coco.categories.iter().collect();
            cats.sort_by_key(|c| c.id);
            let cat_name: BTreeMap<u64, String> =
                cats.iter().map(|c| (c.id, c.name.clone())).collect();
            let mut by_image: BTreeMap<u64, Vec<(BoxXyxy, String)>> = BTreeMap::new();
            for a in &coco.annotations {
                let b = a.bbox_xywh().to_xyxy();
                if a.iscrowd != 0 || !b.is_finite() || b.width() < 1.0 || b.height() < 1.0 {
                    continue;
                }
                let name = cat_name
                    .get(&a.category_id)
                    .cloned()
                    .ok_or_else(|| read_err(json, format!("unknown category {}", a.category_id)))?;
                by_image.entry(a.image_id).or_default().push((b, name));
            }
            let out: Vec<RawSample> = coco
                .images
                .iter()
                .map(|img| RawSample {
                    path: root.join(&img.file_name),
                    width: img.width,
                    height: img.height,
                    boxes: by_image.remove(&img.id).unwrap_or_default(),
                })
                .collect();
            if out.is_empty() {
                return Err(DataError::NoImages(json.clone()));
            }
            Ok((out, cats.iter().map(|c| c.name.clone()).collect()))
        }
    }
}

/// The `train/` and `val/` sub-folders of a folder source, when both hold images.
fn existing_split(source: &DataSource) -> Option<(DataSource, DataSource)> {
    let DataSource::Folder { images, labels } = source else {
        return None;
    };
    let (t, v) = (images.join("train"), images.join("val"));
    let has_images = |d: &Path| scan_images(d).is_ok_and(|v| !v.is_empty());
    (has_images(&t) && has_images(&v)).then(|| {
        let sub = |name: &str| DataSource::Folder {
            images: images.join(name),
            labels: labels.as_ref().map(|l| {
                let s = l.join(name);
                if s.is_dir() {
                    s
                } else {
                    l.clone()
                }
            }),
        };
        (sub("train"), sub("val"))
    })
}

/// Loads the training (and validation) data and fixes the class order: the declared
/// order (class file / COCO categories) first, then other names in sorted order.
pub fn load_dataset(train: &DataSource, val: &ValSplit) -> Result<Dataset, DataError> {
    let mut skipped = Vec::new();
    let (train_src, val_src) = match (val, existing_split(train)) {
        (ValSplit::Source(v), _) => (train.clone(), Some(v.clone())),
        (ValSplit::Fraction { .. }, Some((t, v))) => (t, Some(v)),
        (ValSplit::Fraction { .. }, None) => (train.clone(), None),
    };
    let (train_raw, declared) = load_raw(&train_src, &mut skipped)?;
    let val_raw = match &val_src {
        Some(v) => load_raw(v, &mut skipped)?.0,
        None => Vec::new(),
    };
    let mut classes = ClassList::from_names(declared);
    let used: BTreeSet<&str> = train_raw
        .iter()
        .flat_map(|s| s.boxes.iter().map(|(_, n)| n.as_str()))
        .collect();
    for name in used {
        classes.ensure(name);
    }
    let unknown: BTreeSet<&str> = val_raw
        .iter()
        .flat_map(|s| s.boxes.iter().map(|(_, n)| n.as_str()))
        .filter(|n| classes.id(n).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(DataError::UnknownValClasses(
            unknown.into_iter().collect::<Vec<_>>().join(", "),
        ));
    }
    let resolve = |raw: Vec<RawSample>| -> Vec<Sample> {
        raw.into_iter()
            .map(|r| {
                let (boxes, classes): (Vec<_>, Vec<_>) = r
                    .boxes
                    .into_iter()
                    .map(|(b, n)| (b, classes.id(&n).unwrap_or(0)))
                    .unzip();
                Sample {
                    path: r.path,
                    width: r.width,
                    height: r.height,
                    boxes,
                    classes,
                }
            })
            .collect()
    };
    let mut train_samples = resolve(train_raw);
    let mut val_samples = resolve(val_raw);
    if let (None, ValSplit::Fraction { fraction, seed }) = (&val_src, val) {
        if *fraction > 0.0 && train_samples.len() > 1 {
            let per_image: Vec<Vec<usize>> =
                train_samples.iter().map(|s| s.classes.clone()).collect();
            let is_val = stratified_split(&per_image, classes.len(), *fraction, *seed);
            let all = std::mem::take(&mut train_samples);
            for (s, v) in all.into_iter().zip(is_val) {
                if v {
                    val_samples.push(s);
                } else {
                    train_samples.push(s);
                }
            }
        }
    }
    Ok(Dataset {
        class_names: classes.names().to_vec(),
        train: train_samples,
        val: val_samples,
        skipped,
        unreadable: Vec::new(),
    })
}

/// How images become network inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    pub input_size: u32,
    pub normalization: Normalization,
    /// `None` for validation (letterbox only).
    pub augment: Option<AugmentConfig>,
    pub seed: u64,
    /// Tiled training: a crop of this many original pixels at native resolution instead of
    /// the whole photo ([`super::tile_crop`]); for validation, one crop fixed per image.
    pub tile: Option<u32>,
}

/// One image ready for the network.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Channel-major `[3, size, size]`, normalised.
    pub pixels: Vec<f32>,
    /// Boxes in network-input pixels `(x1, y1, x2, y2)`.
    pub boxes: Vec<[f32; 4]>,
    pub classes: Vec<i64>,
    /// The plain letterbox of the original image (for mapping predictions back); for a
    /// crop, the input frame itself (its boxes are the crop's).
    pub letterbox: Letterbox,
}

/// The RNG of one image in one epoch.
fn image_rng(seed: u64, epoch: usize, index: usize) -> ChaCha8Rng {
    let mix = seed
        ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (index as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    ChaCha8Rng::seed_from_u64(mix)
}

/// Decodes and pre-processes `sample` (image `index` of its set) for `epoch`. Mosaic and
/// copy-paste need the other images of the set: without them ([`prepare_in`] has them)
/// they are skipped.
pub fn prepare(
    sample: &Sample,
    index: usize,
    epoch: usize,
    pre: &Preprocess,
) -> Result<Prepared, DataError> {
    prepare_with(sample, index, epoch, pre, &[])
}

/// Decodes and pre-processes image `index` of `samples` for `epoch`; mosaic and
/// copy-paste draw their other images from `samples`.
pub fn prepare_in(
    samples: &[Sample],
    index: usize,
    epoch: usize,
    pre: &Preprocess,
) -> Result<Prepared, DataError> {
    prepare_with(&samples[index], index, epoch, pre, samples)
}

/// The decoded image of `sample` and its boxes in decoded pixels.
fn load_sample(sample: &Sample) -> Result<(RgbImage, Vec<BoxXyxy>), DataError> {
    let img = decode_upright_rgb(&sample.path).map_err(|e| DataError::Decode {
        path: sample.path.clone(),
        reason: e.reason,
    })?;
    let (w, h) = (img.width(), img.height());
    // Labels written for another size (rare) are rescaled to the decoded image.
    let (sx, sy) = if sample.width > 0 && sample.height > 0 {
        (
            f64::from(w) / f64::from(sample.width),
            f64::from(h) / f64::from(sample.height),
        )
    } else {
        (1.0, 1.0)
    };
    let boxes = sample
        .boxes
        .iter()
        .map(|b| BoxXyxy::new(b.x1 * sx, b.y1 * sy, b.x2 * sx, b.y2 * sy))
        .collect();
    Ok((img, boxes))
}

fn to_rows(bs: &[BoxXyxy]) -> Vec<[f32; 4]> {
    bs.iter()
        .map(|b| [b.x1 as f32, b.y1 as f32, b.x2 as f32, b.y2 as f32])
        .collect()
}

fn prepare_with(
    sample: &Sample,
    index: usize,
    epoch: usize,
    pre: &Preprocess,
    pool: &[Sample],
) -> Result<Prepared, DataError> {
    let (mut img, mut boxes) = load_sample(sample)?;
    let (w, h) = (img.width(), img.height());
    let size = pre.input_size;
    let plain = Letterbox::new(w, h, size);
    let mut classes: Vec<i64> = sample.classes.iter().map(|&c| c as i64).collect();
    if let Some(tile) = pre.tile {
        return Ok(prepare_crop(img, &boxes, &classes, index, epoch, pre, tile));
    }
    let Some(aug) = &pre.augment else {
        let (pixels, lb) = letterbox_rgb(img.as_raw(), w, h, size, &pre.normalization);
        let mapped: Vec<BoxXyxy> = boxes.iter().map(|b| lb.to_input(b)).collect();
        return Ok(Prepared {
            pixels,
            boxes: to_rows(&mapped),
            classes,
            letterbox: lb,
        });
    };
    let mut rng = image_rng(pre.seed, epoch, index);
    let others = pool.len() > 1;
    if others && aug.copy_paste > 0.0 && rng.random_bool(aug.copy_paste) {
        copy_paste(
            &mut img,
            &mut boxes,
            &mut classes,
            pool,
            index,
            aug.copy_paste_max,
            &mut rng,
            &|j| load_sample(&pool[j]).ok(),
        );
    }
    let s = size as usize;
    if others && aug.mosaic > 0.0 && rng.random_bool(aug.mosaic) {
        let partners: Vec<usize> = (0..3)
            .map(|_| other_index(pool.len(), index, &mut rng))
            .collect();
        let mut parts = vec![(img, boxes, classes)];
        for j in partners {
            // A partner that does not decode is replaced by this image.
            let part = match load_sample(&pool[j]) {
                Ok((pi, pb)) => (pi, pb, pool[j].classes.iter().map(|&c| c as i64).collect()),
                Err(_) => parts[0].clone(),
            };
            parts.push(part);
        }
        let (pixels, kept, kept_classes) = mosaic(parts, s, aug, &mut rng, &pre.normalization);
        return Ok(Prepared {
            pixels,
            boxes: to_rows(&kept),
            classes: kept_classes,
            letterbox: plain,
        });
    }
    let fill = mean_fill(&pre.normalization);
    let r = augment_resize(img, &boxes, f64::from(size), aug, &mut rng, fill);
    let ox = if r.width > s {
        rng.random_range(0..=r.width - s)
    } else {
        0
    };
    let oy = if r.height > s {
        rng.random_range(0..=r.height - s)
    } else {
        0
    };
    let pixels = place_on_canvas(
        &r.pixels,
        (r.width, r.height),
        (ox, oy),
        s,
        &pre.normalization,
    );
    let dx = -(ox as f64);
    let dy = -(oy as f64);
    let area = (
        0.0,
        0.0,
        (s as f64).min(r.width as f64 + dx),
        (s as f64).min(r.height as f64 + dy),
    );
    let (kept_boxes, kept_classes) = keep_visible(&r.boxes, &classes, (dx, dy), area);
    Ok(Prepared {
        pixels,
        boxes: to_rows(&kept_boxes),
        classes: kept_classes,
        letterbox: plain,
    })
}

pub use super::augment::PASTE_MAX_OVERLAP;

/// The normalised `[3, s, s]` input holding the RGB values `resized` (`rw × rh`) from its
/// pixel `(ox, oy)` at the top-left; the rest is zero (the mean colour).
pub(super) fn place_on_canvas(
    resized: &[f32],
    (rw, rh): (usize, usize),
    (ox, oy): (usize, usize),
    s: usize,
    normalization: &Normalization,
) -> Vec<f32> {
    let mut pixels = vec![0f32; 3 * s * s];
    if resized.len() == rw * rh * 3 {
        let (cw, ch) = ((rw - ox).min(s), (rh - oy).min(s));
        for (c, plane) in pixels.chunks_exact_mut(s * s).enumerate() {
            for y in 0..ch {
                let src = &resized[((y + oy) * rw + ox) * 3..];
                for (x, v) in plane[y * s..y * s + cw].iter_mut().enumerate() {
                    *v = normalization.apply(c, src[x * 3 + c]);
                }
            }
        }
    }
    pixels
}

/// A crop of `img` for tiled training ([`super::tile_crop`]): the window drawn from the
/// image's RNG (epoch 0 for validation, so its crop stays the same), colour jitter and a
/// flip on the crop when augmenting.
fn prepare_crop(
    img: RgbImage,
    boxes: &[BoxXyxy],
    classes: &[i64],
    index: usize,
    epoch: usize,
    pre: &Preprocess,
    tile: u32,
) -> Prepared {
    let aug = pre.augment.as_ref();
    let mut rng = image_rng(pre.seed, if aug.is_some() { epoch } else { 0 }, index);
    let window = tile_crop::draw_window(img.width(), img.height(), tile, aug, &mut rng);
    let mut crop =
        image::imageops::crop_imm(&img, window.x, window.y, window.width, window.height).to_image();
    let (mut kept, index) = tile_crop::boxes_in_window(boxes, &window, pre.input_size);
    if let Some(aug) = aug {
        if aug.color > 0.0 {
            color_jitter(&mut crop, aug.color, &mut rng);
        }
        if aug.hflip > 0.0 && rng.random_bool(aug.hflip) {
            image::imageops::flip_horizontal_in_place(&mut crop);
            let w = f64::from(crop.width()) * f64::from(pre.input_size) / f64::from(window.side);
            for b in &mut kept {
                *b = BoxXyxy::new(w - b.x2, b.y1, w - b.x1, b.y2);
            }
        }
    }
    Prepared {
        pixels: tile_crop::crop_pixels(&crop, window.side, pre.input_size, &pre.normalization),
        boxes: kept
            .iter()
            .map(|b| [b.x1 as f32, b.y1 as f32, b.x2 as f32, b.y2 as f32])
            .collect(),
        classes: index.iter().map(|&i| classes[i]).collect(),
        letterbox: tile_crop::input_frame(pre.input_size),
    }
}

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
    use super::*;

    #[test]
    fn batching_drops_only_a_lonely_tail() {
        assert_eq!(batches(&[0, 1, 2, 3, 4], 2).len(), 2);
        assert_eq!(batches(&[0, 1, 2, 3, 4, 5], 4).len(), 2);
        assert_eq!(batches(&[0], 4).len(), 1);
        let a = epoch_order(10, 1, 0);
        assert_eq!(a, epoch_order(10, 1, 0));
        assert_ne!(a, epoch_order(10, 1, 1));
    }

    fn sample_at(path: PathBuf) -> Sample {
        Sample {
            path,
            width: 40,
            height: 30,
            boxes: vec![BoxXyxy::new(5.0, 5.0, 20.0, 20.0)],
            classes: vec![0],
        }
    }

    /// A 0-byte file and a text file named `.jpg` are set aside with their reason; the
    /// readable images stay in their sets.
    #[test]
    fn unreadable_images_are_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.png");
        RgbImage::new(40, 30).save(&good).unwrap();
        let empty = dir.path().join("empty.jpg");
        std::fs::write(&empty, b"").unwrap();
        let text = dir.path().join("text.jpg");
        std::fs::write(&text, b"this is not a JPEG\n").unwrap();
        let mut data = Dataset {
            class_names: vec!["a".into()],
            train: vec![sample_at(good.clone()), sample_at(empty.clone())],
            val: vec![sample_at(text.clone()), sample_at(good.clone())],
            skipped: vec![],
            unreadable: vec![],
        };
        assert_eq!(data.drop_unreadable(), 2);
        assert_eq!(data.train, vec![sample_at(good.clone())]);
        assert_eq!(data.val, vec![sample_at(good)]);
        let set_aside: Vec<&PathBuf> = data.unreadable.iter().map(|(p, _)| p).collect();
        assert_eq!(set_aside, vec![&empty, &text]);
        assert!(data.unreadable.iter().all(|(_, why)| !why.is_empty()));
        assert_eq!(data.drop_unreadable(), 0);
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

    #[test]
    fn augmentation_off_is_the_inference_letterbox_and_jitter_is_seeded() {
        let dir = tempfile::tempdir().unwrap();
        let img = RgbImage::from_fn(80, 60, |x, y| {
            image::Rgb([(x * 3) as u8, (y * 4) as u8, 90])
        });
        let path = dir.path().join("a.png");
        img.save(&path).unwrap();
        let sample = Sample {
            path,
            width: 80,
            height: 60,
            boxes: vec![BoxXyxy::new(10.0, 10.0, 30.0, 50.0)],
            classes: vec![0],
        };
        let mut pre = Preprocess {
            input_size: 64,
            normalization: Normalization::IMAGENET,
            augment: None,
            seed: 3,
            tile: None,
        };
        let plain = prepare(&sample, 0, 0, &pre).unwrap();
        let (want, _) = letterbox_rgb(img.as_raw(), 80, 60, 64, &Normalization::IMAGENET);
        assert_eq!(plain.pixels, want);
        assert_eq!(plain.boxes, vec![[8.0, 8.0, 24.0, 40.0]]);
        pre.augment = Some(AugmentConfig {
            hflip: 0.0,
            ..AugmentConfig::none()
        });
        assert_eq!(prepare(&sample, 0, 0, &pre).unwrap().pixels, want);
        pre.augment = Some(AugmentConfig {
            hflip: 1.0,
            ..AugmentConfig::none()
        });
        let flipped = prepare(&sample, 0, 0, &pre).unwrap();
        assert_eq!(flipped.boxes, vec![[40.0, 8.0, 56.0, 40.0]]);
        pre.augment = Some(AugmentConfig::default());
        let a = prepare(&sample, 5, 2, &pre).unwrap();
        let b = prepare(&sample, 5, 2, &pre).unwrap();
        assert_eq!(a.pixels, b.pixels);
        assert_eq!(a.boxes, b.boxes);
    }

    /// Older run files (no rotation, mosaic or copy-paste fields) still load, with the
    /// new augmentations off.
    #[test]
    fn older_augment_settings_load_with_the_new_ones_off() {
        let old = r#"{"hflip":0.5,"scale_min":0.6,"scale_max":1.4,"color":0.1}"#;
        let a: AugmentConfig = serde_json::from_str(old).unwrap();
        assert_eq!(a, AugmentConfig::default());
        assert_eq!((a.rotate_deg, a.mosaic, a.copy_paste), (0.0, 0.0, 0.0));
        assert_eq!(a.copy_paste_max, 3);
    }

    fn demo_pool(dir: &Path) -> Vec<Sample> {
        (0..4)
            .map(|k| {
                let img = RgbImage::from_fn(80, 60, |x, y| {
                    image::Rgb([(x * 3) as u8, (y * 4) as u8, 40 * k as u8])
                });
                let path = dir.join(format!("{k}.png"));
                img.save(&path).unwrap();
                Sample {
                    path,
                    width: 80,
                    height: 60,
                    boxes: vec![
                        BoxXyxy::new(10.0, 10.0, 30.0, 50.0),
                        BoxXyxy::new(45.0, 5.0, 70.0, 30.0),
                    ],
                    classes: vec![k % 2, 1],
                }
            })
            .collect()
    }

    /// With the new augmentations at their default (off), an image of a set is prepared
    /// as before; on, the result depends only on the seed, the epoch and the index.
    #[test]
    fn the_new_augmentations_are_off_by_default_and_seeded() {
        let dir = tempfile::tempdir().unwrap();
        let pool = demo_pool(dir.path());
        let mut pre = Preprocess {
            input_size: 64,
            normalization: Normalization::IMAGENET,
            augment: Some(AugmentConfig::default()),
            seed: 11,
            tile: None,
        };
        for i in 0..pool.len() {
            let a = prepare_in(&pool, i, 3, &pre).unwrap();
            let b = prepare(&pool[i], i, 3, &pre).unwrap();
            assert_eq!((a.pixels, a.boxes), (b.pixels, b.boxes));
        }
        pre.augment = Some(AugmentConfig {
            rotate_deg: 10.0,
            mosaic: 0.5,
            copy_paste: 1.0,
            ..AugmentConfig::default()
        });
        let mut changed = false;
        for i in 0..pool.len() {
            let a = prepare_in(&pool, i, 1, &pre).unwrap();
            let b = prepare_in(&pool, i, 1, &pre).unwrap();
            assert_eq!(a.pixels, b.pixels);
            assert_eq!((&a.boxes, &a.classes), (&b.boxes, &b.classes));
            assert_eq!(a.boxes.len(), a.classes.len());
            for r in &a.boxes {
                assert!(
                    r[0] >= 0.0 && r[1] >= 0.0 && r[2] <= 64.0 && r[3] <= 64.0,
                    "{r:?}"
                );
            }
            let c = prepare_in(&pool, i, 2, &pre).unwrap();
            changed |= c.pixels != a.pixels;
            let other_seed = Preprocess {
                seed: 12,
                ..pre.clone()
            };
            changed |= prepare_in(&pool, i, 1, &other_seed).unwrap().pixels != a.pixels;
        }
        assert!(changed);
    }
}
