//! From network outputs to detections: decode, clip, score threshold, top-k, NMS, max-det.
//!
//! Zylo117's `postprocess` (spec §2.3) is the special case "one class per anchor (its
//! max-probability class), `score > threshold`, per-class NMS, no top-k, no cap".
//!
//! The work is split so a UI can re-threshold without running the network again:
//! [`Candidates::from_outputs`] keeps every anchor above a low score floor (optionally
//! the top-k), decoded and clipped, **sorted by descending score**; [`Candidates::select`]
//! then applies a score threshold (a binary search on the sorted scores), NMS (per-class
//! or class-agnostic; hard, or linear / Gaussian Soft-NMS, [`NmsMethod`]) and the detection
//! cap. Because NMS visits candidates in score order and stops at the cap, re-filtering
//! 20,000 candidates costs well under 5 ms with hard NMS; Soft-NMS rescans the remaining
//! candidates for each kept box (O(kept × candidates)).

use std::collections::HashMap;

use super::box_coding::{decode, DeltaRows, XyxyF32, YxyxRows};
use super::letterbox::Letterbox;
pub use super::nms::NmsMethod;
use super::nms::{area, iou, soft_nms_presorted};
use crate::geometry::BoxXyxy;

/// One detected object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// Corners in pixels: of the network input from [`Candidates::select`], of the
    /// original image after [`to_original`].
    pub bbox: BoxXyxy,
    /// Probability of `class_id` (after sigmoid).
    pub score: f32,
    /// 0-based class index (the COCO `category_id` is `class_id + 1`).
    pub class_id: usize,
}

/// Settings for [`Candidates::select`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SelectConfig {
    /// Keep candidates with `score > score_threshold` (strict, like the reference).
    pub score_threshold: f32,
    /// Suppress a box whose IoU with a kept box is `> iou_threshold`.
    pub iou_threshold: f64,
    /// NMS across classes instead of within each class.
    pub class_agnostic: bool,
    /// Hard NMS (remove) or Soft-NMS (decay scores; the decayed score must stay above
    /// `score_threshold`).
    pub nms: NmsMethod,
    /// At most this many detections (the highest scoring); `None` for no cap.
    pub max_detections: Option<usize>,
}

impl Default for SelectConfig {
    /// COCO-evaluation style: score 0.05, IoU 0.5, per class, hard NMS, 100 detections.
    fn default() -> Self {
        Self {
            score_threshold: 0.05,
            iou_threshold: 0.5,
            class_agnostic: false,
            nms: NmsMethod::Hard,
            max_detections: Some(100),
        }
    }
}

/// Pre-NMS candidates of one image, sorted by descending score (ties: lower anchor first).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Candidates {
    boxes: Vec<XyxyF32>,
    scores: Vec<f32>,
    classes: Vec<u32>,
    anchors: Vec<u32>,
    /// `areas[i] = area(boxes[i])`, cached for NMS.
    areas: Vec<f32>,
}

/// Why outputs could not be post-processed (mismatched lengths).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("post-processing: {0}")]
pub struct ShapeError(pub String);

/// The network outputs for one image, borrowed from flat buffers.
#[derive(Clone, Copy, Debug)]
pub struct ImageOutputs<'a> {
    /// `N` rows `(dy, dx, dh, dw)`.
    pub regression: DeltaRows<'a>,
    /// `N × num_classes` probabilities (sigmoid already applied), row-major.
    pub classification: &'a [f32],
    pub num_classes: usize,
    /// `N` rows `(y1, x1, y2, x2)`.
    pub anchors: YxyxRows<'a>,
    /// The network input size, for clipping (Zylo117 `ClipBoxes`).
    pub input_width: u32,
    pub input_height: u32,
}

