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
//! no click-to-box, tighten, find known products, label-next queue, class by look or refined
//! prediction boxes.
//!
//! With `retrain_every: N` the app's "Retrain every N labelled images" is on (see
//! [`crate::app::auto_retrain`]): after each image the labeller waits for a generation
//! the app started to finish (a person would keep labelling meanwhile; waiting keeps the
//! count deterministic), and the model's COCO AP on the images not labelled yet is
//! recorded ([`SimReport::ap_over_time`]).
//!
//! The labeller ticks *Use default label* once (a new box takes the class of the last
//! box labelled) and takes the missing boxes of an image class by class, so a class key
//! is paid once per class switch, not per box, and only when the box did not get its
//! class from the model or its look. It draws in continuous drawing mode when
//! several boxes follow each other (Ctrl+Shift+A once, Esc before a drag that edits a
//! box), with `w` for a single box. On each image it draws one box of each class that
//! has several boxes still missing and then presses `k` (find known products) once for
//! all of them.
//!
//! Counting (one action per key press, click or drag): the *Use default label* checkbox 1
//! (once); `w`, Ctrl+Shift+A or Esc 1; accept 1; a prediction relabelled with a class key
//! 1; tightened with `t` 1; a fix by dragging: the drag(s) plus 1; reject 1; "accept all"
//! 1 (Ctrl+Enter "accept all and next" 1 for both); a box from a click: the click (+ a
//! class key when the class it got is wrong); a box drawn by hand: the drag (+ a class
//! key when the default label is wrong); find known products 1; three or more accepted
//! boxes of one wrong class relabelled together: a rubber band around the largest run
//! of them it takes alone, a click (Ctrl+click) on each other one, and one class key;
//! the next image 1; a class key is 1 for the first nine classes of the app's class
//! list, else the name's first word and Enter (2); a class the list does not hold yet is typed: one per word, plus Enter twice
//! (a new class asks for a second Enter), plus Ctrl+E when it relabels a box. The
//! folder's class file (`predefined_classes.txt`, `classes.txt`), when it has one, is
//! the list the app starts with: the oracle's labels stay hidden, its class list does
//! not.

mod labeller;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::review::RunScope;
use super::session::load_class_file;
use super::settings::Settings;
use super::training::TrainingForm;
use super::{AppState, Command};
use crate::dataset::{load_labels, scan_images, LabelBox};
use crate::detector::maths::tta::Tta;
use crate::eval::{MaxDets, Params};
use labeller::Sim;

/// A label is done when it overlaps the oracle's box at least this much, with its class.
pub const DONE_IOU: f64 = 0.85;

/// How the simulated labeller runs.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub images: PathBuf,
    /// The oracle's labels (default: beside the images).
    pub labels: Option<PathBuf>,
    /// The review model (`None`: no model; the assistants work from pixels).
    pub model: Option<PathBuf>,
    /// Use click-to-box, tighten, find known products and the label-next queue.
    pub assistants: bool,
    /// Give up on an app answer after this long (a retraining generation included).
    pub timeout: Duration,
    /// Retrain after every N newly labelled images (0: never); with no model, the first
    /// generation trains one from `training`'s settings.
    pub retrain_every: usize,
    /// The Train page's settings the retraining starts from (device, threads, epochs of
    /// a first model, ...).
    pub training: TrainingForm,
    /// The Review panel's test-time augmentation; `None`: the panel's default, auto
    /// ([`crate::app::review::TtaJudge`]).
    pub tta: Option<Tta>,
    /// The Review panel's score threshold (the app's default: 0.3).
    pub review_score: f32,
    /// The hold-out AP a first model needs to be shown (see
    /// [`crate::app::auto_retrain::MIN_FIRST_MODEL_AP`]).
    pub first_model_min_ap: f64,
    /// Images a new model's trial waits for (`None`: the app's default, 0: no trial; see
    /// [`crate::app::auto_retrain::Trial`]).
    pub trial_images: Option<usize>,
}

impl SimOptions {
    /// The labeller on `images` (labels beside them), with the assistants, no model and
    /// no retraining.
    pub fn new(images: PathBuf) -> Self {
        Self {
            images,
            labels: None,
            model: None,
            assistants: true,
            timeout: Duration::from_secs(600),
            retrain_every: 0,
            training: TrainingForm::default(),
            tta: None,
            review_score: crate::app::settings::Settings::default().review_score,
            first_model_min_ap: crate::app::auto_retrain::MIN_FIRST_MODEL_AP,
            trial_images: None,
        }
    }
}

