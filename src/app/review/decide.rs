//! What the reviewer sees and decides: the predictions of an image with their states,
//! accept / reject / fix / relabel, Tab to the next pending one, and the review log.

use std::cell::OnceCell;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::ShownPrediction;
use crate::app::jobs::LatestWriter;
use crate::app::AppState;
use crate::dataset::LabelBox;
use crate::detector::maths::postprocess::{Detection, SelectConfig};
use crate::geometry::BoxXyxy;
use crate::review::{
    classify, matches_label, CachedPrediction, Decision, NamedBox, PredictionState, ReviewLog,
    Verdict,
};

/// A box drawn over a pending prediction overlapping it at least this much fixes that
/// prediction ([`AppState::fix_prediction_under`]): the usual "same object" overlap.
pub const REDRAW_IOU: f64 = 0.5;

/// How much of the box refinement ([`AppState::predictions_of`]) to compute.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refinement {
    /// The model's boxes as they are.
    Off,
    /// Only where a refined box could match a label (the states are exact, the boxes not).
    States,
    /// Every box refined, as the reviewer sees them.
    Boxes,
}

/// Logs the writer thread wrote, each with the log it was made from (`(sent, written)`).
pub(crate) type MergedLogs = Arc<Mutex<Vec<(ReviewLog, ReviewLog)>>>;

/// One write of the review log: this window's `log`, the `base` it was made from, and
/// where to hand the merged result back.
pub(crate) struct LogWrite {
    base: ReviewLog,
    log: ReviewLog,
    merged: MergedLogs,
}

/// Saves the review log of a labels folder (for [`LatestWriter`]), merged per decision
/// with what another window wrote since (never last-writer-wins); the error is the
/// message to show. A file that cannot be read is left untouched.
fn save_log(write: &LogWrite, labels_dir: &Path) -> Result<(), String> {
    let on_disk = ReviewLog::load(labels_dir).map_err(|e| {
        format!("the review log is not saved, so that the file is left untouched: {e}")
    })?;
    let merged = ReviewLog::merge(&write.base, &write.log, &on_disk);
    merged
        .save(labels_dir)
        .map_err(|e| format!("cannot save the review log: {e}"))?;
    if let Ok(mut slot) = write.merged.lock() {
        slot.push((write.log.clone(), merged));
    }
    Ok(())
}

/// The model's boxes the Review panel shows for `pred` (at `select`; refined as the
/// reviewer sees them when `refine`), by descending score, with their class names: what a
/// reviewer would face on that image with nothing decided yet.
pub(crate) fn shown_boxes(
    pred: &CachedPrediction,
    select: &SelectConfig,
    refine: bool,
    class_names: &[String],
) -> Vec<NamedBox> {
    let mut dets = pred.reselect(select);
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let candidates = OnceCell::new();
    dets.into_iter()
        .map(|d| {
            let refined = refine
                .then(|| refined_box(pred, &candidates, d.bbox))
                .flatten();
            NamedBox {
                bbox: refined.unwrap_or(d.bbox),
                class_name: class_names.get(d.class_id).cloned().unwrap_or_default(),
            }
        })
        .collect()
}

/// The refinement of one of `pred`'s boxes: the fusion of the candidates around it
/// (click-to-box's), which are read once per image into `candidates`.
fn refined_box(
    pred: &CachedPrediction,
    candidates: &OnceCell<Vec<Detection>>,
    around: BoxXyxy,
) -> Option<BoxXyxy> {
    use crate::assist::click_box::{fused_box, CLICK_SCORE_THRESHOLD, FUSION_IOU};
    fused_box(
        candidates.get_or_init(|| pred.above(CLICK_SCORE_THRESHOLD)),
        around,
        FUSION_IOU,
    )
}

impl AppState {
    /// The predictions of `image` at the current thresholds, with their review state,
    /// followed by the assistants' proposals for it; rejected ones are left out.
    pub fn predictions_of(&self, image: &Path) -> Vec<ShownPrediction> {
        self.predictions_with(image, self.refinement(Refinement::Boxes))
    }

    /// `when_on` while *Refine boxes* is on, else [`Refinement::Off`].
    fn refinement(&self, when_on: Refinement) -> Refinement {
        if self.review.refine_boxes {
            when_on
        } else {
            Refinement::Off
        }
    }

