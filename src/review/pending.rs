//! Which predictions on an image still need the reviewer: those neither decided nor
//! already covered by a label.

use crate::dataset::LabelBox;
use crate::detector::maths::postprocess::Detection;
use crate::geometry::BoxXyxy;

use super::decisions::Verdict;

/// A prediction overlapping a label of its class at least this much is already labelled.
pub const MATCHES_LABEL_IOU: f64 = 0.5;

/// Where one prediction stands in the review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PredictionState {
    /// Needs a decision.
    Pending,
    /// Undecided, but a label of the same class covers it (IoU ≥ [`MATCHES_LABEL_IOU`]).
    MatchesLabel,
    /// Decided: taken as a label.
    Accepted,
    /// Decided: discarded.
    Rejected,
    /// Decided: taken as a label after a fix.
    Fixed,
}

impl PredictionState {
    /// Whether the reviewer still has to look at it.
    pub fn is_pending(self) -> bool {
        self == Self::Pending
    }
}

impl From<Verdict> for PredictionState {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Accepted => Self::Accepted,
            Verdict::Rejected => Self::Rejected,
            Verdict::Fixed => Self::Fixed,
        }
    }
}

/// Whether a label of class `class_name` overlaps `bbox` with IoU ≥ [`MATCHES_LABEL_IOU`].
pub fn matches_label(bbox: &BoxXyxy, class_name: &str, labels: &[LabelBox]) -> bool {
    labels
        .iter()
        .any(|l| l.class_name == class_name && l.bbox.iou(bbox) >= MATCHES_LABEL_IOU)
}

/// The state of each prediction in `preds` (original-image pixels), in order: its
/// verdict when `decided` knows one; else [`PredictionState::MatchesLabel`] when a label
/// of the same class (`class_names[class_id]`) overlaps it with IoU ≥
/// [`MATCHES_LABEL_IOU`]; else [`PredictionState::Pending`]. A prediction whose class id
/// has no name matches no label.
pub fn classify(
    preds: &[Detection],
    class_names: &[String],
    labels: &[LabelBox],
    decided: impl Fn(&Detection) -> Option<Verdict>,
) -> Vec<PredictionState> {
    preds
        .iter()
        .map(|p| {
            if let Some(v) = decided(p) {
                return v.into();
            }
            let Some(name) = class_names.get(p.class_id) else {
                return PredictionState::Pending;
            };
            if matches_label(&p.bbox, name, labels) {
                PredictionState::MatchesLabel
            } else {
                PredictionState::Pending
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x1: f64, y1: f64, x2: f64, y2: f64, class_id: usize, score: f32) -> Detection {
        Detection {
            bbox: BoxXyxy::new(x1, y1, x2, y2),
            score,
            class_id,
        }
    }

    fn names() -> Vec<String> {
        vec!["cola".into(), "sprite".into()]
    }

    #[test]
    fn labels_cover_predictions_of_their_class() {
        let labels = vec![
            LabelBox::new("cola", BoxXyxy::new(0.0, 0.0, 100.0, 100.0)),
            LabelBox::new("sprite", BoxXyxy::new(200.0, 0.0, 300.0, 100.0)),
        ];
        let preds = [
            det(0.0, 0.0, 100.0, 60.0, 0, 0.9),  // IoU 0.6 with the cola label
            det(0.0, 0.0, 100.0, 40.0, 0, 0.9),  // IoU 0.4: not covered
            det(0.0, 0.0, 100.0, 100.0, 1, 0.9), // right place, wrong class
            det(200.0, 0.0, 300.0, 100.0, 1, 0.9), // exact sprite
            det(500.0, 0.0, 600.0, 100.0, 0, 0.9), // nowhere near a label
            det(0.0, 0.0, 100.0, 100.0, 7, 0.9), // class id without a name
            det(0.0, 0.0, 100.0, 50.0, 0, 0.9),  // IoU exactly 0.5 counts
        ];
        let s = classify(&preds, &names(), &labels, |_| None);
        use PredictionState::*;
        assert_eq!(
            s,
            vec![
                MatchesLabel,
                Pending,
                Pending,
                MatchesLabel,
                Pending,
                Pending,
                MatchesLabel
            ]
        );
        assert!(s[1].is_pending() && !s[0].is_pending());
    }

    #[test]
    fn decisions_win_over_labels() {
        let labels = vec![LabelBox::new("cola", BoxXyxy::new(0.0, 0.0, 100.0, 100.0))];
        let preds = [
            det(0.0, 0.0, 100.0, 100.0, 0, 0.9),
            det(300.0, 0.0, 400.0, 100.0, 0, 0.8),
            det(500.0, 0.0, 600.0, 100.0, 1, 0.7),
            det(700.0, 0.0, 800.0, 100.0, 1, 0.6),
        ];
        let verdict = |d: &Detection| match d.bbox.x1 as i64 {
            0 => Some(Verdict::Accepted),
            300 => Some(Verdict::Rejected),
            500 => Some(Verdict::Fixed),
            _ => None,
        };
        use PredictionState::*;
        assert_eq!(
            classify(&preds, &names(), &labels, verdict),
            vec![Accepted, Rejected, Fixed, Pending]
        );
        assert!(classify(&[], &names(), &labels, verdict).is_empty());
    }
}
