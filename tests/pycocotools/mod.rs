//! pycocotools as a live reference: `tests/data/pycocotools_eval.py` run with the project
//! venv's Python (`$DETLAB_PYTHON`) on a ground-truth file and a results file, so that
//! the numbers detlab is compared with come from pycocotools in the same run, not from a
//! frozen copy.
//!
//! A missing venv, or a venv without pycocotools / numpy, is reported through
//! [`crate::common::missing`] (a failure under `CI=true`, a `SKIP:` elsewhere); any other
//! failure of the script fails the test with its stderr.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The generator of every pycocotools number these tests compare with.
pub const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/pycocotools_eval.py"
);

/// One `COCOeval` run (one parameter set).
#[derive(Clone, Debug)]
pub struct Run {
    pub stats: Vec<f64>,
    pub recall_shape: Vec<usize>,
    /// `eval["recall"]`, flat, C order.
    pub recall: Vec<f64>,
    /// SHA-256 of `eval["precision"]` as little-endian float64, C order.
    pub precision_sha256: String,
    /// Category id → `[AP, AR@100]` (empty with `useCats = 0`).
    pub per_category: BTreeMap<i64, [f64; 2]>,
    /// The 12 lines `summarize()` printed.
    pub summary: String,
    /// pycocotools' `_summarize(1, maxDets=maxDets[2])`: AP at the third maxDets (what
    /// detlab reports as stats[0] when maxDets lacks 100); `None` with fewer than three.
    pub ap_at_third_max_dets: Option<f64>,
}

/// What the script printed: the versions it ran with and one [`Run`] per parameter set.
#[derive(Clone, Debug)]
pub struct Reference {
    pub pycocotools: String,
    pub runs: Vec<Run>,
}

fn floats(v: &Value, what: &str) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("pycocotools output: {what} is not a list"))
        .iter()
        .map(|x| {
            x.as_f64()
                .unwrap_or_else(|| panic!("pycocotools output: {what} holds {x}"))
        })
        .collect()
}

/// One run as `tests/data/pycocotools_eval.py` prints it (also the frozen runs of
/// `tests/pycocotools/dense/expected.json`).
pub fn run_of(v: &Value) -> Run {
    Run {
        stats: floats(&v["stats"], "stats"),
        recall_shape: floats(&v["recall_shape"], "recall_shape")
            .into_iter()
            .map(|x| x as usize)
            .collect(),
        recall: floats(&v["recall"], "recall"),
        precision_sha256: v["precision_sha256"]
            .as_str()
            .expect("pycocotools output: precision_sha256")
            .to_string(),
        per_category: v["per_category"]
            .as_object()
            .expect("pycocotools output: per_category")
            .iter()
            .map(|(k, x)| {
                let f = floats(x, "per_category");
                (k.parse().expect("category id"), [f[0], f[1]])
            })
            .collect(),
        summary: v["summary"].as_str().unwrap_or_default().to_string(),
        ap_at_third_max_dets: v["ap_at_third_max_dets"].as_f64(),
    }
}

/// Runs pycocotools' bbox `COCOeval` on `gt` and `dt` once per entry of `params` (each a
/// JSON object of `COCOeval.params` overrides; an empty slice means the defaults once).
/// `None` after reporting a missing venv or pycocotools (see the module doc).
#[track_caller]
pub fn evaluate(gt: &Path, dt: &Path, params: &[Value]) -> Option<Reference> {
    let python = crate::common::venv_python()?;
    let mut cmd = Command::new(&python);
    cmd.arg(SCRIPT).arg(gt).arg(dt);
    if !params.is_empty() {
        cmd.arg(Value::from(params.to_vec()).to_string());
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        for module in ["pycocotools", "numpy"] {
            if stderr.contains(&format!("No module named '{module}'")) {
                crate::common::missing(format!(
                    "{} has no {module} (the project venv installs it)",
                    python.display()
                ));
                return None;
            }
        }
        panic!(
            "{} {SCRIPT} failed ({}):\n{stderr}\n{}",
            python.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{SCRIPT}: unreadable output ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let runs: Vec<Run> = v["runs"]
        .as_array()
        .expect("pycocotools output: runs")
        .iter()
        .map(run_of)
        .collect();
    assert_eq!(runs.len(), params.len().max(1), "one run per parameter set");
    Some(Reference {
        pycocotools: v["pycocotools"].as_str().unwrap_or("?").to_string(),
        runs,
    })
}

/// The largest `|a - b|`; panics on different lengths.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
