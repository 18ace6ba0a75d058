//! Disagreement mining: where a model's predictions and an image's labels disagree, and
//! which images to look at first. A disagreement is as often a labelling mistake (a
//! forgotten product, a wrong class, a sloppy box) as a model mistake.
//!
//! [`compare`] matches predictions to labels greedily, by descending prediction score:
//! each prediction takes the unmatched label of its class with the highest IoU, if that
//! IoU is ≥ [`MatchSettings::iou_match`]; each label is matched at most once. Then:
//!
//! * **missed label**: a label no prediction of its class matched;
//! * **loose box**: a matched pair with IoU < [`MatchSettings::iou_tight`];
//! * **class mismatch**: an unmatched prediction with score ≥ [`MatchSettings::confident`]
//!   that overlaps (IoU ≥ `iou_match`) a label of another class;
//! * **confident extra**: an unmatched prediction with score ≥ `confident` that overlaps
//!   no label of any class at IoU ≥ `iou_match`.
//!
//! Unmatched predictions below `confident` are ignored, and so are confident duplicates
//! (unmatched predictions that only overlap an already matched label of their own class).
//! A label that a wrong-class prediction covers and no right-class prediction matches
//! counts both as missed and as a class mismatch.
//!
//! The image's [`ImageDisagreement::score`] is
//! `MISSED_WEIGHT · missed + MISMATCH_WEIGHT · mismatches + Σ extra scores + LOOSE_WEIGHT · loose`
//! (1, 1, the prediction's own score, 0.5): a confident phantom counts by how sure the
//! model is, a loose box half as much as a missing one.

use std::cmp::Ordering;

use crate::detector::maths::postprocess::Detection;
use crate::geometry::BoxXyxy;

/// Weight of a missed label in [`ImageDisagreement::score`].
pub const MISSED_WEIGHT: f64 = 1.0;
/// Weight of a class mismatch in [`ImageDisagreement::score`].
pub const MISMATCH_WEIGHT: f64 = 1.0;
/// Weight of a loose box in [`ImageDisagreement::score`].
pub const LOOSE_WEIGHT: f64 = 0.5;

/// Thresholds of [`compare`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatchSettings {
    /// A prediction matches a label at IoU ≥ this (default 0.5).
    pub iou_match: f64,
    /// A matched pair below this IoU is a loose box (default 0.75).
    pub iou_tight: f64,
    /// Unmatched predictions below this score are ignored (default 0.5).
    pub confident: f32,
}

impl Default for MatchSettings {
    fn default() -> Self {
        Self {
            iou_match: 0.5,
            iou_tight: 0.75,
            confident: 0.5,
        }
    }
}

/// How one image's predictions and labels disagree.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ImageDisagreement {
    /// Labels without a same-class match.
    pub missed_labels: usize,
    /// Confident predictions on no label at all.
    pub confident_extras: usize,
    /// Confident unmatched predictions on a label of another class.
    pub class_mismatches: usize,
    /// Matched pairs with IoU below [`MatchSettings::iou_tight`].
    pub loose_boxes: usize,
    /// The weighted sum described in the module doc.
    pub score: f64,
}

impl ImageDisagreement {
    /// The count of one kind; for [`DisagreementKind::Any`], the total of all four.
    pub fn count(&self, kind: DisagreementKind) -> usize {
        match kind {
            DisagreementKind::Any => {
                self.missed_labels
                    + self.confident_extras
                    + self.class_mismatches
                    + self.loose_boxes
            }
            DisagreementKind::Missed => self.missed_labels,
            DisagreementKind::Extra => self.confident_extras,
            DisagreementKind::ClassMismatch => self.class_mismatches,
            DisagreementKind::Loose => self.loose_boxes,
        }
    }
}

/// Which disagreements to rank images by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DisagreementKind {
    /// Any kind, by [`ImageDisagreement::score`].
    Any,
    Missed,
    Extra,
    ClassMismatch,
    Loose,
}

