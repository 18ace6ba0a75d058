//! A crop's thumbnail and its cheap appearance descriptor: a colour histogram (what the
//! product is printed in), a coarse grey layout (where its light and dark parts are), a
//! hue histogram of the crop's middle (the product's own colour, without the background
//! and hands at a loose box's edges) and the box's shape (a tall and a short pack of one
//! brand differ mostly there). All come from the thumbnail, so that describing a crop
//! costs microseconds.

use image::RgbImage;

use crate::geometry::BoxXyxy;

/// The longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 96;
/// Histogram bins per colour channel.
const BINS: usize = 4;
/// The grey layout is `LAYOUT × LAYOUT` cells.
const LAYOUT: usize = 8;
/// Hue bins of the middle's histogram (30° each).
const HUE_BINS: usize = 12;
/// Saturation bins per hue.
const SATURATION_BINS: usize = 3;
/// Brightness bins for the grey pixels of the middle (those with too little colour for a
/// hue).
const GREY_BINS: usize = 4;
/// The middle's histogram part.
const MIDDLE_LEN: usize = HUE_BINS * SATURATION_BINS + GREY_BINS;
/// The middle is this fraction of the crop's width and height, centred.
const MIDDLE: f64 = 0.6;
/// Histogram part, layout part, middle part, the shape, then the relative size.
pub const DESCRIPTOR_LEN: usize = BINS * BINS * BINS + LAYOUT * LAYOUT + MIDDLE_LEN + 2;
/// The shape's weight: height/width ratios 30 % apart are about as far apart as two
/// colours that share half their pixels.
const SHAPE_WEIGHT: f32 = 2.5;
/// The relative size's weight (and the pack size's, in [`Descriptor::distance_at_sizes`]):
/// a pack 30 % taller than its shelf neighbours of the same look is about as far from them
/// as a shape 30 % apart. Weights of 2, 4.5 and 6 for the pack size changed the simulated
/// labeller's count on three folders by −4 to +4 of 1,232 actions (BENCHMARKS.md).
const SIZE_WEIGHT: f32 = 3.0;

/// What a crop looks like, as a point where similar crops lie close together: the square
/// roots of the colour histogram's proportions (unit length), the grey layout with its
/// mean removed (unit length, or zero for a flat crop), the square roots of the middle's
/// hue histogram (unit length), and the logarithm of the height/width ratio (weighted).
///
/// The middle's hues were added for hand-held bottles, whose loose boxes are half hands
/// and clothes: on `cola-sprite/train` after its first 200 photos they made 22 → 18 wrong
/// classes by look, and 195 against 203 over that folder, two sparse and four dense demo
/// folders (BENCHMARKS.md).
#[derive(Clone, Debug, PartialEq)]
pub struct Descriptor(pub [f32; DESCRIPTOR_LEN]);

impl Default for Descriptor {
    fn default() -> Self {
        Self([0.0; DESCRIPTOR_LEN])
    }
}

impl Descriptor {
    /// Squared Euclidean distance (the histogram and the layout contribute at most 4
    /// each).
    pub fn distance(&self, other: &Self) -> f32 {
        squared_distance(&self.0, &other.0)
    }

    /// [`Self::distance`] with the relative sizes left out, plus the squared gap
    /// `log_size_gap` (the logarithm of a height ratio), weighted as a relative size is,
    /// when there is one.
    pub fn distance_at_sizes(&self, other: &Self, log_size_gap: Option<f64>) -> f32 {
        let appearance = squared_distance(
            &self.0[..DESCRIPTOR_LEN - 1],
            &other.0[..DESCRIPTOR_LEN - 1],
        );
        let size = log_size_gap.map_or(0.0, |g| SIZE_WEIGHT * g as f32);
        appearance + size * size
    }
}

/// The sum of the squared differences of `a` and `b`.
fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| (a - b) * (a - b)).sum()
}

