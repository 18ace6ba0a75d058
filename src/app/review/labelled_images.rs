//! Labelled images as a model is judged on them (the auto-retrain trial, the TTA
//! judge): their saved labels, and a model's boxes on them as the Review panel would show
//! them, from the predictions in memory where they fit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{predict_image, shown_boxes, LoadedModel};
use crate::app::label_io::LabelReader;
use crate::app::AppState;
use crate::detector::maths::postprocess::SelectConfig;
use crate::detector::maths::tiling::Tiling;
use crate::detector::maths::tta::Tta;
use crate::review::{CachedPrediction, NamedBox};

/// What a background job needs from the app to judge a model on labelled images.
pub(crate) struct LabelledImages {
    pub images: Vec<PathBuf>,
    /// The review model's predictions of `images` in memory, made with `known_tta`.
    known: HashMap<PathBuf, Arc<CachedPrediction>>,
    known_tta: Tta,
    reader: LabelReader,
    save_dir: Option<PathBuf>,
    select: SelectConfig,
    refine: bool,
    tiling: Tiling,
}

impl LabelledImages {
    /// `image`'s saved labels as named boxes (none when it has no label file).
    pub fn labels(&self, image: &Path) -> Result<Vec<NamedBox>, String> {
        Ok(self
            .reader
            .read(image, self.save_dir.as_deref())?
            .map(|a| a.boxes)
            .unwrap_or_default()
            .into_iter()
            .map(|l| NamedBox {
                bbox: l.bbox,
                class_name: l.class_name,
            })
            .collect())
    }

    /// `model`'s boxes on `image` with `tta`, as the Review panel would show them: the
    /// review model's predictions in memory when `review_model` and they were made with
    /// `tta`, else a new pass.
    pub fn shown(
        &self,
        model: &LoadedModel,
        review_model: bool,
        image: &Path,
        tta: Tta,
    ) -> Result<Vec<NamedBox>, String> {
        let known = (review_model && tta == self.known_tta)
            .then(|| self.known.get(image))
            .flatten();
        let computed;
        let pred = match known {
            Some(p) => p.as_ref(),
            None => {
                computed = predict_image(model, image, (self.tiling, tta))?;
                &computed
            }
        };
        Ok(shown_boxes(
            pred,
            &self.select,
            self.refine,
            &model.class_names,
        ))
    }
}

impl AppState {
    /// `images` with what judging a model on them needs (the Review panel's thresholds,
    /// box refinement and tiling).
    pub(crate) fn labelled_images_for_judging(&self, images: Vec<PathBuf>) -> LabelledImages {
        LabelledImages {
            known: images
                .iter()
                .filter_map(|i| Some((i.clone(), self.review.predictions.get(i)?.clone())))
                .collect(),
            known_tta: self.review.tta,
            images,
            reader: self.workspace.labels.reader(),
            save_dir: self
                .workspace
                .session
                .as_ref()
                .and_then(|s| s.save_dir.clone()),
            select: self.review.select,
            refine: self.review.refine_boxes,
            tiling: self.review.tiling,
        }
    }
}