impl Candidates {
    /// Builds the candidates of one image: each anchor contributes its max-probability
    /// class (the first on ties) when that score is `> score_floor`; `top_k` keeps only
    /// the best `k` of those. Boxes are decoded and clipped to the input.
    pub fn from_outputs(
        out: &ImageOutputs<'_>,
        score_floor: f32,
        top_k: Option<usize>,
    ) -> Result<Self, ShapeError> {
        let (n, nc) = (out.anchors.len(), out.num_classes);
        if out.regression.len() != n || nc == 0 || out.classification.len() != n * nc {
            return Err(ShapeError(format!(
                "{} anchors, {} regressions and {} class scores for {nc} classes do not match",
                n,
                out.regression.len(),
                out.classification.len()
            )));
        }
        let mut picked: Vec<(f32, u32, u32)> = Vec::new();
        for (a, row) in out.classification.chunks_exact(nc).enumerate() {
            let (mut best, mut class) = (row[0], 0);
            for (c, &s) in row.iter().enumerate().skip(1) {
                if s > best {
                    best = s;
                    class = c;
                }
            }
            if best > score_floor {
                picked.push((best, class as u32, a as u32));
            }
        }
        picked.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.2.cmp(&y.2)));
        if let Some(k) = top_k {
            picked.truncate(k);
        }
        let (w, h) = (out.input_width as f32, out.input_height as f32);
        let mut c = Candidates::default();
        for (score, class, a) in picked {
            let b = decode(out.anchors.get(a as usize), out.regression.get(a as usize))
                .clip_to_input(w, h);
            c.areas.push(area(&b));
            c.boxes.push(b);
            c.scores.push(score);
            c.classes.push(class);
            c.anchors.push(a);
        }
        Ok(c)
    }

    /// Test candidates from `(box, score, class)` rows (scores descending), anchors
    /// numbered in order.
    #[cfg(test)]
    pub(crate) fn from_rows(rows: &[([f32; 4], f32, u32)]) -> Self {
        let boxes = rows
            .iter()
            .map(|(b, _, _)| XyxyF32 {
                x1: b[0],
                y1: b[1],
                x2: b[2],
                y2: b[3],
            })
            .collect();
        let scores = rows.iter().map(|r| r.1).collect();
        let classes = rows.iter().map(|r| r.2).collect();
        Self::from_parts(boxes, scores, classes, (0..rows.len() as u32).collect()).unwrap()
    }

    /// Rebuilds candidates from their columns (e.g. read back from a cache), recomputing
    /// the cached areas.
    ///
    /// # Errors
    /// A [`ShapeError`] when the four columns differ in length, a score is not finite,
    /// or the scores are not in descending order.
    pub fn from_parts(
        boxes: Vec<XyxyF32>,
        scores: Vec<f32>,
        classes: Vec<u32>,
        anchors: Vec<u32>,
    ) -> Result<Self, ShapeError> {
        let n = scores.len();
        if boxes.len() != n || classes.len() != n || anchors.len() != n {
            return Err(ShapeError(format!(
                "{} boxes, {n} scores, {} classes and {} anchors do not match",
                boxes.len(),
                classes.len(),
                anchors.len()
            )));
        }
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(ShapeError(format!(
                "candidate {i} has a non-finite score {}",
                scores[i]
            )));
        }
        if let Some(i) = scores.windows(2).position(|w| w[0] < w[1]) {
            return Err(ShapeError(format!(
                "scores are not in descending order at candidate {}: {} < {}",
                i + 1,
                scores[i],
                scores[i + 1]
            )));
        }
        let areas = boxes.iter().map(area).collect();
        Ok(Self {
            boxes,
            scores,
            classes,
            anchors,
            areas,
        })
    }

    /// How many candidates there are.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Decoded, clipped boxes in the network-input frame.
    pub fn boxes(&self) -> &[XyxyF32] {
        &self.boxes
    }

    /// Scores, descending.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }

    /// 0-based class of each candidate.
    pub fn classes(&self) -> &[u32] {
        &self.classes
    }

    /// The anchor index each candidate came from.
    pub fn anchor_indices(&self) -> &[u32] {
        &self.anchors
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// How many candidates have `score > threshold` (they are a prefix).
    pub fn count_above(&self, threshold: f32) -> usize {
        self.scores.partition_point(|&s| s > threshold)
    }

    /// Detections (network-input frame), by descending score (the decayed score with
    /// Soft-NMS).
    pub fn select(&self, cfg: &SelectConfig) -> Vec<Detection> {
        let n = self.count_above(cfg.score_threshold);
        let max_keep = cfg.max_detections.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        if max_keep == 0 {
            return out;
        }
        if cfg.nms.is_soft() {
            let classes = (!cfg.class_agnostic).then_some(&self.classes[..n]);
            return soft_nms_presorted(
                &self.boxes[..n],
                &self.scores[..n],
                classes,
                cfg.nms,
                cfg.iou_threshold,
                cfg.score_threshold,
                max_keep,
            )
            .into_iter()
            .map(|(i, score)| Detection {
                bbox: self.boxes[i].to_box(),
                score,
                class_id: self.classes[i] as usize,
            })
            .collect();
        }
        let mut kept: HashMap<u32, Vec<usize>> = HashMap::new();
        for i in 0..n {
            let class = if cfg.class_agnostic {
                0
            } else {
                self.classes[i]
            };
            let group = kept.entry(class).or_default();
            let (b, a) = (&self.boxes[i], self.areas[i]);
            if group
                .iter()
                .any(|&k| f64::from(iou(&self.boxes[k], self.areas[k], b, a)) > cfg.iou_threshold)
            {
                continue;
            }
            group.push(i);
            out.push(Detection {
                bbox: b.to_box(),
                score: self.scores[i],
                class_id: self.classes[i] as usize,
            });
            if out.len() == max_keep {
                break;
            }
        }
        out
    }
}

/// Zylo117-style post-processing of one image in a single call: candidates above
/// `cfg.score_threshold` (with an optional pre-NMS `top_k`), then [`Candidates::select`].
pub fn postprocess(
    out: &ImageOutputs<'_>,
    top_k: Option<usize>,
    cfg: &SelectConfig,
) -> Result<Vec<Detection>, ShapeError> {
    Ok(Candidates::from_outputs(out, cfg.score_threshold, top_k)?.select(cfg))
}

/// Maps detections from the network input back to the original image (un-pad, un-scale,
/// clip); boxes that end up empty are dropped.
pub fn to_original(dets: &[Detection], letterbox: &Letterbox) -> Vec<Detection> {
    dets.iter()
        .filter_map(|d| {
            let bbox = letterbox.to_original(&d.bbox);
            (bbox.width() > 0.0 && bbox.height() > 0.0).then_some(Detection { bbox, ..*d })
        })
        .collect()
}

#[cfg(test)]
mod tests;
