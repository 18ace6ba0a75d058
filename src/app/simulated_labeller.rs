//! The simulated labeller behind `detlab bench labelling`: it labels a folder from zero
//! the way a careful person would, through the app's own [`Command`]s, and counts the
//! human actions that took.
//!
//! The folder's existing labels are the oracle. The app sees the images through a folder
//! of links with an empty labels folder, so it starts with no labels. For each image the
//! labeller takes the cheapest action the app offers for each box (it may look at what an
//! action would give before taking it, as a person who knows the tool would), and a box
//! only counts as done when the saved label matches the oracle at IoU ≥
//! [`DONE_IOU`] with the right class.
//!
//! Without the assistants (`assistants: false`) the app is used as it was before them:
//! no click-to-box, tighten, find similar, label-next queue or refined prediction boxes.
//!
//! Counting (one action per key press, click or drag): accept 1; a prediction relabelled
//! with a class key 1; tightened with `t` 1; a fix by dragging: the drag(s) plus 1;
//! reject 1; "accept all" 1 (Ctrl+Enter "accept all and next" 1 for both); a box from a
//! click: `w` + click (+ a class key when the class it got is wrong); a box drawn by hand:
//! `w` + drag + class key; find similar 1; the next image 1; a class key is 1 for the
//! first nine classes, else the name's first word and Enter (2); a class seen for the
//! first time is typed: one per word, plus Enter twice (a new class asks for a second
//! Enter).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::RgbImage;
use serde::Serialize;

use super::review::RunScope;
use super::settings::Settings;
use super::{AppState, Command};
use crate::assist::{region, tighten};
use crate::dataset::image_info::{decode_upright_rgb, read_image_info};
use crate::dataset::{load_labels, scan_images, LabelBox};
use crate::geometry::BoxXyxy;
use crate::review::PredictionState;

/// A label is done when it overlaps the oracle's box at least this much, with its class.
pub const DONE_IOU: f64 = 0.85;

/// A prediction this close to an oracle box is about that box (fixable, not wrong).
const SAME_OBJECT_IOU: f64 = 0.5;

/// Find similar is worth a key press when at least this many boxes of the class are
/// still missing on the image.
const SIMILAR_MIN_MISSING: usize = 2;

/// How the simulated labeller runs.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub images: PathBuf,
    /// The oracle's labels (default: beside the images).
    pub labels: Option<PathBuf>,
    /// The review model (`None`: no model; the assistants work from pixels).
    pub model: Option<PathBuf>,
    /// Use click-to-box, tighten, find similar and the label-next queue.
    pub assistants: bool,
    /// Give up on an app answer after this long.
    pub timeout: Duration,
}

/// What it took.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SimReport {
    pub images: usize,
    pub boxes: usize,
    pub actions: usize,
    pub actions_per_box: f64,
    /// Actions by kind (accept, fix, draw, ...).
    pub by_kind: BTreeMap<String, usize>,
    /// The LabelImg way on the same folder: next + `w` + drag + class key per box.
    pub manual_actions_per_box: f64,
    /// The model's AP on the not-yet-labelled images after each retrain (none without
    /// retraining).
    pub ap_over_time: Vec<f64>,
    /// Seconds spent waiting for the model (loading, inference).
    pub model_seconds: f64,
    /// Oracle boxes that did not end up labelled (should be 0).
    pub missed: usize,
    /// Labels left that match no oracle box (should be 0).
    pub extra: usize,
}

/// Errors of the simulation (the app's own messages, or a wait that ran out).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The folder, its labels or the model could not be read.
    #[error("{0}")]
    Setup(String),
    /// The labeller could not reach an oracle box with the app's actions.
    #[error("{0}")]
    Stuck(String),
    #[error("the app did not {what} within {secs} s")]
    Timeout { what: String, secs: u64 },
}

struct Oracle {
    /// Images in file order, with their boxes.
    images: Vec<(PathBuf, Vec<LabelBox>)>,
    classes: Vec<String>,
}

