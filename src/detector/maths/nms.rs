//! Greedy non-maximum suppression with torchvision's semantics.
//!
//! `torchvision.ops.nms`: visit boxes by descending score; keep a box unless its IoU with
//! an already kept box is **greater than** the threshold. IoU is computed in `f32` without
//! the "+1" pixel convention (`area = (x2−x1)·(y2−y1)`, `inter = max(0,·)·max(0,·)`), and
//! compared against the threshold in `f64`, as the CPU kernel does. `batched_nms` applies
//! this within each class only; its result is ordered by descending score.
//! Ties in score are broken by the lower index first, so the result is deterministic.
//!
//! Soft-NMS (Bodla, Singh, Chellappa, Davis, "Soft-NMS — Improving Object Detection With
//! One Line of Code", ICCV 2017) lowers the scores of overlapping boxes instead of removing
//! them, which keeps touching facings on a packed shelf that hard NMS would drop: see
//! [`NmsMethod`] and [`soft_nms_presorted`].

use std::collections::HashMap;

use super::box_coding::XyxyF32;

/// Area as torchvision computes it (negative for inverted boxes, like the reference).
#[inline]
pub fn area(b: &XyxyF32) -> f32 {
    (b.x2 - b.x1) * (b.y2 - b.y1)
}

/// IoU in `f32`, given both areas. NaN for two empty boxes (never suppresses).
#[inline]
pub fn iou(a: &XyxyF32, area_a: f32, b: &XyxyF32, area_b: f32) -> f32 {
    let w = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let h = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let inter = w * h;
    inter / (area_a + area_b - inter)
}

/// Indices sorting `scores` descending, ties by index (NaN scores last).
pub fn order_by_score(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (scores[a], scores[b]);
        sa.is_nan()
            .cmp(&sb.is_nan())
            .then(sb.total_cmp(&sa))
            .then(a.cmp(&b))
    });
    order
}

/// How overlapping boxes are suppressed.
///
/// With `M` the box just kept and `b` a remaining box of the same group (class, or all
/// boxes when class-agnostic), `s_b` its current score and `Nt` the IoU threshold:
///
/// * `Hard` (greedy NMS): remove `b` when `IoU(M, b) > Nt`.
/// * `Linear` Soft-NMS: `s_b ← s_b · (1 − IoU(M, b))` when `IoU(M, b) > Nt`, else unchanged.
/// * `Gaussian` Soft-NMS: `s_b ← s_b · exp(−IoU(M, b)² / σ)` for every `b` (no threshold).
///
/// After each decay, boxes whose score is no longer above the score threshold are dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum NmsMethod {
    /// Greedy NMS (torchvision's `nms` / `batched_nms`).
    #[default]
    Hard,
    /// Linear Soft-NMS: decay by `1 − IoU` above the IoU threshold.
    Linear,
    /// Gaussian Soft-NMS with this `σ` (Bodla et al. use 0.5): decay by `exp(−IoU²/σ)`.
    Gaussian {
        /// `σ > 0`; smaller suppresses harder.
        sigma: f64,
    },
}

/// The Gaussian Soft-NMS `σ` of the paper's experiments.
pub const DEFAULT_SOFT_NMS_SIGMA: f64 = 0.5;

impl NmsMethod {
    /// The short name used on the command line and in the UI: `hard`, `linear`, `gaussian`.
    pub fn name(&self) -> &'static str {
        match self {
            NmsMethod::Hard => "hard",
            NmsMethod::Linear => "linear",
            NmsMethod::Gaussian { .. } => "gaussian",
        }
    }

    /// Whether this is a Soft-NMS method (scores are decayed, not only filtered).
    pub fn is_soft(&self) -> bool {
        !matches!(self, NmsMethod::Hard)
    }

    /// The factor a remaining box's score is multiplied by, given its IoU with the box
    /// just kept; `None` when hard NMS removes it. `1.0` leaves it unchanged.
    #[inline]
    pub fn decay(&self, iou: f64, iou_threshold: f64) -> Option<f64> {
        match *self {
            NmsMethod::Hard => (iou <= iou_threshold || iou.is_nan()).then_some(1.0),
            NmsMethod::Linear if iou > iou_threshold => Some(1.0 - iou),
            NmsMethod::Linear => Some(1.0),
            NmsMethod::Gaussian { sigma } if iou > 0.0 => Some((-(iou * iou) / sigma).exp()),
            NmsMethod::Gaussian { .. } => Some(1.0),
        }
    }
}

