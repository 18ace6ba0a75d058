//! What a model's predictions would cost a reviewer on an image whose labels are known:
//! the unit in which a new model is judged before it is shown (the auto-retrain trial).
//!
//! The shown predictions are matched to the labels greedily by descending score: each
//! takes the unmatched label it overlaps most, of any class, at IoU ≥ [`MATCH_IOU`]. Then,
//! one action each (as the simulated labeller counts them):
//!
//! * an unmatched prediction is rejected;
//! * a matched label is free when the box is tight (IoU ≥ [`TIGHT_IOU`]) and of the right
//!   class (accepted with the rest of the image's predictions); a tight box of the wrong
//!   class is one relabel; a loose box is one redraw over it, plus a relabel when its
//!   class is wrong too;
//! * a label no prediction matched is drawn by hand.
//!
//! Without predictions the cost is one drawn box per label, so a model saves actions on
//! an image exactly when its tight right boxes outnumber its rejects and double fixes.
//! [`ReviewTally::in_bulk`] prices the rejects as the labeller's bulk keys do (Accept all,
//! Reject the rest and next): the measure of the Review panel's TTA "auto".

use crate::geometry::BoxXyxy;

/// A prediction overlaps a label enough to be fixed rather than rejected.
pub const MATCH_IOU: f64 = 0.5;

/// A prediction this close to its label needs no fix (the simulated labeller's
/// `DONE_IOU`).
pub const TIGHT_IOU: f64 = 0.85;

/// A box with its class name: a label, or a shown prediction.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedBox {
    pub bbox: BoxXyxy,
    pub class_name: String,
}

/// How an image's shown predictions stand against its labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReviewTally {
    /// Tight boxes of the right class (accepted as they are).
    pub good: usize,
    /// Actions of the fixes: a redraw per loose box, a relabel per wrong class.
    pub fixes: usize,
    /// Predictions on no label.
    pub wrong: usize,
    /// Second predictions on a label a better one took (IoU ≥ [`MATCH_IOU`]): Accept all
    /// leaves them out.
    pub duplicates: usize,
    /// Labels no prediction matched (drawn by hand).
    pub missing: usize,
}

impl ReviewTally {
    /// Matches `shown` (predictions, by descending score) to `labels`.
    pub fn of(labels: &[NamedBox], shown: &[NamedBox]) -> Self {
        let mut taken = vec![false; labels.len()];
        let mut tally = Self::default();
        for p in shown {
            let best = labels
                .iter()
                .enumerate()
                .filter(|(l, _)| !taken[*l])
                .map(|(l, label)| (l, label.bbox.iou(&p.bbox)))
                .filter(|&(_, iou)| iou >= MATCH_IOU)
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
            let Some((l, iou)) = best else {
                let on_taken = labels
                    .iter()
                    .zip(&taken)
                    .any(|(label, t)| *t && label.bbox.iou(&p.bbox) >= MATCH_IOU);
                if on_taken {
                    tally.duplicates += 1;
                } else {
                    tally.wrong += 1;
                }
                continue;
            };
            taken[l] = true;
            let fixes =
                usize::from(iou < TIGHT_IOU) + usize::from(labels[l].class_name != p.class_name);
            tally.fixes += fixes;
            tally.good += usize::from(fixes == 0);
        }
        tally.missing = taken.iter().filter(|t| !**t).count();
        tally
    }

    /// Every wrong prediction rejected on its own, the good ones taken with the move to
    /// the next image: the auto-retrain trial's measure.
    pub fn one_by_one(&self) -> usize {
        self.fixes + self.wrong + self.duplicates + self.missing
    }

    /// As the labeller's cheaper order takes them (the simulated labeller's): either each
    /// wrong one rejected and the good ones accepted all at once (one more key when boxes
    /// remain to be drawn after it), or each good one accepted on its own and the wrong
    /// ones rejected together with the move to the next image (Ctrl+Delete). Duplicates
    /// cost nothing either way.
    pub fn in_bulk(&self) -> usize {
        let accept_all = self.wrong + usize::from(self.good > 0 && self.missing > 0);
        self.fixes + self.missing + accept_all.min(self.good)
    }
}