fn read_oracle(images: &Path, labels: Option<&Path>) -> Result<Oracle, SimError> {
    let paths = scan_images(images)
        .map_err(|e| SimError::Setup(format!("cannot list {}: {e}", images.display())))?;
    let mut out = Vec::new();
    let mut classes: Vec<String> = Vec::new();
    for p in paths {
        let boxes = match load_labels(&p, labels) {
            Ok(Some(l)) => l.annotation.boxes,
            Ok(None) => Vec::new(),
            Err(e) => return Err(SimError::Setup(e.to_string())),
        };
        for b in &boxes {
            if !classes.contains(&b.class_name) {
                classes.push(b.class_name.clone());
            }
        }
        out.push((p, boxes));
    }
    if out.is_empty() {
        return Err(SimError::Setup(format!(
            "no images in {}",
            images.display()
        )));
    }
    Ok(Oracle {
        images: out,
        classes,
    })
}

/// Runs the simulated labeller over `options.images`; the app works in `work` (a folder
/// of links to the images, an empty labels folder and its settings).
pub fn simulate(options: &SimOptions, work: &Path) -> Result<SimReport, SimError> {
    let oracle = read_oracle(&options.images, options.labels.as_deref())?;
    let view = link_images(&oracle, &options.images, work)?;
    let labels_dir = work.join("labels");
    std::fs::create_dir_all(&labels_dir).map_err(|e| SimError::Setup(e.to_string()))?;
    let mut settings = Settings::default();
    settings.save_dirs.insert(
        view.canonicalize().unwrap_or(view.clone()),
        labels_dir.clone(),
    );
    settings.autosave = true;
    let mut sim = Sim {
        app: AppState::new(settings, work.join("settings.json"), None, None),
        options: options.clone(),
        report: SimReport::default(),
        typed: HashSet::new(),
        model_time: Duration::ZERO,
        last_kind: String::new(),
        visited: HashSet::new(),
    };
    sim.app.review.default_requested = true; // no shipped model unless asked for
                                             // Review only is the app before the assistants: the model's own boxes.
    sim.app.review.refine_boxes = options.assistants;
    sim.app.apply(Command::OpenFolder(view.clone()));
    sim.wait("list the folder", |a| {
        a.workspace
            .session
            .as_ref()
            .is_some_and(|s| !s.scanning && s.images.len() == oracle.images.len())
    })?;
    if let Some(model) = &options.model {
        let t = Instant::now();
        sim.app.load_model(model.clone());
        sim.wait("load the model", |a| {
            a.review.model_job.is_none() && (a.review.model.is_some() || a.error.is_some())
        })?;
        if let Some(e) = sim.app.review.model_error.clone().or(sim.app.error.clone()) {
            return Err(SimError::Setup(e));
        }
        sim.app.run_model(RunScope::All);
        sim.wait("run the model", |a| a.review.run.is_none())?;
        sim.model_time += t.elapsed();
    }
    let oracle_of = |p: &Path| -> Vec<LabelBox> {
        let name = p.file_name();
        oracle
            .images
            .iter()
            .find(|(o, _)| o.file_name() == name)
            .map(|(_, b)| b.clone())
            .unwrap_or_default()
    };
    sim.app.apply(Command::GoTo(0));
    for done in 0..oracle.images.len() {
        let path = sim.wait_for_document()?;
        let truth = oracle_of(&path);
        sim.visited.insert(path.clone());
        sim.label_image(&path, &truth)?;
        let (missed, extra) = sim.check(&truth);
        sim.report.missed += missed;
        sim.report.extra += extra;
        sim.report.boxes += truth.len();
        sim.report.images += 1;
        if done + 1 < oracle.images.len() {
            sim.next_image();
        }
    }
    let r = &mut sim.report;
    r.actions = r.by_kind.values().sum();
    r.actions_per_box = r.actions as f64 / r.boxes.max(1) as f64;
    r.manual_actions_per_box = manual_actions(&oracle) as f64 / r.boxes.max(1) as f64;
    r.model_seconds = sim.model_time.as_secs_f64();
    Ok(sim.report)
}