    /// [`Self::predictions_of`] with the given box refinement. The log matches the
    /// model's own boxes; a label matches either the model's box or the refined one the
    /// reviewer sees.
    fn predictions_with(&self, image: &Path, refine: Refinement) -> Vec<ShownPrediction> {
        let mut shown = self.model_predictions_of(image, refine);
        let labels = self.labels_of(image);
        let proposals = self
            .assist
            .proposals
            .get(image)
            .map_or(&[][..], Vec::as_slice);
        let names: Vec<String> = proposals.iter().map(|p| p.class_name.clone()).collect();
        let detections: Vec<Detection> = proposals
            .iter()
            .enumerate()
            .map(|(i, p)| Detection {
                bbox: p.bbox,
                score: p.score,
                class_id: i,
            })
            .collect();
        let states = classify(&detections, &names, labels, |_| None);
        shown.extend(
            proposals
                .iter()
                .zip(detections)
                .zip(states)
                .enumerate()
                .map(|(i, ((p, detection), state))| ShownPrediction {
                    predicted: detection.bbox,
                    detection,
                    state,
                    class_name: p.class_name.clone(),
                    proposal: Some(i),
                }),
        );
        shown
    }

    fn model_predictions_of(&self, image: &Path, refine: Refinement) -> Vec<ShownPrediction> {
        let (Some(model), Some(pred)) = (&self.review.model, self.review.predictions.get(image))
        else {
            return Vec::new();
        };
        let dets = pred.reselect(&self.review.select);
        let labels = self.labels_of(image);
        let key = self.image_key(image);
        let states = classify(&dets, &model.class_names, labels, |d| {
            let name = model.class_names.get(d.class_id)?;
            let decision = self.review.log.find(&key, &model.id.0, name, &d.bbox)?;
            // An accepted prediction whose label was since deleted or undone is pending again.
            let label_gone = decision.verdict != Verdict::Rejected
                && !labels.iter().any(|l| {
                    self.review
                        .log
                        .provenance(&key, l)
                        .is_some_and(|p| p == decision)
                });
            (!label_gone).then_some(decision.verdict)
        });
        let candidates = OnceCell::new();
        dets.into_iter()
            .zip(states)
            .filter(|(_, s)| *s != PredictionState::Rejected)
            .map(|(detection, mut state)| {
                let class_name = model
                    .class_names
                    .get(detection.class_id)
                    .cloned()
                    .unwrap_or_else(|| "?".into());
                let near_label = || {
                    state == PredictionState::Pending
                        && labels.iter().any(|l| {
                            l.class_name == class_name && l.bbox.iou(&detection.bbox) > 0.0
                        })
                };
                let refined = match refine {
                    Refinement::Off => None,
                    Refinement::States if !near_label() => None,
                    Refinement::States | Refinement::Boxes => {
                        refined_box(pred, &candidates, detection.bbox)
                    }
                };
                if state == PredictionState::Pending
                    && refined.is_some_and(|b| matches_label(&b, &class_name, labels))
                {
                    state = PredictionState::MatchesLabel;
                }
                let shown_box = match refine {
                    Refinement::Boxes => refined.unwrap_or(detection.bbox),
                    _ => detection.bbox,
                };
                ShownPrediction {
                    class_name,
                    predicted: detection.bbox,
                    detection: Detection {
                        bbox: shown_box,
                        ..detection
                    },
                    state,
                    proposal: None,
                }
            })
            .collect()
    }

    /// The current image's predictions (see [`Self::predictions_of`]).
    pub fn shown_predictions(&self) -> Vec<ShownPrediction> {
        if !self.review.show {
            return Vec::new();
        }
        self.current_path()
            .map(|p| self.predictions_of(&p))
            .unwrap_or_default()
    }

    /// Pending predictions of `image` (asked per file-list row and frame, so boxes are
    /// refined only where that can change a state: next to a label of their class).
    pub fn pending_count(&self, image: &Path) -> usize {
        self.predictions_with(image, self.refinement(Refinement::States))
            .iter()
            .filter(|p| p.state == PredictionState::Pending)
            .count()
    }

    fn record_decision(
        &mut self,
        shown: &ShownPrediction,
        verdict: Verdict,
        label: Option<&LabelBox>,
    ) {
        let (Some(model), Some(image)) = (self.review.model.clone(), self.current_path()) else {
            return;
        };
        let d = &shown.detection;
        let p = shown.predicted;
        let key = self.image_key(&image);
        let recorded = self.review.log.record(
            &key,
            Decision {
                model: model.id.0.clone(),
                class_name: model
                    .class_names
                    .get(d.class_id)
                    .cloned()
                    .unwrap_or_default(),
                predicted: [p.x1, p.y1, p.x2, p.y2],
                score: d.score,
                verdict,
                label: label.map(|l| [l.bbox.x1, l.bbox.y1, l.bbox.x2, l.bbox.y2]),
                label_class: label.map(|l| l.class_name.clone()),
            },
        );
        match recorded {
            Ok(()) => self.save_review_log(),
            Err(e) => self.info(format!("review decision not recorded: {e}")),
        }
    }

