//! The labelling assistants in the app (see [`crate::assist`]): click-to-box, tighten,
//! find similar facings and "label next". The model's cached candidates are used on the
//! UI thread (a re-filter, well under a millisecond); anything that reads pixels runs as
//! a background [`Job`] on the image decoded at full resolution, kept for the next call.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;

use super::gallery::look_class::{LookIndex, LookPixels};
use super::jobs::{repaint, Job};
use super::known_products;
use super::AppState;
use crate::assist::{click_box, queue, region, similar, tighten};
use crate::dataset::image_info::decode_upright_rgb;
use crate::dataset::LabelBox;
use crate::detector::maths::postprocess::SelectConfig;
use crate::geometry::BoxXyxy;
use crate::task::TaskState;

/// A box another tool proposes (find similar), reviewed like a prediction.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    pub bbox: BoxXyxy,
    pub class_name: String,
    pub score: f32,
}

/// What a background assistant was asked.
#[derive(Clone, Debug)]
pub(super) enum Request {
    /// A box grown from a click (no model candidate there).
    Grow([f64; 2]),
    /// These boxes (index, box as sent) snapped to the object's edges.
    Tighten(Vec<(usize, BoxXyxy)>),
    /// Prediction `.0` (its box as sent) accepted snapped to the object's edges.
    TightenPrediction(usize, BoxXyxy),
    /// Facings like `example`, of class `class`; `existing` are the image's labels.
    Similar {
        example: BoxXyxy,
        class: String,
        existing: Vec<BoxXyxy>,
    },
    /// Every product labelled on the image (see [`super::known_products`]): its labels,
    /// and the class-by-look index with the image's look pixels.
    Known {
        labels: Vec<LabelBox>,
        looks: Option<(LookIndex, Arc<LookPixels>)>,
    },
}

/// What it answered.
enum Outcome {
    Grown(Option<BoxXyxy>),
    Tightened(Vec<(usize, BoxXyxy, BoxXyxy)>),
    TightenedPrediction(usize, BoxXyxy, BoxXyxy),
    Similar(String, Vec<similar::Match>),
    /// How many products were looked for, and the proposals.
    Known(usize, Vec<Proposal>),
}

struct Answer {
    image: PathBuf,
    pixels: Option<Arc<RgbImage>>,
    outcome: Result<Outcome, String>,
}

/// The assistants' state: the job in flight, the pixels of the last image they read, and
/// the proposals waiting for review, by image.
#[derive(Default)]
pub struct Assist {
    job: Option<Job<Answer>>,
    pixels: Option<(PathBuf, Arc<RgbImage>)>,
    pub proposals: HashMap<PathBuf, Vec<Proposal>>,
}

impl Assist {
    /// Whether an assistant is still working.
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// Keeps `pixels`, `image` decoded elsewhere, for the next request about it (unless
    /// they are kept already), so that it is not decoded twice.
    pub fn offer_pixels(&mut self, image: &Path, pixels: Arc<RgbImage>) {
        if self.pixels.as_ref().is_none_or(|(p, _)| p != image) {
            self.pixels = Some((image.to_path_buf(), pixels));
        }
    }
}

impl AppState {
    /// A click at `at` (image pixels) in draw mode: the model's best candidate there
    /// becomes a box at once (its class, or the automatic label); without one, a box is
    /// grown from the click in the background.
    pub fn click_box(&mut self, at: [f64; 2]) {
        if self.workspace.doc.as_ref().is_none_or(|d| !d.can_save()) {
            return;
        }
        if let Some((bbox, class)) = self.click_candidate(at) {
            let b = bbox.rounded();
            // The model's class, where it has one, is better than a blind default.
            match class.or_else(|| self.automatic_label()) {
                Some(label) => self.add_box(b, &label),
                None => self.box_drawn(b),
            }
            return;
        }
        self.start_assist(Request::Grow(at));
    }