/// Soft-NMS over boxes **already sorted** by descending score (ties by position).
///
/// Repeatedly keeps the remaining box with the highest current score (ties: the lower
/// position), then decays the scores of the remaining boxes of its group by
/// [`NmsMethod::decay`] (within each class with `classes`, across all boxes without) and
/// drops those whose score is no longer `> score_threshold`. Stops after `max_keep` boxes.
/// Returns `(position, decayed score)` in the order kept, which is by descending decayed
/// score. Scores are decayed in `f64` and stored as `f32`.
///
/// With [`NmsMethod::Hard`] this equals [`nms_presorted`] with every score kept.
pub fn soft_nms_presorted(
    boxes: &[XyxyF32],
    scores: &[f32],
    classes: Option<&[u32]>,
    method: NmsMethod,
    iou_threshold: f64,
    score_threshold: f32,
    max_keep: usize,
) -> Vec<(usize, f32)> {
    let n = boxes.len().min(scores.len());
    let areas: Vec<f32> = boxes[..n].iter().map(area).collect();
    // (position, current score) of the boxes still in play.
    let mut live: Vec<(usize, f32)> = (0..n)
        .filter(|&i| scores[i] > score_threshold)
        .map(|i| (i, scores[i]))
        .collect();
    let mut keep = Vec::new();
    while keep.len() < max_keep && !live.is_empty() {
        // The best remaining box; `live` stays in position order, so the first maximum
        // is the lower position on ties.
        let mut best = 0;
        for (k, &(_, s)) in live.iter().enumerate().skip(1) {
            if s > live[best].1 {
                best = k;
            }
        }
        let (m, sm) = live.remove(best);
        keep.push((m, sm));
        let class = classes.map(|c| c[m]);
        let (bm, am) = (&boxes[m], areas[m]);
        live.retain_mut(|(j, s)| {
            if class.is_some_and(|c| classes.is_some_and(|cs| cs[*j] != c)) {
                return true;
            }
            let o = f64::from(iou(bm, am, &boxes[*j], areas[*j]));
            match method.decay(o, iou_threshold) {
                None => false,
                Some(1.0) => true,
                Some(f) => {
                    *s = (f64::from(*s) * f) as f32;
                    *s > score_threshold
                }
            }
        });
    }
    keep
}

/// Soft-NMS on unsorted boxes ([`soft_nms_presorted`] after sorting by score): kept
/// `(index, decayed score)`, by descending decayed score; every score counts (threshold
/// `0`), no cap.
pub fn soft_nms(
    boxes: &[XyxyF32],
    scores: &[f32],
    classes: Option<&[u32]>,
    method: NmsMethod,
    iou_threshold: f64,
) -> Vec<(usize, f32)> {
    let order = order_by_score(scores);
    let sorted: Vec<XyxyF32> = order.iter().map(|&i| boxes[i]).collect();
    let sorted_scores: Vec<f32> = order.iter().map(|&i| scores[i]).collect();
    let sorted_classes: Option<Vec<u32>> = classes.map(|c| order.iter().map(|&i| c[i]).collect());
    soft_nms_presorted(
        &sorted,
        &sorted_scores,
        sorted_classes.as_deref(),
        method,
        iou_threshold,
        0.0,
        usize::MAX,
    )
    .into_iter()
    .map(|(p, s)| (order[p], s))
    .collect()
}

