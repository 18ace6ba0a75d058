//! Test-time augmentation (TTA) geometry: the extra network passes over one photo (its
//! mirror image, the photo smaller or larger in the network input), the exact mapping of
//! each pass's boxes back to the photo, and how the passes are merged.
//!
//! * **Flip**: the photo mirrored left–right. A box `(x1, y1, x2, y2)` of the mirrored
//!   photo (original pixels, width `w`) is `(w − x2, y1, w − x1, y2)` in the photo
//!   ([`mirror_box`]; pixel `i` spans `[i, i + 1]`, column `i` goes to `w − 1 − i`).
//! * **Scale `s < 1`**: the photo letterboxed to `round(s · S)` pixels and placed at the
//!   top-left of the `S × S` input, the rest padding (zero after normalisation, like the
//!   usual letterbox's): objects appear `s` times as large as usual
//!   ([`shrunk_letterbox`]; its [`Letterbox::to_original`] maps back exactly).
//! * **Scale `s > 1`**: the photo enlarged `s` times does not fit the input, so it is cut
//!   into overlapping windows of `max(w, h) / s` photo pixels, each letterboxed into the
//!   input ([`scale_windows`]), and merged like tiles
//!   ([`super::tiling::merge_tiles`]: a window's box touching an inner window edge is
//!   dropped; the other windows or the other passes hold that object whole).
//!
//! Merging ([`pool`]): the candidates of every pass, in photo pixels, are pooled before NMS
//! and sorted by score, so that the usual score threshold, NMS or Soft-NMS and detection
//! cap (and a review's sliders) work on them unchanged; NMS keeps the best-scoring pass's
//! box of each object. [`fuse_detections`] can then replace each kept box by the
//! score-weighted mean of the pooled candidates of its class overlapping it (weighted box
//! fusion).

use super::box_coding::XyxyF32;
use super::letterbox::Letterbox;
use super::postprocess::{Candidates, Detection, ShapeError};
use super::tiling::{TileParams, DEFAULT_TILE_OVERLAP};
use crate::geometry::BoxXyxy;

/// The default scales of [`Tta::FlipScales`]: objects at 0.83× and 1.2× their usual size
/// in the network input.
pub const DEFAULT_TTA_SCALES: [f32; 2] = [0.83, 1.2];

/// The range of a TTA scale.
pub const TTA_SCALE_RANGE: std::ops::RangeInclusive<f32> = 0.5..=2.0;

/// Candidates of a kept box's class overlapping it at IoU ≥ this are fused into it by
/// [`fuse_detections`] (the IoU of the review's box refinement,
/// [`crate::assist::click_box::FUSION_IOU`], measured on the same data). On
/// `cola-sprite/val` with the shipped model the fusion turns TTA from a small loss (flip:
/// AP 0.662 → 0.653 with NMS alone) into a gain (→ 0.712; flip-scales → 0.744).
pub const TTA_FUSION_IOU: f64 = 0.6;

/// Which extra passes detection runs on each photo.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Tta {
    /// One pass (no augmentation).
    #[default]
    Off,
    /// The photo and its mirror image (2 passes).
    Flip,
    /// The photo, its mirror image, and the photo at each of these scales (× its usual
    /// size in the input; a scale above 1 takes several windows).
    FlipScales([f32; 2]),
}

/// One pass of TTA over a photo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TtaPass {
    /// The photo mirrored left–right.
    pub flip: bool,
    /// Objects this many times their usual size in the network input.
    pub scale: f32,
}

impl Tta {
    /// `flip` and `flip-scales` with the default scales.
    pub fn flip_scales() -> Self {
        Tta::FlipScales(DEFAULT_TTA_SCALES)
    }

    /// Whether any augmentation runs.
    pub fn is_on(&self) -> bool {
        !matches!(self, Tta::Off)
    }

    /// The passes, the plain photo first.
    pub fn passes(&self) -> Vec<TtaPass> {
        let pass = |flip, scale| TtaPass { flip, scale };
        match *self {
            Tta::Off => vec![pass(false, 1.0)],
            Tta::Flip => vec![pass(false, 1.0), pass(true, 1.0)],
            Tta::FlipScales(scales) => {
                let mut v = vec![pass(false, 1.0), pass(true, 1.0)];
                v.extend(scales.iter().map(|&s| pass(false, s)));
                v
            }
        }
    }

    /// Network inputs per `width × height` photo (a scale above 1 counts its windows).
    pub fn network_inputs(&self, width: u32, height: u32) -> usize {
        self.passes()
            .iter()
            .map(|p| match scale_windows(width, height, p.scale) {
                Some(params) => super::tiling::tile_grid(width, height, &params).len(),
                None => 1,
            })
            .sum()
    }

