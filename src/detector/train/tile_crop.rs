//! Tiled training: random crops of a large photo at native resolution, so that a 60-pixel
//! can on a 4000-pixel shelf stays 60 pixels in the network input instead of shrinking to
//! 6 with the whole-photo letterbox. The model then detects large photos in tiles of the
//! same size ([`crate::detector::maths::tiling`]).
//!
//! A crop is a `side × side` window of the photo, `side = tile / f` with `f` the scale
//! jitter factor (1 without augmentation), at a random position (a position fixed per
//! image for validation). It is resized by `input / side` and placed top-left on the
//! input canvas (padding bottom/right where the photo is smaller than the window), so the
//! scale never depends on where the window fell. A box cut by the window keeps its label
//! when at least [`MIN_VISIBLE`] of its area stays inside, clipped to the window; a box
//! with less is dropped.

use image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::config::AugmentConfig;
use crate::detector::maths::letterbox::{resize_bilinear, Letterbox, Normalization};
use crate::geometry::BoxXyxy;

/// A box cut by a crop keeps its label when at least this fraction of its area stays in.
pub const MIN_VISIBLE: f64 = 0.4;

/// A window of the photo in original pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropWindow {
    pub x: u32,
    pub y: u32,
    /// The window side before clipping to the photo (the scale is `input / side`).
    pub side: u32,
    pub width: u32,
    pub height: u32,
}

/// Draws the window of a `width × height` photo for tiles of `tile` pixels: its side from
/// the scale jitter of `augment` (none: exactly `tile`), its position uniformly.
pub fn draw_window(
    width: u32,
    height: u32,
    tile: u32,
    augment: Option<&AugmentConfig>,
    rng: &mut ChaCha8Rng,
) -> CropWindow {
    let f = match augment {
        Some(a) if a.scale_max > a.scale_min => rng.random_range(a.scale_min..=a.scale_max),
        Some(a) => a.scale_min,
        None => 1.0,
    };
    let side = ((f64::from(tile) / f.max(1e-3)).round() as u32).max(8);
    let (cw, ch) = (side.min(width), side.min(height));
    let x = rng.random_range(0..=width - cw);
    let y = rng.random_range(0..=height - ch);
    CropWindow {
        x,
        y,
        side,
        width: cw,
        height: ch,
    }
}

/// The boxes of the photo inside `window`, in network-input pixels (scale
/// `input / window.side`), clipped to the window; boxes with less than [`MIN_VISIBLE`] of
/// their area inside, or under 2 pixels wide or high after clipping, are dropped. Returns
/// the kept boxes and the indices of their source boxes.
pub fn boxes_in_window(
    boxes: &[BoxXyxy],
    window: &CropWindow,
    input_size: u32,
) -> (Vec<BoxXyxy>, Vec<usize>) {
    let s = f64::from(input_size) / f64::from(window.side);
    let (w, h) = (f64::from(window.width) * s, f64::from(window.height) * s);
    let (mut kept, mut index) = (Vec::new(), Vec::new());
    for (i, b) in boxes.iter().enumerate() {
        let m = b.translated(-f64::from(window.x), -f64::from(window.y));
        let m = BoxXyxy::new(m.x1 * s, m.y1 * s, m.x2 * s, m.y2 * s);
        let clipped = m.clamp_to(w, h);
        let visible = clipped.area() / m.area().max(1e-9);
        if clipped.width() >= 2.0 && clipped.height() >= 2.0 && visible >= MIN_VISIBLE {
            kept.push(clipped);
            index.push(i);
        }
    }
    (kept, index)
}

/// The normalised `[3, input, input]` pixels of `crop` (the window's pixels), resized by
/// `input / side` and placed top-left; the rest is zero (the mean colour).
pub fn crop_pixels(
    crop: &RgbImage,
    side: u32,
    input_size: u32,
    normalization: &Normalization,
) -> Vec<f32> {
    let s = input_size as usize;
    let scale = f64::from(input_size) / f64::from(side.max(1));
    let rw = ((f64::from(crop.width()) * scale).round() as usize).clamp(1, s);
    let rh = ((f64::from(crop.height()) * scale).round() as usize).clamp(1, s);
    let resized = resize_bilinear(
        crop.as_raw(),
        crop.width() as usize,
        crop.height() as usize,
        3,
        rw,
        rh,
    );
    super::data::place_on_canvas(&resized, (rw, rh), (0, 0), s, normalization)
}

/// Boxes whose median longer side is below this (in network-input pixels, after the whole
/// photo is letterboxed) are too small to train on well: tiles are suggested. It is the
/// smallest EfficientDet anchor (`anchor_scale 4 × stride 8`).
pub const SMALL_BOX_PX: f64 = 32.0;

/// The suggested tile brings the median box to about this size in the network input.
pub const TARGET_BOX_PX: f64 = 64.0;

/// A suggestion to train on tiles: the boxes shrink too much in the whole-photo letterbox.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TileHint {
    /// The median longer box side after letterboxing the whole photo into the input.
    pub letterboxed_px: f64,
    /// The same in original pixels.
    pub native_px: f64,
    /// The suggested tile: the photo pixels that bring the median box to about
    /// [`TARGET_BOX_PX`] in the input (a multiple of 32), at least the input size (native
    /// resolution).
    pub tile: u32,
}

impl std::fmt::Display for TileHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "hint: the median box is {:.0} px in the network input when the whole photo is \
             letterboxed into it ({:.0} px in the photo): too small to find well; training \
             on tiles keeps boxes at their native size (--tile {}, or \"Tiles\" in the Train tab)",
            self.letterboxed_px, self.native_px, self.tile
        )
    }
}

