//! Snapping a box's edges to the object's edges.
//!
//! First choice: the area around the box (the box grown by 1.5 search radii) is
//! segmented by colour (see [`super::segments`]); segments cut by that area's border
//! (wall, shelf, neighbouring products reaching into it) are background, and the box
//! becomes the extent of the object pixels connected to the box's central part.
//!
//! Fallback (no object there, or the object would move an edge further than the
//! radius): each side of the box is moved, within the search radius, to the pixel edge
//! where the image changes most along that side. The strength of a candidate edge is
//! the mean colour difference between the pixel line just inside it and the line just
//! outside it, taken over the box's current span along that side (see
//! [`edge_strength`]).

use image::RgbImage;

use crate::geometry::BoxXyxy;

use super::segments::segment;

/// Search radius as a fraction of the box side (width for the left and right edges,
/// height for the top and bottom ones).
const RADIUS_FRACTION: f64 = 0.2;
/// The smallest search radius, in pixels.
const MIN_RADIUS: i64 = 3;
/// An edge moves only to a candidate at least this much stronger than where it is, so
/// that a box that is already tight stays put.
const HYSTERESIS: f64 = 1.05;
/// Candidates within this fraction of the strongest count as equally strong; the one
/// closest to the current position wins.
const TIE_FRACTION: f64 = 0.97;
/// Passes over the four sides (each pass uses the spans the previous one found).
const PASSES: usize = 4;
/// The segmented area around a box is at most this many pixels (else: edges only).
const MAX_SEGMENTED_PIXELS: usize = 2_500_000;

/// `bbox` with each edge moved (within a few pixels) to the object's edge: the extent
/// of the colour segment(s) in the box's middle, else the strongest image edge (see
/// the module docs). A box that is already tight stays put.
///
/// The search radius is `max(3 px, 20 % of the box side)`; the result is never empty
/// and never leaves the image. A box that cannot be worked on (not finite, or with no
/// pixel inside the image) is returned unchanged.
pub fn tighten(image: &RgbImage, bbox: BoxXyxy) -> BoxXyxy {
    let b = bbox.normalized();
    let rx = MIN_RADIUS.max((b.width() * RADIUS_FRACTION).round() as i64);
    let ry = MIN_RADIUS.max((b.height() * RADIUS_FRACTION).round() as i64);
    tighten_within(image, bbox, rx, ry)
}

/// [`tighten`] with explicit search radii (pixels) for the left/right and top/bottom
/// edges.
pub(crate) fn tighten_within(image: &RgbImage, bbox: BoxXyxy, rx: i64, ry: i64) -> BoxXyxy {
    by_segments(image, bbox, rx, ry).unwrap_or_else(|| snap_edges(image, bbox, rx, ry))
}

/// The extent of the object in the middle of `bbox`, from a colour segmentation of the
/// box grown by 1.5 times the radii (plus two pixels); `None` when there is no object
/// there or an edge would move further than its radius.
fn by_segments(image: &RgbImage, bbox: BoxXyxy, rx: i64, ry: i64) -> Option<BoxXyxy> {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let start = pixel_edges(bbox, w, h)?;
    // Half a radius more than the search, so that an object reaching the search limit
    // is not cut by the area's border.
    let (mx, my) = (rx + rx / 2 + 2, ry + ry / 2 + 2);
    let (wx1, wy1) = ((start[0] - mx).max(0), (start[1] - my).max(0));
    let (wx2, wy2) = ((start[2] + mx).min(w), (start[3] + my).min(h));
    let (ww, wh) = ((wx2 - wx1) as usize, (wy2 - wy1) as usize);
    if ww * wh > MAX_SEGMENTED_PIXELS {
        return None;
    }
    let view = View::new(image);
    let mut px = Vec::with_capacity(ww * wh);
    for y in wy1..wy2 {
        for x in wx1..wx2 {
            let p = view.pixel(x, y)?;
            px.push([*p.first()?, *p.get(1)?, *p.get(2)?]);
        }
    }
    // The object fills most of this area, so only the border decides the background.
    let seg = segment(&px, ww, wh, 1.0);
    // Seeds: the middle third of the box (in window coordinates).
    let (bw, bh) = (start[2] - start[0], start[3] - start[1]);
    let (cx1, cx2) = (start[0] + bw / 3, start[0] + (2 * bw + 2) / 3);
    let (cy1, cy2) = (start[1] + bh / 3, start[1] + (2 * bh + 2) / 3);
    let mut seeds = Vec::new();
    for y in cy1..cy2.max(cy1 + 1) {
        for x in cx1..cx2.max(cx1 + 1) {
            seeds.push(((y - wy1) * ww as i64 + (x - wx1)) as usize);
        }
    }
    let (x1, y1, x2, y2) = seg.extent(&seeds)?;
    let found = [
        x1 as i64 + wx1,
        y1 as i64 + wy1,
        x2 as i64 + wx1,
        y2 as i64 + wy1,
    ];
    let radii = [rx, ry, rx, ry];
    if (0..4).any(|i| (found[i] - start[i]).abs() > radii[i]) {
        return None;
    }
    Some(BoxXyxy::new(
        found[0] as f64,
        found[1] as f64,
        found[2] as f64,
        found[3] as f64,
    ))
}

