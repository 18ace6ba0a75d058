//! Training augmentations: the image and box transforms that [`super::data`] applies to a
//! training image when augmentation is on ([`super::data::prepare`],
//! [`super::data::prepare_in`]). Each is drawn from the image's ChaCha8 RNG, seeded by
//! `(seed, epoch, image index)`, so that a run is reproducible whatever the thread count:
//! * colour jitter ([`color_jitter`]): brightness, contrast and saturation factors in
//!   `[1 − s, 1 + s]`;
//! * horizontal flip;
//! * scale jitter: the letterbox is made at `size · f` ([`augment_resize`]) and then
//!   cropped at a random offset (when larger than the input) or padded bottom/right (when
//!   smaller). Boxes are mapped and clipped;
//! * rotation by up to `rotate_deg` about the centre ([`rotate_rgb`], boxes by the
//!   rotated-ellipse rule of [`rotate_box`]), after the resize;
//! * mosaic ([`mosaic`]): four images of the set in the quadrants around a random centre;
//! * copy-paste ([`copy_paste`]): labelled boxes cut from other images of the set pasted
//!   at free places (overlapping no box by more than [`PASTE_MAX_OVERLAP`]).
//!
//! Mosaic and copy-paste need the other images of the set (the pool that
//! [`super::data::prepare_in`] passes); the last three are off by default and ignored by
//! tiled training, which only jitters colours and flips its crop.
//!
//! One visible-fraction rule is shared by every transform that cuts boxes (the
//! scale-jitter crop, a rotation past the border, a mosaic quadrant) and by tiled
//! training's crops ([`super::tile_crop`]): a box keeps its label, clipped, when at least
//! [`tile_crop::MIN_VISIBLE`] (40 %) of its area stays visible and it is still at least
//! 2 pixels wide and high ([`keep_visible`]); otherwise it is dropped.

use image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::config::AugmentConfig;
use super::data::Sample;
use super::tile_crop;
use crate::detector::maths::letterbox::{resize_bilinear, Letterbox, Normalization};
use crate::geometry::BoxXyxy;

/// Brightness, contrast and saturation jitter in place.
pub(super) fn color_jitter(img: &mut RgbImage, strength: f64, rng: &mut ChaCha8Rng) {
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

/// The 0–255 RGB colour that normalises to zero (the padding colour).
pub(super) fn mean_fill(n: &Normalization) -> [f32; 3] {
    [
        n.mean[0] * n.pixel_scale,
        n.mean[1] * n.pixel_scale,
        n.mean[2] * n.pixel_scale,
    ]
}

/// An index of `0..n` other than `index` (`n ≥ 2`).
pub(super) fn other_index(n: usize, index: usize, rng: &mut ChaCha8Rng) -> usize {
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
pub(super) fn keep_visible(
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
pub(super) struct Resized {
    /// Interleaved RGB values 0–255, `width × height`.
    pub(super) pixels: Vec<f32>,
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) boxes: Vec<BoxXyxy>,
}

/// Colour jitter, flip, the letterbox resize to `base · f` (`f` the scale jitter) and the
/// rotation of one image, drawn from `rng` in that order (nothing is drawn for an
/// augmentation that is off).
pub(super) fn augment_resize(
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
pub(super) fn copy_paste(
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
pub(super) fn mosaic(
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rand::SeedableRng;

    use super::*;

    fn close(a: &BoxXyxy, b: &BoxXyxy) -> bool {
        [a.x1 - b.x1, a.y1 - b.y1, a.x2 - b.x2, a.y2 - b.y2]
            .iter()
            .all(|d| d.abs() < 1e-9)
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
}
