//! In-memory inputs: validated COCO ground truth and detection results.
//!
//! Callers that already hold boxes (training validation, the review UI) build these directly;
//! [`super::json`] builds them from COCO JSON files.

use super::error::{EvalError, InputKind};
use super::idmap::IdMap;

/// A GT image. Only the id takes part in evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct GtImage {
    /// COCO image id.
    pub id: i64,
    /// File name, if known (kept for display).
    pub file_name: String,
}

/// A GT category.
#[derive(Clone, Debug, PartialEq)]
pub struct GtCategory {
    /// COCO category id.
    pub id: i64,
    /// Display name.
    pub name: String,
}

impl GtCategory {
    /// One category per class name, with ids 1, 2, … in list order (detlab's convention).
    pub fn numbered(class_names: &[String]) -> Vec<GtCategory> {
        class_names
            .iter()
            .enumerate()
            .map(|(i, name)| GtCategory {
                id: i as i64 + 1,
                name: name.clone(),
            })
            .collect()
    }
}

/// A GT box.
#[derive(Clone, Debug, PartialEq)]
pub struct GtAnnotation {
    /// Annotation id. COCOeval records matches by id with 0 meaning "unmatched", so a GT
    /// with id 0 can never be a true positive (reproduced on purpose).
    pub id: i64,
    /// Image the box is on.
    pub image_id: i64,
    /// Category of the box.
    pub category_id: i64,
    /// `[x, y, width, height]`, continuous pixel coordinates.
    pub bbox: [f64; 4],
    /// The annotation's `area` field. Area buckets use this, not `width * height`.
    pub area: f64,
    /// Crowd region: matched by many detections, IoU divided by the detection's area, and
    /// always ignored (COCOeval overwrites any `ignore` flag with `iscrowd`).
    pub iscrowd: bool,
}

/// One detection result, as in a COCO results file.
///
/// As in `COCO.loadRes`, its id is its 1-based position in the list, its area is
/// `width * height` and it is never crowd.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// Image the detection is on; must be a GT image.
    pub image_id: i64,
    /// Predicted category; must be a GT category.
    pub category_id: i64,
    /// `[x, y, width, height]`.
    pub bbox: [f64; 4],
    /// Confidence; higher ranks first.
    pub score: f64,
}

impl Detection {
    /// `width * height`, the area `loadRes` assigns.
    #[inline]
    pub fn area(&self) -> f64 {
        self.bbox[2] * self.bbox[3]
    }
}

/// Validated COCO ground truth.
///
/// Image, category and annotation ids are unique (pycocotools would silently merge
/// duplicate image or category ids; `detlab convert` refuses them, and so does this);
/// every annotation must reference a known image and category and have a finite box with
/// non-negative size and a finite non-negative area.
#[derive(Clone, Debug, Default)]
pub struct CocoGroundTruth {
    images: Vec<GtImage>,
    categories: Vec<GtCategory>,
    annotations: Vec<GtAnnotation>,
    image_index: IdMap,
    category_index: IdMap,
}

