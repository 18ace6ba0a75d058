//! Training data: loading a labelled folder or a COCO file, the train/val split, and a
//! background loader that decodes and augments images in parallel (rayon) into a bounded
//! prefetch queue, so the training step never waits on JPEG decoding.
//!
//! Pre-processing is the inference letterbox ([`letterbox_rgb`]: resize by
//! `size / max(w, h)`, top-left on a zero-after-normalisation canvas). With augmentation
//! off, a training image is bit-identical to what inference sees. Augmentations, each drawn
//! from a ChaCha8 RNG seeded by `(seed, epoch, image index)` so that a run is reproducible
//! whatever the thread count:
//! * colour jitter: brightness, contrast and saturation factors in `[1 − s, 1 + s]`;
//! * horizontal flip;
//! * scale jitter: the letterbox is made at `size · f` and then cropped at a random offset
//!   (when larger than the input) or padded bottom/right (when smaller). Boxes are mapped
//!   and clipped; a box keeps its label when at least 40 % of it stays visible;
//! * rotation by up to `rotate_deg` about the centre ([`rotate_rgb`], boxes by the
//!   rotated-ellipse rule of [`rotate_box`]), after the resize;
//! * mosaic: four images of the set in the quadrants around a random centre;
//! * copy-paste: labelled boxes cut from other images of the set pasted at free places.
//!
//! Mosaic and copy-paste need the set ([`prepare_in`], as the [`Loader`] calls it); the
//! last three are off by default and ignored by tiled training. A box cut by any of them
//! keeps its label when at least [`tile_crop::MIN_VISIBLE`] (40 %) of it stays visible.

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

use super::config::AugmentConfig;
use super::tile_crop;
use crate::dataset::image_info::{decode_upright_rgb, read_image_info};
use crate::dataset::{load_labels, scan_images, ClassList};
use crate::detector::maths::letterbox::{letterbox_rgb, resize_bilinear, Letterbox, Normalization};
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

