//! The simulated labeller's policy: per image, the cheapest action the app offers for
//! each oracle box, taken through the app's commands and counted (see the parent module).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::RgbImage;

use super::{words, SimError, SimOptions, SimReport, DONE_IOU};
use crate::app::{AppState, Command};
use crate::assist::{region, tighten};
use crate::dataset::image_info::{decode_upright_rgb, read_image_info};
use crate::dataset::LabelBox;
use crate::geometry::BoxXyxy;
use crate::review::PredictionState;

/// A prediction this close to an oracle box is about that box (fixable, not wrong).
const SAME_OBJECT_IOU: f64 = 0.5;

/// Find similar is worth a key press when at least this many boxes of the class are
/// still missing on the image.
const SIMILAR_MIN_MISSING: usize = 2;

pub(super) struct Sim {
    pub(super) app: AppState,
    options: SimOptions,
    pub(super) report: SimReport,
    /// Classes already typed once.
    typed: HashSet<String>,
    pub(super) model_time: Duration,
    /// The kind of the last action counted.
    last_kind: String,
    /// Images already labelled.
    pub(super) visited: HashSet<PathBuf>,
    /// The retraining generation whose AP was last recorded.
    pub(super) measured_generation: usize,
}

/// What to do about one oracle box.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plan {
    /// Click at the box centre; then `tighten` and/or `drags`.
    Click { tighten: bool, drags: usize },
    /// Draw it by hand.
    Draw,
}

impl Sim {
    /// The labeller over `app` (headless, its folder not open yet).
    pub(super) fn new(mut app: AppState, options: SimOptions) -> Self {
        app.review.default_requested = true; // no shipped model unless asked for
                                             // Review only is the app before the assistants: the model's own boxes.
        app.review.refine_boxes = options.assistants;
        Self {
            app,
            options,
            report: SimReport::default(),
            typed: HashSet::new(),
            model_time: Duration::ZERO,
            last_kind: String::new(),
            visited: HashSet::new(),
            measured_generation: 0,
        }
    }

    fn count(&mut self, kind: &str, n: usize) {
        if n > 0 {
            *self.report.by_kind.entry(kind.to_string()).or_default() += n;
            self.last_kind = kind.to_string();
        }
    }

    /// The next image: `n` (with the assistants: the most useful unlabelled one), or,
    /// when the last action was "accept all", Ctrl+Enter instead of Shift+Enter (accept
    /// all and next) — one action for both.
    pub(super) fn next_image(&mut self) {
        if self.last_kind == "accept_all" {
            if let Some(n) = self.report.by_kind.get_mut("accept_all") {
                *n -= 1;
            }
            self.count("accept_all_next", 1);
        } else {
            self.count("next", 1);
        }
        self.last_kind.clear();
        let before = self.app.current_path();
        if self.options.assistants {
            self.app.apply(Command::NextUnlabelled);
        } else {
            self.app.apply(Command::Next);
        }
        let here = self.app.current_path();
        if here == before || here.is_some_and(|p| self.visited.contains(&p)) {
            // An image without boxes still reads as unlabelled: go to the first one not
            // visited yet (the labeller would see it in the file list).
            let next = self.app.workspace.session.as_ref().and_then(|s| {
                s.images
                    .iter()
                    .position(|e| !self.visited.contains(&e.path))
            });
            if let Some(i) = next {
                self.app.apply(Command::GoTo(i));
            }
        }
    }