/// Greedy NMS over boxes **already sorted** by descending score.
///
/// With `classes`, a box is only suppressed by kept boxes of its own class (batched NMS);
/// without, by any kept box (class-agnostic). Stops once `max_keep` boxes are kept —
/// the result equals running full NMS and truncating. Returns positions into `boxes`.
pub fn nms_presorted(
    boxes: &[XyxyF32],
    classes: Option<&[u32]>,
    iou_threshold: f64,
    max_keep: usize,
) -> Vec<usize> {
    let mut keep = Vec::new();
    if max_keep == 0 {
        return keep;
    }
    // Kept boxes grouped by class (one group when class-agnostic).
    let mut groups: HashMap<u32, Vec<(XyxyF32, f32)>> = HashMap::new();
    for (i, b) in boxes.iter().enumerate() {
        let class = classes.map_or(0, |c| c[i]);
        let a = area(b);
        let kept = groups.entry(class).or_default();
        if kept
            .iter()
            .any(|(k, ka)| f64::from(iou(k, *ka, b, a)) > iou_threshold)
        {
            continue;
        }
        kept.push((*b, a));
        keep.push(i);
        if keep.len() == max_keep {
            break;
        }
    }
    keep
}

/// `torchvision.ops.nms`: kept indices, by descending score.
pub fn nms(boxes: &[XyxyF32], scores: &[f32], iou_threshold: f64) -> Vec<usize> {
    select(boxes, scores, None, iou_threshold)
}

/// `torchvision.ops.batched_nms`: NMS within each class; kept indices by descending score.
pub fn batched_nms(
    boxes: &[XyxyF32],
    scores: &[f32],
    classes: &[u32],
    iou_threshold: f64,
) -> Vec<usize> {
    select(boxes, scores, Some(classes), iou_threshold)
}