/// The part of `image` under `bbox`, scaled to fit [`THUMB_SIDE`] (never enlarged);
/// `None` when the box lies outside the image or is under a pixel wide.
pub fn thumbnail(image: &RgbImage, bbox: &BoxXyxy) -> Option<RgbImage> {
    let (w, h) = (image.width() as f64, image.height() as f64);
    let x1 = bbox.x1.clamp(0.0, w).floor() as u32;
    let y1 = bbox.y1.clamp(0.0, h).floor() as u32;
    let x2 = bbox.x2.clamp(0.0, w).ceil() as u32;
    let y2 = bbox.y2.clamp(0.0, h).ceil() as u32;
    if x2 <= x1 || y2 <= y1 {
        return None;
    }
    let (cw, ch) = (x2 - x1, y2 - y1);
    let crop = image::imageops::crop_imm(image, x1, y1, cw, ch).to_image();
    let longest = cw.max(ch);
    if longest <= THUMB_SIDE {
        return Some(crop);
    }
    let scale = THUMB_SIDE as f64 / longest as f64;
    let tw = ((cw as f64 * scale).round() as u32).max(1);
    let th = ((ch as f64 * scale).round() as u32).max(1);
    Some(image::imageops::resize(
        &crop,
        tw,
        th,
        image::imageops::FilterType::Triangle,
    ))
}

impl Descriptor {
    /// Records the box's height relative to its image's typical box height (the median):
    /// the small and the large pack of a product look alike, and differ in size against
    /// their neighbours. 1 (the default) is the typical size.
    pub fn set_relative_size(&mut self, ratio: f32) {
        let ratio = if ratio.is_finite() && ratio > 0.0 {
            ratio
        } else {
            1.0
        };
        self.0[DESCRIPTOR_LEN - 1] = SIZE_WEIGHT * ratio.ln();
    }
}

/// The typical (median) height of `boxes`, which [`Descriptor::set_relative_size`]
/// measures a box's height against; `None` for no boxes.
pub fn typical_height<'a>(boxes: impl Iterator<Item = &'a BoxXyxy>) -> Option<f64> {
    let mut heights: Vec<f64> = boxes.map(BoxXyxy::height).collect();
    heights.sort_unstable_by(f64::total_cmp);
    heights.get(heights.len() / 2).copied()
}

/// The descriptor of a thumbnail (see [`Descriptor`]), at the typical size.
pub fn describe(thumb: &RgbImage) -> Descriptor {
    let mut d = Descriptor::default();
    let (w, h) = (thumb.width() as usize, thumb.height() as usize);
    if w == 0 || h == 0 {
        return d;
    }
    let hist_len = BINS * BINS * BINS;
    let mut layout = [0.0f32; LAYOUT * LAYOUT];
    let mut counts = [0.0f32; LAYOUT * LAYOUT];
    for (x, y, p) in thumb.enumerate_pixels() {
        let [r, g, b] = p.0;
        let bin = |v: u8| v as usize * BINS / 256;
        d.0[(bin(r) * BINS + bin(g)) * BINS + bin(b)] += 1.0;
        let cell = (y as usize * LAYOUT / h) * LAYOUT + x as usize * LAYOUT / w;
        layout[cell] += 0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32;
        counts[cell] += 1.0;
    }
    let n = (w * h) as f32;
    for v in &mut d.0[..hist_len] {
        *v = (*v / n).sqrt();
    }
    // A crop smaller than the layout leaves cells empty: they take the mean.
    let filled: Vec<f32> = layout
        .iter()
        .zip(counts.iter())
        .filter(|(_, &c)| c > 0.0)
        .map(|(s, c)| s / c)
        .collect();
    let mean = filled.iter().sum::<f32>() / filled.len().max(1) as f32;
    for (k, (s, c)) in layout.iter().zip(counts.iter()).enumerate() {
        d.0[hist_len + k] = if *c > 0.0 { s / c - mean } else { 0.0 };
    }
    let layout_part = hist_len..hist_len + LAYOUT * LAYOUT;
    let norm = d.0[layout_part.clone()]
        .iter()
        .map(|v| v * v)
        .sum::<f32>()
        .sqrt();
    if norm > 1e-3 {
        for v in &mut d.0[layout_part] {
            *v /= norm;
        }
    } else {
        d.0[layout_part].fill(0.0);
    }
    let middle = hist_len + LAYOUT * LAYOUT;
    d.0[middle..middle + MIDDLE_LEN].copy_from_slice(&middle_hues(thumb));
    d.0[DESCRIPTOR_LEN - 2] = SHAPE_WEIGHT * (h as f32 / w as f32).ln();
    d
}