    pub(super) fn wait(
        &mut self,
        what: &str,
        done: impl Fn(&AppState) -> bool,
    ) -> Result<(), SimError> {
        let start = Instant::now();
        loop {
            self.app.poll_background();
            if done(&self.app) {
                return Ok(());
            }
            if start.elapsed() > self.options.timeout {
                return Err(SimError::Timeout {
                    what: what.to_string(),
                    secs: self.options.timeout.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub(super) fn wait_for_document(&mut self) -> Result<PathBuf, SimError> {
        self.wait("show the image", |a| {
            a.workspace
                .doc
                .as_ref()
                .is_some_and(|d| Some(&d.image_path) == a.current_path().as_ref())
        })?;
        let path = self.app.current_path().unwrap_or_default();
        let info = read_image_info(&path).map_err(|e| SimError::Setup(e.to_string()))?;
        self.app
            .apply(Command::ImageSize([info.width, info.height]));
        Ok(path)
    }

    fn wait_for_assistant(&mut self) -> Result<(), SimError> {
        self.wait("answer (assistant)", |a| !a.assist.busy())
    }

    fn labels(&self) -> Vec<LabelBox> {
        self.app
            .workspace
            .doc
            .as_ref()
            .map(|d| d.annotation.boxes.clone())
            .unwrap_or_default()
    }

    /// Oracle boxes not yet matched by a label (IoU ≥ [`DONE_IOU`], same class).
    fn missing(&self, truth: &[LabelBox]) -> Vec<LabelBox> {
        let labels = self.labels();
        let mut used = vec![false; labels.len()];
        truth
            .iter()
            .filter(|t| {
                let hit = labels.iter().enumerate().position(|(i, l)| {
                    !used[i] && l.class_name == t.class_name && l.bbox.iou(&t.bbox) >= DONE_IOU
                });
                match hit {
                    Some(i) => {
                        used[i] = true;
                        false
                    }
                    None => true,
                }
            })
            .cloned()
            .collect()
    }

    /// `(missed, extra)` once the image is done.
    pub(super) fn check(&self, truth: &[LabelBox]) -> (usize, usize) {
        let missed = self.missing(truth).len();
        let labels = self.labels().len();
        (missed, (labels + missed).saturating_sub(truth.len()))
    }

    /// The cost of giving a box `class` with a class key (typing it the first time).
    fn class_key(&mut self, class: &str) -> usize {
        if self.typed.insert(class.to_string()) {
            return words(class) + 2;
        }
        let k = self
            .app
            .workspace
            .classes
            .names()
            .iter()
            .position(|c| c == class);
        match k {
            Some(k) if k < 9 => 1,
            _ => 2,
        }
    }

    pub(super) fn label_image(&mut self, path: &Path, truth: &[LabelBox]) -> Result<(), SimError> {
        let pixels = if self.options.assistants {
            Some(decode_upright_rgb(path).map_err(|e| SimError::Setup(e.to_string()))?)
        } else {
            None
        };
        self.review_pending(truth, pixels.as_ref())?;
        let mut missing = self.missing(truth);
        let mut tried_similar: HashSet<String> = HashSet::new();
        while let Some(target) = missing.first().cloned() {
            self.add_missing(&target, pixels.as_ref())?;
            let still = self.missing(truth);
            let same = still
                .iter()
                .filter(|b| b.class_name == target.class_name)
                .count();
            if self.options.assistants
                && same >= SIMILAR_MIN_MISSING
                && tried_similar.insert(target.class_name.clone())
                && self.select_label_like(&target)
            {
                self.count("find_similar", 1);
                self.app.apply(Command::FindSimilar);
                self.wait_for_assistant()?;
                self.review_pending(truth, pixels.as_ref())?;
            }
            missing = self.missing(truth);
            if missing.first() == Some(&target) {
                return Err(SimError::Stuck(format!(
                    "could not label a {} box on {}",
                    target.class_name,
                    path.display()
                )));
            }
        }
        // Anything left pending is not in the oracle.
        self.review_pending(truth, pixels.as_ref())?;
        self.app.apply(Command::Save);
        self.wait("save the labels", |a| !a.workspace.labels.busy())
    }

    /// Selects the label matching `target` (the box just made); whether there is one.
    fn select_label_like(&mut self, target: &LabelBox) -> bool {
        let labels = self.labels();
        let i = labels.iter().position(|l| {
            l.class_name == target.class_name && l.bbox.iou(&target.bbox) >= DONE_IOU
        });
        self.app.apply(Command::SelectBox(i));
        i.is_some()
    }

    /// Decides every pending prediction: wrong ones rejected, loose ones tightened or
    /// fixed, good ones accepted (all at once when there are several).
    fn review_pending(
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
            // Pair each pending prediction with the missing box it is about.
            let mut claimed = vec![false; missing.len()];
            let mut worst: Option<(usize, Option<usize>)> = None;
            let mut good = 0;
            for &i in &pending {
                let p = &shown[i];
                let best = missing
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| !claimed[*k])
                    // As the app saves it: rounded to whole pixels.
                    .map(|(k, t)| (k, t.bbox.iou(&round(p.detection.bbox))))
                    .filter(|(_, iou)| *iou >= SAME_OBJECT_IOU)
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                match best {
                    Some((k, iou)) if iou >= DONE_IOU && missing[k].class_name == p.class_name => {
                        claimed[k] = true;
                        good += 1;
                    }
                    Some((k, _)) => {
                        claimed[k] = true;
                        worst.get_or_insert((i, Some(k)));
                    }
                    None => {
                        worst.get_or_insert((i, None));
                    }
                }
            }
            match worst {
                None => {
                    // Every pending prediction is right: accept them.
                    if good >= 2 {
                        self.count("accept_all", 1);
                        self.app.apply(Command::AcceptAllShown);
                    } else {
                        self.count("accept", 1);
                        self.app.apply(Command::AcceptPrediction {
                            index: pending[0],
                            class: None,
                            bbox: None,
                        });
                    }
                }
                Some((i, None)) => {
                    self.count("reject", 1);
                    self.app.apply(Command::RejectPrediction(i));
                }
                Some((i, Some(k))) => self.fix_prediction(i, &missing[k], pixels)?,
            }
        }
    }

    /// A prediction about `target` that is loose or of the wrong class.
    fn fix_prediction(
        &mut self,
        index: usize,
        target: &LabelBox,
        pixels: Option<&RgbImage>,
    ) -> Result<(), SimError> {
        let shown = self.app.shown_predictions();
        let p = shown[index].clone();
        let class = (p.class_name != target.class_name).then(|| target.class_name.clone());
        let class_cost = if class.is_some() {
            self.class_key(&target.class_name)
        } else {
            0
        };
        // Accepting saves the box rounded to whole pixels.
        let predicted = round(p.detection.bbox);
        let iou = predicted.iou(&target.bbox);
        if iou >= DONE_IOU {
            self.count("relabel", class_cost.max(1));
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
        if tightened.is_some_and(|b| round(b).iou(&target.bbox) >= DONE_IOU) {
            self.count("tighten", 1);
            self.app.apply(Command::TightenPrediction(index));
            self.wait_for_assistant()?;
            if class.is_some() {
                self.relabel_last(target, class_cost)?;
            }
            return Ok(());
        }
        let (drags, fixed) = drags_to(predicted, target.bbox);
        self.count("fix_drag", drags + 1);
        self.count("relabel", class_cost);
        self.app.apply(Command::AcceptPrediction {
            index,
            class,
            bbox: Some(fixed),
        });
        Ok(())
    }

    /// Gives the last label `target`'s class (a class key on the selected box).
    fn relabel_last(&mut self, target: &LabelBox, cost: usize) -> Result<(), SimError> {
        let n = self.labels().len();
        if n == 0 {
            return Ok(());
        }
        self.count("relabel", cost);
        self.app.apply(Command::RelabelBoxes {
            targets: vec![n - 1],
            label: target.class_name.clone(),
        });
        Ok(())
    }

    /// What a click at the centre of `target` would give, before any fix.
    fn click_result(&self, target: &LabelBox, pixels: Option<&RgbImage>) -> Option<BoxXyxy> {
        let (cx, cy) = target.bbox.center();
        let at = [cx.floor(), cy.floor()];
        match self.app.click_candidate(at) {
            Some((b, _)) => Some(b),
            None => pixels.and_then(|px| region::grow_from_click(px, at)),
        }
    }

    fn plan(&self, target: &LabelBox, pixels: Option<&RgbImage>) -> Plan {
        if !self.options.assistants {
            return Plan::Draw;
        }
        let Some(b) = self.click_result(target, pixels) else {
            return Plan::Draw;
        };
        let b = round(b);
        if b.iou(&target.bbox) >= DONE_IOU {
            return Plan::Click {
                tighten: false,
                drags: 0,
            };
        }
        if pixels.is_some_and(|px| tighten::tighten(px, b).iou(&target.bbox) >= DONE_IOU) {
            return Plan::Click {
                tighten: true,
                drags: 0,
            };
        }
        let (drags, _) = drags_to(b, target.bbox);
        if drags < 2 {
            Plan::Click {
                tighten: false,
                drags,
            }
        } else {
            Plan::Draw
        }
    }

    /// Labels one missing oracle box with the cheapest way that reaches it.
    fn add_missing(
        &mut self,
        target: &LabelBox,
        pixels: Option<&RgbImage>,
    ) -> Result<(), SimError> {
        let before = self.labels().len();
        match self.plan(target, pixels) {
            Plan::Draw => {
                self.count("draw", 2);
                let class_cost = self.class_key(&target.class_name);
                self.count("class_key", class_cost);
                self.app.apply(Command::AddBox {
                    bbox: target.bbox,
                    label: target.class_name.clone(),
                });
            }
            Plan::Click { tighten, drags } => {
                self.count("click_box", 2);
                let (cx, cy) = target.bbox.center();
                self.app.apply(Command::ClickBox([cx.floor(), cy.floor()]));
                self.wait_for_assistant()?;
                if let Some(pending) = self.app.ui.pending_label.take() {
                    // The label dialog asks for the class.
                    let cost = self.class_key(&target.class_name);
                    self.count("class_key", cost);
                    if let Some(bbox) = pending.bbox {
                        self.app.apply(Command::AddBox {
                            bbox,
                            label: target.class_name.clone(),
                        });
                    }
                }
                let labels = self.labels();
                if labels.len() == before {
                    return Err(SimError::Stuck("a click made no box".into()));
                }
                let index = labels.len() - 1;
                if labels[index].class_name != target.class_name {
                    let cost = self.class_key(&target.class_name);
                    self.relabel_last(target, cost)?;
                }
                self.app.apply(Command::SelectBox(Some(index)));
                if tighten {
                    self.count("tighten", 1);
                    self.app.apply(Command::TightenSelected);
                    self.wait_for_assistant()?;
                }
                // The planned drags, or whatever the box still needs when the click gave
                // another box than the look-ahead (the labeller fixes what they see).
                let current = self.labels()[index].bbox;
                if drags > 0 || current.iou(&target.bbox) < DONE_IOU {
                    let (n, fixed) = drags_to(current, target.bbox);
                    self.count("fix_drag", n);
                    self.app.apply(Command::BeginBoxDrag(index));
                    self.app.apply(Command::DragBox { index, bbox: fixed });
                }
            }
        }
        Ok(())
    }
}

fn round(b: BoxXyxy) -> BoxXyxy {
    BoxXyxy::new(b.x1.round(), b.y1.round(), b.x2.round(), b.y2.round())
}

/// The drags that turn `from` into a box matching `to` (IoU ≥ [`DONE_IOU`]), and the
/// box they give: one drag moves a corner (two edges) or one edge to the oracle's; two
/// drags (opposite corners) give the oracle's box.
fn drags_to(from: BoxXyxy, to: BoxXyxy) -> (usize, BoxXyxy) {
    let corners = [
        BoxXyxy::new(to.x1, to.y1, from.x2, from.y2),
        BoxXyxy::new(from.x1, from.y1, to.x2, to.y2),
        BoxXyxy::new(to.x1, from.y1, from.x2, to.y2),
        BoxXyxy::new(from.x1, to.y1, to.x2, from.y2),
    ];
    corners
        .into_iter()
        .filter(|b| b.iou(&to) >= DONE_IOU)
        .max_by(|a, b| a.iou(&to).total_cmp(&b.iou(&to)))
        .map_or((2, to), |b| (1, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_corner_drag_fixes_a_box_off_at_one_corner() {
        let to = BoxXyxy::new(10.0, 10.0, 50.0, 50.0);
        let (n, b) = drags_to(BoxXyxy::new(0.0, 0.0, 50.0, 50.0), to);
        assert_eq!((n, b), (1, to));
        let (n, b) = drags_to(BoxXyxy::new(0.0, 0.0, 60.0, 60.0), to);
        assert_eq!((n, b), (2, to));
    }
}