/// Compares one image's labels (box, class id) with its predictions (same pixel frame).
pub fn compare(
    labels: &[(BoxXyxy, usize)],
    preds: &[Detection],
    s: &MatchSettings,
) -> ImageDisagreement {
    let mut order: Vec<usize> = (0..preds.len()).collect();
    order.sort_by(|&a, &b| preds[b].score.total_cmp(&preds[a].score).then(a.cmp(&b)));

    let mut label_taken = vec![false; labels.len()];
    let mut pred_matched = vec![false; preds.len()];
    let mut out = ImageDisagreement::default();
    for &p in &order {
        let pred = &preds[p];
        let best = labels
            .iter()
            .enumerate()
            .filter(|&(l, &(_, class))| !label_taken[l] && class == pred.class_id)
            .map(|(l, (b, _))| (l, b.iou(&pred.bbox)))
            .filter(|&(_, iou)| iou >= s.iou_match)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        if let Some((l, iou)) = best {
            label_taken[l] = true;
            pred_matched[p] = true;
            if iou < s.iou_tight {
                out.loose_boxes += 1;
            }
        }
    }
    out.missed_labels = label_taken.iter().filter(|&&t| !t).count();

    let mut extra_score = 0.0;
    for (pred, _) in preds
        .iter()
        .zip(&pred_matched)
        .filter(|&(p, &m)| !m && p.score >= s.confident)
    {
        let overlaps = |same_class: bool| {
            labels.iter().any(|(b, class)| {
                (*class == pred.class_id) == same_class && b.iou(&pred.bbox) >= s.iou_match
            })
        };
        if overlaps(false) {
            out.class_mismatches += 1;
        } else if !overlaps(true) {
            out.confident_extras += 1;
            extra_score += f64::from(pred.score);
        }
    }
    out.score = MISSED_WEIGHT * out.missed_labels as f64
        + MISMATCH_WEIGHT * out.class_mismatches as f64
        + extra_score
        + LOOSE_WEIGHT * out.loose_boxes as f64;
    out
}