/// Suggests tiles when the median box (longer side) of `samples` shrinks below
/// [`SMALL_BOX_PX`] in the whole-photo letterbox into `input_size`, while at native size
/// it is at least twice that (tiles would help).
pub fn tile_hint(samples: &[super::data::Sample], input_size: u32) -> Option<TileHint> {
    let mut sizes: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.width > 0 && s.height > 0)
        .flat_map(|s| {
            let scale = f64::from(input_size) / f64::from(s.width.max(s.height));
            s.boxes.iter().map(move |b| {
                let native = b.width().max(b.height());
                (native * scale, native)
            })
        })
        .collect();
    if sizes.is_empty() {
        return None;
    }
    sizes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (letterboxed_px, native_px) = sizes[sizes.len() / 2];
    let tile = ((native_px * f64::from(input_size) / TARGET_BOX_PX / 32.0).round() as u32 * 32)
        .max(input_size);
    (letterboxed_px < SMALL_BOX_PX && native_px >= 2.0 * letterboxed_px).then_some(TileHint {
        letterboxed_px,
        native_px,
        tile,
    })
}

/// The frame of a crop's boxes and detections: the network input itself.
pub fn input_frame(input_size: u32) -> Letterbox {
    Letterbox::new(input_size, input_size, input_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_window_is_the_tile_at_native_scale_without_augmentation() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            let w = draw_window(4000, 3000, 384, None, &mut rng);
            assert_eq!((w.side, w.width, w.height), (384, 384, 384));
            assert!(w.x + 384 <= 4000 && w.y + 384 <= 3000);
        }
        // A photo smaller than the tile: the whole photo, at the tile's scale.
        let w = draw_window(300, 200, 384, None, &mut rng);
        assert_eq!((w.x, w.y, w.side, w.width, w.height), (0, 0, 384, 300, 200));
    }

    #[test]
    fn the_scale_jitter_sets_the_window_side() {
        let aug = AugmentConfig {
            scale_min: 0.5,
            scale_max: 2.0,
            ..AugmentConfig::none()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let sides: Vec<u32> = (0..200)
            .map(|_| draw_window(4000, 3000, 400, Some(&aug), &mut rng).side)
            .collect();
        assert!(sides.iter().all(|&s| (200..=800).contains(&s)));
        assert!(sides.iter().any(|&s| s < 300) && sides.iter().any(|&s| s > 600));
    }

    /// Exact cases: a window at (100, 100) of side 200 into a 400 input (scale 2).
    #[test]
    fn boxes_cut_by_the_window_keep_their_label_only_when_mostly_inside() {
        let window = CropWindow {
            x: 100,
            y: 100,
            side: 200,
            width: 200,
            height: 200,
        };
        let boxes = [
            BoxXyxy::new(120.0, 120.0, 140.0, 160.0), // inside
            BoxXyxy::new(80.0, 120.0, 130.0, 140.0),  // 30 of 50 px wide inside: 60 %
            BoxXyxy::new(60.0, 120.0, 110.0, 140.0),  // 10 of 50 inside: 20 %
            BoxXyxy::new(500.0, 500.0, 520.0, 520.0), // outside
            BoxXyxy::new(290.0, 150.0, 300.5, 170.0), // half a pixel outside: kept
        ];
        let (kept, index) = boxes_in_window(&boxes, &window, 400);
        assert_eq!(index, vec![0, 1, 4]);
        assert_eq!(kept[0], BoxXyxy::new(40.0, 40.0, 80.0, 120.0));
        assert_eq!(kept[1], BoxXyxy::new(0.0, 40.0, 60.0, 80.0));
        assert_eq!(kept[2], BoxXyxy::new(380.0, 100.0, 400.0, 140.0));
        assert!(kept
            .iter()
            .all(|b| b.x2 <= 400.0 && b.y2 <= 400.0 && b.x1 >= 0.0));
    }

    #[test]
    fn tiles_are_suggested_when_boxes_shrink_below_the_smallest_anchor() {
        let sample = |w: u32, side: f64| super::super::data::Sample {
            path: "x.jpg".into(),
            width: w,
            height: w * 3 / 4,
            boxes: vec![BoxXyxy::new(0.0, 0.0, side, side); 3],
            classes: vec![0; 3],
        };
        // 60-px cans on 4000-px shelves: 5.8 px at 384; native tiles.
        let hint = tile_hint(&[sample(4000, 60.0)], 384).unwrap();
        assert_eq!(hint.tile, 384);
        assert!((hint.letterboxed_px - 5.76).abs() < 1e-9);
        // 194-px facings on 3500-px shelves: 21 px at 384; tiles of 1152 bring them to 65.
        assert_eq!(tile_hint(&[sample(3500, 194.0)], 384).unwrap().tile, 1152);
        // Bottles of 150 px on 640-px photos: 90 px at 384, no hint.
        assert_eq!(tile_hint(&[sample(640, 150.0)], 384), None);
        assert_eq!(tile_hint(&[], 384), None);
    }

    #[test]
    fn a_crop_is_resized_by_input_over_side_and_padded_with_the_mean() {
        let crop = RgbImage::from_pixel(100, 50, image::Rgb([255, 0, 127]));
        let px = crop_pixels(&crop, 200, 100, &Normalization::LITE);
        // 100 × 50 at scale 0.5 → 50 × 25 at the top-left of 100 × 100.
        let r = |x: usize, y: usize| px[y * 100 + x];
        assert_eq!(r(0, 0), Normalization::LITE.apply(0, 255.0));
        assert_eq!(r(49, 24), Normalization::LITE.apply(0, 255.0));
        assert_eq!(r(50, 0), 0.0);
        assert_eq!(r(0, 25), 0.0);
        assert_eq!(px[2 * 100 * 100], Normalization::LITE.apply(2, 127.0));
    }
}