    /// The model's best candidate (any class, low threshold) containing `at` on the
    /// current image, with its class name.
    pub fn click_candidate(&self, at: [f64; 2]) -> Option<(BoxXyxy, Option<String>)> {
        let model = self.review.model.as_ref()?;
        let pred = self.review.predictions.get(&self.current_path()?)?;
        let cfg = SelectConfig {
            score_threshold: click_box::CLICK_SCORE_THRESHOLD,
            class_agnostic: true,
            max_detections: None,
            ..self.review.select
        };
        let d = click_box::candidate_at(&pred.reselect(&cfg), at)?;
        let refined = self
            .review
            .refine_boxes
            .then(|| self.refined_prediction_box(&d.bbox))
            .flatten();
        Some((
            refined.unwrap_or(d.bbox),
            model.class_names.get(d.class_id).cloned(),
        ))
    }

    /// The current image's candidates (any class, click threshold) in image pixels.
    pub fn click_candidates(&self) -> Vec<crate::detector::maths::postprocess::Detection> {
        let Some(pred) = self
            .current_path()
            .and_then(|p| self.review.predictions.get(&p).cloned())
        else {
            return Vec::new();
        };
        pred.above(click_box::CLICK_SCORE_THRESHOLD)
    }

    /// Snaps the selected boxes to the object's edges (one undo step, when it arrives).
    pub fn tighten_selected(&mut self) {
        let Some(doc) = self.workspace.doc.as_ref() else {
            return;
        };
        let boxes: Vec<(usize, BoxXyxy)> = self
            .selection()
            .into_iter()
            .filter_map(|i| doc.annotation.boxes.get(i).map(|b| (i, b.bbox)))
            .collect();
        if boxes.is_empty() {
            self.info("tighten: select a box first");
            return;
        }
        self.start_assist(Request::Tighten(boxes));
    }

    /// Accepts prediction `index` of the current image with a tighter box: for the
    /// model's predictions, the score-weighted mean of its candidates on the object
    /// ([`click_box::fused_box`], at once); for a proposal, its box snapped to the
    /// object's edges (when the answer arrives, if it is still there).
    pub fn tighten_prediction(&mut self, index: usize) {
        let Some(p) = self.shown_predictions().get(index).cloned() else {
            return;
        };
        if p.proposal.is_none() {
            if let Some(fused) = self.refined_prediction_box(&p.detection.bbox) {
                self.accept_prediction(index, None, Some(fused));
                return;
            }
        }
        self.start_assist(Request::TightenPrediction(index, p.detection.bbox));
    }

    /// The fused box of the model's candidates around `bbox` on the current image.
    pub fn refined_prediction_box(&self, bbox: &BoxXyxy) -> Option<BoxXyxy> {
        click_box::fused_box(&self.click_candidates(), *bbox, click_box::FUSION_IOU)
    }

    /// Accepts every pending prediction shown, then goes to the next unlabelled image
    /// (Ctrl+Enter: one key for an image the model got right).
    pub fn accept_all_and_next(&mut self) {
        self.accept_all_shown();
        self.next_unlabelled();
    }

    /// Ctrl+Delete: rejects what is still pending here, then `n`.
    pub fn reject_all_and_next(&mut self) {
        self.reject_all_pending();
        self.next_unlabelled();
    }

    /// `n`: with a model's predictions, the most useful unlabelled image (see
    /// [`queue`]); else the next unlabelled one in file order.
    pub fn next_unlabelled(&mut self) {
        match self.most_useful_unlabelled() {
            Some(i) => self.go_to(i),
            None => self.next_matching(|s| !s.is_labelled()),
        }
    }

    /// Proposes every facing like the selected box, of its class, for review.
    pub fn find_similar(&mut self) {
        let Some(doc) = self.workspace.doc.as_ref() else {
            return;
        };
        let Some(example) = doc.selected_box().cloned() else {
            self.info("find similar: select a box first");
            return;
        };
        let existing = doc.annotation.boxes.iter().map(|b| b.bbox).collect();
        self.start_assist(Request::Similar {
            example: example.bbox,
            class: example.class_name,
            existing,
        });
    }

