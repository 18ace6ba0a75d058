//! The simulated labeller's policy: per image, the cheapest action the app offers for
//! each oracle box, taken through the app's commands and counted (see the parent module).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::RgbImage;

use super::{words, SimError, SimOptions, SimReport, DONE_IOU};
use crate::app::ui_state::Tool;
use crate::app::{AppState, Command};
use crate::assist::region;
use crate::dataset::image_info::{decode_upright_rgb, read_image_info};
use crate::dataset::LabelBox;
use crate::geometry::BoxXyxy;

/// Looking for a class (find known products) is worth a key press when at least this
/// many of its boxes are still missing on the image.
const SEARCH_MIN_MISSING: usize = 2;

mod reviewing;
mod selecting;

pub(super) struct Sim {
    pub(super) app: AppState,
    options: SimOptions,
    pub(super) report: SimReport,
    pub(super) model_time: Duration,
    /// The kind of the last action counted.
    last_kind: String,
    /// Images already labelled.
    pub(super) visited: HashSet<PathBuf>,
    /// The retraining generation whose AP was last recorded.
    pub(super) measured_generation: usize,
    /// Continuous drawing is on: a click or a drag makes a box without `w` first.
    drawing: bool,
    /// Wrong predictions are left pending on this image for one Ctrl+Delete (reject the
    /// rest and next) once it is done.
    pub(super) reject_rest: bool,
}

/// What to do about one oracle box.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plan {
    /// Click at the box centre (it gives the box as it is).
    Click,
    /// Draw it by hand.
    Draw,
}

impl Sim {
    /// The labeller over `app` (headless, its folder not open yet).
    pub(super) fn new(mut app: AppState, options: SimOptions) -> Self {
        // No shipped model unless asked for.
        app.review.default_requested = true;
        // Review only is the app before the assistants: the model's own boxes.
        app.review.refine_boxes = options.assistants;
        app.settings.class_by_look = options.assistants;
        app.review.select.score_threshold = options.review_score;
        Self {
            app,
            options,
            report: SimReport::default(),
            model_time: Duration::ZERO,
            last_kind: String::new(),
            visited: HashSet::new(),
            measured_generation: 0,
            drawing: false,
            reject_rest: false,
        }
    }

    /// Ticks *Use default label* once (one click): a new box takes the class of the
    /// last box labelled, so boxes taken class by class need no class key.
    pub(super) fn use_default_label(&mut self) {
        self.count("settings", 1);
        self.app.apply(Command::SetSingleClassMode(true));
    }

    /// Gets into drawing mode for the next box (no action when continuous drawing is on
    /// already): `w` for one box, or Ctrl+Shift+A (continuous) when `more` boxes follow
    /// without an edit in between — one key either way.
    fn start_drawing(&mut self, more: bool) {
        if self.drawing {
            return;
        }
        self.count("draw_mode", 1);
        self.drawing = more;
        self.app.ui.continuous = more;
        self.app.ui.tool = if more { Tool::Draw } else { Tool::Edit };
    }