/// The edge-strength fallback of [`tighten`] alone, with explicit search radii (pixels)
/// for the left/right and top/bottom edges.
pub(crate) fn snap_edges(image: &RgbImage, bbox: BoxXyxy, rx: i64, ry: i64) -> BoxXyxy {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let Some(start) = pixel_edges(bbox, w, h) else {
        return bbox;
    };
    let (rx, ry) = (rx.max(1), ry.max(1));
    let view = View::new(image);
    let mut cur = start;
    for _ in 0..PASSES {
        let prev = cur;
        for side in [Side::Left, Side::Right, Side::Top, Side::Bottom] {
            let r = if side.vertical_line() { rx } else { ry };
            cur = snap_side(&view, cur, start, side, r);
        }
        if cur == prev {
            break;
        }
    }
    BoxXyxy::new(cur[0] as f64, cur[1] as f64, cur[2] as f64, cur[3] as f64)
}

/// One side of a box `[x1, y1, x2, y2]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Left,
    Right,
    Top,
    Bottom,
}

impl Side {
    /// Index of this side's coordinate in `[x1, y1, x2, y2]`.
    fn index(self) -> usize {
        match self {
            Side::Left => 0,
            Side::Top => 1,
            Side::Right => 2,
            Side::Bottom => 3,
        }
    }

    /// Whether the edge is a vertical line (left/right).
    fn vertical_line(self) -> bool {
        matches!(self, Side::Left | Side::Right)
    }
}

/// Moves one side of `cur` to the strongest edge within `r` of its position in `start`,
/// keeping the box at least one pixel wide and tall.
fn snap_side(view: &View, cur: [i64; 4], start: [i64; 4], side: Side, r: i64) -> [i64; 4] {
    let i = side.index();
    let (limit, span) = if side.vertical_line() {
        (view.w, (cur[1], cur[3]))
    } else {
        (view.h, (cur[0], cur[2]))
    };
    // Candidate positions: within `r` of the starting edge, inside the image, and on
    // the right side of the opposite edge.
    let (mut lo, mut hi) = ((start[i] - r).max(0), (start[i] + r).min(limit));
    match side {
        Side::Left => hi = hi.min(cur[2] - 1),
        Side::Top => hi = hi.min(cur[3] - 1),
        Side::Right => lo = lo.max(cur[0] + 1),
        Side::Bottom => lo = lo.max(cur[1] + 1),
    }
    if lo > hi {
        return cur;
    }
    let here = cur[i].clamp(lo, hi);
    let scores: Vec<f64> = (lo..=hi)
        .map(|p| edge_strength(view, side, p, span))
        .collect();
    let score_at = |p: i64| scores.get((p - lo) as usize).copied().unwrap_or(0.0);
    let best = scores.iter().copied().fold(0.0_f64, f64::max);
    let mut out = cur;
    out[i] = here;
    if best <= score_at(here) * HYSTERESIS {
        return out;
    }
    // The strongest candidate; among near-equal ones, the closest to the current edge.
    let mut pick = here;
    let mut pick_dist = i64::MAX;
    for p in lo..=hi {
        let d = (p - here).abs();
        if score_at(p) >= best * TIE_FRACTION && d < pick_dist {
            pick = p;
            pick_dist = d;
        }
    }
    out[i] = pick;
    out
}

