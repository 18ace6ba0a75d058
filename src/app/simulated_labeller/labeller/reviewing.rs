//! The labeller's review of an image's pending predictions: each one accepted (all at
//! once where it can), rejected, tightened, relabelled (several of one wrong class
//! together), redrawn or dragged, whichever is cheapest.

use std::collections::HashMap;

use image::RgbImage;

use super::{drags_to, Sim, SimError, DONE_IOU};
use crate::app::review::ShownPrediction;
use crate::app::Command;
use crate::assist::tighten;
use crate::dataset::LabelBox;
use crate::review::PredictionState;

/// A prediction this close to an oracle box is about that box (fixable, not wrong).
const SAME_OBJECT_IOU: f64 = 0.5;

/// Right boxes of a wrong class are relabelled together (a click each and one class key)
/// when at least this many need the same class; fewer are relabelled one by one (a class
/// key each).
const BULK_RELABEL_MIN: usize = 3;

impl Sim {
    /// Decides every pending prediction: wrong ones rejected, loose ones tightened or
    /// fixed, good ones accepted all at once; or, where the wrong ones outnumber the
    /// right ones, the right ones taken one by one and the wrong ones left pending for
    /// Ctrl+Delete (reject the rest and next) once the image is done.
    pub(super) fn review_pending(
        &mut self,
        truth: &[LabelBox],
        pixels: Option<&RgbImage>,
    ) -> Result<(), SimError> {
        loop {
            let shown = self.app.shown_predictions();
            let missing = self.missing(truth);
            let pending: Vec<usize> = (0..shown.len())
                .filter(|&i| shown[i].state == PredictionState::Pending)
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            let groups = if self.options.assistants {
                wrong_class_groups(&shown, &pending, &missing)
            } else {
                HashMap::new()
            };
            // Pair each pending prediction with the missing box it is about.
            let mut claimed = vec![false; missing.len()];
            let mut deferred: Vec<usize> = Vec::new();
            let mut worst: Option<(usize, Option<usize>)> = None;
            let mut first_fixable: Option<(usize, usize)> = None;
            let mut first_good: Option<usize> = None;
            let (mut good, mut wrong) = (0, 0);
            for &i in &pending {
                let p = &shown[i];
                let best = missing
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| !claimed[*k])
                    // As the app saves it: rounded to whole pixels.
                    .map(|(k, t)| (k, t.bbox.iou(&p.detection.bbox.rounded())))
                    .filter(|(_, iou)| *iou >= SAME_OBJECT_IOU)
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                match best {
                    Some((k, iou)) if iou >= DONE_IOU && missing[k].class_name == p.class_name => {
                        claimed[k] = true;
                        good += 1;
                        first_good.get_or_insert(i);
                    }
                    // Right box, wrong class, with enough others of the same fix: taken
                    // by Accept all and relabelled together afterwards.
                    Some((k, iou))
                        if iou >= DONE_IOU
                            && groups.get(&missing[k].class_name).copied().unwrap_or(0)
                                >= BULK_RELABEL_MIN =>
                    {
                        claimed[k] = true;
                        deferred.push(k);
                        first_fixable.get_or_insert((i, k));
                    }
                    Some((k, _)) => {
                        claimed[k] = true;
                        worst.get_or_insert((i, Some(k)));
                        first_fixable.get_or_insert((i, k));
                    }
                    None => {
                        worst.get_or_insert((i, None));
                        wrong += 1;
                    }
                }
            }
            if worst.is_some()
                && self.options.assistants
                && self.accept_all_leaves_only_duplicates(&shown, &missing)
            {
                self.count("accept_all", 1);
                self.app.apply(Command::AcceptAllShown);
                continue;
            }
            // Rejecting the wrong ones costs a key each and Accept all then one more, unless
            // it goes with the next image (nothing left to draw); taking the right ones one
            // by one and leaving the rest to Ctrl+Delete costs a key each and one with the
            // next image. The cheaper way, decided once per image.
            let to_draw = claimed.iter().any(|c| !c);
            let about_objects = good + deferred.len();
            if self.options.assistants
                && (self.reject_rest
                    || about_objects < wrong + usize::from(about_objects > 0 && to_draw))
            {
                self.reject_rest = true;
                match (first_fixable, first_good) {
                    (Some((i, k)), _) => {
                        let more = pending.len() - good - wrong > 1 || to_draw;
                        self.fix_prediction(i, &missing[k], more, pixels)?;
                    }
                    (None, Some(i)) => {
                        self.count("accept", 1);
                        self.app.apply(Command::AcceptPrediction {
                            index: i,
                            class: None,
                            bbox: None,
                        });
                    }
                    (None, None) => return Ok(()),
                }
                continue;
            }
            match worst {
                None => {
                    // Every pending prediction is right: accept them all (Shift+Enter, one
                    // key even for one, and Ctrl+Enter with the next image when the image
                    // is done).
                    self.count("accept_all", 1);
                    self.app.apply(Command::AcceptAllShown);
                    let targets: Vec<LabelBox> =
                        deferred.iter().map(|&k| missing[k].clone()).collect();
                    self.relabel_in_bulk(&targets);
                }
                Some((i, None)) => {
                    self.count("reject", 1);
                    self.app.apply(Command::RejectPrediction(i));
                }
                Some((i, Some(k))) => {
                    // More boxes to draw or fix after this one (continuous drawing pays).
                    let more = pending.len() - good > 1 || claimed.iter().any(|c| !c);
                    self.fix_prediction(i, &missing[k], more, pixels)?
                }
            }
        }
    }

    /// Gives the labels on `targets` (right boxes of another class, just accepted) their
    /// class, class by class: the boxes selected (see [`Sim::select`]) and one class key
    /// for all of them (after Esc when drawing: a click or drag would draw).
    fn relabel_in_bulk(&mut self, targets: &[LabelBox]) {
        let mut classes: Vec<&str> = targets.iter().map(|t| t.class_name.as_str()).collect();
        classes.sort_unstable();
        classes.dedup();
        for class in classes {
            let labels = self.labels();
            let picked: Vec<usize> = targets
                .iter()
                .filter(|t| t.class_name == class)
                .filter_map(|t| {
                    labels.iter().position(|l| {
                        l.class_name != t.class_name && l.bbox.iou(&t.bbox) >= DONE_IOU
                    })
                })
                .collect();
            if picked.is_empty() {
                continue;
            }
            self.stop_drawing();
            self.select(&picked);
            let cost = self.relabel_cost(class);
            self.count("relabel", cost);
            self.app.apply(Command::RelabelBoxes {
                targets: self.app.selection(),
                label: class.to_string(),
            });
        }
    }

    /// Whether Accept all would take only right predictions (each the box of a different
    /// missing box, right class) and what it leaves out is about none of the other
    /// missing boxes: the duplicates of better predictions then need no reject.
    fn accept_all_leaves_only_duplicates(
        &self,
        shown: &[ShownPrediction],
        missing: &[LabelBox],
    ) -> bool {
        let choice = self.app.accept_all_choice(shown);
        let mut claimed = vec![false; missing.len()];
        for &i in &choice {
            let p = &shown[i];
            let bbox = p.detection.bbox.rounded();
            let Some(k) = (0..missing.len()).find(|&k| {
                !claimed[k]
                    && missing[k].class_name == p.class_name
                    && missing[k].bbox.iou(&bbox) >= DONE_IOU
            }) else {
                return false;
            };
            claimed[k] = true;
        }
        let left_out_about_nothing = (0..shown.len())
            .filter(|i| shown[*i].state == PredictionState::Pending && !choice.contains(i))
            .all(|i| {
                let bbox = shown[i].detection.bbox.rounded();
                (0..missing.len())
                    .all(|k| claimed[k] || missing[k].bbox.iou(&bbox) < SAME_OBJECT_IOU)
            });
        !choice.is_empty() && left_out_about_nothing
    }

    /// A prediction about `target` that is loose or of the wrong class: relabelled, `t`,
    /// a box drawn over it (drawing mode) or its edges dragged, whichever is cheapest;
    /// `more`: other boxes follow that need drawing or fixing.
    fn fix_prediction(
        &mut self,
        index: usize,
        target: &LabelBox,
        more: bool,
        pixels: Option<&RgbImage>,
    ) -> Result<(), SimError> {
        let shown = self.app.shown_predictions();
        let p = shown[index].clone();
        let class = (p.class_name != target.class_name).then(|| target.class_name.clone());
        // Accepting saves the box rounded to whole pixels.
        let predicted = p.detection.bbox.rounded();
        let iou = predicted.iou(&target.bbox);
        if iou >= DONE_IOU {
            let cost = self.relabel_cost(&target.class_name);
            self.count("relabel", cost);
            self.app.apply(Command::AcceptPrediction {
                index,
                class,
                bbox: None,
            });
            return Ok(());
        }
        let tightened = if !self.options.assistants {
            None
        } else if p.proposal.is_none() {
            self.app.refined_prediction_box(&p.detection.bbox)
        } else {
            pixels.map(|px| tighten::tighten(px, p.detection.bbox))
        };
        if tightened.is_some_and(|b| b.rounded().iou(&target.bbox) >= DONE_IOU) {
            self.count("tighten", 1);
            self.app.apply(Command::TightenPrediction(index));
            self.wait_for_assistant()?;
            if class.is_some() {
                self.relabel_last(target)?;
            }
            return Ok(());
        }
        let (drags, fixed) = drags_to(predicted, target.bbox);
        let drag_cost = drags + 1 + usize::from(self.drawing);
        let redraw_cost = 1 + usize::from(!self.drawing);
        // At a tie, continuous drawing pays when more boxes follow: each then costs one.
        if self.options.assistants
            && (redraw_cost < drag_cost || (more && redraw_cost == drag_cost))
        {
            self.start_drawing(more);
            self.count("redraw", 1);
            let before = self.labels().len();
            self.app.apply(Command::BoxDrawn(target.bbox));
            self.answer_label_dialog(target);
            if self.labels().len() == before {
                return Err(SimError::Stuck(
                    "a box drawn over a prediction made no label".into(),
                ));
            }
            if self
                .labels()
                .last()
                .is_some_and(|l| l.class_name != target.class_name)
            {
                self.relabel_last(target)?;
            }
            return Ok(());
        }
        self.stop_drawing();
        self.count("fix_drag", drags + 1);
        if class.is_some() {
            let cost = self.relabel_cost(&target.class_name);
            self.count("relabel", cost);
        }
        self.app.apply(Command::AcceptPrediction {
            index,
            class,
            bbox: Some(fixed),
        });
        Ok(())
    }
}