/// Indices into `items` of the images with a disagreement of `kind`, worst first: by that
/// kind's count, then by score (for [`DisagreementKind::Any`]: every image with a
/// non-zero score, by score); ties keep the input order.
pub fn rank<T>(items: &[(T, ImageDisagreement)], kind: DisagreementKind) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..items.len())
        .filter(|&i| {
            let d = &items[i].1;
            match kind {
                DisagreementKind::Any => d.score > 0.0,
                k => d.count(k) > 0,
            }
        })
        .collect();
    let by_score = |a: &ImageDisagreement, b: &ImageDisagreement| b.score.total_cmp(&a.score);
    idx.sort_by(|&a, &b| {
        let (da, db) = (&items[a].1, &items[b].1);
        let first = match kind {
            DisagreementKind::Any => Ordering::Equal,
            k => db.count(k).cmp(&da.count(k)),
        };
        first.then(by_score(da, db)).then(a.cmp(&b))
    });
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f64, y1: f64, x2: f64, y2: f64) -> BoxXyxy {
        BoxXyxy::new(x1, y1, x2, y2)
    }

    fn det(bbox: BoxXyxy, class_id: usize, score: f32) -> Detection {
        Detection {
            bbox,
            score,
            class_id,
        }
    }

    fn counts(d: &ImageDisagreement) -> [usize; 4] {
        [
            d.missed_labels,
            d.confident_extras,
            d.class_mismatches,
            d.loose_boxes,
        ]
    }

    const SQ: BoxXyxy = BoxXyxy::new(0.0, 0.0, 100.0, 100.0);
    const FAR: BoxXyxy = BoxXyxy::new(500.0, 500.0, 600.0, 600.0);

    #[test]
    fn agreement_is_clean() {
        let d = compare(&[(SQ, 0)], &[det(SQ, 0, 0.9)], &MatchSettings::default());
        assert_eq!(counts(&d), [0; 4]);
        assert_eq!(d.score, 0.0);
        let empty = compare(&[], &[], &MatchSettings::default());
        assert_eq!(empty, ImageDisagreement::default());
    }

    #[test]
    fn missed_label() {
        let s = MatchSettings::default();
        let d = compare(&[(SQ, 0), (FAR, 1)], &[det(SQ, 0, 0.9)], &s);
        assert_eq!(counts(&d), [1, 0, 0, 0]);
        assert_eq!(d.score, 1.0);
        // A low-score prediction still matches (the caller picks the threshold).
        let d = compare(&[(SQ, 0)], &[det(SQ, 0, 0.1)], &s);
        assert_eq!(counts(&d), [0; 4]);
        // IoU 0.4 is no match: the label is missed, and the confident prediction, which
        // overlaps no label at IoU ≥ 0.5, is an extra; unconfident, it is ignored.
        let d = compare(&[(SQ, 0)], &[det(b(0.0, 0.0, 100.0, 40.0), 0, 0.9)], &s);
        assert_eq!(counts(&d), [1, 1, 0, 0]);
        let d = compare(&[(SQ, 0)], &[det(b(0.0, 0.0, 100.0, 40.0), 0, 0.3)], &s);
        assert_eq!(counts(&d), [1, 0, 0, 0]);
    }

    #[test]
    fn a_label_is_matched_once_only() {
        let s = MatchSettings::default();
        // Two labels side by side, three predictions: the best-scoring one takes the label
        // it overlaps most; a duplicate on the first label is ignored; the second label is
        // still matched by its own prediction.
        let left = b(0.0, 0.0, 100.0, 100.0);
        let right = b(100.0, 0.0, 200.0, 100.0);
        let preds = [
            det(b(5.0, 0.0, 105.0, 100.0), 0, 0.6),   // IoU .90 left
            det(b(0.0, 0.0, 100.0, 100.0), 0, 0.9),   // takes left first (higher score)
            det(b(100.0, 0.0, 200.0, 100.0), 0, 0.8), // right
        ];
        let d = compare(&[(left, 0), (right, 0)], &preds, &s);
        // The 0.6 duplicate is unmatched, overlaps its own class only: neither extra
        // nor mismatch.
        assert_eq!(counts(&d), [0, 0, 0, 0]);
        // One label, two predictions: only one match; the label is not missed.
        let d = compare(&[(SQ, 0)], &[det(SQ, 0, 0.9), det(SQ, 0, 0.8)], &s);
        assert_eq!(counts(&d), [0, 0, 0, 0]);
        // Two labels on the same spot, one prediction: one is missed.
        let d = compare(&[(SQ, 0), (SQ, 0)], &[det(SQ, 0, 0.9)], &s);
        assert_eq!(counts(&d), [1, 0, 0, 0]);
    }

    #[test]
    fn greedy_by_score_picks_the_best_iou() {
        let s = MatchSettings::default();
        let a = b(0.0, 0.0, 100.0, 100.0);
        let c = b(20.0, 0.0, 120.0, 100.0);
        // The top prediction sits at x 15: IoU .74 with a, .92 with c: it takes c.
        // The second prediction (on a) then takes a.
        let preds = [det(b(15.0, 0.0, 115.0, 100.0), 0, 0.9), det(a, 0, 0.5)];
        let d = compare(&[(a, 0), (c, 0)], &preds, &s);
        assert_eq!(counts(&d), [0, 0, 0, 0]);
    }

    #[test]
    fn loose_box() {
        let s = MatchSettings::default();
        // IoU 0.6: matched but loose.
        let d = compare(&[(SQ, 0)], &[det(b(0.0, 0.0, 100.0, 60.0), 0, 0.9)], &s);
        assert_eq!(counts(&d), [0, 0, 0, 1]);
        assert_eq!(d.score, 0.5);
        // IoU 0.8: tight.
        let d = compare(&[(SQ, 0)], &[det(b(0.0, 0.0, 100.0, 80.0), 0, 0.9)], &s);
        assert_eq!(counts(&d), [0; 4]);
    }

    #[test]
    fn class_mismatch_versus_extra() {
        let s = MatchSettings::default();
        // Confident sprite on a cola label: mismatch (and the cola label is missed).
        let d = compare(&[(SQ, 0)], &[det(SQ, 1, 0.8)], &s);
        assert_eq!(counts(&d), [1, 0, 1, 0]);
        assert_eq!(d.score, 2.0);
        // Both classes predicted on the label: cola matches, sprite is a mismatch.
        let d = compare(&[(SQ, 0)], &[det(SQ, 0, 0.9), det(SQ, 1, 0.8)], &s);
        assert_eq!(counts(&d), [0, 0, 1, 0]);
        // Confident prediction on no label: extra, weighted by its score.
        let d = compare(&[(SQ, 0)], &[det(SQ, 0, 0.9), det(FAR, 1, 0.8)], &s);
        assert_eq!(counts(&d), [0, 1, 0, 0]);
        assert!((d.score - 0.8).abs() < 1e-6);
        // Overlapping a label of another class too little (IoU 0.4) is an extra.
        let d = compare(&[(SQ, 0)], &[det(b(0.0, 0.0, 100.0, 40.0), 1, 0.7)], &s);
        assert_eq!(counts(&d), [1, 1, 0, 0]);
        // Unconfident unmatched predictions are ignored.
        let d = compare(
            &[(SQ, 0)],
            &[det(SQ, 0, 0.9), det(SQ, 1, 0.4), det(FAR, 0, 0.49)],
            &s,
        );
        assert_eq!(counts(&d), [0; 4]);
    }

    #[test]
    fn settings_change_the_verdicts() {
        let strict = MatchSettings {
            iou_match: 0.7,
            iou_tight: 0.95,
            confident: 0.3,
        };
        // IoU 0.6: no match at 0.7, so a missed label and a confident extra (0.35 ≥ 0.3,
        // and IoU 0.6 is not an overlap at this setting).
        let d = compare(
            &[(SQ, 0)],
            &[det(b(0.0, 0.0, 100.0, 60.0), 0, 0.35)],
            &strict,
        );
        assert_eq!(counts(&d), [1, 1, 0, 0]);
        let d = compare(
            &[(SQ, 0)],
            &[det(b(0.0, 0.0, 100.0, 90.0), 0, 0.35)],
            &strict,
        );
        assert_eq!(counts(&d), [0, 0, 0, 1]);
    }

    #[test]
    fn ranking() {
        let mk = |m, e, c, l, score| ImageDisagreement {
            missed_labels: m,
            confident_extras: e,
            class_mismatches: c,
            loose_boxes: l,
            score,
        };
        let items = vec![
            ("clean", mk(0, 0, 0, 0, 0.0)),
            ("one missed", mk(1, 0, 0, 0, 1.0)),
            ("two missed", mk(2, 0, 0, 1, 2.5)),
            ("extra", mk(0, 1, 0, 0, 0.9)),
            ("missed+mismatch", mk(1, 0, 1, 0, 2.0)),
            ("loose", mk(0, 0, 0, 2, 1.0)),
            ("one missed, more score", mk(1, 2, 0, 0, 2.8)),
        ];
        assert_eq!(rank(&items, DisagreementKind::Any), vec![6, 2, 4, 1, 5, 3]);
        assert_eq!(rank(&items, DisagreementKind::Missed), vec![2, 6, 4, 1]);
        assert_eq!(rank(&items, DisagreementKind::Extra), vec![6, 3]);
        assert_eq!(rank(&items, DisagreementKind::ClassMismatch), vec![4]);
        assert_eq!(rank(&items, DisagreementKind::Loose), vec![5, 2]);
        assert!(rank::<()>(&[], DisagreementKind::Any).is_empty());
        assert_eq!(items[6].1.count(DisagreementKind::Any), 3);
    }
}