/// The review model's COCO scores on the images not labelled yet, after a retraining.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ApPoint {
    /// Images labelled when it was measured.
    pub labelled: usize,
    /// The retraining generation that had just finished.
    pub generation: usize,
    /// Whether that generation replaced the review model.
    pub swapped: bool,
    /// Images it was measured on (those not labelled yet).
    pub images: usize,
    pub ap: f64,
    pub ap50: f64,
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
    /// Each image's file name with its boxes and actions (moving on from it included), in
    /// the order labelled.
    pub per_image: Vec<(String, usize, usize)>,
    /// The LabelImg way on the same folder: next + `w` + drag + class key per box.
    pub manual_actions_per_box: f64,
    /// The model's AP on the not-yet-labelled images after each retrain (none without
    /// retraining).
    pub ap_over_time: Vec<ApPoint>,
    /// The retraining decisions, as the app logged them.
    pub retrain_log: Vec<String>,
    /// The Review panel's TTA verdicts ([`crate::app::review::TtaJudge`]).
    pub tta_verdicts: Vec<String>,
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
    if classes.is_empty() {
        return Err(SimError::Setup(format!(
            "no labelled box in {} (the oracle): are the labels in another folder? (--labels DIR)",
            labels.unwrap_or(images).display()
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
    // The project's class list is set-up, not labels: the app starts with it, as it would.
    let class_file = load_class_file(&options.images, options.labels.as_deref());
    if !class_file.is_empty() {
        crate::atomic::write_atomic(
            &labels_dir.join("predefined_classes.txt"),
            class_file.to_file_content().as_bytes(),
        )
        .map_err(|e| SimError::Setup(e.to_string()))?;
    }
    let mut settings = Settings::default();
    settings.save_dirs.insert(
        view.canonicalize().unwrap_or(view.clone()),
        labels_dir.clone(),
    );
    settings.autosave = true;
    let mut app = AppState::new(settings, work.join("settings.json"), None, None);
    app.ui.training_form = options.training.clone();
    app.auto_retrain.min_first_ap = options.first_model_min_ap;
    app.auto_retrain.trial_images = options.trial_images;
    let mut sim = Sim::new(app, options.clone());
    sim.app.apply(Command::OpenFolder(view.clone()));
    sim.wait("list the folder", |a| {
        a.workspace
            .session
            .as_ref()
            .is_some_and(|s| !s.scanning && s.images.len() == oracle.images.len())
    })?;
    if let Some(tta) = options.tta {
        sim.app.apply(Command::SetTta(tta));
    }
    sim.use_default_label();
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
    if options.retrain_every > 0 {
        sim.app
            .apply(Command::SetAutoRetrain(options.retrain_every));
    }
    sim.app.apply(Command::GoTo(0));
    for done in 0..oracle.images.len() {
        let path = sim.wait_for_document()?;
        // A trial (and the TTA verdict) counts the image just left: its verdict comes
        // after the move.
        if done > 0 {
            sim.settle_tta()?;
        }
        if options.retrain_every > 0 && done > 0 {
            sim.keep_up(&oracle)?;
        }
        let truth = oracle_of(&path);
        let before: usize = sim.report.by_kind.values().sum();
        sim.visited.insert(path.clone());
        sim.label_image(&path, &truth)?;
        let (missed, extra) = sim.check(&truth);
        sim.report.missed += missed;
        sim.report.extra += extra;
        sim.report.boxes += truth.len();
        sim.report.images += 1;
        if options.retrain_every > 0 && done + 1 < oracle.images.len() {
            sim.keep_up(&oracle)?;
        }
        if done + 1 < oracle.images.len() {
            sim.next_image();
        } else {
            sim.reject_the_rest();
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let after: usize = sim.report.by_kind.values().sum();
        sim.report
            .per_image
            .push((name.unwrap_or_default(), truth.len(), after - before));
    }
    // A generation started by the last images is of no use to the count; it and the
    // network threads end before the app is dropped.
    sim.app.finish_background_work();
    let r = &mut sim.report;
    r.by_kind.retain(|_, n| *n > 0);
    r.actions = r.by_kind.values().sum();
    r.actions_per_box = r.actions as f64 / r.boxes.max(1) as f64;
    r.manual_actions_per_box = manual_actions(&oracle) as f64 / r.boxes.max(1) as f64;
    r.model_seconds = sim.model_time.as_secs_f64();
    r.retrain_log = sim.app.auto_retrain.log.clone();
    r.tta_verdicts = sim.app.review.tta_judge.verdicts.clone();
    Ok(sim.report)
}

impl Sim {
    /// Waits for the review's TTA verdict (and the candidates it recomputes), if one is
    /// due.
    fn settle_tta(&mut self) -> Result<(), SimError> {
        let t = Instant::now();
        self.wait("save the labels", |a| !a.workspace.labels.busy())?;
        self.wait("judge the TTA", |a| {
            a.review.tta_judge.settled() && a.review.run.is_none()
        })?;
        self.model_time += t.elapsed();
        Ok(())
    }

    /// Between images: waits for what the app is computing for the retraining (a
    /// generation, a trial, the new model's candidates); when a generation's fate was
    /// settled, records the review model's AP on the images not labelled yet.
    fn keep_up(&mut self, oracle: &Oracle) -> Result<(), SimError> {
        let t = Instant::now();
        self.wait("save the labels", |a| !a.workspace.labels.busy())?;
        self.app.poll_background();
        let retrain = &self.app.auto_retrain;
        if retrain.settled() && retrain.decided == self.measured_generation {
            return Ok(());
        }
        self.wait("retrain the model", |a| {
            a.auto_retrain.settled() && a.review.model_job.is_none() && a.review.run.is_none()
        })?;
        self.model_time += t.elapsed();
        let generation = self.app.auto_retrain.decided;
        if generation == self.measured_generation {
            return Ok(());
        }
        self.measured_generation = generation;
        let swapped = self
            .app
            .auto_retrain
            .log
            .last()
            .is_some_and(|l| l.contains("the review model is now"));
        let point = self.held_out_ap(oracle, generation, swapped)?;
        let actions: usize = self.report.by_kind.values().sum();
        eprintln!(
            "after {} images: generation {generation} {}; AP {:.3} / AP50 {:.3} on the {} not labelled yet; {actions} actions for {} boxes so far",
            point.labelled,
            if swapped { "is the review model" } else { "kept the old model" },
            point.ap,
            point.ap50,
            point.images,
            self.report.boxes,
        );
        self.report.ap_over_time.push(point);
        Ok(())
    }

    /// COCO AP (score > 0.05, the review panel's NMS) of the review model's cached
    /// predictions on the images not visited yet, against the oracle.
    fn held_out_ap(
        &self,
        oracle: &Oracle,
        generation: usize,
        swapped: bool,
    ) -> Result<ApPoint, SimError> {
        let mut point = ApPoint {
            labelled: self.visited.len(),
            generation,
            swapped,
            ..ApPoint::default()
        };
        let Some(model) = self.app.review.model.clone() else {
            return Ok(point);
        };
        let mut classes = oracle.classes.clone();
        for c in &model.class_names {
            if !classes.contains(c) {
                classes.push(c.clone());
            }
        }
        let class_of = |name: &str| classes.iter().position(|c| c == name).unwrap_or(0);
        let densest = oracle
            .images
            .iter()
            .map(|(_, b)| b.len())
            .max()
            .unwrap_or(0);
        let max_dets = MaxDets::for_labels(densest);
        let select = self.app.coco_select(max_dets);
        let mut images = Vec::new();
        for (path, cached) in &self.app.review.predictions {
            if self.visited.contains(path) {
                continue;
            }
            let name = path.file_name();
            let Some((_, truth)) = oracle.images.iter().find(|(o, _)| o.file_name() == name) else {
                continue;
            };
            let gt = truth
                .iter()
                .map(|b| (b.bbox, class_of(&b.class_name)))
                .collect();
            let mut found = cached.reselect(&select);
            for d in &mut found {
                d.class_id = class_of(&model.class_names[d.class_id]);
            }
            images.push((gt, found));
        }
        point.images = images.len();
        if images.is_empty() {
            return Ok(point);
        }
        let result =
            crate::eval::evaluate_images_with(&images, &classes, &Params::with_max_dets(max_dets))
                .map_err(|e| SimError::Setup(e.to_string()))?;
        point.ap = result.stats[0];
        point.ap50 = result.stats[1];
        Ok(point)
    }
}

/// LabelImg's way: the next image, then `w` + drag + class key per box; the first box
/// of a class has its name typed instead of the key (words + Enter twice).
fn manual_actions(oracle: &Oracle) -> usize {
    let boxes: usize = oracle.images.iter().map(|(_, b)| b.len()).sum();
    let typing: usize = oracle.classes.iter().map(|c| words(c) + 1).sum();
    oracle.images.len().saturating_sub(1) + 3 * boxes + typing
}

pub(super) fn words(name: &str) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BoxXyxy;

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