/// Brightness, contrast and saturation jitter in place.
fn color_jitter(img: &mut RgbImage, strength: f64, rng: &mut ChaCha8Rng) {
    let mut draw = || rng.random_range(1.0 - strength..=1.0 + strength) as f32;
    let (b, c, s) = (draw(), draw(), draw());
    let gray = |p: &[u8]| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
    let n = (img.width() * img.height()).max(1) as f32;
    let mean = img.pixels().map(|p| gray(&p.0)).sum::<f32>() / n * b;
    for p in img.pixels_mut() {
        let g = gray(&p.0) * b;
        for v in p.0.iter_mut() {
            let x = *v as f32 * b;
            let x = g + (x - g) * s;
            let x = mean + (x - mean) * c;
            *v = x.round().clamp(0.0, 255.0) as u8;
        }
    }
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

/// The 0–255 RGB colour that normalises to zero (the padding colour).
fn mean_fill(n: &Normalization) -> [f32; 3] {
    [
        n.mean[0] * n.pixel_scale,
        n.mean[1] * n.pixel_scale,
        n.mean[2] * n.pixel_scale,
    ]
}

/// An index of `0..n` other than `index` (`n ≥ 2`).
fn other_index(n: usize, index: usize, rng: &mut ChaCha8Rng) -> usize {
    let j = rng.random_range(0..n - 1);
    if j >= index.min(n - 1) {
        j + 1
    } else {
        j
    }
}

/// The boxes `boxes` moved by `(dx, dy)` and clipped to `area` (`x0, y0, x1, y1`), with
/// their classes: a box keeps its label when at least [`tile_crop::MIN_VISIBLE`] of its
/// area stays inside and it is at least 2 pixels wide and high after clipping.
fn keep_visible(
    boxes: &[BoxXyxy],
    classes: &[i64],
    (dx, dy): (f64, f64),
    (x0, y0, x1, y1): (f64, f64, f64, f64),
) -> (Vec<BoxXyxy>, Vec<i64>) {
    let (mut kept, mut kept_classes) = (Vec::new(), Vec::new());
    if x1 <= x0 || y1 <= y0 {
        return (kept, kept_classes);
    }
    for (b, &c) in boxes.iter().zip(classes) {
        let m = b.translated(dx, dy);
        let clipped = BoxXyxy::new(
            m.x1.clamp(x0, x1),
            m.y1.clamp(y0, y1),
            m.x2.clamp(x0, x1),
            m.y2.clamp(y0, y1),
        );
        let visible = clipped.area() / m.area().max(1e-9);
        if clipped.width() >= 2.0 && clipped.height() >= 2.0 && visible >= tile_crop::MIN_VISIBLE {
            kept.push(clipped);
            kept_classes.push(c);
        }
    }
    (kept, kept_classes)
}

/// An image resized for the network input, with its boxes (not clipped).
struct Resized {
    /// Interleaved RGB values 0–255, `width × height`.
    pixels: Vec<f32>,
    width: usize,
    height: usize,
    boxes: Vec<BoxXyxy>,
}

/// Colour jitter, flip, the letterbox resize to `base · f` (`f` the scale jitter) and the
/// rotation of one image, drawn from `rng` in that order (nothing is drawn for an
/// augmentation that is off).
fn augment_resize(
    mut img: RgbImage,
    boxes: &[BoxXyxy],
    base: f64,
    aug: &AugmentConfig,
    rng: &mut ChaCha8Rng,
    fill: [f32; 3],
) -> Resized {
    let (w, h) = (img.width(), img.height());
    if aug.color > 0.0 {
        color_jitter(&mut img, aug.color, rng);
    }
    let mut boxes = boxes.to_vec();
    if aug.hflip > 0.0 && rng.random_bool(aug.hflip) {
        image::imageops::flip_horizontal_in_place(&mut img);
        let wf = f64::from(w);
        for b in &mut boxes {
            *b = BoxXyxy::new(wf - b.x2, b.y1, wf - b.x1, b.y2);
        }
    }
    let f = if aug.scale_max > aug.scale_min {
        rng.random_range(aug.scale_min..=aug.scale_max)
    } else {
        aug.scale_min
    };
    let scaled = ((base * f).round() as u32).max(8);
    let lb = Letterbox::new(w, h, scaled);
    let (rw, rh) = (lb.resized_width as usize, lb.resized_height as usize);
    let mut pixels = resize_bilinear(img.as_raw(), w as usize, h as usize, 3, rw, rh);
    let mut boxes: Vec<BoxXyxy> = boxes.iter().map(|b| lb.to_input(b)).collect();
    if aug.rotate_deg > 0.0 {
        let deg = rng.random_range(-aug.rotate_deg..=aug.rotate_deg);
        pixels = rotate_rgb(&pixels, rw, rh, deg, fill);
        let centre = (rw as f64 / 2.0, rh as f64 / 2.0);
        for b in &mut boxes {
            *b = rotate_box(b, deg, centre);
        }
    }
    Resized {
        pixels,
        width: rw,
        height: rh,
        boxes,
    }
}

/// `src` (interleaved RGB, `w × h`) turned by `deg` degrees about its centre, clockwise
/// on screen (y points down); what comes from outside the image is `fill`. Bilinear.
pub(super) fn rotate_rgb(src: &[f32], w: usize, h: usize, deg: f64, fill: [f32; 3]) -> Vec<f32> {
    let (sin, cos) = deg.to_radians().sin_cos();
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let mut out = vec![0f32; w * h * 3];
    if src.len() < w * h * 3 {
        return out;
    }
    let at = |x: i64, y: i64, c: usize| -> f32 {
        if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
            fill[c]
        } else {
            src[(y as usize * w + x as usize) * 3 + c]
        }
    };
    for y in 0..h {
        for x in 0..w {
            // The source of the destination pixel centre: its position turned back by −θ.
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            let sx = cx + dx * cos + dy * sin - 0.5;
            let sy = cy - dx * sin + dy * cos - 0.5;
            let (fx0, fy0) = (sx.floor(), sy.floor());
            let (fx, fy) = ((sx - fx0) as f32, (sy - fy0) as f32);
            let (x0, y0) = (fx0 as i64, fy0 as i64);
            for c in 0..3 {
                let top = at(x0, y0, c) * (1.0 - fx) + at(x0 + 1, y0, c) * fx;
                let bottom = at(x0, y0 + 1, c) * (1.0 - fx) + at(x0 + 1, y0 + 1, c) * fx;
                out[(y * w + x) * 3 + c] = top * (1.0 - fy) + bottom * fy;
            }
        }
    }
    out
}

