//! Pre-processing: one [`Sample`] decoded and turned into a network input ([`Prepared`]):
//! the inference letterbox, or, when augmenting, the transforms of
//! [`augment`](crate::detector::train::augment) drawn from the image's seeded RNG, or a
//! crop of a tiled training run ([`tile_crop`]).

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{DataError, Sample};
use crate::dataset::image_info::decode_upright_rgb;
use crate::detector::maths::letterbox::{letterbox_rgb, Letterbox, Normalization};
use crate::detector::train::augment::{
    augment_resize, color_jitter, copy_paste, keep_visible, mean_fill, mosaic, other_index,
};
use crate::detector::train::config::AugmentConfig;
use crate::detector::train::tile_crop;
use crate::geometry::BoxXyxy;

/// How images become network inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    pub input_size: u32,
    pub normalization: Normalization,
    /// `None` for validation (letterbox only).
    pub augment: Option<AugmentConfig>,
    pub seed: u64,
    /// Tiled training: a crop of this many original pixels at native resolution instead of
    /// the whole photo ([`tile_crop`]); for validation, one crop fixed per image.
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

/// The normalised `[3, s, s]` input holding the RGB values `resized` (`rw × rh`) from its
/// pixel `(ox, oy)` at the top-left; the rest is zero (the mean colour).
pub(in crate::detector::train) fn place_on_canvas(
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

/// A crop of `img` for tiled training ([`tile_crop`]): the window drawn from the
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

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