    pub(super) fn save_review_log(&mut self) {
        // Not while the log on disk is unreadable or still being read (it is merged first).
        if self.review.log_error.is_some() || self.review.log_job.is_some() {
            return;
        }
        let Some(dir) = self.review.log_dir.clone() else {
            return;
        };
        let write = LogWrite {
            base: self.review.log_base.clone(),
            log: self.review.log.clone(),
            merged: self.review.log_merged.clone(),
        };
        let writer = self
            .review
            .log_writer
            .get_or_insert_with(|| LatestWriter::spawn("review-log", save_log));
        if let Err(e) = writer.write(dir, write) {
            self.info(e);
        }
        self.take_merged_logs();
    }

    /// Takes the decisions other windows wrote from the logs the writer merged: they join
    /// this window's log, and the written log becomes the base of the next merge.
    /// Returns whether any log was written.
    pub(super) fn take_merged_logs(&mut self) -> bool {
        let written = match self.review.log_merged.lock() {
            Ok(mut slot) => std::mem::take(&mut *slot),
            Err(_) => return false,
        };
        let any = !written.is_empty();
        for (sent, merged) in written {
            self.review.log = ReviewLog::merge(&sent, &self.review.log, &merged);
            self.review.log_base = merged;
        }
        any
    }

    /// Turns prediction `index` of the current image into a label (named `class` and with
    /// `bbox` if given: relabel / fix) and saves the labels. Existing labels are never
    /// touched.
    pub fn accept_prediction(
        &mut self,
        index: usize,
        class: Option<String>,
        bbox: Option<BoxXyxy>,
    ) {
        let shown = self.shown_predictions();
        let Some(p) = shown.get(index).cloned() else {
            return;
        };
        if matches!(p.state, PredictionState::Accepted | PredictionState::Fixed) {
            return;
        }
        if let Some(k) = p.proposal {
            if self.accept_proposal(k, class, bbox) {
                self.review.selected = self.next_pending_index(index);
            }
            return;
        }
        let Some(model) = self.review.model.clone() else {
            return;
        };
        let predicted = model.class_names.get(p.detection.class_id).cloned();
        let Some(name) = class.clone().or(predicted.clone()) else {
            return;
        };
        let b = bbox.unwrap_or(p.detection.bbox);
        let b = b.rounded();
        if b.width() < 1.0 || b.height() < 1.0 {
            return;
        }
        let label = LabelBox::new(name.clone(), b);
        let Some(doc) = self.workspace.editable() else {
            return;
        };
        let added = label.clone();
        doc.edit(|a| a.boxes.push(added));
        self.workspace.classes.ensure(&name);
        let fixed = (class.is_some() && class != predicted) || bbox.is_some();
        let verdict = if fixed {
            Verdict::Fixed
        } else {
            Verdict::Accepted
        };
        self.record_decision(&p, verdict, Some(&label));
        self.save();
        self.review.selected = self.next_pending_index(index);
    }