/// Review actions to turn `shown` (predictions, by descending score) into `labels`, each
/// wrong one rejected on its own ([`ReviewTally::one_by_one`]).
pub fn review_actions(labels: &[NamedBox], shown: &[NamedBox]) -> usize {
    ReviewTally::of(labels, shown).one_by_one()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(x1: f64, class: &str) -> NamedBox {
        NamedBox {
            bbox: BoxXyxy::new(x1, 0.0, x1 + 10.0, 10.0),
            class_name: class.into(),
        }
    }

    #[test]
    fn no_prediction_costs_one_drawn_box_per_label() {
        let labels = [named(0.0, "cola"), named(20.0, "sprite")];
        assert_eq!(review_actions(&labels, &[]), 2);
        assert_eq!(review_actions(&[], &[]), 0);
    }

    #[test]
    fn tight_right_boxes_are_free_and_each_mistake_costs_one() {
        let labels = [
            named(0.0, "cola"),
            named(20.0, "sprite"),
            named(40.0, "cola"),
        ];
        let shown = [
            named(0.0, "cola"),
            named(21.0, "cola"),
            named(100.0, "cola"),
        ];
        // The first is tight and right: free. The second, against 20..30, has IoU
        // 9/11 = 0.82 (loose) and the wrong class: 2. The third lies on nothing: a reject.
        // The label at 40 is drawn: 1.
        assert_eq!(review_actions(&labels, &shown), 4);
        let better = [
            named(0.0, "cola"),
            named(20.0, "sprite"),
            named(40.0, "cola"),
        ];
        assert_eq!(review_actions(&labels, &better), 0);
    }

    #[test]
    fn a_duplicate_on_a_taken_label_is_rejected() {
        let labels = [named(0.0, "cola")];
        let shown = [named(0.0, "cola"), named(0.5, "cola")];
        assert_eq!(review_actions(&labels, &shown), 1);
    }

    #[test]
    fn in_bulk_the_cheaper_of_rejecting_the_wrong_and_accepting_the_good_one_by_one() {
        let labels = [named(0.0, "cola"), named(20.0, "cola"), named(40.0, "cola")];
        // Three good, two wrong: reject both, then accept all with the next image.
        let shown = [
            named(0.0, "cola"),
            named(20.0, "cola"),
            named(40.0, "cola"),
            named(100.0, "cola"),
            named(200.0, "cola"),
        ];
        let tally = ReviewTally::of(&labels, &shown);
        assert_eq!(
            tally,
            ReviewTally {
                good: 3,
                fixes: 0,
                wrong: 2,
                duplicates: 0,
                missing: 0
            }
        );
        assert_eq!((tally.one_by_one(), tally.in_bulk()), (2, 2));
        // One good, three wrong, one label to draw: accept the good one (1), draw (1),
        // the wrong ones go with the next image.
        let shown = [
            named(0.0, "cola"),
            named(100.0, "cola"),
            named(200.0, "cola"),
            named(300.0, "cola"),
        ];
        let tally = ReviewTally::of(&labels[..2], &shown);
        assert_eq!((tally.one_by_one(), tally.in_bulk()), (4, 2));
        // Only wrong ones: all rejected with the next image.
        let tally = ReviewTally::of(&[], &shown);
        assert_eq!((tally.one_by_one(), tally.in_bulk()), (4, 0));
        // A second box on a taken label is left out by Accept all.
        let shown = [named(0.0, "cola"), named(0.5, "cola")];
        let tally = ReviewTally::of(&labels[..1], &shown);
        assert_eq!((tally.duplicates, tally.wrong), (1, 0));
        assert_eq!((tally.one_by_one(), tally.in_bulk()), (1, 0));
    }

    #[test]
    fn a_tight_box_of_the_wrong_class_is_one_relabel_and_a_loose_right_one_one_redraw() {
        let labels = [named(0.0, "cola")];
        assert_eq!(review_actions(&labels, &[named(0.0, "sprite")]), 1);
        assert_eq!(review_actions(&labels, &[named(3.0, "cola")]), 1);
    }
}
