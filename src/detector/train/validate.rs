//! Validation: detections on held-out images, scored with the project's COCO evaluator
//! (AP@[.5:.95], AP50, per-class AP), exactly as `detlab eval` would score them.
//!
//! Post-processing is the evaluation setting of spec §7.6: each anchor's best class,
//! pre-NMS top 5000, score > 0.05, per-class NMS at IoU 0.5, 100 detections; boxes mapped
//! back to the original image through the letterbox. Tiled training validates on one crop
//! per image, fixed for the run, against the labels of the crop.

use std::path::PathBuf;
use std::sync::Arc;

use tch::{Device, Kind, Tensor};

use super::data::{DataError, Loader, Preprocess, Sample};
use super::events::{ClassAp, ValMetrics};
use crate::detector::maths::box_coding::{DeltaRows, YxyxRows};
use crate::detector::maths::postprocess::{
    postprocess, to_original, Detection, ImageOutputs, SelectConfig,
};
use crate::detector::model::{EfficientDet, TrainModes};
use crate::eval::{self, LabelledImage};
use crate::geometry::BoxXyxy;

/// Validation failed.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("evaluation: {0}")]
    Eval(#[from] eval::EvalError),
    #[error("post-processing: {0}")]
    Post(String),
}

/// Runs the network (eval mode, no gradients) on a normalised batch and returns each
/// image's detections in original-image pixels.
pub fn detect_batch(
    model: &EfficientDet,
    xs: &Tensor,
    anchors_yxyx: &[f32],
    letterboxes: &[crate::detector::maths::letterbox::Letterbox],
    select: &SelectConfig,
) -> Result<Vec<Vec<Detection>>, ValidateError> {
    let out = tch::no_grad(|| model.forward_modes(xs, TrainModes::all(false)));
    let size = xs.size();
    let (b, h, w) = (size[0] as usize, size[2] as u32, size[3] as u32);
    let nc = model.num_classes as usize;
    let to_vec = |t: Tensor| -> Vec<f32> {
        Vec::<f32>::try_from(t.to_kind(Kind::Float).to_device(Device::Cpu).flatten(0, -1))
            .unwrap_or_default()
    };
    let cls = to_vec(out.classification.sigmoid());
    let reg = to_vec(out.regression);
    let n = anchors_yxyx.len() / 4;
    let anchors =
        YxyxRows::from_flat(anchors_yxyx).ok_or_else(|| ValidateError::Post("anchors".into()))?;
    (0..b)
        .map(|i| {
            let regression =
                DeltaRows::from_flat(reg.get(i * n * 4..(i + 1) * n * 4).unwrap_or(&[]))
                    .ok_or_else(|| ValidateError::Post("regression shape".into()))?;
            let outputs = ImageOutputs {
                regression,
                classification: cls.get(i * n * nc..(i + 1) * n * nc).unwrap_or(&[]),
                num_classes: nc,
                anchors,
                input_width: w,
                input_height: h,
            };
            let dets = postprocess(&outputs, Some(5000), select)
                .map_err(|e| ValidateError::Post(e.to_string()))?;
            Ok(to_original(&dets, &letterboxes[i]))
        })
        .collect()
}

/// What [`validate`] found: the metrics, each image's detections (none for a skipped
/// image), and the images that could not be decoded (file, reason), which are left out of
/// the score.
pub type Validation = (ValMetrics, Vec<Vec<Detection>>, Vec<(PathBuf, String)>);

/// Detects on every sample and scores the detections.
#[allow(clippy::too_many_arguments)]
pub fn validate(
    model: &EfficientDet,
    samples: &Arc<Vec<Sample>>,
    class_names: &[String],
    pre: &Preprocess,
    batch_size: usize,
    anchors_yxyx: &[f32],
    device: Device,
    pool: Option<Arc<rayon::ThreadPool>>,
) -> Result<Validation, ValidateError> {
    let order: Vec<usize> = (0..samples.len()).collect();
    let all: Vec<Vec<usize>> = order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    let pre = Preprocess {
        augment: None,
        ..pre.clone()
    };
    let loader = Loader::spawn(samples.clone(), all, 0, pre.clone(), 2, pool);
    let select = SelectConfig::default();
    let mut per_image = vec![Vec::new(); samples.len()];
    // Tiled training validates on one fixed crop per image: its labels are the crop's.
    let mut crop_labels: Vec<Vec<(BoxXyxy, usize)>> = vec![Vec::new(); samples.len()];
    let s = pre.input_size as i64;
    let mut skipped = Vec::new();
    let mut left_out = vec![false; samples.len()];
    for batch in loader {
        let batch = batch?;
        for (i, path, reason) in &batch.skipped {
            left_out[*i] = true;
            skipped.push((path.clone(), reason.clone()));
        }
        if batch.is_empty() {
            continue;
        }
        let xs = Tensor::from_slice(&batch.pixels)
            .view([batch.len() as i64, 3, s, s])
            .to_device(device);
        let dets = detect_batch(model, &xs, anchors_yxyx, &batch.letterboxes, &select)?;
        for (k, (i, d)) in batch.indices.iter().zip(dets).enumerate() {
            per_image[*i] = d;
            if pre.tile.is_some() {
                crop_labels[*i] = batch.boxes[k]
                    .iter()
                    .zip(&batch.classes[k])
                    .map(|(b, &c)| {
                        let [x1, y1, x2, y2] = b.map(f64::from);
                        (BoxXyxy::new(x1, y1, x2, y2), c as usize)
                    })
                    .collect();
            }
        }
    }
    let images: Vec<LabelledImage> = samples
        .iter()
        .zip(&per_image)
        .zip(&left_out)
        .zip(crop_labels)
        .filter(|((_, &out), _)| !out)
        .map(|(((s, dets), _), crop)| {
            let labels = match pre.tile {
                Some(_) => crop,
                None => s
                    .boxes
                    .iter()
                    .copied()
                    .zip(s.classes.iter().copied())
                    .collect(),
            };
            (labels, dets.clone())
        })
        .collect();
    let result = eval::evaluate_images(&images, class_names)?;
    let per_class = result
        .per_category
        .iter()
        .map(|c| ClassAp {
            name: c.name.clone(),
            ap: c.ap,
            ap50: c.ap50,
        })
        .collect();
    Ok((
        ValMetrics {
            ap: result.stats[0],
            ap50: result.stats[1],
            ap75: result.stats[2],
            per_class,
            images: images.len(),
        },
        per_image,
        skipped,
    ))
}
