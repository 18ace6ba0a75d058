//! Greedy non-maximum suppression with torchvision's semantics.
//!
//! `torchvision.ops.nms`: visit boxes by descending score; keep a box unless its IoU with
//! an already kept box is **greater than** the threshold. IoU is computed in `f32` without
//! the "+1" pixel convention (`area = (x2−x1)·(y2−y1)`, `inter = max(0,·)·max(0,·)`), and
//! compared against the threshold in `f64`, as the CPU kernel does. `batched_nms` applies
//! this within each class only; its result is ordered by descending score.
//! Ties in score are broken by the lower index first, so the result is deterministic.

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

    #[test]
    fn max_keep_truncates_like_full_nms() {
        let boxes: Vec<XyxyF32> = (0..50)
            .map(|i| b(i as f32 * 3.0, 0.0, i as f32 * 3.0 + 10.0, 10.0))
            .collect();
        let full = nms_presorted(&boxes, None, 0.3, usize::MAX);
        assert_eq!(nms_presorted(&boxes, None, 0.3, 5), full[..5].to_vec());
    }
}