/// The box of `b` after turning its image by `deg` degrees about `centre` (as
/// [`rotate_rgb`]). The hull of the four rotated corners grows with the angle (a 45° turn
/// of a square doubles its area) although the object inside does not; the rule here is
/// the rotated-ellipse one: the box is the axis-aligned hull of the rotated ellipse
/// inscribed in `b`, i.e. the corner hull (half-sides `a|cos θ| + b|sin θ|`,
/// `a|sin θ| + b|cos θ|`) shrunk about its centre to `√(a² cos² θ + b² sin² θ)`,
/// `√(a² sin² θ + b² cos² θ)`. It is exact at 0° and 90°.
pub(super) fn rotate_box(b: &BoxXyxy, deg: f64, (cx, cy): (f64, f64)) -> BoxXyxy {
    let (sin, cos) = deg.to_radians().sin_cos();
    let (bx, by) = b.center();
    let (a, c) = (b.width() / 2.0, b.height() / 2.0);
    let (dx, dy) = (bx - cx, by - cy);
    let (nx, ny) = (cx + dx * cos - dy * sin, cy + dx * sin + dy * cos);
    let hw = (a * a * cos * cos + c * c * sin * sin).sqrt();
    let hh = (a * a * sin * sin + c * c * cos * cos).sqrt();
    BoxXyxy::new(nx - hw, ny - hh, nx + hw, ny + hh)
}

/// Boxes pasted by copy-paste may overlap a box already in the image by at most this
/// fraction of the smaller of the two (so no box is hidden by a paste).
pub const PASTE_MAX_OVERLAP: f64 = 0.1;

/// Tries per pasted box to find a free place.
const PASTE_TRIES: usize = 10;

/// Copy-paste: between 1 and `max` boxes, each from a random other image of `pool`
/// (decoded by `load`, which gives its pixels and boxes), are cut out, scaled by the ratio
/// of the two images' sizes (the object keeps its share of the image) and pasted at a
/// random place of `img` where it overlaps no box (neither those there nor those pasted
/// before) by more than [`PASTE_MAX_OVERLAP`]. Their boxes and classes are appended.
/// Returns how many were pasted.
#[allow(clippy::too_many_arguments)]
fn copy_paste(
    img: &mut RgbImage,
    boxes: &mut Vec<BoxXyxy>,
    classes: &mut Vec<i64>,
    pool: &[Sample],
    index: usize,
    max: usize,
    rng: &mut ChaCha8Rng,
    load: &dyn Fn(usize) -> Option<(RgbImage, Vec<BoxXyxy>)>,
) -> usize {
    let (w, h) = (img.width(), img.height());
    let mut pasted = 0;
    if pool.len() < 2 || max == 0 {
        return 0;
    }
    let n = rng.random_range(1..=max);
    for _ in 0..n {
        let j = other_index(pool.len(), index, rng);
        if pool[j].boxes.is_empty() {
            continue;
        }
        let k = rng.random_range(0..pool[j].boxes.len());
        let Some((src, src_boxes)) = load(j) else {
            continue;
        };
        let Some(b) = src_boxes.get(k) else {
            continue;
        };
        let (sw, sh) = (src.width(), src.height());
        let b = b.clamp_to(f64::from(sw), f64::from(sh));
        let (x0, y0) = (b.x1.floor() as u32, b.y1.floor() as u32);
        let (x1, y1) = (b.x2.ceil() as u32, b.y2.ceil() as u32);
        if x1 < x0 + 2 || y1 < y0 + 2 {
            continue;
        }
        let scale = (f64::from(w) * f64::from(h) / (f64::from(sw) * f64::from(sh))).sqrt();
        let pw = ((f64::from(x1 - x0) * scale).round() as u32).max(2);
        let ph = ((f64::from(y1 - y0) * scale).round() as u32).max(2);
        if pw > w || ph > h {
            continue;
        }
        let crop = image::imageops::crop_imm(&src, x0, y0, x1 - x0, y1 - y0).to_image();
        let patch = if (pw, ph) == (crop.width(), crop.height()) {
            crop
        } else {
            image::imageops::resize(&crop, pw, ph, image::imageops::FilterType::Triangle)
        };
        for _ in 0..PASTE_TRIES {
            let px = rng.random_range(0..=w - pw);
            let py = rng.random_range(0..=h - ph);
            let nb = BoxXyxy::new(
                f64::from(px),
                f64::from(py),
                f64::from(px + pw),
                f64::from(py + ph),
            );
            let free = boxes.iter().all(|e| {
                nb.intersection(e) <= PASTE_MAX_OVERLAP * nb.area().min(e.area()).max(1e-9)
            });
            if free {
                image::imageops::replace(img, &patch, i64::from(px), i64::from(py));
                boxes.push(nb);
                classes.push(pool[j].classes.get(k).map_or(0, |&c| c as i64));
                pasted += 1;
                break;
            }
        }
    }
    pasted
}