/// LabelImg's way: the next image, then `w` + drag + class key per box; the first box
/// of a class has its name typed instead of the key (words + Enter twice).
fn manual_actions(oracle: &Oracle) -> usize {
    let boxes: usize = oracle.images.iter().map(|(_, b)| b.len()).sum();
    let typing: usize = oracle.classes.iter().map(|c| words(c) + 1).sum();
    oracle.images.len().saturating_sub(1) + 3 * boxes + typing
}

fn words(name: &str) -> usize {
    name.split_whitespace().count().max(1)
}

/// A folder of links to the images (so that the app finds none of their labels).
fn link_images(oracle: &Oracle, root: &Path, work: &Path) -> Result<PathBuf, SimError> {
    let view = work.join("images");
    std::fs::create_dir_all(&view).map_err(|e| SimError::Setup(e.to_string()))?;
    for (p, _) in &oracle.images {
        let rel = p.strip_prefix(root).unwrap_or(p);
        let target = view.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| SimError::Setup(e.to_string()))?;
        }
        let source = p.canonicalize().unwrap_or(p.clone());
        if !target.exists() {
            link(&source, &target)
                .map_err(|e| SimError::Setup(format!("cannot link {}: {e}", target.display())))?;
        }
    }
    Ok(view)
}

#[cfg(unix)]
fn link(source: &Path, target: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(source, target)
}

#[cfg(not(unix))]
fn link(source: &Path, target: &Path) -> std::io::Result<()> {
    std::fs::copy(source, target).map(|_| ())
}

struct Sim {
    app: AppState,
    options: SimOptions,
    report: SimReport,
    /// Classes already typed once.
    typed: HashSet<String>,
    model_time: Duration,
    /// The kind of the last action counted.
    last_kind: String,
    /// Images already labelled.
    visited: HashSet<PathBuf>,
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
    fn count(&mut self, kind: &str, n: usize) {
        if n > 0 {
            *self.report.by_kind.entry(kind.to_string()).or_default() += n;
            self.last_kind = kind.to_string();
        }
    }

    /// The next image: `n` (with the assistants: the most useful unlabelled one), or,
    /// when the last action was "accept all", Ctrl+Enter instead of Shift+Enter (accept
    /// all and next) — one action for both.
    fn next_image(&mut self) {
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

    fn wait(&mut self, what: &str, done: impl Fn(&AppState) -> bool) -> Result<(), SimError> {
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

    fn wait_for_document(&mut self) -> Result<PathBuf, SimError> {
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
    fn check(&self, truth: &[LabelBox]) -> (usize, usize) {
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

    fn label_image(&mut self, path: &Path, truth: &[LabelBox]) -> Result<(), SimError> {
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
                    .map(|(k, t)| (k, t.bbox.iou(&p.detection.bbox)))
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
        let iou = p.detection.bbox.iou(&target.bbox);
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
        let (drags, fixed) = drags_to(p.detection.bbox, target.bbox);
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
                if drags > 0 {
                    let current = self.labels()[index].bbox;
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

    #[test]
    fn manual_counting_is_next_plus_three_per_box_plus_typing() {
        let b = |c: &str| LabelBox::new(c, BoxXyxy::new(0.0, 0.0, 5.0, 5.0));
        let oracle = Oracle {
            images: vec![
                ("a.jpg".into(), vec![b("Cola"), b("Sprite Zero")]),
                ("b.jpg".into(), vec![b("Cola")]),
            ],
            classes: vec!["Cola".into(), "Sprite Zero".into()],
        };
        // 1 next + 3 × 3 boxes + typing instead of a key: (1 + 2 − 1) + (2 + 2 − 1).
        assert_eq!(manual_actions(&oracle), 1 + 9 + 2 + 3);
    }
}
