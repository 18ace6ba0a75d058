//! COCO bounding-box evaluation, numerically identical to pycocotools' COCOeval.
//!
//! ```no_run
//! use detlab::eval::{evaluate, load_detections, CocoGroundTruth, Params};
//! # fn main() -> Result<(), detlab::eval::EvalError> {
//! let gt = CocoGroundTruth::from_path("instances_val.json".as_ref())?;
//! let dets = load_detections("results.json".as_ref())?;
//! let result = evaluate(&gt, &dets, &Params::default())?;
//! print!("{}", result.summary_text());
//! # Ok(()) }
//! ```
//!
//! The pipeline follows COCOeval: [`evaluate`] indexes and orders the inputs
//! (`evaluate.rs`), matches detections to GT per image and category (`evaluate.rs`, with
//! `iou.rs`), accumulates precision/recall (`accumulate.rs`) and summarizes
//! (`summary.rs`). Every pycocotools quirk that changes a number is reproduced; see the
//! module docs of each step and `../shared/reference/performance-and-coco-eval.md` §1.1.
//! Work runs on rayon's pool, in parallel over (image, category) cells and then over
//! (category, area range).

mod accumulate;
mod data;
mod error;
mod evaluate;
mod idmap;
mod images;
mod iou;
mod json;
mod params;
mod result;
mod summary;
pub mod synthetic;

pub use data::{
    retain_known_categories, validate_detections, CocoGroundTruth, Detection, GtAnnotation,
    GtCategory, GtImage,
};
pub use error::{EvalError, InputKind};
pub use images::{evaluate_images, evaluate_images_with, LabelledImage};
pub use iou::bbox_iou;
pub use json::{detections_from_json_slice, detections_to_json, load_detections};
pub use params::{
    linspace, AreaRange, MaxDets, Params, COCO_MAX_DETS, DENSE_BOXES_PER_IMAGE, DENSE_MAX_DETS,
};
pub use result::{CategoryResult, EvalResult, NdArray, STAT_NAMES};
pub use summary::{numpy_mean_or_minus_one, numpy_sum};

/// Evaluates `dets` against `gt` with `params`, as `COCOeval(gt, gt.loadRes(dets), "bbox")`
/// followed by `evaluate()`, `accumulate()` and `summarize()`.
///
/// Detections get ids 1..N in slice order, area `w * h` and `iscrowd = 0`, as `loadRes` gives
/// them; slice order breaks score ties within an image. An empty slice is valid (AP 0 for
/// every category with GT), where pycocotools' `loadRes` would crash.
///
/// # Errors
/// [`EvalError::InvalidParams`] for parameters COCOeval cannot run with, and
/// [`EvalError::InvalidRecord`] for detections [`validate_detections`] rejects.
pub fn evaluate(
    gt: &CocoGroundTruth,
    dets: &[Detection],
    params: &Params,
) -> Result<EvalResult, EvalError> {
    params.validate()?;
    validate_detections(gt, dets)?;
    if u32::try_from(dets.len()).is_err() || u32::try_from(gt.annotations().len()).is_err() {
        return Err(EvalError::InvalidParams(
            "more than 2^32 - 1 detections or annotations".into(),
        ));
    }
    let prep = evaluate::prepare(gt, dets, params);
    let matched = evaluate::match_all(&prep, gt, dets, params);
    let acc = accumulate::accumulate(&prep, &matched, params);

    let resolved = Params {
        img_ids: Some(prep.img_ids.clone()),
        cat_ids: Some(prep.cat_ids.clone()),
        max_dets: prep.max_dets.clone(),
        ..params.clone()
    };
    let shape = [
        params.iou_thrs.len(),
        params.rec_thrs.len(),
        prep.n_groups,
        params.area_ranges.len(),
        prep.max_dets.len(),
    ];
    let arrays = summary::Arrays {
        precision: &acc.precision,
        recall: &acc.recall,
        shape,
    };
    let stats = summary::stats(&arrays, &resolved, &prep.max_dets);
    let per_category = (0..prep.n_groups)
        .map(|k| {
            let (id, name) = if params.use_cats {
                let id = prep.cat_ids[k];
                let name = gt.category(id).map(|c| c.name.clone()).unwrap_or_default();
                (id, name)
            } else {
                (-1, "all".to_string())
            };
            let (ap, ap50, ar100) = summary::per_category(&arrays, &resolved, k);
            CategoryResult {
                id,
                name,
                ap,
                ap50,
                ar100,
            }
        })
        .collect();
    let [n_t, _, n_k, n_a, n_m] = shape;
    Ok(EvalResult {
        params: resolved,
        stats,
        per_category,
        precision: NdArray::from_parts(shape, acc.precision),
        recall: NdArray::from_parts([n_t, n_k, n_a, n_m], acc.recall),
    })
}