/// Strength of the edge of `side` at pixel-edge position `p`, over the pixel range
/// `span` (`[a, b)`) along it: the mean L1 colour difference between the line just
/// inside the box and the line just outside,
/// `S(p) = 1/|span| · Σ_t ‖I(inside_t) − I(outside_t)‖₁`.
///
/// At the image border there is no outside line; the border then scores as strongly as
/// the strongest line within two pixels inside it (an object cut by the border keeps
/// the border as its edge, a loose box is still pulled in by a clearly stronger edge).
fn edge_strength(view: &View, side: Side, p: i64, span: (i64, i64)) -> f64 {
    let (inside, outside) = match side {
        Side::Left | Side::Top => (p, p - 1),
        Side::Right | Side::Bottom => (p - 1, p),
    };
    let limit = if side.vertical_line() { view.w } else { view.h };
    if outside < 0 || outside >= limit {
        // Border: as strong as the internal structure right next to it.
        let step = if inside == 0 { 1 } else { -1 };
        return (1..=2)
            .map(|k| line_difference(view, side, inside + step * (k - 1), inside + step * k, span))
            .fold(0.0, f64::max);
    }
    line_difference(view, side, inside, outside, span)
}

/// Mean L1 colour difference between lines `a` and `b` (columns for left/right, rows
/// for top/bottom) over `span`; 0 where a line is off the image.
fn line_difference(view: &View, side: Side, a: i64, b: i64, span: (i64, i64)) -> f64 {
    let (s0, s1) = span;
    if s1 <= s0 {
        return 0.0;
    }
    let mut total = 0u64;
    for t in s0..s1 {
        let (pa, pb) = if side.vertical_line() {
            (view.pixel(a, t), view.pixel(b, t))
        } else {
            (view.pixel(t, a), view.pixel(t, b))
        };
        if let (Some(pa), Some(pb)) = (pa, pb) {
            total += pa
                .iter()
                .zip(pb.iter())
                .map(|(&u, &v)| u.abs_diff(v) as u64)
                .sum::<u64>();
        }
    }
    total as f64 / (s1 - s0) as f64
}

/// Bounds-checked pixel access.
struct View<'a> {
    raw: &'a [u8],
    w: i64,
    h: i64,
}

impl<'a> View<'a> {
    fn new(image: &'a RgbImage) -> Self {
        Self {
            raw: image.as_raw(),
            w: image.width() as i64,
            h: image.height() as i64,
        }
    }

    fn pixel(&self, x: i64, y: i64) -> Option<&'a [u8]> {
        if x < 0 || y < 0 || x >= self.w || y >= self.h {
            return None;
        }
        let i = ((y * self.w + x) * 3) as usize;
        self.raw.get(i..i + 3)
    }
}