    /// Short name for the command line, logs and cache ids: `off`, `flip`,
    /// `flip-scales` (`flip-scales:0.83,1.2` with other scales than the default).
    pub fn describe(&self) -> String {
        match self {
            Tta::Off => "off".into(),
            Tta::Flip => "flip".into(),
            Tta::FlipScales(s) if *s == DEFAULT_TTA_SCALES => "flip-scales".into(),
            Tta::FlipScales([a, b]) => format!("flip-scales:{a},{b}"),
        }
    }

    /// Checks the scales: in [`TTA_SCALE_RANGE`] and not 1.
    pub fn validate(&self) -> Result<(), String> {
        if let Tta::FlipScales(scales) = self {
            for s in scales {
                if !(s.is_finite() && TTA_SCALE_RANGE.contains(s)) || *s == 1.0 {
                    return Err(format!(
                        "TTA scale {s}: scales are in [{}, {}] and not 1",
                        TTA_SCALE_RANGE.start(),
                        TTA_SCALE_RANGE.end()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A box of the mirrored photo (original pixels) in the photo of width `width`.
pub fn mirror_box(b: &BoxXyxy, width: u32) -> BoxXyxy {
    let w = f64::from(width);
    BoxXyxy::new(w - b.x2, b.y1, w - b.x1, b.y2)
}

/// Where a `width × height` photo lands in a `size` input when shrunk by `scale ≤ 1`:
/// the letterbox into `round(scale · size)` pixels (the image then sits at the top-left
/// of the `size × size` input, padded with [`pad_input`]).
pub fn shrunk_letterbox(width: u32, height: u32, size: u32, scale: f32) -> Letterbox {
    let inner = (f64::from(size) * f64::from(scale.min(1.0))).round() as u32;
    Letterbox::new(width, height, inner.clamp(1, size.max(1)))
}

/// A normalised `[3, from, from]` input placed at the top-left of a `[3, to, to]` input
/// padded with zeros (the mean colour after normalisation), `to ≥ from`.
pub fn pad_input(data: &[f32], from: u32, to: u32) -> Vec<f32> {
    let (from, to) = (from as usize, to as usize);
    let mut out = vec![0.0f32; 3 * to * to];
    for c in 0..3 {
        for y in 0..from.min(to) {
            let src = &data[(c * from + y) * from..][..from.min(to)];
            out[(c * to + y) * to..][..src.len()].copy_from_slice(src);
        }
    }
    out
}

/// The windows of a `width × height` photo enlarged by `scale > 1`: tiles of
/// `round(max(w, h) / scale)` photo pixels, each letterboxed into the input, with the
/// default tile overlap and no whole-photo pass. `None` for `scale ≤ 1`.
pub fn scale_windows(width: u32, height: u32, scale: f32) -> Option<TileParams> {
    (scale > 1.0).then(|| {
        let long = f64::from(width.max(height).max(1));
        TileParams {
            size: ((long / f64::from(scale)).round() as u32).max(1),
            overlap: DEFAULT_TILE_OVERLAP,
            whole_image: false,
        }
    })
}

/// Candidates of a pass in the network-input frame → photo pixels: through `letterbox`,
/// then mirrored with `flip` (a pass on the mirrored photo of width `width`).
pub fn to_photo(c: &Candidates, letterbox: &Letterbox, flip: Option<u32>) -> Candidates {
    map_boxes(c, |b| {
        let b = letterbox.to_original(b);
        match flip {
            Some(w) => mirror_box(&b, w),
            None => b,
        }
    })
}

/// Candidates already in photo pixels of the mirrored photo → the photo's.
pub fn mirror_candidates(c: &Candidates, width: u32) -> Candidates {
    map_boxes(c, |b| mirror_box(b, width))
}

fn map_boxes(c: &Candidates, f: impl Fn(&BoxXyxy) -> BoxXyxy) -> Candidates {
    let boxes = c.boxes().iter().map(|b| narrow(&f(&b.to_box()))).collect();
    Candidates::from_parts(
        boxes,
        c.scores().to_vec(),
        c.classes().to_vec(),
        c.anchor_indices().to_vec(),
    )
    .expect("the columns of valid candidates stay valid")
}

/// The candidates of all passes (photo pixels) as one set, by descending score (ties: the
/// earlier pass first), at most `limit`; boxes that are empty in the photo (a pass's
/// boxes in its padding) are dropped.
pub fn pool(parts: &[Candidates], limit: Option<usize>) -> Result<Candidates, ShapeError> {
    let mut rows: Vec<(f32, u32, u32, XyxyF32)> = Vec::new();
    for c in parts {
        for i in 0..c.len() {
            let b = c.boxes()[i];
            if b.x2 > b.x1 && b.y2 > b.y1 {
                rows.push((c.scores()[i], c.classes()[i], c.anchor_indices()[i], b));
            }
        }
    }
    // A stable sort: equal scores keep the order of the passes.
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    if let Some(k) = limit {
        rows.truncate(k);
    }
    let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (score, class, anchor, b) in rows {
        columns.0.push(b);
        columns.1.push(score);
        columns.2.push(class);
        columns.3.push(anchor);
    }
    Candidates::from_parts(columns.0, columns.1, columns.2, columns.3)
}

/// Weighted box fusion of kept detections (photo pixels): each box becomes the
/// score-weighted mean of the candidates of its class with a score above `min_score`
/// that overlap it at IoU ≥ `min_iou` (the kept box is one of them); scores and classes
/// are unchanged.
pub fn fuse_detections(
    detections: &[Detection],
    candidates: &Candidates,
    min_score: f32,
    min_iou: f64,
) -> Vec<Detection> {
    let n = candidates.count_above(min_score);
    detections
        .iter()
        .map(|d| {
            let mut sum = [0.0f64; 4];
            let mut weight = 0.0f64;
            for i in 0..n {
                if candidates.classes()[i] as usize != d.class_id {
                    continue;
                }
                let b = candidates.boxes()[i].to_box();
                if b.iou(&d.bbox) < min_iou {
                    continue;
                }
                let w = f64::from(candidates.scores()[i]);
                sum[0] += w * b.x1;
                sum[1] += w * b.y1;
                sum[2] += w * b.x2;
                sum[3] += w * b.y2;
                weight += w;
            }
            if weight <= 0.0 {
                return *d;
            }
            Detection {
                bbox: BoxXyxy::new(
                    sum[0] / weight,
                    sum[1] / weight,
                    sum[2] / weight,
                    sum[3] / weight,
                ),
                ..*d
            }
        })
        .collect()
}

fn narrow(b: &BoxXyxy) -> XyxyF32 {
    XyxyF32 {
        x1: b.x1 as f32,
        y1: b.y1 as f32,
        x2: b.x2 as f32,
        y2: b.y2 as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::maths::tiling::tile_grid;

    fn cands(rows: &[([f32; 4], f32, u32)]) -> Candidates {
        Candidates::from_rows(rows)
    }

    #[test]
    fn a_mirrored_box_maps_back_exactly() {
        // A 640-wide photo: the box at x 100–250 of the mirror image is at 390–540.
        let b = mirror_box(&BoxXyxy::new(100.0, 20.0, 250.0, 300.0), 640);
        assert_eq!(b, BoxXyxy::new(390.0, 20.0, 540.0, 300.0));
        assert_eq!(mirror_box(&b, 640), BoxXyxy::new(100.0, 20.0, 250.0, 300.0));
        // The whole photo mirrors onto itself.
        let all = BoxXyxy::new(0.0, 0.0, 640.0, 480.0);
        assert_eq!(mirror_box(&all, 640), all);
        // Through the letterbox of a 640 × 480 photo into 384 (scale 0.6): input x 60–150
        // is photo x 100–250 of the mirror, 390–540 of the photo.
        let lb = Letterbox::new(640, 480, 384);
        let c = cands(&[([60.0, 12.0, 150.0, 180.0], 0.9, 1)]);
        let p = to_photo(&c, &lb, Some(640));
        assert_eq!(
            p.boxes()[0].to_box(),
            BoxXyxy::new(390.0, 20.0, 540.0, 300.0)
        );
        assert_eq!((p.scores(), p.classes()), (&[0.9f32][..], &[1u32][..]));
    }

    #[test]
    fn a_shrunk_pass_maps_back_exactly() {
        // 640 × 480 into 384 at 0.75: the image is letterboxed into 288 (scale 0.45),
        // 288 × 216 at the top-left of the 384 input.
        let lb = shrunk_letterbox(640, 480, 384, 0.75);
        assert_eq!((lb.resized_width, lb.resized_height), (288, 216));
        let c = cands(&[([45.0, 9.0, 90.0, 180.0], 0.5, 0)]);
        let p = to_photo(&c, &lb, None);
        assert_eq!(
            p.boxes()[0].to_box(),
            BoxXyxy::new(100.0, 20.0, 200.0, 400.0)
        );
        // A box in the padding ends up empty in the photo and is dropped by the pool.
        let pad = to_photo(&cands(&[([300.0, 250.0, 380.0, 380.0], 0.9, 0)]), &lb, None);
        assert_eq!(pool(&[pad], None).unwrap().len(), 0);
        // The padded input: the 2 × 2 image in the top-left of 3 × 3, zeros elsewhere.
        let data: Vec<f32> = (1..=12).map(|v| v as f32).collect();
        let padded = pad_input(&data, 2, 3);
        assert_eq!(&padded[..9], &[1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(
            &padded[18..],
            &[9.0, 10.0, 0.0, 11.0, 12.0, 0.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn an_enlarged_pass_takes_windows_of_the_long_side_over_the_scale() {
        assert_eq!(scale_windows(640, 480, 0.83), None);
        let p = scale_windows(640, 480, 1.2).unwrap();
        assert_eq!(p.size, 533);
        let windows = tile_grid(640, 480, &p);
        assert_eq!(windows.len(), 2, "{windows:?}");
        assert_eq!((windows[0].x, windows[1].x), (0, 107));
        assert!(windows.iter().all(|w| w.width == 533 && w.height == 480));
        // Each window is letterboxed by 384 / 533: 1.2 times the whole photo's 384 / 640.
        let lb = Letterbox::new(533, 480, 384);
        assert!((lb.scale_x() / (384.0 / 640.0) - 1.2).abs() < 0.002);
        assert_eq!(Tta::Off.network_inputs(640, 480), 1);
        assert_eq!(Tta::Flip.network_inputs(640, 480), 2);
        assert_eq!(Tta::flip_scales().network_inputs(640, 480), 5);
    }

    #[test]
    fn pooled_candidates_are_sorted_by_score_and_capped() {
        let a = cands(&[
            ([0.0, 0.0, 10.0, 10.0], 0.9, 0),
            ([5.0, 5.0, 9.0, 9.0], 0.3, 1),
        ]);
        let b = cands(&[
            ([1.0, 0.0, 11.0, 10.0], 0.8, 0),
            ([0.0, 0.0, 10.0, 10.0], 0.3, 0),
        ]);
        let p = pool(&[a.clone(), b.clone()], None).unwrap();
        assert_eq!(p.scores(), &[0.9, 0.8, 0.3, 0.3]);
        assert_eq!(
            p.classes(),
            &[0, 0, 1, 0],
            "ties keep the order of the passes"
        );
        assert_eq!(pool(&[a, b], Some(2)).unwrap().scores(), &[0.9, 0.8]);
        // Hard NMS over the pool keeps the best pass's box once.
        let kept = p.select(&crate::detector::maths::postprocess::SelectConfig::default());
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].bbox, BoxXyxy::new(0.0, 0.0, 10.0, 10.0));
    }

    #[test]
    fn fusion_averages_the_overlapping_candidates_of_the_class_by_score() {
        let c = cands(&[
            ([0.0, 0.0, 10.0, 10.0], 0.75, 0),
            ([0.0, 0.0, 10.0, 10.0], 0.5, 1), // another class: not fused
            ([6.0, 0.0, 16.0, 10.0], 0.4, 0), // IoU 0.25: not fused
            ([2.0, 0.0, 12.0, 10.0], 0.25, 0), // IoU 0.67: fused
            ([1.0, 0.0, 11.0, 10.0], 0.01, 0), // below the score: not fused
        ]);
        let kept = c.select(&crate::detector::maths::postprocess::SelectConfig::default());
        let fused = fuse_detections(&kept[..1], &c, 0.05, TTA_FUSION_IOU);
        assert_eq!(fused[0].bbox, BoxXyxy::new(0.5, 0.0, 10.5, 10.0));
        assert_eq!((fused[0].score, fused[0].class_id), (0.75, 0));
    }

    #[test]
    fn the_passes_and_their_names() {
        assert_eq!(Tta::Off.passes().len(), 1);
        assert!(Tta::Flip.passes()[1].flip);
        let p = Tta::flip_scales().passes();
        assert_eq!(
            p.iter().map(|p| p.scale).collect::<Vec<_>>(),
            [1.0, 1.0, 0.83, 1.2]
        );
        assert_eq!(Tta::flip_scales().describe(), "flip-scales");
        assert_eq!(
            Tta::FlipScales([0.7, 1.4]).describe(),
            "flip-scales:0.7,1.4"
        );
        assert!(Tta::FlipScales([1.0, 1.2]).validate().is_err());
        assert!(Tta::FlipScales([0.4, 1.2]).validate().is_err());
        assert!(Tta::flip_scales().validate().is_ok());
    }
}