impl CocoGroundTruth {
    /// Builds and validates a ground truth from its three lists.
    pub fn new(
        images: Vec<GtImage>,
        categories: Vec<GtCategory>,
        annotations: Vec<GtAnnotation>,
    ) -> Result<Self, EvalError> {
        let duplicate =
            |section: &'static str, index: usize, id: i64, prev: u32| EvalError::InvalidRecord {
                kind: InputKind::GroundTruth,
                section,
                index,
                id: Some(id),
                reason: format!("id {id} is also used by {section}[{prev}]"),
            };
        let mut image_index = IdMap::with_capacity(images.len());
        for (i, img) in images.iter().enumerate() {
            if let Some(prev) = image_index.insert(img.id, i as u32) {
                return Err(duplicate("images", i, img.id, prev));
            }
        }
        let mut category_index = IdMap::with_capacity(categories.len());
        for (i, cat) in categories.iter().enumerate() {
            if let Some(prev) = category_index.insert(cat.id, i as u32) {
                return Err(duplicate("categories", i, cat.id, prev));
            }
        }
        let mut ann_ids = IdMap::with_capacity(annotations.len());
        for (index, a) in annotations.iter().enumerate() {
            let bad = |reason: String| EvalError::InvalidRecord {
                kind: InputKind::GroundTruth,
                section: "annotations",
                index,
                id: Some(a.id),
                reason,
            };
            if !image_index.contains(a.image_id) {
                return Err(bad(format!(
                    "image_id {} is not among the images",
                    a.image_id
                )));
            }
            if !category_index.contains(a.category_id) {
                return Err(bad(format!(
                    "category_id {} is not among the categories",
                    a.category_id
                )));
            }
            check_box(&a.bbox).map_err(bad)?;
            if !a.area.is_finite() || a.area < 0.0 {
                return Err(bad(format!(
                    "area {} must be a finite, non-negative number",
                    a.area
                )));
            }
            if let Some(prev) = ann_ids.insert(a.id, index as u32) {
                return Err(bad(format!(
                    "annotation id {} is also used by annotations[{prev}]",
                    a.id
                )));
            }
        }
        Ok(CocoGroundTruth {
            images,
            categories,
            annotations,
            image_index,
            category_index,
        })
    }

    /// The images, in input order.
    pub fn images(&self) -> &[GtImage] {
        &self.images
    }

    /// The categories, in input order.
    pub fn categories(&self) -> &[GtCategory] {
        &self.categories
    }

    /// The annotations, in input order.
    pub fn annotations(&self) -> &[GtAnnotation] {
        &self.annotations
    }

    /// Whether `id` is a GT image.
    pub fn has_image(&self, id: i64) -> bool {
        self.image_index.contains(id)
    }

    /// The category with this id.
    pub fn category(&self, id: i64) -> Option<&GtCategory> {
        self.category_index
            .get(id)
            .and_then(|i| self.categories.get(i as usize))
    }

    /// The most annotations (crowd included) any one image has: with more than
    /// [`super::DENSE_BOXES_PER_IMAGE`] the set is dense ([`super::MaxDets::for_labels`]).
    pub fn max_annotations_per_image(&self) -> usize {
        let mut counts: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
        for a in &self.annotations {
            *counts.entry(a.image_id).or_default() += 1;
        }
        counts.into_values().max().unwrap_or(0)
    }

    /// Image ids sorted and deduplicated: COCOeval's default `imgIds`.
    pub fn sorted_image_ids(&self) -> Vec<i64> {
        sorted_unique(self.images.iter().map(|i| i.id))
    }

    /// Category ids sorted and deduplicated: COCOeval's default `catIds`.
    pub fn sorted_category_ids(&self) -> Vec<i64> {
        sorted_unique(self.categories.iter().map(|c| c.id))
    }
}