    pub(super) fn start_assist(&mut self, request: Request) {
        if self.assist.busy() {
            self.info("an assistant is still working");
            return;
        }
        let Some(image) = self.current_path() else {
            return;
        };
        let cached = self
            .assist
            .pixels
            .as_ref()
            .filter(|(p, _)| *p == image)
            .map(|(_, px)| px.clone());
        self.assist.job = Some(Job::spawn("assist", repaint(self.ctx.clone()), move |_| {
            run_request(image, cached, request)
        }));
    }

    /// Applies an assistant's answer if it is in; returns whether anything changed.
    pub(super) fn poll_assist(&mut self) -> bool {
        let Some(job) = &self.assist.job else {
            return false;
        };
        let answer = match job.poll() {
            TaskState::Running => return false,
            TaskState::Done(a) => a,
            TaskState::Failed(e) => {
                self.assist.job = None;
                self.info(e.to_string());
                return true;
            }
        };
        self.assist.job = None;
        if let Some(px) = answer.pixels {
            self.assist.pixels = Some((answer.image.clone(), px));
        }
        if self.current_path().as_deref() != Some(answer.image.as_path()) {
            return true; // the user moved on: the answer is for another image
        }
        match answer.outcome {
            Err(e) => self.info(e),
            Ok(Outcome::Grown(Some(b))) => self.box_drawn(b),
            Ok(Outcome::Grown(None)) => {
                self.info("no object found at the click: drag to draw the box")
            }
            Ok(Outcome::Tightened(changes)) => self.apply_tightened(&changes),
            Ok(Outcome::TightenedPrediction(index, before, after)) => {
                let still = self
                    .shown_predictions()
                    .get(index)
                    .is_some_and(|p| p.detection.bbox == before);
                if still {
                    self.accept_prediction(index, None, Some(after));
                }
            }
            Ok(Outcome::Similar(class, matches)) => {
                let n = matches.len();
                let proposals = matches
                    .into_iter()
                    .map(|m| Proposal {
                        bbox: m.bbox,
                        class_name: class.clone(),
                        score: m.score,
                    })
                    .collect();
                self.show_proposals(answer.image, proposals);
                self.info(format!(
                    "find similar: {n} {class} proposal(s) to review (Enter accepts, Del rejects, Shift+Enter accepts all)"
                ));
            }
            Ok(Outcome::Known(products, proposals)) => {
                let n = proposals.len();
                self.show_proposals(answer.image, proposals);
                self.info(format!(
                    "find known products: {n} proposal(s) like the {products} product(s) labelled here, to review (Enter accepts, Del rejects, Shift+Enter accepts all)"
                ));
            }
        }
        true
    }

    /// Shows `proposals` on `image` for review (replacing earlier ones there), the first
    /// pending one selected.
    fn show_proposals(&mut self, image: PathBuf, proposals: Vec<Proposal>) {
        let any = !proposals.is_empty();
        self.assist.proposals.insert(image, proposals);
        self.review.selected = any.then_some(self.first_pending_index());
    }

    fn first_pending_index(&self) -> usize {
        self.shown_predictions()
            .iter()
            .position(|p| p.state.is_pending())
            .unwrap_or(0)
    }

    /// Moves each box that is still where it was when tightening started.
    fn apply_tightened(&mut self, changes: &[(usize, BoxXyxy, BoxXyxy)]) {
        let Some(doc) = self.workspace.editable() else {
            return;
        };
        let live: Vec<_> = changes
            .iter()
            .filter(|(i, before, after)| {
                before != after
                    && doc
                        .annotation
                        .boxes
                        .get(*i)
                        .is_some_and(|b| b.bbox == *before)
            })
            .copied()
            .collect();
        if live.is_empty() {
            self.info("tighten: the box already sits on the object's edges");
            return;
        }
        doc.edit(|a| {
            for (i, _, after) in &live {
                a.boxes[*i].bbox = *after;
            }
        });
        self.info(format!("tightened {} box(es)", live.len()));
    }

