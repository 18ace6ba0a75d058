//! Parity of `detlab::eval` with pycocotools 2.0.11: on the frozen vectors in
//! `../shared/coco-vectors/` (their expected numbers were produced by pycocotools, see that
//! folder's README), and against pycocotools run live from the project venv
//! (`tests/data/pycocotools_eval.py`) for settable parameters and the benchmark's synthetic
//! set; plus property tests on synthetic data.
//!
//! Without `../shared` or the venv these tests skip with a message; under `CI=true` they fail.

mod common;
mod pycocotools;

use detlab::eval::synthetic::{synthetic, SyntheticSpec};
use detlab::eval::{
    evaluate, load_detections, CocoGroundTruth, Detection, EvalResult, GtAnnotation, Params,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const TOL: f64 = 1e-12;

fn vectors_dir() -> Option<PathBuf> {
    common::shared_dir().map(|d| d.join("coco-vectors"))
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn precision_sha256(r: &EvalResult) -> String {
    let mut h = Sha256::new();
    for v in r.precision.as_slice() {
        h.update(v.to_le_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn evaluate_files(gt: &Path, dt: &Path) -> EvalResult {
    let gt = CocoGroundTruth::from_path(gt).unwrap_or_else(|e| panic!("{e}"));
    let dets = load_detections(dt).unwrap_or_else(|e| panic!("{e}"));
    evaluate(&gt, &dets, &Params::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// All 21 project cases: 12 stats and the whole recall array within 1e-12, per-category
/// AP/AR, and the precision array's SHA-256 (bit-exact).
#[test]
fn project_cases_match_pycocotools() {
    let Some(dir) = vectors_dir() else { return };
    let expected = read_json(&dir.join("expected.json"));
    let cases = expected["cases"].as_object().expect("cases");
    assert_eq!(cases.len(), 21, "expected.json should hold 21 cases");
    let mut failures = Vec::new();
    let (mut bit_exact_stats, mut sha_ok) = (0, 0);
    for (name, case) in cases {
        let r = evaluate_files(
            &dir.join(case["gt"].as_str().expect("gt")),
            &dir.join(case["dt"].as_str().expect("dt")),
        );
        let want = floats(&case["stats"]);
        let d = max_abs_diff(&r.stats, &want);
        if d > TOL {
            failures.push(format!(
                "{name}: stats differ by {d:e}: got {:?}, want {want:?}",
                r.stats
            ));
        }
        if r.stats.to_vec() == want {
            bit_exact_stats += 1;
        }
        let shape: Vec<usize> = case["recall_shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|x| x.as_u64().expect("dim") as usize)
            .collect();
        if r.recall.shape().to_vec() != shape {
            failures.push(format!(
                "{name}: recall shape {:?} != {shape:?}",
                r.recall.shape()
            ));
        } else {
            let d = max_abs_diff(r.recall.as_slice(), &floats(&case["recall"]));
            if d > TOL {
                failures.push(format!("{name}: recall differs by {d:e}"));
            }
        }
        for (cat, v) in case["per_category"].as_object().expect("per_category") {
            let id: i64 = cat.parse().expect("category id");
            let want = floats(v);
            match r.per_category.iter().find(|c| c.id == id) {
                Some(c) if (c.ap - want[0]).abs() <= TOL && (c.ar100 - want[1]).abs() <= TOL => {}
                other => failures.push(format!(
                    "{name}: category {id}: got {other:?}, want {want:?}"
                )),
            }
        }
        if precision_sha256(&r) == case["precision_sha256"].as_str().expect("sha") {
            sha_ok += 1;
        } else {
            failures.push(format!("{name}: precision SHA-256 differs"));
        }
    }
    eprintln!(
        "project cases: {}/{} pass; stats bit-exact {bit_exact_stats}; precision SHA-256 equal {sha_ok}",
        cases.len() - failures.len().min(cases.len()),
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Loads an upstream vector the way `upstream_expected.json` says: optionally casting
/// string image ids to integers and dropping detections below `min_score`.
fn load_upstream(dir: &Path, v: &Value) -> (CocoGroundTruth, Vec<Detection>) {
    let gt_path = dir.join(v["gt"].as_str().expect("gt"));
    let dt_path = dir.join(v["dt"].as_str().expect("dt"));
    let coerce = v["coerce_int_image_ids"].as_bool().unwrap_or(false);
    let gt = if coerce {
        let mut g = read_json(&gt_path);
        let to_int = |x: &mut Value| {
            if let Some(s) = x.as_str() {
                *x = Value::from(s.parse::<i64>().expect("numeric id"));
            }
        };
        for img in g["images"].as_array_mut().expect("images") {
            to_int(&mut img["id"]);
        }
        for ann in g["annotations"].as_array_mut().expect("annotations") {
            to_int(&mut ann["image_id"]);
        }
        let bytes = serde_json::to_vec(&g).expect("serialize");
        CocoGroundTruth::from_json_slice(&bytes).unwrap_or_else(|e| panic!("{e}"))
    } else {
        CocoGroundTruth::from_path(&gt_path).unwrap_or_else(|e| panic!("{e}"))
    };
    let mut dets = load_detections(&dt_path).unwrap_or_else(|e| panic!("{e}"));
    if let Some(min) = v["min_score"].as_f64() {
        dets.retain(|d| d.score >= min);
    }
    (gt, dets)
}

/// Every upstream vector: 12 stats and per-class AP within 1e-12 of pycocotools.
#[test]
fn upstream_vectors_match_pycocotools() {
    let Some(dir) = vectors_dir() else { return };
    let expected = read_json(&dir.join("upstream_expected.json"));
    let vectors = expected["vectors"].as_object().expect("vectors");
    assert!(vectors.len() >= 8, "expected at least 8 upstream vectors");
    let up = dir.join("upstream");
    let mut failures = Vec::new();
    for (name, v) in vectors {
        let (gt, dets) = load_upstream(&up, v);
        let r = evaluate(&gt, &dets, &Params::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = floats(&v["pycocotools_stats"]);
        let d = max_abs_diff(&r.stats, &want);
        if d > TOL {
            failures.push(format!(
                "{name}: stats differ by {d:e}: got {:?}, want {want:?}",
                r.stats
            ));
        }
        if let Some(per) = v["pycocotools_per_class_ap"].as_object() {
            for (cat, ap) in per {
                let id: i64 = cat.parse().expect("category id");
                let ap = ap.as_f64().expect("ap");
                match r.per_category.iter().find(|c| c.id == id) {
                    Some(c) if (c.ap - ap).abs() <= TOL => {}
                    other => {
                        failures.push(format!("{name}: category {id}: got {other:?}, want {ap}"))
                    }
                }
            }
        }
    }
    eprintln!(
        "upstream vectors: {} checked, {} failures",
        vectors.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The printed summary equals pycocotools' output byte for byte (captured from
/// pycocotools 2.0.11 on the cocoapi fake-results vector and the detectron2 vector).
#[test]
fn summary_text_matches_pycocotools_layout() {
    let Some(dir) = vectors_dir() else { return };
    let up = dir.join("upstream");
    let r = evaluate_files(
        &up.join("faster_coco_eval/instances_val2014_100.json"),
        &up.join("cocoapi/instances_val2014_fakebbox100_results.json"),
    );
    let want: String = [
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.505\n",
        " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.697\n",
        " Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ] = 0.573\n",
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 0.586\n",
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 0.519\n",
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = 0.501\n",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.387\n",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ] = 0.594\n",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.595\n",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 0.640\n",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 0.566\n",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = 0.564\n",
    ]
    .concat();
    assert_eq!(r.summary_text(), want);
    let r = evaluate_files(
        &up.join("detectron2_via_fce/gt.json"),
        &up.join("detectron2_via_fce/dt.json"),
    );
    let text = r.summary_text();
    assert!(
        text.contains(
            " Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.400\n"
        ),
        "{text}"
    );
}

/// Settable parameters against pycocotools, run live (`tests/data/pycocotools_eval.py` in
/// the venv) with the same parameters on `random_medium_ties`: pooled categories
/// (`useCats=0`), unsorted `maxDets` without 1/10, other IoU thresholds (no .75, so
/// AP75 = -1), other area ranges (no "medium", so APm = ARm = -1), and image / category
/// subsets. Each variant is set once as detlab `Params` and once as the `COCOeval.params`
/// fields pycocotools reads, side by side; the 12 stats and the recall array must agree to
/// 1e-12, the precision array bit for bit (SHA-256).
#[test]
fn custom_params_match_pycocotools() {
    use detlab::eval::AreaRange;
    use serde_json::json;
    let Some(dir) = vectors_dir() else { return };
    let gt_path = dir.join("cases/random_medium_ties.gt.json");
    let dt_path = dir.join("cases/random_medium_ties.dt.json");
    let gt = CocoGroundTruth::from_path(&gt_path).unwrap_or_else(|e| panic!("{e}"));
    let dets = load_detections(&dt_path).unwrap_or_else(|e| panic!("{e}"));
    let every_other_image: Vec<i64> = gt.sorted_image_ids().into_iter().step_by(2).collect();
    let all_but_first_category: Vec<i64> = gt.sorted_category_ids().into_iter().skip(1).collect();
    let mut variants: Vec<(&str, Params, Value)> = Vec::new();
    let p = Params::default();
    variants.push((
        "nocats",
        Params {
            use_cats: false,
            ..p.clone()
        },
        json!({"useCats": 0}),
    ));
    variants.push((
        "maxdets",
        Params {
            max_dets: vec![100, 5, 20],
            ..p.clone()
        },
        json!({"maxDets": [100, 5, 20]}),
    ));
    variants.push((
        "iou",
        Params {
            iou_thrs: vec![0.3, 0.5, 0.7],
            ..p.clone()
        },
        json!({"iouThrs": [0.3, 0.5, 0.7]}),
    ));
    variants.push((
        "area",
        Params {
            area_ranges: vec![
                AreaRange::new("all", 0.0, 1e10),
                AreaRange::new("small", 0.0, 2000.0),
                AreaRange::new("large", 2000.0, 1e10),
            ],
            ..p.clone()
        },
        json!({
            "areaRng": [[0.0, 1e10], [0.0, 2000.0], [2000.0, 1e10]],
            "areaRngLbl": ["all", "small", "large"],
        }),
    ));
    variants.push((
        "subset",
        Params {
            img_ids: Some(every_other_image.clone()),
            cat_ids: Some(all_but_first_category.clone()),
            ..p.clone()
        },
        json!({"imgIds": every_other_image, "catIds": all_but_first_category}),
    ));
    let python_params: Vec<Value> = variants.iter().map(|(_, _, v)| v.clone()).collect();
    let Some(reference) = pycocotools::evaluate(&gt_path, &dt_path, &python_params) else {
        return;
    };
    let mut failures = Vec::new();
    for ((variant, params, _), want) in variants.iter().zip(&reference.runs) {
        let r = evaluate(&gt, &dets, params).unwrap_or_else(|e| panic!("{variant}: {e}"));
        let d = max_abs_diff(&r.stats, &want.stats);
        if d > TOL {
            failures.push(format!(
                "{variant}: stats differ by {d:e}: got {:?}, pycocotools {:?}",
                r.stats, want.stats
            ));
        }
        if r.recall.shape().to_vec() != want.recall_shape {
            failures.push(format!(
                "{variant}: recall shape {:?}, pycocotools {:?}",
                r.recall.shape(),
                want.recall_shape
            ));
        } else {
            let d = max_abs_diff(r.recall.as_slice(), &want.recall);
            if d > TOL {
                failures.push(format!("{variant}: recall differs by {d:e}"));
            }
        }
        if precision_sha256(&r) != want.precision_sha256 {
            failures.push(format!("{variant}: precision SHA-256 differs"));
        }
    }
    eprintln!(
        "custom parameters: {} variants against pycocotools {}, {} failures",
        variants.len(),
        reference.pycocotools,
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The bit-identity half of `benches/eval.rs` (which times detlab against pycocotools on
/// the 5,000-image synthetic set), at a tenth of its size so that it runs with the tests:
/// the same generator and seed (ties included: scores have 3 decimals), written to JSON and
/// read back as the benchmark does, then the 12 stats and the whole recall array compared
/// bit for bit with pycocotools run live, the precision array by SHA-256, and per-category
/// AP / AR to 1e-12 (numpy's mean may sum in another order).
#[test]
fn synthetic_benchmark_set_is_bit_identical_to_pycocotools() {
    let spec = SyntheticSpec {
        n_images: 500,
        n_gt: 5_000,
        n_dets: 10_000,
        ..SyntheticSpec::default()
    };
    let (gt, dets) = synthetic(&spec);
    let tmp = tempfile::tempdir().expect("tempdir");
    let gt_path = tmp.path().join("gt.json");
    let dt_path = tmp.path().join("dt.json");
    std::fs::write(&gt_path, gt.to_json()).expect("write gt");
    std::fs::write(&dt_path, detlab::eval::detections_to_json(&dets)).expect("write dt");
    let Some(reference) = pycocotools::evaluate(&gt_path, &dt_path, &[]) else {
        return;
    };
    let want = &reference.runs[0];
    let r = evaluate_files(&gt_path, &dt_path);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&r.stats),
        bits(&want.stats),
        "12 stats not bit-identical to pycocotools {}: detlab {:?}, pycocotools {:?}",
        reference.pycocotools,
        r.stats,
        want.stats
    );
    assert_eq!(r.recall.shape().to_vec(), want.recall_shape);
    assert!(
        bits(r.recall.as_slice()) == bits(&want.recall),
        "recall not bit-identical; max |diff| {:e}",
        max_abs_diff(r.recall.as_slice(), &want.recall)
    );
    assert_eq!(
        precision_sha256(&r),
        want.precision_sha256,
        "precision array not bit-identical"
    );
    assert_eq!(r.per_category.len(), want.per_category.len());
    for c in &r.per_category {
        let [ap, ar] = want.per_category[&c.id];
        assert!(
            (c.ap - ap).abs() <= TOL && (c.ar100 - ar).abs() <= TOL,
            "category {}: detlab {c:?}, pycocotools AP {ap} AR {ar}",
            c.id
        );
    }
}

fn small_spec(seed: u64) -> SyntheticSpec {
    SyntheticSpec {
        n_images: 150,
        n_gt: 1_200,
        n_dets: 2_500,
        n_classes: 6,
        seed,
    }
}

fn assert_same(a: &EvalResult, b: &EvalResult, what: &str) {
    assert_eq!(a.stats, b.stats, "{what}: stats");
    assert_eq!(a.precision, b.precision, "{what}: precision");
    assert_eq!(a.recall, b.recall, "{what}: recall");
}

/// A tiny deterministic shuffler for the property tests.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// Reorders `items` randomly across images while keeping each image's own relative order:
/// pycocotools' results depend only on the order within an image.
fn interleave<T: Clone>(items: &[T], image_of: impl Fn(&T) -> i64, rng: &mut Lcg) -> Vec<T> {
    use std::collections::BTreeMap;
    let mut per_image: BTreeMap<i64, std::collections::VecDeque<T>> = BTreeMap::new();
    for it in items {
        per_image
            .entry(image_of(it))
            .or_default()
            .push_back(it.clone());
    }
    let mut slots: Vec<i64> = items.iter().map(&image_of).collect();
    rng.shuffle(&mut slots);
    slots
        .into_iter()
        .map(|img| {
            per_image
                .get_mut(&img)
                .and_then(|q| q.pop_front())
                .expect("one item per slot")
        })
        .collect()
}

/// Ground truth scored as its own detections gives AP = AR = 1 wherever defined
/// (up to the single-TP precision `1/(1+eps)`).
#[test]
fn ground_truth_as_detections_scores_one() {
    let (gt, _) = synthetic(&small_spec(11));
    let dets: Vec<Detection> = gt
        .annotations()
        .iter()
        .filter(|a| !a.iscrowd)
        .enumerate()
        .map(|(i, a)| Detection {
            image_id: a.image_id,
            category_id: a.category_id,
            bbox: a.bbox,
            score: 1.0 - i as f64 * 1e-6,
        })
        .collect();
    let r = evaluate(&gt, &dets, &Params::default()).expect("evaluate");
    let one = |x: f64| x == -1.0 || (x - 1.0).abs() <= 2.0 * f64::EPSILON;
    for (i, &s) in r.stats.iter().enumerate() {
        // AR@1 and AR@10 are capped by images with several boxes of one class.
        if i == 6 || i == 7 {
            assert!(s > 0.0 && s <= 1.0, "stat {i} = {s}");
        } else {
            assert!(one(s), "stat {i} = {s}");
        }
    }
    for c in &r.per_category {
        assert!(one(c.ap) && one(c.ap50) && one(c.ar100), "{c:?}");
    }
}

/// Reordering the images list, and interleaving annotations and detections across images
/// (each image's own order kept), changes nothing, bit for bit.
#[test]
fn image_order_in_files_does_not_matter() {
    let (gt, dets) = synthetic(&small_spec(5));
    let base = evaluate(&gt, &dets, &Params::default()).expect("evaluate");
    let mut rng = Lcg(99);
    for round in 0..3 {
        let mut images = gt.images().to_vec();
        rng.shuffle(&mut images);
        let anns: Vec<GtAnnotation> = interleave(gt.annotations(), |a| a.image_id, &mut rng);
        let gt2 = CocoGroundTruth::new(images, gt.categories().to_vec(), anns).expect("valid");
        let dets2 = interleave(&dets, |d| d.image_id, &mut rng);
        let r = evaluate(&gt2, &dets2, &Params::default()).expect("evaluate");
        assert_same(&base, &r, &format!("round {round}"));
    }
}

/// With all scores distinct, any order of the detections gives the same result.
#[test]
fn detection_order_does_not_matter_without_ties() {
    let (gt, mut dets) = synthetic(&small_spec(8));
    for (i, d) in dets.iter_mut().enumerate() {
        d.score = 0.5 + i as f64 * 1e-7;
    }
    let base = evaluate(&gt, &dets, &Params::default()).expect("evaluate");
    let mut rng = Lcg(3);
    rng.shuffle(&mut dets);
    let r = evaluate(&gt, &dets, &Params::default()).expect("evaluate");
    assert_same(&base, &r, "shuffled detections");
}

/// No detections is valid: 0 wherever there is GT, -1 elsewhere.
#[test]
fn empty_results_give_zeros() {
    let (gt, _) = synthetic(&small_spec(2));
    let r = evaluate(&gt, &[], &Params::default()).expect("evaluate");
    assert!(
        r.stats.iter().all(|&s| s == 0.0 || s == -1.0),
        "{:?}",
        r.stats
    );
    assert_eq!(r.stats[0], 0.0);
    assert!(r.per_category.iter().all(|c| c.ap == 0.0));
}

/// Settable parameters: a single IoU threshold of 0.5 reproduces AP50 as AP.
#[test]
fn custom_iou_thresholds() {
    let (gt, dets) = synthetic(&small_spec(4));
    let base = evaluate(&gt, &dets, &Params::default()).expect("evaluate");
    let p = Params {
        iou_thrs: vec![0.5],
        ..Params::default()
    };
    let r = evaluate(&gt, &dets, &p).expect("evaluate");
    assert_eq!(r.stats[0], base.stats[1]);
    assert_eq!(r.stats[1], base.stats[1]);
    assert_eq!(r.stats[2], -1.0, "0.75 is not a threshold");
    assert!(r.summary_text().contains("IoU=0.50:0.50"));
}

/// `detlab eval` prints the pycocotools summary, `--json` the same stats, and bad input
/// fails with a message naming the record.
#[test]
fn cli_eval_prints_summary_json_and_errors() {
    use std::process::Command;
    let Some(dir) = vectors_dir() else { return };
    let gt = dir.join("upstream/detectron2_via_fce/gt.json");
    let dt = dir.join("upstream/detectron2_via_fce/dt.json");
    let want = evaluate_files(&gt, &dt);
    let bin = env!("CARGO_BIN_EXE_detlab-torch");

    let out = Command::new(bin)
        .args(["eval", "--gt"])
        .arg(&gt)
        .arg("--dt")
        .arg(&dt)
        .output()
        .expect("run detlab");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want.summary_text());

    let out = Command::new(bin)
        .args(["eval", "--json", "--gt"])
        .arg(&gt)
        .arg("--dt")
        .arg(&dt)
        .output()
        .expect("run detlab");
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(floats(&v["stats"]), want.stats.to_vec());
    assert_eq!(v["per_category"]["1"]["ap"].as_f64(), Some(want.stats[0]));

    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = tmp.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"image_id": 285, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.9},
            {"image_id": 285, "category_id": 1, "bbox": [0, 0, -5, 5], "score": 0.8}]"#,
    )
    .expect("write");
    let out = Command::new(bin)
        .args(["eval", "--gt"])
        .arg(&gt)
        .arg("--dt")
        .arg(&bad)
        .output()
        .expect("run detlab");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("results[1]") && err.contains("negative"),
        "{err}"
    );
}

/// The frozen dense-shelf vectors (`tests/pycocotools/dense/`, written with their
/// pycocotools answers by `tests/pycocotools/make_dense_vectors.py`).
fn dense_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pycocotools/dense")
}

/// detlab `Params` for a pycocotools parameter-override object (`maxDets`, `useCats`).
fn params_of(overrides: &Value) -> Params {
    let mut p = Params::default();
    if let Some(m) = overrides["maxDets"].as_array() {
        p.max_dets = m
            .iter()
            .map(|x| x.as_u64().expect("maxDets") as usize)
            .collect();
    }
    if let Some(u) = overrides["useCats"].as_i64() {
        p.use_cats = u != 0;
    }
    p
}

/// Compares one detlab result with one pycocotools run: the recall array, stats[1..12]
/// and per-category numbers within 1e-12, the precision array bit for bit (SHA-256), and
/// the printed summary byte for byte. stats[0] and its line are pycocotools' own when
/// maxDets holds 100; otherwise (where pycocotools prints `maxDets=100 ] = -1.000`) they are
/// pycocotools' AP at the third maxDets, labelled with that maxDets.
fn compare_run(name: &str, r: &EvalResult, want: &pycocotools::Run, failures: &mut Vec<String>) {
    let md = &r.params.max_dets;
    let literal = md.contains(&100);
    let third = want.ap_at_third_max_dets.expect("three maxDets");
    let want0 = if literal { want.stats[0] } else { third };
    if !literal {
        assert_eq!(
            want.stats[0], -1.0,
            "{name}: pycocotools' AP without a 100 column"
        );
    }
    if (r.stats[0] - want0).abs() > TOL {
        failures.push(format!("{name}: AP {} != {want0}", r.stats[0]));
    }
    let d = max_abs_diff(&r.stats[1..], &want.stats[1..]);
    if d > TOL {
        failures.push(format!(
            "{name}: stats differ by {d:e}: got {:?}, pycocotools {:?}",
            r.stats, want.stats
        ));
    }
    if r.recall.shape().to_vec() != want.recall_shape {
        failures.push(format!("{name}: recall shape {:?}", r.recall.shape()));
    } else if max_abs_diff(r.recall.as_slice(), &want.recall) > TOL {
        failures.push(format!("{name}: recall differs"));
    }
    if precision_sha256(r) != want.precision_sha256 {
        failures.push(format!("{name}: precision SHA-256 differs"));
    }
    for c in &r.per_category {
        match want.per_category.get(&c.id) {
            Some([ap, ar]) if (c.ap - ap).abs() <= TOL && (c.ar100 - ar).abs() <= TOL => {}
            None if !r.params.use_cats => {}
            other => failures.push(format!("{name}: category {}: {c:?} vs {other:?}", c.id)),
        }
    }
    let mut want_text = want.summary.clone();
    if !literal {
        want_text = want_text.replacen(
            "maxDets=100 ] = -1.000",
            &format!("maxDets={:>3} ] = {third:.3}", md[2]),
            1,
        );
    }
    if r.summary_text() != want_text {
        failures.push(format!(
            "{name}: summary differs:\n{}\npycocotools (first line adjusted):\n{want_text}",
            r.summary_text()
        ));
    }
}

/// Dense shelves (up to 392 detections and 380 GT boxes on one image, two single-class
/// images) under seven maxDets settings, against the frozen pycocotools 2.0.11 answers:
/// the default, 1,10,300, 1,10,400, 5,50,250, 10,100,1000, an unsorted 300,1,10, and
/// 1,10,300 with pooled categories.
#[test]
fn dense_vectors_match_pycocotools_for_any_max_dets() {
    let dir = dense_dir();
    let expected = read_json(&dir.join("expected.json"));
    let gt = CocoGroundTruth::from_path(&dir.join(expected["gt"].as_str().expect("gt")))
        .unwrap_or_else(|e| panic!("{e}"));
    let dets = load_detections(&dir.join(expected["dt"].as_str().expect("dt")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(expected["max_dt_per_image"].as_u64() > Some(300));
    assert!(gt.max_annotations_per_image() > 300);
    let runs = expected["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 7);
    let mut failures = Vec::new();
    for run in runs {
        let params = params_of(&run["params"]);
        let name = run["params"].to_string();
        let r = evaluate(&gt, &dets, &params).unwrap_or_else(|e| panic!("{name}: {e}"));
        compare_run(&name, &r, &pycocotools::run_of(run), &mut failures);
    }
    // Counting beyond 100 detections raises recall on these shelves.
    let at = |m: [usize; 3]| {
        evaluate(&gt, &dets, &Params::with_max_dets(detlab::eval::MaxDets(m)))
            .expect("evaluate")
            .stats
    };
    assert!(at([1, 10, 300])[8] > at([1, 10, 100])[8]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Live pycocotools on a dense single-class synthetic set (400 detections on each image,
/// 250 GT): maxDets 1,10,300, 10,100,400 and the default.
#[test]
fn dense_synthetic_max_dets_match_live_pycocotools() {
    use serde_json::json;
    let spec = SyntheticSpec {
        n_images: 8,
        n_gt: 2_000,
        n_dets: 3_200,
        n_classes: 1,
        seed: 77,
    };
    let (gt, dets) = synthetic(&spec);
    let mut per_image = std::collections::HashMap::<i64, usize>::new();
    for d in &dets {
        *per_image.entry(d.image_id).or_default() += 1;
    }
    assert!(per_image.values().any(|&n| n > 300), "{per_image:?}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let gt_path = tmp.path().join("gt.json");
    let dt_path = tmp.path().join("dt.json");
    std::fs::write(&gt_path, gt.to_json()).expect("write gt");
    std::fs::write(&dt_path, detlab::eval::detections_to_json(&dets)).expect("write dt");
    let sets = [
        json!({"maxDets": [1, 10, 300]}),
        json!({"maxDets": [10, 100, 400]}),
        json!({}),
    ];
    let Some(reference) = pycocotools::evaluate(&gt_path, &dt_path, &sets) else {
        return;
    };
    let gt = CocoGroundTruth::from_path(&gt_path).expect("gt");
    let dets = load_detections(&dt_path).expect("dt");
    let mut failures = Vec::new();
    for (set, want) in sets.iter().zip(&reference.runs) {
        let r = evaluate(&gt, &dets, &params_of(set)).expect("evaluate");
        compare_run(&set.to_string(), &r, want, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `detlab eval --max-dets 1,10,300` prints the summary with `maxDets=300` labels and
/// pycocotools' numbers, `--json` names the maxDets and `AR300`; a dense GT without the
/// flag keeps the default and says how to count more; a bad list is refused.
#[test]
fn cli_eval_max_dets() {
    use std::process::Command;
    let dir = dense_dir();
    let (gt, dt) = (
        dir.join("dense_shelves.gt.json"),
        dir.join("dense_shelves.dt.json"),
    );
    let bin = env!("CARGO_BIN_EXE_detlab-torch");
    let run = |extra: &[&str]| {
        Command::new(bin)
            .args(["eval", "--gt"])
            .arg(&gt)
            .arg("--dt")
            .arg(&dt)
            .args(extra)
            .output()
            .expect("run detlab")
    };
    let dense = {
        let g = CocoGroundTruth::from_path(&gt).expect("gt");
        let d = load_detections(&dt).expect("dt");
        evaluate(&g, &d, &Params::with_max_dets(detlab::eval::DENSE_MAX_DETS)).expect("eval")
    };
    let out = run(&["--max-dets", "1,10,300"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, dense.summary_text());
    assert!(text.starts_with(
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=300 ] = 0.463\n"
    ));
    let out = run(&["--json", "--max-dets", "1,10,300"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(floats(&v["stats"]), dense.stats.to_vec());
    assert_eq!(v["max_dets"], serde_json::json!([1, 10, 300]));
    assert_eq!(v["stat_names"][8], "AR300");
    let out = run(&[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("maxDets=100 ] = 0.428"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--max-dets 1,10,300"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for bad in ["1,10", "10,1,300", "1,10,x"] {
        let out = run(&["--max-dets", bad]);
        assert!(!out.status.success(), "--max-dets {bad} was accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("increasing"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