/// A mosaic of four images (`parts`: pixels, boxes, classes; the first is the sample):
/// a centre `(xc, yc)` is drawn in the middle half of the input; each image gets its own
/// colour jitter, flip, scale (half the input size times its scale jitter) and rotation,
/// and is placed against the centre in its quadrant (top-left, top-right, bottom-left,
/// bottom-right), cut to it. Boxes cut by a quadrant keep their label when at least
/// [`tile_crop::MIN_VISIBLE`] of them is visible, clipped. Returns the normalised
/// `[3, s, s]` pixels, the boxes and their classes.
fn mosaic(
    parts: Vec<(RgbImage, Vec<BoxXyxy>, Vec<i64>)>,
    s: usize,
    aug: &AugmentConfig,
    rng: &mut ChaCha8Rng,
    normalization: &Normalization,
) -> (Vec<f32>, Vec<BoxXyxy>, Vec<i64>) {
    let fill = mean_fill(normalization);
    let xc = rng.random_range(s / 4..=3 * s / 4);
    let yc = rng.random_range(s / 4..=3 * s / 4);
    let mut pixels = vec![0f32; 3 * s * s];
    let (mut kept, mut kept_classes) = (Vec::new(), Vec::new());
    for (k, (img, boxes, classes)) in parts.into_iter().enumerate().take(4) {
        let r = augment_resize(img, &boxes, s as f64 / 2.0, aug, rng, fill);
        let (rw, rh) = (r.width as i64, r.height as i64);
        let (xc, yc, s) = (xc as i64, yc as i64, s as i64);
        // Quadrant (x0, y0, x1, y1) and the image's top-left corner in it.
        let ((qx0, qy0, qx1, qy1), (px, py)) = match k {
            0 => ((0, 0, xc, yc), (xc - rw, yc - rh)),
            1 => ((xc, 0, s, yc), (xc, yc - rh)),
            2 => ((0, yc, xc, s), (xc - rw, yc)),
            _ => ((xc, yc, s, s), (xc, yc)),
        };
        let (x0, y0) = (qx0.max(px), qy0.max(py));
        let (x1, y1) = (qx1.min(px + rw), qy1.min(py + rh));
        if x1 <= x0 || y1 <= y0 {
            continue;
        }
        let su = s as usize;
        for (c, plane) in pixels.chunks_exact_mut(su * su).enumerate() {
            for y in y0..y1 {
                let src_row = ((y - py) * rw) as usize;
                for x in x0..x1 {
                    let v = r.pixels[(src_row + (x - px) as usize) * 3 + c];
                    plane[y as usize * su + x as usize] = normalization.apply(c, v);
                }
            }
        }
        let area = (x0 as f64, y0 as f64, x1 as f64, y1 as f64);
        let (b, c) = keep_visible(&r.boxes, &classes, (px as f64, py as f64), area);
        kept.extend(b);
        kept_classes.extend(c);
    }
    (pixels, kept, kept_classes)
}

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

    fn close(a: &BoxXyxy, b: &BoxXyxy) -> bool {
        [a.x1 - b.x1, a.y1 - b.y1, a.x2 - b.x2, a.y2 - b.y2]
            .iter()
            .all(|d| d.abs() < 1e-9)
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

    #[test]
    fn rotation_by_zero_is_the_identity() {
        let (w, h) = (7, 5);
        let src: Vec<f32> = (0..w * h * 3).map(|i| (i * 37 % 256) as f32).collect();
        assert_eq!(rotate_rgb(&src, w, h, 0.0, [1.0, 2.0, 3.0]), src);
        let b = BoxXyxy::new(1.5, 0.5, 4.0, 3.25);
        assert!(close(&rotate_box(&b, 0.0, (3.5, 2.5)), &b));
    }

    /// A quarter turn (clockwise on screen) of a square image is `rotate90`, and the box
    /// (10, 20)–(30, 60) of a 100 × 100 image becomes (40, 10)–(80, 30).
    #[test]
    fn rotation_by_90_degrees_gives_the_known_box_and_pixels() {
        let b = BoxXyxy::new(10.0, 20.0, 30.0, 60.0);
        let r = rotate_box(&b, 90.0, (50.0, 50.0));
        assert!(close(&r, &BoxXyxy::new(40.0, 10.0, 80.0, 30.0)), "{r:?}");
        let img = RgbImage::from_fn(6, 6, |x, y| image::Rgb([(x * 40) as u8, (y * 40) as u8, 9]));
        let src: Vec<f32> = img.as_raw().iter().map(|&v| f32::from(v)).collect();
        let turned = rotate_rgb(&src, 6, 6, 90.0, [0.0; 3]);
        let want = image::imageops::rotate90(&img);
        for (got, want) in turned.iter().zip(want.as_raw()) {
            assert!((got - f32::from(*want)).abs() < 1e-3, "{got} vs {want}");
        }
        // Through the box rule: the same box in the 6 × 6 frame.
        let small = rotate_box(&BoxXyxy::new(1.0, 0.0, 2.0, 3.0), 90.0, (3.0, 3.0));
        assert!(
            close(&small, &BoxXyxy::new(3.0, 1.0, 6.0, 2.0)),
            "{small:?}"
        );
    }

    #[test]
    fn a_box_below_the_visible_fraction_is_dropped_and_one_above_is_clipped() {
        let area = (0.0, 0.0, 100.0, 100.0);
        let boxes = [
            BoxXyxy::new(-70.0, 10.0, 30.0, 50.0), // 30 % visible
            BoxXyxy::new(-50.0, 10.0, 50.0, 50.0), // 50 % visible
            BoxXyxy::new(20.0, 20.0, 40.0, 40.0),  // inside
        ];
        let (kept, classes) = keep_visible(&boxes, &[1, 2, 3], (0.0, 0.0), area);
        assert_eq!(
            kept,
            vec![
                BoxXyxy::new(0.0, 10.0, 50.0, 50.0),
                BoxXyxy::new(20.0, 20.0, 40.0, 40.0)
            ]
        );
        assert_eq!(classes, vec![2, 3]);
        // At the threshold: 40 % visible is kept, 39 % dropped; a shift moves the boxes
        // before clipping.
        let edge = [
            BoxXyxy::new(-65.0, 0.0, 35.0, 10.0),
            BoxXyxy::new(-66.0, 20.0, 34.0, 30.0),
        ];
        let (kept, classes) = keep_visible(&edge, &[4, 5], (5.0, 0.0), area);
        assert_eq!(kept, vec![BoxXyxy::new(0.0, 0.0, 40.0, 10.0)]);
        assert_eq!(classes, vec![4]);
    }

    fn solid(k: usize, w: u32, h: u32) -> RgbImage {
        RgbImage::from_pixel(
            w,
            h,
            image::Rgb([20 + 50 * k as u8, 10, 200 - 40 * k as u8]),
        )
    }

    /// Every mosaic box lies in the input, and the pixel at its centre is the colour of the
    /// source image of its class: boxes come from their own quadrant's image.
    #[test]
    fn mosaic_boxes_lie_inside_and_come_from_their_sources() {
        let norm = Normalization::IMAGENET;
        let s = 64;
        let mut seen = [false; 4];
        for seed in 0..16 {
            let parts: Vec<(RgbImage, Vec<BoxXyxy>, Vec<i64>)> = (0..4)
                .map(|k| {
                    let b = vec![BoxXyxy::new(5.0, 5.0, 35.0, 25.0)];
                    (solid(k, 40, 30), b, vec![k as i64])
                })
                .collect();
            let aug = AugmentConfig {
                mosaic: 1.0,
                ..AugmentConfig::none()
            };
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (pixels, boxes, classes) = mosaic(parts, s, &aug, &mut rng, &norm);
            assert_eq!(pixels.len(), 3 * s * s);
            assert_eq!(boxes.len(), classes.len());
            for (b, &c) in boxes.iter().zip(&classes) {
                assert!(b.x1 >= 0.0 && b.y1 >= 0.0 && b.x2 <= s as f64 && b.y2 <= s as f64);
                assert!(b.width() >= 2.0 && b.height() >= 2.0);
                let k = usize::try_from(c).unwrap();
                seen[k] = true;
                let (cx, cy) = b.center();
                let at = cy as usize * s + cx as usize;
                let want = solid(k, 1, 1).get_pixel(0, 0).0;
                for ch in 0..3 {
                    let v = pixels[ch * s * s + at];
                    assert!((v - norm.apply(ch, f32::from(want[ch]))).abs() < 1e-4);
                }
            }
        }
        assert_eq!(seen, [true; 4], "every source contributes boxes");
    }

    /// Copy-paste appends exactly the boxes it pasted: inside the image, of the source's
    /// class, holding the source's pixels, and overlapping no other box.
    #[test]
    fn copy_paste_adds_exactly_the_pasted_boxes_inside_the_image() {
        let src = RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 77]));
        let sample = |name: &str, b: BoxXyxy, c: usize| Sample {
            path: PathBuf::from(name),
            width: 64,
            height: 48,
            boxes: vec![b],
            classes: vec![c],
        };
        let pool = vec![
            sample("main", BoxXyxy::new(0.0, 0.0, 20.0, 20.0), 0),
            sample("other", BoxXyxy::new(30.0, 10.0, 46.0, 22.0), 2),
        ];
        let load = |j: usize| {
            let img = if j == 0 {
                RgbImage::new(64, 48)
            } else {
                src.clone()
            };
            Some((img, pool[j].boxes.clone()))
        };
        let mut several = false;
        for seed in 0..12 {
            let mut img = RgbImage::new(64, 48);
            let (mut boxes, mut classes) = (pool[0].boxes.clone(), vec![0i64]);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n = copy_paste(
                &mut img,
                &mut boxes,
                &mut classes,
                &pool,
                0,
                3,
                &mut rng,
                &load,
            );
            assert!((1..=3).contains(&n), "{n}");
            several |= n > 1;
            assert_eq!(boxes.len(), 1 + n);
            assert_eq!(classes, [vec![0], vec![2; n]].concat());
            assert_eq!(boxes[0], pool[0].boxes[0]);
            for (i, b) in boxes.iter().enumerate().skip(1) {
                assert_eq!((b.width(), b.height()), (16.0, 12.0));
                assert!(b.x1 >= 0.0 && b.y1 >= 0.0 && b.x2 <= 64.0 && b.y2 <= 48.0);
                for (j, o) in boxes.iter().enumerate() {
                    if j != i {
                        assert!(b.intersection(o) <= PASTE_MAX_OVERLAP * b.area().min(o.area()));
                    }
                }
            }
            // The last paste is whole: the source's crop.
            let last = boxes[n];
            for dy in 0..12 {
                for dx in 0..16 {
                    let got = img.get_pixel(last.x1 as u32 + dx, last.y1 as u32 + dy);
                    assert_eq!(got, src.get_pixel(30 + dx, 10 + dy));
                }
            }
        }
        assert!(several);
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