    /// Accepts proposal `index` of the current image as a label (`class` and `bbox`
    /// override it: relabel / fix).
    pub(super) fn accept_proposal(
        &mut self,
        index: usize,
        class: Option<String>,
        bbox: Option<BoxXyxy>,
    ) -> bool {
        let Some(image) = self.current_path() else {
            return false;
        };
        let Some(p) = self
            .assist
            .proposals
            .get(&image)
            .and_then(|v| v.get(index))
            .cloned()
        else {
            return false;
        };
        let b = bbox.unwrap_or(p.bbox);
        let b = b.rounded();
        let name = class.unwrap_or(p.class_name);
        if b.width() < 1.0 || b.height() < 1.0 || self.workspace.editable().is_none() {
            return false;
        }
        self.workspace.classes.ensure(&name);
        if let Some(doc) = self.workspace.editable() {
            doc.edit(|a| a.boxes.push(crate::dataset::LabelBox::new(name, b)));
        }
        self.remove_proposal(&image, index);
        self.save();
        true
    }

    pub(super) fn remove_proposal(&mut self, image: &Path, index: usize) {
        if let Some(v) = self.assist.proposals.get_mut(image) {
            if index < v.len() {
                v.remove(index);
            }
        }
    }

    /// With a model and cached predictions, the most useful unlabelled image other than
    /// the current one (see [`queue`]); `None` without them.
    pub fn most_useful_unlabelled(&self) -> Option<usize> {
        let current = self.workspace.current;
        self.unlabelled_by_usefulness()?
            .into_iter()
            .find(|&i| Some(i) != current)
    }

    /// The unlabelled images, most useful first (those without cached predictions last,
    /// in file order); `None` without a model or without any cached prediction.
    pub fn unlabelled_by_usefulness(&self) -> Option<Vec<usize>> {
        let model = self.review.model.as_ref()?;
        let session = self.workspace.session.as_ref()?;
        let classes = model.class_names.len();
        let cfg = SelectConfig {
            score_threshold: queue::MIN_SCORE,
            max_detections: None,
            ..self.review.select
        };
        let signal = |path: &Path| {
            self.review
                .predictions
                .get(path)
                .map(|p| queue::ImageSignal::of(&p.reselect(&cfg), classes))
        };
        let mut unlabelled = Vec::new();
        let mut labelled = Vec::new();
        for (i, image) in session.images.iter().enumerate() {
            if image.status.is_labelled() {
                labelled.extend(signal(&image.path));
            } else {
                unlabelled.push((i, signal(&image.path)));
            }
        }
        if unlabelled.iter().all(|(_, s)| s.is_none()) {
            return None;
        }
        let signals: Vec<_> = unlabelled.iter().map(|(_, s)| s.clone()).collect();
        Some(
            queue::order(&signals, &labelled)
                .into_iter()
                .map(|k| unlabelled[k].0)
                .collect(),
        )
    }
}

fn run_request(image: PathBuf, cached: Option<Arc<RgbImage>>, request: Request) -> Answer {
    let pixels = match cached {
        Some(px) => px,
        None => match decode_upright_rgb(&image) {
            Ok(px) => Arc::new(px),
            Err(e) => {
                return Answer {
                    outcome: Err(format!("cannot read {}: {e}", image.display())),
                    image,
                    pixels: None,
                }
            }
        },
    };
    let outcome = match request {
        Request::Grow(at) => Outcome::Grown(region::grow_from_click(&pixels, at)),
        Request::Tighten(boxes) => Outcome::Tightened(
            boxes
                .into_iter()
                .map(|(i, b)| (i, b, tighten::tighten(&pixels, b)))
                .collect(),
        ),
        Request::TightenPrediction(i, b) => {
            Outcome::TightenedPrediction(i, b, tighten::tighten(&pixels, b))
        }
        Request::Similar {
            example,
            class,
            existing,
        } => Outcome::Similar(class, similar::find_similar(&pixels, example, &existing)),
        Request::Known { labels, looks } => {
            let (products, proposals) = known_products::propose(&pixels, &labels, looks.as_ref());
            Outcome::Known(products, proposals)
        }
    };
    Answer {
        image,
        pixels: Some(pixels),
        outcome: Ok(outcome),
    }
}