    /// Leaves continuous drawing (Esc) before a drag that edits a box.
    fn stop_drawing(&mut self) {
        if self.drawing {
            self.count("draw_mode", 1);
            self.drawing = false;
            self.app.ui.continuous = false;
            self.app.ui.tool = Tool::Edit;
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
        let command = if std::mem::take(&mut self.reject_rest) {
            self.count("reject_rest_next", 1);
            Command::RejectAllAndNext
        } else if self.last_kind == "accept_all" {
            if let Some(n) = self.report.by_kind.get_mut("accept_all") {
                *n -= 1;
            }
            self.count("accept_all_next", 1);
            Command::NextUnlabelled
        } else {
            self.count("next", 1);
            Command::NextUnlabelled
        };
        self.last_kind.clear();
        let before = self.app.current_path();
        if self.options.assistants {
            self.app.apply(command);
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

    /// On the last image: the wrong predictions left pending are rejected (Shift+Delete).
    pub(super) fn reject_the_rest(&mut self) {
        if std::mem::take(&mut self.reject_rest) {
            self.count("reject_rest", 1);
            self.app.apply(Command::RejectAllPending);
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

    /// The app's class list's index of `class`.
    fn class_index(&self, class: &str) -> Option<usize> {
        self.app.workspace.classes.id(class)
    }

    /// The cost of giving a box `class` with a class key (typing it when the class list
    /// does not hold it yet).
    fn class_key(&mut self, class: &str) -> usize {
        match self.class_index(class) {
            Some(k) if k < 9 => 1,
            Some(_) => 2,
            None => words(class) + 2,
        }
    }

    pub(super) fn label_image(&mut self, path: &Path, truth: &[LabelBox]) -> Result<(), SimError> {
        let pixels = if self.options.assistants {
            Some(decode_upright_rgb(path).map_err(|e| SimError::Setup(e.to_string()))?)
        } else {
            None
        };
        self.wait("describe the image", AppState::class_by_look_ready)?;
        self.review_pending(truth, pixels.as_ref())?;
        // Classes looked for with an example from this image.
        let mut searched: HashSet<String> = HashSet::new();
        loop {
            let missing = self.missing(truth);
            if missing.is_empty() {
                break;
            }
            let (wanting, ready) = self.classes_to_search(&missing, &searched);
            if wanting.is_empty() && !ready.is_empty() {
                searched.extend(ready);
                self.find_known(truth, pixels.as_ref())?;
                continue;
            }
            let Some(target) = self.next_target(&missing, &wanting) else {
                break;
            };
            self.add_missing(&target, missing.len() > 1, pixels.as_ref())?;
            if self.missing(truth).len() >= missing.len() {
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

    /// `k` (find known products), and the review of what it proposes.
    fn find_known(
        &mut self,
        truth: &[LabelBox],
        pixels: Option<&RgbImage>,
    ) -> Result<(), SimError> {
        self.count("find_known", 1);
        self.app.apply(Command::FindKnown);
        self.wait_for_assistant()?;
        self.review_pending(truth, pixels)
    }

    /// The classes with several boxes missing that `k` has not looked for on the image:
    /// `(wanting, ready)`, those with no label on the image yet (one of each is drawn
    /// first) and those with one (`k` looks for them once no class wants an example).
    /// Both empty without the assistants.
    fn classes_to_search(
        &self,
        missing: &[LabelBox],
        searched: &HashSet<String>,
    ) -> (HashSet<String>, HashSet<String>) {
        if !self.options.assistants {
            return Default::default();
        }
        let here: HashSet<String> = self.labels().into_iter().map(|b| b.class_name).collect();
        several_missing(missing)
            .into_iter()
            .filter(|c| !searched.contains(c))
            .partition(|c| !here.contains(c))
    }

    /// The missing box to label next: an example of a class `wanting` one (the default
    /// label's class first, then the class with the most boxes missing); else one of the
    /// default label's class (it needs no class key), else one of the class with the
    /// most boxes missing.
    fn next_target(&self, missing: &[LabelBox], wanting: &HashSet<String>) -> Option<LabelBox> {
        let default = self.app.automatic_label();
        let count = |class: &str| missing.iter().filter(|b| b.class_name == class).count();
        let pick = |pool: &[&LabelBox]| {
            pool.iter()
                .find(|b| Some(&b.class_name) == default.as_ref())
                .or_else(|| pool.iter().max_by_key(|b| count(&b.class_name)))
                .map(|b| (*b).clone())
        };
        let examples: Vec<&LabelBox> = missing
            .iter()
            .filter(|b| wanting.contains(&b.class_name))
            .collect();
        let all: Vec<&LabelBox> = missing.iter().collect();
        pick(&examples).or_else(|| pick(&all))
    }

    /// Answers the label dialog, if a new box opened it, with `target`'s class.
    fn answer_label_dialog(&mut self, target: &LabelBox) {
        if let Some(pending) = self.app.ui.pending_label.take() {
            let cost = self.class_key(&target.class_name);
            self.count("class_key", cost);
            if let Some(bbox) = pending.bbox {
                self.app.apply(Command::AddBox {
                    bbox,
                    label: target.class_name.clone(),
                });
            }
        }
    }

    /// The cost of giving a box or prediction another class: a class key, or for a class
    /// not typed yet, the label dialog (Ctrl+E) and the name.
    fn relabel_cost(&mut self, class: &str) -> usize {
        let new = self.class_index(class).is_none();
        self.class_key(class) + usize::from(new)
    }

    /// Gives the last label `target`'s class (a class key on the selected box).
    fn relabel_last(&mut self, target: &LabelBox) -> Result<(), SimError> {
        let n = self.labels().len();
        if n == 0 {
            return Ok(());
        }
        let cost = self.relabel_cost(&target.class_name);
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

    /// A click when it gives the box as it is; otherwise a drag, which costs no more than
    /// the click alone (a click needing a tighten or a drag is never cheaper).
    fn plan(&self, target: &LabelBox, pixels: Option<&RgbImage>) -> Plan {
        if !self.options.assistants {
            return Plan::Draw;
        }
        match self.click_result(target, pixels) {
            Some(b) if b.rounded().iou(&target.bbox) >= DONE_IOU => Plan::Click,
            _ => Plan::Draw,
        }
    }

    /// Labels one missing oracle box with the cheapest way that reaches it; `more`: other
    /// boxes are still missing on the image.
    fn add_missing(
        &mut self,
        target: &LabelBox,
        more: bool,
        pixels: Option<&RgbImage>,
    ) -> Result<(), SimError> {
        let before = self.labels().len();
        let plan = self.plan(target, pixels);
        self.start_drawing(more);
        match plan {
            Plan::Draw => {
                self.count("draw", 1);
                self.app.apply(Command::BoxDrawn(target.bbox));
            }
            Plan::Click => {
                self.count("click_box", 1);
                let (cx, cy) = target.bbox.center();
                self.app.apply(Command::ClickBox([cx.floor(), cy.floor()]));
                self.wait_for_assistant()?;
            }
        }
        self.answer_label_dialog(target);
        let labels = self.labels();
        if labels.len() == before {
            return Err(SimError::Stuck("a click made no box".into()));
        }
        let index = labels.len() - 1;
        if labels[index].class_name != target.class_name {
            self.relabel_last(target)?;
        }
        self.app.apply(Command::SelectBox(Some(index)));
        // Whatever the box still needs when the click gave another box than the look-ahead
        // (the labeller fixes what they see).
        let current = self.labels()[index].bbox;
        if current.iou(&target.bbox) < DONE_IOU {
            self.stop_drawing();
            let (n, fixed) = drags_to(current, target.bbox);
            self.count("fix_drag", n);
            self.app.apply(Command::BeginBoxDrag(index));
            self.app.apply(Command::DragBox { index, bbox: fixed });
        }
        Ok(())
    }
}

/// The classes with at least [`SEARCH_MIN_MISSING`] boxes in `missing`.
fn several_missing(missing: &[LabelBox]) -> HashSet<String> {
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for b in missing {
        *counts.entry(&b.class_name).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|&(_, n)| n >= SEARCH_MIN_MISSING)
        .map(|(c, _)| c.to_string())
        .collect()
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