fn select(
    boxes: &[XyxyF32],
    scores: &[f32],
    classes: Option<&[u32]>,
    iou_threshold: f64,
) -> Vec<usize> {
    let order = order_by_score(scores);
    let sorted: Vec<XyxyF32> = order.iter().map(|&i| boxes[i]).collect();
    let sorted_classes: Option<Vec<u32>> = classes.map(|c| order.iter().map(|&i| c[i]).collect());
    nms_presorted(
        &sorted,
        sorted_classes.as_deref(),
        iou_threshold,
        usize::MAX,
    )
    .into_iter()
    .map(|p| order[p])
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> XyxyF32 {
        XyxyF32 { x1, y1, x2, y2 }
    }

    #[test]
    fn suppresses_only_above_threshold() {
        // IoU of the two boxes is exactly 1/3 (half overlap of equal squares).
        let boxes = [b(0.0, 0.0, 10.0, 10.0), b(5.0, 0.0, 15.0, 10.0)];
        let scores = [0.9, 0.8];
        assert_eq!(nms(&boxes, &scores, 0.5), vec![0, 1]);
        assert_eq!(nms(&boxes, &scores, 0.3), vec![0]);
        // IoU == threshold (0.25 is exact in f32 and f64): not suppressed ("> thresh").
        let boxes = [b(0.0, 0.0, 10.0, 10.0), b(0.0, 0.0, 10.0, 2.5)];
        assert_eq!(nms(&boxes, &scores, 0.25), vec![0, 1]);
    }

    #[test]
    fn suppressed_boxes_do_not_suppress() {
        // a overlaps b strongly, b overlaps c strongly, a and c are disjoint.
        let boxes = [
            b(0.0, 0.0, 10.0, 10.0),
            b(3.0, 0.0, 13.0, 10.0),
            b(9.0, 0.0, 19.0, 10.0),
        ];
        assert_eq!(nms(&boxes, &[0.9, 0.8, 0.7], 0.3), vec![0, 2]);
    }

    #[test]
    fn result_is_ordered_by_score_and_ties_by_index() {
        let boxes = [
            b(0.0, 0.0, 1.0, 1.0),
            b(10.0, 0.0, 11.0, 1.0),
            b(20.0, 0.0, 21.0, 1.0),
        ];
        assert_eq!(nms(&boxes, &[0.5, 0.7, 0.5], 0.5), vec![1, 0, 2]);
        // Identical boxes and scores: the first one wins.
        let same = [b(0.0, 0.0, 4.0, 4.0); 3];
        assert_eq!(nms(&same, &[0.5; 3], 0.5), vec![0]);
    }

    #[test]
    fn batched_nms_is_per_class() {
        let boxes = [
            b(0.0, 0.0, 10.0, 10.0),
            b(1.0, 0.0, 11.0, 10.0),
            b(1.0, 1.0, 10.0, 10.0),
        ];
        let scores = [0.9, 0.8, 0.7];
        assert_eq!(batched_nms(&boxes, &scores, &[0, 1, 0], 0.5), vec![0, 1]);
        assert_eq!(nms(&boxes, &scores, 0.5), vec![0]);
    }

    #[test]
    fn empty_boxes_never_suppress() {
        let boxes = [b(1.0, 1.0, 1.0, 1.0), b(1.0, 1.0, 1.0, 1.0)];
        assert_eq!(nms(&boxes, &[0.9, 0.8], 0.0), vec![0, 1]);
    }

    /// Two 10×10 squares overlapping by half: IoU = 50 / 150 = 1/3; a 10×5 box inside the
    /// first: IoU = 50 / 100 = 0.5 exactly.
    fn trio() -> [XyxyF32; 3] {
        [
            b(0.0, 0.0, 10.0, 10.0),
            b(5.0, 0.0, 15.0, 10.0),
            b(0.0, 0.0, 10.0, 5.0),
        ]
    }

    #[test]
    fn linear_soft_nms_decays_by_one_minus_iou_above_nt() {
        let scores = [0.9, 0.8, 0.6];
        // Nt = 0.3: both overlap the first box above Nt.
        // s1 = 0.8 * (1 - 1/3) = 0.5333…, s2 = 0.6 * (1 - 0.5) = 0.3; then box 1 (0.533)
        // is kept and decays box 2 (IoU(1, 2) = 25 / 125 = 0.2 <= Nt: unchanged).
        let kept = soft_nms(&trio(), &scores, None, NmsMethod::Linear, 0.3);
        let idx: Vec<usize> = kept.iter().map(|k| k.0).collect();
        assert_eq!(idx, vec![0, 1, 2]);
        assert_eq!(kept[0].1, 0.9);
        assert!(
            (f64::from(kept[1].1) - 0.8 * (2.0 / 3.0)).abs() < 1e-6,
            "{kept:?}"
        );
        assert_eq!(kept[2].1, 0.3);
        // Nt = 0.4: box 1 (IoU 1/3) is untouched, box 2 (IoU 0.5) halves.
        let kept = soft_nms(&trio(), &scores, None, NmsMethod::Linear, 0.4);
        assert_eq!(kept, vec![(0, 0.9), (1, 0.8), (2, 0.3)]);
    }

    #[test]
    fn gaussian_soft_nms_decays_by_exp_minus_iou_squared_over_sigma() {
        let scores = [0.9, 0.8, 0.6];
        let g = NmsMethod::Gaussian { sigma: 0.5 };
        let kept = soft_nms(&trio(), &scores, None, g, 0.3);
        // After box 0: s1 = 0.8·exp(−(1/3)²/0.5) = 0.8·exp(−2/9) = 0.640590…,
        //              s2 = 0.6·exp(−0.5²/0.5) = 0.6·exp(−0.5) = 0.363918…
        // After box 1: s2 ·= exp(−0.2²/0.5) = exp(−0.08) → 0.335939…
        let s1 = 0.8 * (-2.0f64 / 9.0).exp();
        let s2 = 0.6 * (-0.5f64).exp() * (-0.08f64).exp();
        assert_eq!(kept.iter().map(|k| k.0).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!((f64::from(kept[1].1) - s1).abs() < 1e-6, "{kept:?} vs {s1}");
        assert!((f64::from(kept[2].1) - s2).abs() < 1e-6, "{kept:?} vs {s2}");
        assert!((s1 - 0.640_590).abs() < 1e-6 && (s2 - 0.335_939).abs() < 1e-6);
        // Disjoint boxes are never decayed.
        let far = [b(0.0, 0.0, 1.0, 1.0), b(5.0, 5.0, 6.0, 6.0)];
        assert_eq!(
            soft_nms(&far, &[0.5, 0.4], None, g, 0.3),
            vec![(0, 0.5), (1, 0.4)]
        );
    }

    #[test]
    fn soft_nms_reorders_and_drops_below_threshold() {
        // Box 1 overlaps box 0 (IoU 0.5) and decays below the disjoint box 2.
        let boxes = [
            b(0.0, 0.0, 10.0, 10.0),
            b(0.0, 0.0, 10.0, 5.0),
            b(50.0, 0.0, 60.0, 10.0),
        ];
        let kept = soft_nms(&boxes, &[0.9, 0.8, 0.5], None, NmsMethod::Linear, 0.3);
        assert_eq!(kept, vec![(0, 0.9), (2, 0.5), (1, 0.4)]);
        // With a score threshold of 0.45 the decayed box (0.4) is dropped.
        let kept = soft_nms_presorted(
            &boxes,
            &[0.9, 0.8, 0.5],
            None,
            NmsMethod::Linear,
            0.3,
            0.45,
            usize::MAX,
        );
        assert_eq!(kept, vec![(0, 0.9), (2, 0.5)]);
        // max_keep stops early.
        let kept = soft_nms_presorted(
            &boxes,
            &[0.9, 0.8, 0.5],
            None,
            NmsMethod::Linear,
            0.3,
            0.0,
            1,
        );
        assert_eq!(kept, vec![(0, 0.9)]);
    }

    #[test]
    fn soft_nms_is_per_class_and_hard_equals_nms() {
        let boxes = trio();
        let scores = [0.9, 0.8, 0.6];
        let classes = [0, 1, 0];
        // Box 1 is another class: untouched; box 2 halves (IoU 0.5 > 0.3).
        let kept = soft_nms(&boxes, &scores, Some(&classes), NmsMethod::Linear, 0.3);
        assert_eq!(kept, vec![(0, 0.9), (1, 0.8), (2, 0.3)]);
        for t in [0.2, 0.3, 0.4, 0.6] {
            let hard: Vec<usize> = soft_nms(&boxes, &scores, None, NmsMethod::Hard, t)
                .into_iter()
                .map(|k| k.0)
                .collect();
            assert_eq!(hard, nms(&boxes, &scores, t), "Nt {t}");
        }
    }

    #[test]
    fn decay_factors() {
        let g = NmsMethod::Gaussian { sigma: 0.5 };
        assert_eq!(NmsMethod::Hard.decay(0.5, 0.5), Some(1.0));
        assert_eq!(NmsMethod::Hard.decay(0.51, 0.5), None);
        assert_eq!(NmsMethod::Linear.decay(0.5, 0.5), Some(1.0));
        assert_eq!(NmsMethod::Linear.decay(0.75, 0.5), Some(0.25));
        assert_eq!(g.decay(0.0, 0.5), Some(1.0));
        assert_eq!(g.decay(0.5, 0.9), Some((-0.5f64).exp()));
        assert_eq!(NmsMethod::Hard.decay(f64::NAN, 0.5), Some(1.0));
    }

    #[test]
    fn max_keep_truncates_like_full_nms() {
        let boxes: Vec<XyxyF32> = (0..50)
            .map(|i| b(i as f32 * 3.0, 0.0, i as f32 * 3.0 + 10.0, 10.0))
            .collect();
        let full = nms_presorted(&boxes, None, 0.3, usize::MAX);
        assert_eq!(nms_presorted(&boxes, None, 0.3, 5), full[..5].to_vec());
    }
}
