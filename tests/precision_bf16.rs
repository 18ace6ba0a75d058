//! `--precision bf16` against fp32 on `cola-sprite/val` with the shipped model: the COCO AP
//! and AP50 within 0.005 of fp32's, and the detections themselves close: at least 90 % of
//! the fp32 detections above score 0.3 found in bf16 with the same class at IoU ≥ 0.95 and
//! a score within 0.02. (Measured 2026-12-03: 63 of 66; the three others are NMS choosing
//! the other of two overlapping candidates whose scores bf16 reordered. AP 0.6628 vs
//! 0.6621.)
//!
//! Needs `../shared` (else `SKIP:`) and a CPU with AVX512-BF16; without it bf16 falls back
//! to fp32 with a note, which the test checks instead.

mod common;

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use common::{detlab, shared_dir, text};
use detlab::detector::precision::cpu_has_bf16;

fn s(p: &Path) -> String {
    p.to_str().expect("UTF-8 path").to_string()
}

fn run(args: &[&str]) -> std::process::Output {
    let o = detlab(args);
    assert!(o.status.success(), "detlab {args:?}: {}", text(&o));
    o
}

fn stats(o: &std::process::Output) -> Vec<f64> {
    let v: Value = serde_json::from_slice(&o.stdout).expect("eval JSON");
    v["stats"]
        .as_array()
        .expect("stats")
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// `(image_id, category_id)` → `[(x, y, w, h, score)]` of a COCO results file.
fn by_image(path: &Path) -> HashMap<(i64, i64), Vec<[f64; 5]>> {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut out: HashMap<(i64, i64), Vec<[f64; 5]>> = HashMap::new();
    for d in v.as_array().expect("a results list") {
        let b: Vec<f64> = d["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        out.entry((
            d["image_id"].as_i64().unwrap(),
            d["category_id"].as_i64().unwrap(),
        ))
        .or_default()
        .push([b[0], b[1], b[2], b[3], d["score"].as_f64().unwrap()]);
    }
    out
}

/// A bf16 detection matches an fp32 one at this IoU or more …
const MIN_IOU: f64 = 0.95;
/// … and a score this close.
const MAX_SCORE_CHANGE: f64 = 0.02;

fn iou(a: &[f64; 5], b: &[f64; 5]) -> f64 {
    let w = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let h = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    let inter = w.max(0.0) * h.max(0.0);
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

#[test]
fn bf16_detections_and_ap_stay_within_tolerance_of_fp32() {
    let Some(shared) = shared_dir() else { return };
    let d = shared.join("datasets/cola-sprite");
    let val = s(&d.join("val"));
    let tmp = tempfile::tempdir().unwrap();
    let gt = s(&common::export_coco_gt(
        &d.join("val"),
        &d.join("annotations"),
        &tmp.path().join("coco"),
    ));
    let predict = |precision: &str| {
        let out = tmp.path().join(format!("{precision}.json"));
        let o = run(&[
            "predict",
            "--images",
            &val,
            "--gt",
            &gt,
            "--out",
            &s(&out),
            "--threads",
            "1",
            "--device",
            "cpu",
            "--precision",
            precision,
        ]);
        let ap = stats(&run(&["eval", "--json", "--gt", &gt, "--dt", &s(&out)]));
        (out, ap, String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (fp32, ap32, _) = predict("fp32");
    let (bf16, ap16, note) = predict("bf16");
    if !cpu_has_bf16() {
        assert!(note.contains("AVX512-BF16"), "no fallback note: {note}");
        assert_eq!(ap16, ap32, "the fp32 fallback must be fp32");
        eprintln!("SKIP: this CPU has no AVX512-BF16; checked the fp32 fallback only");
        return;
    }
    for (i, name) in [(0, "AP"), (1, "AP50")] {
        assert!(
            (ap16[i] - ap32[i]).abs() <= 0.005,
            "{name}: bf16 {} vs fp32 {}",
            ap16[i],
            ap32[i]
        );
    }
    let (want, got) = (by_image(&fp32), by_image(&bf16));
    let (mut total, mut matched, mut worst_score) = (0usize, 0usize, 0.0f64);
    let mut misses = Vec::new();
    for (key, dets) in &want {
        for a in dets.iter().filter(|a| a[4] > 0.3) {
            total += 1;
            let best = got
                .get(key)
                .into_iter()
                .flatten()
                .max_by(|x, y| iou(a, x).total_cmp(&iou(a, y)));
            let (overlap, change) = best.map_or((0.0, 1.0), |b| (iou(a, b), (a[4] - b[4]).abs()));
            if overlap >= MIN_IOU && change <= MAX_SCORE_CHANGE {
                matched += 1;
                worst_score = worst_score.max(change);
            } else {
                misses.push(format!(
                    "score {:.3}: IoU {overlap:.3}, score change {change:.3}",
                    a[4]
                ));
            }
        }
    }
    assert!(total > 40, "only {total} fp32 detections above 0.3");
    assert!(
        matched as f64 >= 0.9 * total as f64,
        "{matched} of {total} fp32 detections found in bf16 (IoU ≥ {MIN_IOU}, score ± \
         {MAX_SCORE_CHANGE}); misses: {misses:?}"
    );
    eprintln!(
        "bf16 vs fp32 on cola-sprite/val: AP {:.4} vs {:.4}, AP50 {:.4} vs {:.4}; \
         {matched}/{total} detections matched, largest score change {worst_score:.4}",
        ap16[0], ap32[0], ap16[1], ap32[1]
    );
}