/// `bbox`'s edges `[x1, y1, x2, y2]` rounded to whole pixels inside a `w` × `h` image;
/// `None` for a non-finite box or one with no pixel inside.
fn pixel_edges(bbox: BoxXyxy, w: i64, h: i64) -> Option<[i64; 4]> {
    if !bbox.is_finite() {
        return None;
    }
    let b = bbox.normalized();
    let edges = [
        (b.x1.round() as i64).clamp(0, w),
        (b.y1.round() as i64).clamp(0, h),
        (b.x2.round() as i64).clamp(0, w),
        (b.y2.round() as i64).clamp(0, h),
    ];
    (edges[2] > edges[0] && edges[3] > edges[1]).then_some(edges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::render_scene;

    /// A deterministic pseudo-random stream (splitmix64) for the loose boxes.
    struct Rng(u64);

    impl Rng {
        fn next_f64(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// `b` with each edge moved by up to ±`f` of the side, until the IoU with `b` is in
    /// `[lo, hi]` (and the box stays in the image).
    fn loosen(b: BoxXyxy, rng: &mut Rng, w: f64, h: f64, lo: f64, hi: f64) -> BoxXyxy {
        for _ in 0..1000 {
            let mut e = |s: f64| (rng.next_f64() * 2.0 - 1.0) * 0.14 * s;
            let l = BoxXyxy::new(
                (b.x1 - e(b.width())).round(),
                (b.y1 - e(b.height())).round(),
                (b.x2 + e(b.width())).round(),
                (b.y2 + e(b.height())).round(),
            )
            .clamp_to(w, h);
            let iou = l.iou(&b);
            if (lo..=hi).contains(&iou) {
                return l;
            }
        }
        b
    }

    #[test]
    fn loose_demo_boxes_become_tight_and_tight_ones_stay() {
        let mut rng = Rng(7);
        let (mut total, mut good, mut exact_kept) = (0usize, 0usize, 0usize);
        let mut ious = Vec::new();
        for index in 0..8 {
            let scene = render_scene(11, index, 640, 480);
            for lb in &scene.boxes {
                let b = lb.bbox;
                if tighten(&scene.image, b) == b {
                    exact_kept += 1;
                }
                let loose = loosen(b, &mut rng, 640.0, 480.0, 0.6, 0.85);
                let t = tighten(&scene.image, loose);
                let iou = t.iou(&b);
                ious.push((loose.iou(&b), iou));
                total += 1;
                if iou >= 0.9 {
                    good += 1;
                } else {
                    println!("  miss: image {index} {b:?}: {loose:?} -> {t:?}");
                }
            }
        }
        let frac = good as f64 / total as f64;
        let kept = exact_kept as f64 / total as f64;
        let mean_before = ious.iter().map(|p| p.0).sum::<f64>() / total as f64;
        let mean_after = ious.iter().map(|p| p.1).sum::<f64>() / total as f64;
        println!(
            "tighten: {good}/{total} = {frac:.3} loose boxes reach IoU >= 0.9 \
             (mean IoU {mean_before:.3} -> {mean_after:.3}); exact boxes kept: {kept:.3}"
        );
        assert!(total > 40);
        assert!(frac >= 0.9, "only {frac:.3} became tight");
        assert_eq!(exact_kept, total, "some exact boxes moved");
    }

    #[test]
    fn loose_boxes_on_jpeg_demo_images() {
        let mut rng = Rng(9);
        let (mut total, mut good) = (0usize, 0usize);
        for index in 0..6 {
            let scene = render_scene(12, index, 640, 480);
            let mut bytes = Vec::new();
            let encoded = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92)
                .encode_image(&scene.image)
                .is_ok();
            assert!(encoded);
            let Ok(decoded) = image::load_from_memory(&bytes) else {
                panic!("JPEG round trip failed");
            };
            let img = decoded.to_rgb8();
            for lb in &scene.boxes {
                let b = lb.bbox;
                let loose = loosen(b, &mut rng, 640.0, 480.0, 0.65, 0.75);
                total += 1;
                if tighten(&img, loose).iou(&b) >= 0.9 {
                    good += 1;
                }
            }
        }
        let frac = good as f64 / total as f64;
        println!("tighten (JPEG q92): {good}/{total} = {frac:.3} loose boxes reach IoU >= 0.9");
        assert!(frac >= 0.8, "only {frac:.3}");
    }

    #[test]
    fn tightening_is_idempotent_and_never_empty() {
        let scene = render_scene(3, 1, 320, 240);
        for lb in &scene.boxes {
            let once = tighten(&scene.image, lb.bbox.translated(2.0, -1.0));
            assert_eq!(tighten(&scene.image, once), once);
        }
        let flat = RgbImage::from_pixel(20, 20, image::Rgb([9, 9, 9]));
        for b in [
            BoxXyxy::new(5.0, 5.0, 6.0, 6.0),
            BoxXyxy::new(0.0, 0.0, 20.0, 20.0),
            BoxXyxy::new(-5.0, 3.0, 2.0, 40.0),
        ] {
            let t = tighten(&flat, b);
            assert!(t.width() >= 1.0 && t.height() >= 1.0, "{t:?}");
        }
        let off = BoxXyxy::new(30.0, 30.0, 40.0, 40.0);
        assert_eq!(tighten(&flat, off), off);
        let nan = BoxXyxy::new(f64::NAN, 0.0, 1.0, 1.0);
        assert!(tighten(&flat, nan).x1.is_nan());
    }
}