    /// A box the user just made over a pending prediction of the same object (IoU ≥
    /// [`REDRAW_IOU`], the best-overlapping one) fixes that prediction: a label with the
    /// prediction's class and the user's box, logged as a fix, selected so that a class
    /// key can still change its class. Whether there was one.
    pub fn fix_prediction_under(&mut self, bbox: BoxXyxy) -> bool {
        let best = self
            .shown_predictions()
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state == PredictionState::Pending)
            .map(|(i, p)| (i, p.detection.bbox.iou(&bbox)))
            .filter(|&(_, iou)| iou >= REDRAW_IOU)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((index, _)) = best else {
            return false;
        };
        let before = self
            .workspace
            .doc
            .as_ref()
            .map(|d| d.annotation.boxes.len());
        self.accept_prediction(index, None, Some(bbox));
        let Some(doc) = self.workspace.doc.as_mut() else {
            return false;
        };
        let n = doc.annotation.boxes.len();
        if Some(n) == before {
            return false;
        }
        doc.selected = Some(n - 1);
        let class = doc.annotation.boxes[n - 1].class_name.clone();
        // Class keys go to the new label, not to the next pending prediction.
        self.review.selected = None;
        self.info(format!("the prediction under the box is fixed ({class})"));
        true
    }

    /// Hides prediction `index` of the current image for good.
    pub fn reject_prediction(&mut self, index: usize) {
        let shown = self.shown_predictions();
        let Some(p) = shown.get(index).cloned() else {
            return;
        };
        if p.state != PredictionState::Pending && p.state != PredictionState::MatchesLabel {
            return;
        }
        match (p.proposal, self.current_path()) {
            (Some(k), Some(image)) => self.remove_proposal(&image, k),
            _ => self.record_decision(&p, Verdict::Rejected, None),
        }
        // Indices shift by one after the rejected prediction disappears.
        let next = self
            .shown_predictions()
            .iter()
            .enumerate()
            .skip(index)
            .find(|(_, s)| s.state == PredictionState::Pending)
            .map(|(i, _)| i);
        self.review.selected = next;
    }

    /// The indices in `shown` (the current image's [`Self::shown_predictions`]) of the
    /// pending predictions that Accept all takes: best score first, leaving out each one that would be a second
    /// label on an object — a label of its class, existing or taken before it, overlaps
    /// it at IoU ≥ [`crate::review::pending::MATCHES_LABEL_IOU`]. Such a duplicate then
    /// matches that label and needs no reject.
    pub fn accept_all_choice(&self, shown: &[ShownPrediction]) -> Vec<usize> {
        let mut labels: Vec<LabelBox> = self
            .current_path()
            .map(|p| self.labels_of(&p).to_vec())
            .unwrap_or_default();
        let mut pending: Vec<usize> = (0..shown.len())
            .filter(|&i| shown[i].state == PredictionState::Pending)
            .collect();
        pending.sort_by(|&a, &b| {
            shown[b]
                .detection
                .score
                .total_cmp(&shown[a].detection.score)
        });
        let mut chosen = Vec::new();
        for i in pending {
            let p = &shown[i];
            let bbox = p.detection.bbox.rounded();
            if !matches_label(&bbox, &p.class_name, &labels) {
                labels.push(LabelBox::new(p.class_name.clone(), bbox));
                chosen.push(i);
            }
        }
        chosen.sort_unstable();
        chosen
    }

    /// Accepts the predictions of [`Self::accept_all_choice`] when asked (not those that
    /// only show up once others are accepted).
    pub fn accept_all_shown(&mut self) {
        // Exactly the predictions chosen when asked: accepting one can bring out another
        // (one it suppressed), which the user has not seen.
        let shown = self.shown_predictions();
        let mut seen: Vec<(BoxXyxy, String)> = self
            .accept_all_choice(&shown)
            .into_iter()
            .map(|i| (shown[i].detection.bbox, shown[i].class_name.clone()))
            .collect();
        while !seen.is_empty() {
            let shown = self.shown_predictions();
            // The same prediction (its box may move a little as labels change).
            let found = shown.iter().enumerate().find_map(|(i, p)| {
                let k = seen.iter().position(|(b, c)| {
                    p.state == PredictionState::Pending
                        && *c == p.class_name
                        && b.iou(&p.detection.bbox) >= 0.9
                })?;
                Some((i, k))
            });
            let Some((i, k)) = found else {
                break;
            };
            seen.swap_remove(k);
            let before = shown.len();
            self.accept_prediction(i, None, None);
            let after = self.shown_predictions();
            if after.get(i).map(|p| p.state) == Some(PredictionState::Pending)
                && after.len() == before
            {
                break; // not editable: stop instead of looping
            }
        }
        self.review.selected = None;
    }

    /// Rejects every pending prediction on this image: what is left once the right ones
    /// are accepted or fixed (Shift+Delete).
    pub fn reject_all_pending(&mut self) {
        loop {
            let shown = self.shown_predictions();
            let Some(i) = shown
                .iter()
                .position(|p| p.state == PredictionState::Pending)
            else {
                break;
            };
            self.reject_prediction(i);
            let after = self.shown_predictions();
            if after.len() == shown.len() && after[i].state == PredictionState::Pending {
                break; // not decidable: stop instead of looping
            }
        }
        self.review.selected = None;
    }

    fn next_pending_index(&self, after: usize) -> Option<usize> {
        self.shown_predictions()
            .iter()
            .enumerate()
            .skip(after)
            .find(|(_, p)| p.state == PredictionState::Pending)
            .map(|(i, _)| i)
    }

    /// Selects the next pending prediction: on this image after the selected one, else on
    /// the next image that has one (wrapping around).
    pub fn next_pending(&mut self) {
        let start = self.review.selected.map_or(0, |i| i + 1);
        if let Some(i) = self.next_pending_index(start) {
            self.review.selected = Some(i);
            return;
        }
        let (Some(session), Some(current)) = (&self.workspace.session, self.workspace.current)
        else {
            return;
        };
        let n = session.images.len();
        let target = (1..=n)
            .map(|k| (current + k) % n)
            .find(|&i| self.pending_count(&session.images[i].path) > 0);
        match target {
            Some(i) if i != current => {
                self.go_to(i);
                if self.workspace.current == Some(i) {
                    self.review.selected = self.next_pending_index(0);
                }
            }
            Some(_) => self.review.selected = self.next_pending_index(0),
            None => self.info("no pending predictions"),
        }
    }
}