/// Per class, how many `pending` predictions have the right box (IoU ≥ [`DONE_IOU`]) of
/// a `missing` box of that class but another class.
fn wrong_class_groups(
    shown: &[ShownPrediction],
    pending: &[usize],
    missing: &[LabelBox],
) -> HashMap<String, usize> {
    let mut groups: HashMap<String, usize> = HashMap::new();
    for &i in pending {
        let p = &shown[i];
        let bbox = p.detection.bbox.rounded();
        if let Some(t) = missing
            .iter()
            .find(|t| t.class_name != p.class_name && t.bbox.iou(&bbox) >= DONE_IOU)
        {
            *groups.entry(t.class_name.clone()).or_default() += 1;
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::maths::postprocess::Detection;
    use crate::geometry::BoxXyxy;

    fn shown(class: &str, x: f64) -> ShownPrediction {
        let bbox = BoxXyxy::new(x, 0.0, x + 20.0, 40.0);
        ShownPrediction {
            detection: Detection {
                bbox,
                score: 0.9,
                class_id: 0,
            },
            state: PredictionState::Pending,
            class_name: class.into(),
            predicted: bbox,
            proposal: Some(0),
        }
    }

    #[test]
    fn right_boxes_of_a_wrong_class_are_grouped_by_the_class_they_need() {
        let truth =
            |class: &str, x: f64| LabelBox::new(class, BoxXyxy::new(x, 0.0, x + 20.0, 40.0));
        let missing = [
            truth("L", 0.0),
            truth("L", 30.0),
            truth("L", 60.0),
            truth("S", 90.0),
            truth("S", 120.0),
        ];
        // Three S proposals on L facings, one right S, one off every facing.
        let predictions = [
            shown("S", 0.0),
            shown("S", 30.0),
            shown("S", 60.0),
            shown("S", 90.0),
            shown("S", 200.0),
        ];
        let groups = wrong_class_groups(&predictions, &[0, 1, 2, 3, 4], &missing);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups["L"], 3);
        assert!(groups["L"] >= BULK_RELABEL_MIN);
        // Only the pending ones count.
        assert_eq!(wrong_class_groups(&predictions, &[0, 3], &missing)["L"], 1);
    }
}
