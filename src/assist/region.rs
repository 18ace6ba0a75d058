//! A box grown from a click on the image alone (no model).
//!
//! The image (subsampled to at most about a megapixel, so a 12 MP photo costs the
//! same as a small one, then the box refined at full resolution) is cut into colour-connected segments (see [`super::segments`]:
//! shading and mild texture stay one segment, a change of colour does not). Segments
//! that touch the image border or cover a large part of the image are background
//! (wall, shelves). The object under the click
//! is the 4-connected set of non-background pixels containing it (the clicked segment
//! and, transitively, every non-background segment next to it: a bottle's cap, neck,
//! label and body), and the answer is its bounding box.

use image::RgbImage;

use crate::geometry::BoxXyxy;

use super::segments::segment;
use super::tighten::tighten_within;

/// Segmentation works on at most this many pixels (larger images are box-averaged).
const MAX_PIXELS: u64 = 1_000_000;
/// A segment larger than this fraction of the image is background.
const BACKGROUND_FRACTION: f64 = 0.2;
/// No box larger than this fraction of the image is returned.
const MAX_BOX_FRACTION: f64 = 1.0 / 3.0;

/// The box of the object under `click` (image pixels), found from colours and edges
/// only; `None` when nothing object-like is there.
///
/// `None` also when the click is outside the image or not finite, when the clicked
/// colour belongs to the background (a segment touching the image border or a very
/// large one), and when the object found would cover more than a third of the image.
/// An object cut by the image border counts as background.
pub fn grow_from_click(image: &RgbImage, click: [f64; 2]) -> Option<BoxXyxy> {
    let (w, h) = (image.width() as u64, image.height() as u64);
    if w == 0 || h == 0 || !click[0].is_finite() || !click[1].is_finite() {
        return None;
    }
    if click[0] < 0.0 || click[1] < 0.0 || click[0] >= w as f64 || click[1] >= h as f64 {
        return None;
    }
    // Downscale factor: the smallest integer f with (w/f)·(h/f) ≤ MAX_PIXELS.
    let mut f = 1u64;
    while w.div_ceil(f) * h.div_ceil(f) > MAX_PIXELS {
        f += 1;
    }
    let small = Small::from_image(image, f as u32);
    let (sx, sy) = (
        (click[0] as u64 / f) as usize,
        (click[1] as u64 / f) as usize,
    );
    let seg = segment(&small.px, small.w, small.h, BACKGROUND_FRACTION);
    let (x1, y1, x2, y2) = seg.extent(&[sy * small.w + sx])?;
    let fw = f as f64;
    let mut bbox = BoxXyxy::new(
        x1 as f64 * fw,
        y1 as f64 * fw,
        (x2 as f64 * fw).min(w as f64),
        (y2 as f64 * fw).min(h as f64),
    );
    if f > 1 {
        // Back at full resolution, the edges are only known to within a block.
        let r = f as i64 + 1;
        bbox = tighten_within(image, bbox, r, r);
    }
    if bbox.area() > MAX_BOX_FRACTION * (w * h) as f64 || bbox.area() <= 0.0 {
        return None;
    }
    Some(bbox)
}

/// A (possibly downscaled) copy of the image, row-major RGB.
struct Small {
    w: usize,
    h: usize,
    px: Vec<[u8; 3]>,
}

