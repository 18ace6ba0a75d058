//! Click-to-box: one click on an object gives its box.

use crate::detector::maths::postprocess::Detection;
use crate::geometry::BoxXyxy;

/// Candidates scoring below this are not offered to a click (the review's own threshold
/// may be much higher: a click is the user saying "there is something here").
pub const CLICK_SCORE_THRESHOLD: f32 = 0.05;

/// Among `candidates` (original-image pixels, any class), the highest-scoring one whose
/// box contains `click` and scores at least [`CLICK_SCORE_THRESHOLD`].
///
/// Candidates of neighbouring facings often reach over the click too; when several
/// contain it, a candidate centred on the click wins over a slightly higher-scoring one
/// centred elsewhere: the score is weighted by `1 − d²`, where `d` is the click's
/// distance from the box centre in units of the half-side (0 at the centre, 1 on the
/// edge), floored at 0.05 so that a box the click only grazes still counts a little.
pub fn candidate_at(candidates: &[Detection], click: [f64; 2]) -> Option<Detection> {
    let [x, y] = click;
    candidates
        .iter()
        .filter(|d| d.score >= CLICK_SCORE_THRESHOLD && contains(&d.bbox, x, y))
        .map(|d| (weight(d, x, y), d))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, d)| *d)
}

fn contains(b: &BoxXyxy, x: f64, y: f64) -> bool {
    x >= b.x1 && x <= b.x2 && y >= b.y1 && y <= b.y2
}

fn weight(d: &Detection, x: f64, y: f64) -> f64 {
    let (cx, cy) = d.bbox.center();
    let hx = (d.bbox.width() * 0.5).max(1e-6);
    let hy = (d.bbox.height() * 0.5).max(1e-6);
    let dist2 = ((x - cx) / hx).powi(2).max(((y - cy) / hy).powi(2));
    d.score as f64 * (1.0 - dist2).max(0.05)
}

/// Candidates overlapping a prediction at least this much are fused into its refined box
/// (on `cola-sprite/val` with the shipped model, fusing at 0.6 turned 9 of 27 loose
/// predictions, IoU < 0.85, into acceptable ones; 0.5 and 0.7 did no better, 0.8 worse).
pub const FUSION_IOU: f64 = 0.6;

/// The score-weighted mean box of the `candidates` (any class) that overlap `around` at
/// IoU ≥ `min_iou` (weighted box fusion of one cluster): the network's many anchors on
/// one object agree on its edges better than the single best-scoring box does.
pub fn fused_box(candidates: &[Detection], around: BoxXyxy, min_iou: f64) -> Option<BoxXyxy> {
    let mut sum = [0.0f64; 4];
    let mut weight = 0.0f64;
    for d in candidates.iter().filter(|d| d.bbox.iou(&around) >= min_iou) {
        let w = d.score as f64;
        sum[0] += w * d.bbox.x1;
        sum[1] += w * d.bbox.y1;
        sum[2] += w * d.bbox.x2;
        sum[3] += w * d.bbox.y2;
        weight += w;
    }
    (weight > 0.0).then(|| {
        BoxXyxy::new(
            sum[0] / weight,
            sum[1] / weight,
            sum[2] / weight,
            sum[3] / weight,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x1: f64, y1: f64, x2: f64, y2: f64, score: f32) -> Detection {
        Detection {
            bbox: BoxXyxy::new(x1, y1, x2, y2),
            score,
            class_id: 0,
        }
    }

    #[test]
    fn the_best_candidate_containing_the_click_wins() {
        let c = [
            det(0.0, 0.0, 10.0, 10.0, 0.9),
            det(20.0, 0.0, 30.0, 10.0, 0.5),
            det(18.0, 0.0, 32.0, 10.0, 0.4),
        ];
        assert_eq!(candidate_at(&c, [25.0, 5.0]), Some(c[1]));
        assert_eq!(candidate_at(&c, [5.0, 5.0]), Some(c[0]));
        assert_eq!(candidate_at(&c, [50.0, 5.0]), None);
    }

    #[test]
    fn a_neighbour_reaching_over_the_click_loses_to_the_centred_box() {
        // The click is at the centre of the second box and on the edge of the first.
        let c = [
            det(0.0, 0.0, 26.0, 10.0, 0.8),
            det(20.0, 0.0, 30.0, 10.0, 0.6),
        ];
        assert_eq!(candidate_at(&c, [25.0, 5.0]), Some(c[1]));
    }

    #[test]
    fn candidates_below_the_click_threshold_are_not_offered() {
        let c = [det(0.0, 0.0, 10.0, 10.0, 0.01)];
        assert_eq!(candidate_at(&c, [5.0, 5.0]), None);
    }
}