/// The square roots of the proportions of the middle's pixels by hue and saturation, or
/// by brightness for the grey ones (saturation·value under 0.15, or value under 0.15).
fn middle_hues(thumb: &RgbImage) -> [f32; MIDDLE_LEN] {
    let (w, h) = (thumb.width() as f64, thumb.height() as f64);
    let inside = |v: f64, side: f64| (v - side / 2.0).abs() <= side * MIDDLE / 2.0;
    let mut bins = [0.0f32; MIDDLE_LEN];
    let mut n = 0.0f32;
    for (x, y, p) in thumb.enumerate_pixels() {
        if !inside(x as f64 + 0.5, w) || !inside(y as f64 + 0.5, h) {
            continue;
        }
        n += 1.0;
        let [r, g, b] = p.0.map(|c| c as f32 / 255.0);
        let max = r.max(g).max(b);
        let chroma = max - r.min(g).min(b);
        if chroma < 0.15 || max < 0.15 {
            let k = ((max * GREY_BINS as f32) as usize).min(GREY_BINS - 1);
            bins[HUE_BINS * SATURATION_BINS + k] += 1.0;
            continue;
        }
        // Hue in sixths of the colour circle, as in HSV.
        let sixths = if max == r {
            ((g - b) / chroma).rem_euclid(6.0)
        } else if max == g {
            (b - r) / chroma + 2.0
        } else {
            (r - g) / chroma + 4.0
        };
        let hue = ((sixths / 6.0 * HUE_BINS as f32) as usize).min(HUE_BINS - 1);
        let saturation =
            ((chroma / max * SATURATION_BINS as f32) as usize).min(SATURATION_BINS - 1);
        bins[hue * SATURATION_BINS + saturation] += 1.0;
    }
    for v in &mut bins {
        *v = (*v / n.max(1.0)).sqrt();
    }
    bins
}

#[cfg(test)]
mod tests {
    use super::*;

    fn striped(top: [u8; 3], bottom: [u8; 3], w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |_, y| {
            image::Rgb(if y < h / 2 { top } else { bottom })
        })
    }

    #[test]
    fn a_thumbnail_fits_the_side_and_keeps_the_aspect() {
        let img = striped([200, 0, 0], [0, 0, 200], 1000, 800);
        let t = thumbnail(&img, &BoxXyxy::new(100.0, 100.0, 300.0, 500.0)).unwrap();
        assert_eq!((t.width(), t.height()), (48, THUMB_SIDE));
        let small = thumbnail(&img, &BoxXyxy::new(10.0, 10.0, 30.0, 20.0)).unwrap();
        assert_eq!((small.width(), small.height()), (20, 10));
        assert!(thumbnail(&img, &BoxXyxy::new(2000.0, 10.0, 2100.0, 20.0)).is_none());
    }

    #[test]
    fn the_same_look_at_another_size_is_closer_than_another_look() {
        let a = describe(&striped([200, 0, 0], [250, 250, 250], 40, 80));
        let b = describe(&striped([205, 5, 0], [245, 250, 250], 30, 64));
        let c = describe(&striped([0, 150, 0], [250, 250, 250], 40, 80));
        let flipped = describe(&striped([250, 250, 250], [200, 0, 0], 40, 80));
        assert!(a.distance(&b) < 0.05, "{}", a.distance(&b));
        assert!(a.distance(&c) > 0.5);
        assert!(
            a.distance(&flipped) > a.distance(&b) + 1.0,
            "the layout counts"
        );
    }

    /// A product filling the middle of a loose box (36 % of it), the rest background.
    fn framed(frame: [u8; 3], middle: [u8; 3]) -> RgbImage {
        RgbImage::from_fn(50, 50, |x, y| {
            let inside = (10..40).contains(&x) && (10..40).contains(&y);
            image::Rgb(if inside { middle } else { frame })
        })
    }

    #[test]
    fn the_middle_colour_outweighs_what_surrounds_a_loose_box() {
        let red_on_grey = describe(&framed([128, 128, 128], [200, 0, 0]));
        let red_on_brown = describe(&framed([120, 70, 30], [200, 0, 0]));
        let green_on_grey = describe(&framed([128, 128, 128], [0, 180, 0]));
        assert!(
            red_on_grey.distance(&red_on_brown) < red_on_grey.distance(&green_on_grey),
            "same product, other background: {} against another product, same background: {}",
            red_on_grey.distance(&red_on_brown),
            red_on_grey.distance(&green_on_grey)
        );
    }
}