/// Sorts and deduplicates ids, like `np.unique`.
pub(crate) fn sorted_unique(ids: impl Iterator<Item = i64>) -> Vec<i64> {
    let mut v: Vec<i64> = ids.collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn check_box(b: &[f64; 4]) -> Result<(), String> {
    if let Some(v) = b.iter().find(|v| !v.is_finite()) {
        return Err(format!("bbox {b:?} has a non-finite value {v}"));
    }
    if b[2] < 0.0 || b[3] < 0.0 {
        return Err(format!(
            "bbox {b:?} has a negative width or height (COCO boxes are [x, y, w, h])"
        ));
    }
    Ok(())
}

/// Checks detections against the ground truth the way `loadRes` and COCOeval need them:
/// every image and category known, finite score and box, non-negative box size.
///
/// pycocotools raises on unknown images but silently drops unknown categories; detlab
/// reports both (use [`retain_known_categories`] to drop them on purpose).
pub fn validate_detections(gt: &CocoGroundTruth, dets: &[Detection]) -> Result<(), EvalError> {
    for (index, d) in dets.iter().enumerate() {
        let bad = |reason: String| EvalError::InvalidRecord {
            kind: InputKind::Detections,
            section: "results",
            index,
            id: None,
            reason,
        };
        if !gt.image_index.contains(d.image_id) {
            return Err(bad(format!(
                "image_id {} is not a ground-truth image",
                d.image_id
            )));
        }
        if !gt.category_index.contains(d.category_id) {
            return Err(bad(format!(
                "category_id {} is not a ground-truth category",
                d.category_id
            )));
        }
        if !d.score.is_finite() {
            return Err(bad(format!("score {} is not finite", d.score)));
        }
        check_box(&d.bbox).map_err(bad)?;
    }
    Ok(())
}

/// Drops detections whose category is not in the ground truth, as pycocotools does
/// silently; returns how many were dropped.
pub fn retain_known_categories(gt: &CocoGroundTruth, dets: &mut Vec<Detection>) -> usize {
    let before = dets.len();
    dets.retain(|d| gt.category_index.contains(d.category_id));
    before - dets.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gt() -> CocoGroundTruth {
        CocoGroundTruth::new(
            vec![GtImage {
                id: 7,
                file_name: "a.jpg".into(),
            }],
            vec![GtCategory {
                id: 3,
                name: "can".into(),
            }],
            vec![],
        )
        .expect("valid")
    }

    fn ann(id: i64) -> GtAnnotation {
        GtAnnotation {
            id,
            image_id: 7,
            category_id: 3,
            bbox: [0.0, 0.0, 10.0, 10.0],
            area: 100.0,
            iscrowd: false,
        }
    }

    /// Issue 21, item 13: `eval` accepted duplicate image / category ids that `convert`
    /// refuses.
    #[test]
    fn rejects_duplicate_image_and_category_ids() {
        let mut images = gt().images;
        images.push(images[0].clone());
        let msg = CocoGroundTruth::new(images, gt().categories, vec![])
            .expect_err("duplicate image id")
            .to_string();
        assert!(
            msg.contains("images[") && msg.contains("also used by"),
            "{msg}"
        );
        let mut categories = gt().categories;
        categories.push(categories[0].clone());
        let msg = CocoGroundTruth::new(gt().images, categories, vec![])
            .expect_err("duplicate category id")
            .to_string();
        assert!(
            msg.contains("categories[") && msg.contains("also used by"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_duplicate_annotation_ids() {
        let e = CocoGroundTruth::new(gt().images, gt().categories, vec![ann(1), ann(1)])
            .expect_err("duplicate");
        let msg = e.to_string();
        assert!(
            msg.contains("annotations[1]") && msg.contains("annotations[0]"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_unknown_image_and_negative_size() {
        let mut a = ann(1);
        a.image_id = 8;
        let e = CocoGroundTruth::new(gt().images, gt().categories, vec![a]).expect_err("bad");
        assert!(e.to_string().contains("image_id 8"), "{e}");
        let mut a = ann(1);
        a.bbox[3] = -1.0;
        let e = CocoGroundTruth::new(gt().images, gt().categories, vec![a]).expect_err("bad");
        assert!(e.to_string().contains("negative"), "{e}");
    }

    #[test]
    fn detection_errors_name_the_record() {
        let g = gt();
        let ok = Detection {
            image_id: 7,
            category_id: 3,
            bbox: [1.0, 1.0, 2.0, 2.0],
            score: 0.5,
        };
        let cases = [
            (Detection { image_id: 9, ..ok }, "image_id 9"),
            (
                Detection {
                    category_id: 4,
                    ..ok
                },
                "category_id 4",
            ),
            (
                Detection {
                    score: f64::NAN,
                    ..ok
                },
                "score NaN",
            ),
            (
                Detection {
                    bbox: [0.0, 0.0, -1.0, 1.0],
                    ..ok
                },
                "negative",
            ),
            (
                Detection {
                    bbox: [f64::INFINITY, 0.0, 1.0, 1.0],
                    ..ok
                },
                "non-finite",
            ),
        ];
        for (d, want) in cases {
            let e = validate_detections(&g, &[ok, d]).expect_err(want);
            let msg = e.to_string();
            assert!(msg.contains("results[1]") && msg.contains(want), "{msg}");
        }
        let mut v = vec![
            ok,
            Detection {
                category_id: 4,
                ..ok
            },
        ];
        assert_eq!(retain_known_categories(&g, &mut v), 1);
        assert!(validate_detections(&g, &v).is_ok());
    }
}
