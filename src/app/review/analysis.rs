//! Disagreement mining and the evaluation page, computed in the background from the
//! cached predictions and the labels.

use std::path::PathBuf;
use std::sync::Arc;

use super::Evaluation;
use crate::app::jobs::{repaint, Job};
use crate::app::AppState;
use crate::dataset::LabelBox;
use crate::detector::maths::postprocess::SelectConfig;
use crate::eval::{LabelledImage, MaxDets, Params};
use crate::geometry::BoxXyxy;
use crate::review::{compare, rank, CachedPrediction, ImageDisagreement, MatchSettings};

impl AppState {
    /// Every image with cached predictions and known labels (possibly none).
    fn predicted_and_labelled(&self) -> Vec<(PathBuf, Arc<CachedPrediction>, Vec<LabelBox>)> {
        self.review
            .predictions
            .iter()
            .filter_map(|(p, c)| Some((p.clone(), c.clone(), self.review.labels.get(p)?.clone())))
            .collect()
    }

    /// Ranks labelled images by how much the model disagrees with their labels.
    pub fn find_disagreements(&mut self) {
        let Some(model) = self.review.model.clone() else {
            return;
        };
        self.remember_labels();
        let select = SelectConfig {
            score_threshold: 0.05,
            ..self.review.select
        };
        let mut items = self.predicted_and_labelled();
        items.retain(|(_, _, labels)| !labels.is_empty());
        self.review.disagreement_job = Some(Job::spawn(
            "disagreements",
            repaint(self.ctx.clone()),
            move |_| {
                let settings = MatchSettings::default();
                let mut out: Vec<(PathBuf, ImageDisagreement)> = items
                    .into_iter()
                    .map(|(path, pred, labels)| {
                        let gt = class_boxes(&labels, &model.class_names);
                        let found = compare(&gt, &pred.reselect(&select), &settings);
                        (path, found)
                    })
                    .collect();
                out.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
                out
            },
        ));
    }

    /// The disagreement list under the chosen filter, most serious first.
    pub fn disagreement_list(&self) -> Vec<(PathBuf, ImageDisagreement)> {
        let d = &self.review.disagreements;
        rank(d, self.review.disagreement_kind)
            .into_iter()
            .map(|i| d[i].clone())
            .collect()
    }

    /// COCO rules for scoring the cached predictions: score > 0.05 and as many detections
    /// per image as AP reads (at least 100), with the Review panel's NMS.
    pub(crate) fn coco_select(&self, max_dets: MaxDets) -> SelectConfig {
        SelectConfig {
            score_threshold: 0.05,
            max_detections: Some(max_dets.last().max(100)),
            ..self.review.select
        }
    }

    /// Scores the model's cached predictions against the labels (COCO AP) in the background.
    pub fn evaluate_model(&mut self) {
        let Some(model) = self.review.model.clone() else {
            return;
        };
        self.remember_labels();
        let items = self.predicted_and_labelled();
        let densest = items.iter().map(|(_, _, l)| l.len()).max().unwrap_or(0);
        let chosen = self.review.eval_max_dets;
        let max_dets = chosen.unwrap_or_else(|| MaxDets::for_labels(densest));
        let select = self.coco_select(max_dets);
        self.review.evaluation_job = Some(Job::spawn(
            "evaluate",
            repaint(self.ctx.clone()),
            move |_| {
                if items.is_empty() {
                    return Err("no image has both labels and predictions yet: run the model on all images first".into());
                }
                let images: Vec<LabelledImage> = items
                    .iter()
                    .map(|(_, pred, labels)| {
                        let gt = class_boxes(labels, &model.class_names);
                        (gt, pred.reselect(&select))
                    })
                    .collect();
                let result = crate::eval::evaluate_images_with(
                    &images,
                    &model.class_names,
                    &Params::with_max_dets(max_dets),
                )
                .map_err(|e| e.to_string())?;
                Ok(Evaluation {
                    result,
                    class_names: model.class_names.clone(),
                    images: images.len(),
                    max_dets,
                    densest,
                    auto_max_dets: chosen.is_none(),
                })
            },
        ));
    }
}

/// The labels as `(box, model class id)`; labels of classes the model does not know are
/// left out.
fn class_boxes(labels: &[LabelBox], class_names: &[String]) -> Vec<(BoxXyxy, usize)> {
    labels
        .iter()
        .filter_map(|l| {
            let c = class_names.iter().position(|n| *n == l.class_name)?;
            Some((l.bbox, c))
        })
        .collect()
}
