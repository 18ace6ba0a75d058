//! COCO mAP of per-image detections against per-image labels held in memory (the
//! training validation and the app's Evaluate page).

use super::{
    evaluate, CocoGroundTruth, Detection as EvalDetection, EvalError, EvalResult, GtAnnotation,
    GtCategory, GtImage, Params,
};
use crate::detector::maths::postprocess::Detection;
use crate::geometry::BoxXyxy;

/// One image for [`evaluate_images`]: its labels (box, 0-based class id) and its
/// detections.
pub type LabelledImage = (Vec<(BoxXyxy, usize)>, Vec<Detection>);

/// Evaluates each image's detections against its labels (box, 0-based class id), with
/// the default COCO parameters. Image `i` gets COCO id `i + 1`, class `c` category id
/// `c + 1` named `class_names[c]`; boxes are in the same pixel frame on both sides.
///
/// # Errors
/// [`EvalError::InvalidRecord`] for a class id without a name, or an inverted or
/// non-finite box or score.
pub fn evaluate_images(
    images: &[LabelledImage],
    class_names: &[String],
) -> Result<EvalResult, EvalError> {
    evaluate_images_with(images, class_names, &Params::default())
}

/// [`evaluate_images`] with other parameters (e.g. `maxDets = [1, 10, 300]` for dense
/// shelves, [`Params::with_max_dets`]).
///
/// # Errors
/// As [`evaluate_images`], and [`EvalError::InvalidParams`] for unusable parameters.
pub fn evaluate_images_with(
    images: &[LabelledImage],
    class_names: &[String],
    params: &Params,
) -> Result<EvalResult, EvalError> {
    let gt_images = (0..images.len())
        .map(|i| GtImage {
            id: i as i64 + 1,
            file_name: String::new(),
        })
        .collect();
    let categories = GtCategory::numbered(class_names);
    let mut annotations = Vec::new();
    let mut dets = Vec::new();
    for (i, (labels, preds)) in images.iter().enumerate() {
        let image_id = i as i64 + 1;
        for (b, c) in labels {
            let xywh = b.to_xywh();
            annotations.push(GtAnnotation {
                id: annotations.len() as i64 + 1,
                image_id,
                category_id: *c as i64 + 1,
                bbox: [xywh.x, xywh.y, xywh.w, xywh.h],
                area: xywh.w * xywh.h,
                iscrowd: false,
            });
        }
        dets.extend(preds.iter().map(|d| {
            let xywh = d.bbox.to_xywh();
            EvalDetection {
                image_id,
                category_id: d.class_id as i64 + 1,
                bbox: [xywh.x, xywh.y, xywh.w, xywh.h],
                score: f64::from(d.score),
            }
        }));
    }
    let gt = CocoGroundTruth::new(gt_images, categories, annotations)?;
    evaluate(&gt, &dets, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["cola".into(), "sprite".into()]
    }

    fn labels() -> Vec<LabelledImage> {
        let img1 = vec![
            (BoxXyxy::new(10.0, 10.0, 110.0, 210.0), 0),
            (BoxXyxy::new(200.0, 20.0, 260.0, 140.0), 1),
        ];
        let img2 = vec![(BoxXyxy::new(5.0, 5.0, 300.0, 400.0), 0)];
        vec![(img1, Vec::new()), (img2, Vec::new())]
    }

    #[test]
    fn labels_as_detections_score_one() {
        let images: Vec<_> = labels()
            .into_iter()
            .map(|(l, _)| {
                let dets = l
                    .iter()
                    .map(|&(bbox, class_id)| Detection {
                        bbox,
                        score: 1.0,
                        class_id,
                    })
                    .collect();
                (l, dets)
            })
            .collect();
        let r = evaluate_images(&images, &names()).unwrap();
        assert!((r.stats[0] - 1.0).abs() < 1e-12, "{:?}", r.stats);
        assert!((r.stats[1] - 1.0).abs() < 1e-12);
        assert_eq!(r.per_category.len(), 2);
        for c in &r.per_category {
            assert!((c.ap - 1.0).abs() < 1e-12, "{c:?}");
        }
        assert_eq!(r.per_category[1].name, "sprite");
    }

    #[test]
    fn dense_max_dets_count_beyond_100() {
        use crate::eval::{MaxDets, DENSE_MAX_DETS};
        // One image with 150 labels of one class, each found exactly: at 100 detections
        // per image recall stops at 100/150, at 300 every label is found.
        let labels: Vec<(BoxXyxy, usize)> = (0..150)
            .map(|i| {
                let x = (i % 15) as f64 * 20.0;
                let y = (i / 15) as f64 * 30.0;
                (BoxXyxy::new(x, y, x + 18.0, y + 28.0), 0)
            })
            .collect();
        let dets = labels
            .iter()
            .enumerate()
            .map(|(i, &(bbox, class_id))| Detection {
                bbox,
                score: 1.0 - i as f32 * 1e-3,
                class_id,
            })
            .collect();
        let images = vec![(labels, dets)];
        let coco = evaluate_images(&images, &names()).unwrap();
        assert!(
            (coco.stats[8] - 100.0 / 150.0).abs() < 1e-12,
            "{:?}",
            coco.stats
        );
        let dense = evaluate_images_with(&images, &names(), &Params::with_max_dets(DENSE_MAX_DETS))
            .unwrap();
        assert_eq!(dense.stats[8], 1.0);
        assert_eq!(dense.stats[0], 1.0);
        assert_eq!(dense.stat_names()[8], "AR300");
        assert!(dense.summary_text().contains("| maxDets=300 ] = 1.000"));
        assert_eq!(MaxDets::default().last(), 100);
    }

    #[test]
    fn no_detections_score_zero() {
        let r = evaluate_images(&labels(), &names()).unwrap();
        assert_eq!(r.stats[0], 0.0);
        assert!(r.per_category.iter().all(|c| c.ap == 0.0));
    }

    #[test]
    fn unknown_class_is_an_error() {
        use crate::eval::InputKind;
        // A label of class 2 (category 3) with only two names: the ground truth is refused.
        let images = vec![(vec![(BoxXyxy::new(0.0, 0.0, 5.0, 5.0), 2)], Vec::new())];
        let err = evaluate_images(&images, &names()).unwrap_err();
        assert!(
            matches!(
                &err,
                EvalError::InvalidRecord {
                    kind: InputKind::GroundTruth,
                    section: "annotations",
                    index: 0,
                    id: Some(1),
                    reason,
                } if reason == "category_id 3 is not among the categories"
            ),
            "{err}"
        );
        // A detection of class 9 (category 10): the detections are refused.
        let images = vec![(
            Vec::new(),
            vec![Detection {
                bbox: BoxXyxy::new(0.0, 0.0, 5.0, 5.0),
                score: 0.5,
                class_id: 9,
            }],
        )];
        let err = evaluate_images(&images, &names()).unwrap_err();
        assert!(
            matches!(
                &err,
                EvalError::InvalidRecord {
                    kind: InputKind::Detections,
                    section: "results",
                    index: 0,
                    id: None,
                    reason,
                } if reason == "category_id 10 is not a ground-truth category"
            ),
            "{err}"
        );
    }
}