impl Small {
    /// `image` sampled at the centre of every `f`×`f` block (sampling, not averaging:
    /// an average blends the colours on both sides of an edge into a seam that can
    /// link neighbouring objects).
    fn from_image(image: &RgbImage, f: u32) -> Self {
        let f = f.max(1);
        let (iw, ih) = (image.width(), image.height());
        let (w, h) = (iw.div_ceil(f), ih.div_ceil(f));
        let mut px = Vec::with_capacity((w * h) as usize);
        for y in 0..h {
            let sy = (y * f + f / 2).min(ih.saturating_sub(1));
            for x in 0..w {
                let sx = (x * f + f / 2).min(iw.saturating_sub(1));
                px.push(image.get_pixel_checked(sx, sy).map_or([0; 3], |p| p.0));
            }
        }
        Self {
            w: w as usize,
            h: h as usize,
            px,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::render_scene;

    /// The scene's image after a JPEG round trip at the demo's quality.
    fn jpeg(image: &RgbImage) -> RgbImage {
        let mut bytes = Vec::new();
        let ok = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92)
            .encode_image(image)
            .is_ok();
        assert!(ok);
        image::load_from_memory(&bytes)
            .map(|i| i.to_rgb8())
            .unwrap_or_else(|_| image.clone())
    }

    /// Fraction of demo boxes whose centre click grows a box with IoU ≥ 0.9.
    fn centre_click_fraction(jpeg_round_trip: bool) -> (usize, usize) {
        let (mut total, mut good) = (0, 0);
        for index in 0..6 {
            let scene = render_scene(5, index, 640, 480);
            let image = if jpeg_round_trip {
                jpeg(&scene.image)
            } else {
                scene.image.clone()
            };
            for lb in &scene.boxes {
                let (cx, cy) = lb.bbox.center();
                total += 1;
                let found = grow_from_click(&image, [cx, cy]);
                if found.is_some_and(|b| b.iou(&lb.bbox) >= 0.9) {
                    good += 1;
                } else {
                    println!("  miss: image {index} {:?} -> {found:?}", lb.bbox);
                }
            }
        }
        (good, total)
    }

    #[test]
    fn centre_clicks_on_demo_products_give_their_boxes() {
        let (good, total) = centre_click_fraction(false);
        let frac = good as f64 / total as f64;
        println!("grow_from_click: {good}/{total} = {frac:.3} demo boxes with IoU >= 0.9");
        assert!(total > 30);
        assert!(frac >= 0.9, "only {frac:.3}");
    }

    #[test]
    fn centre_clicks_survive_the_demo_jpeg_quality() {
        let (good, total) = centre_click_fraction(true);
        let frac = good as f64 / total as f64;
        println!("grow_from_click (JPEG q92): {good}/{total} = {frac:.3} with IoU >= 0.9");
        assert!(frac >= 0.8, "only {frac:.3}");
    }

    #[test]
    fn clicks_on_the_wall_or_outside_give_nothing() {
        let (mut total, mut none) = (0, 0);
        for index in 0..3 {
            let scene = render_scene(5, index, 640, 480);
            // Background pixels (wall and shelves) all over the image.
            for (i, _) in scene
                .owner
                .iter()
                .enumerate()
                .filter(|(_, &o)| o == 0)
                .step_by(997)
            {
                let click = [(i % 640) as f64 + 0.5, (i / 640) as f64 + 0.5];
                total += 1;
                if grow_from_click(&scene.image, click).is_none() {
                    none += 1;
                }
            }
            assert_eq!(grow_from_click(&scene.image, [-1.0, 5.0]), None);
            assert_eq!(grow_from_click(&scene.image, [640.0, 5.0]), None);
            assert_eq!(grow_from_click(&scene.image, [f64::NAN, 5.0]), None);
        }
        println!("grow_from_click: {none}/{total} background clicks give None");
        assert_eq!(none, total);
        let empty = RgbImage::new(0, 0);
        assert_eq!(grow_from_click(&empty, [0.0, 0.0]), None);
    }

    #[test]
    fn a_large_image_is_downscaled_and_still_exact_enough() {
        // 1600×1200 = 1.9 MP: segmented at half resolution, edges snapped back.
        let scene = render_scene(8, 2, 1600, 1200);
        let (mut total, mut good) = (0, 0);
        for lb in scene.boxes.iter().take(6) {
            let (cx, cy) = lb.bbox.center();
            total += 1;
            if grow_from_click(&scene.image, [cx, cy]).is_some_and(|b| b.iou(&lb.bbox) >= 0.9) {
                good += 1;
            }
        }
        println!("grow_from_click at 1600x1200: {good}/{total}");
        assert!(total == 0 || good * 10 >= total * 8);
    }
}
