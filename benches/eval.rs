//! COCO bbox evaluation benchmark: detlab's evaluator against pycocotools on the same
//! synthetic set (5,000 images, 50,000 GT, 100,000 detections, 10 classes by default),
//! in one run.
//!
//! `cargo bench --bench eval` (release). pycocotools runs from `$DETLAB_PYTHON` (the
//! project venv) when set, else `python3`; set `DETLAB_BENCH_NO_PYTHON=1` to skip it.
//! Prints both times, the ratio, and whether the 12 stats are bit-identical; exits with an
//! error when they are not. The bit-identity itself is a test that runs with the others, at
//! a tenth of this size: `synthetic_benchmark_set_is_bit_identical_to_pycocotools` in
//! `tests/eval_parity.rs` (which also compares the recall and precision arrays).

use detlab::eval::synthetic::{synthetic, SyntheticSpec};
use detlab::eval::{
    detections_to_json, evaluate, load_detections, CocoGroundTruth, Params, STAT_NAMES,
};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const PYCOCOTOOLS: &str = r#"
import io, contextlib, json, sys, time
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
gt_path, dt_path = sys.argv[1], sys.argv[2]
t = {}
t0 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(gt_path); t['load_gt'] = time.perf_counter() - t0
    t1 = time.perf_counter(); dt = gt.loadRes(dt_path); t['load_res'] = time.perf_counter() - t1
    e = COCOeval(gt, dt, 'bbox')
    t1 = time.perf_counter(); e.evaluate(); t['evaluate'] = time.perf_counter() - t1
    t1 = time.perf_counter(); e.accumulate(); t['accumulate'] = time.perf_counter() - t1
    e.summarize()
t['total'] = time.perf_counter() - t0
print(json.dumps({'times': t, 'stats': [float(s) for s in e.stats]}))
"#;

/// `(median, min)` of the timings.
fn median_min(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = SyntheticSpec::default();
    let t = Instant::now();
    let (gt, dets) = synthetic(&spec);
    println!(
        "synthetic set: {} images, {} GT, {} detections, {} classes (seed {}), generated in {:.2} s",
        spec.n_images,
        spec.n_gt,
        spec.n_dets,
        spec.n_classes,
        spec.seed,
        t.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir()?;
    let gt_path = dir.path().join("gt.json");
    let dt_path = dir.path().join("dt.json");
    std::fs::write(&gt_path, gt.to_json())?;
    std::fs::write(&dt_path, detections_to_json(&dets))?;
    println!(
        "JSON: GT {:.1} MB, detections {:.1} MB",
        std::fs::metadata(&gt_path)?.len() as f64 / 1e6,
        std::fs::metadata(&dt_path)?.len() as f64 / 1e6
    );

    // detlab: end to end (parse both files + evaluate), and evaluate alone.
    let threads = rayon::current_num_threads();
    let (mut total, mut eval_only, mut load) = (Vec::new(), Vec::new(), Vec::new());
    let mut ours = None;
    for _ in 0..5 {
        let t0 = Instant::now();
        let g = CocoGroundTruth::from_path(&gt_path)?;
        let d = load_detections(&dt_path)?;
        let t1 = Instant::now();
        let r = evaluate(&g, &d, &Params::default())?;
        let t2 = Instant::now();
        load.push((t1 - t0).as_secs_f64());
        eval_only.push((t2 - t1).as_secs_f64());
        total.push((t2 - t0).as_secs_f64());
        ours = Some(r);
    }
    let ours = ours.ok_or("no run")?;
    let ((load_med, load_min), (eval_med, eval_min)) = (median_min(load), median_min(eval_only));
    let (ours_total, total_min) = median_min(total);
    println!(
        "detlab ({threads} threads), 5 runs, median (min): load JSON {load_med:.3} ({load_min:.3}) s \
         + evaluate {eval_med:.3} ({eval_min:.3}) s = {ours_total:.3} ({total_min:.3}) s"
    );
    print!("{}", ours.summary_text());

    if std::env::var_os("DETLAB_BENCH_NO_PYTHON").is_some() {
        return Ok(());
    }
    let python = std::env::var("DETLAB_PYTHON").unwrap_or_else(|_| "python3".into());
    match run_pycocotools(&python, &gt_path, &dt_path) {
        Ok((times, stats)) => {
            let py_total = times["total"].as_f64().unwrap_or(f64::NAN);
            println!("pycocotools ({python}): {times}");
            println!(
                "pycocotools {py_total:.2} s vs detlab {ours_total:.3} s: {:.0}x faster",
                py_total / ours_total
            );
            let identical = stats.len() == 12
                && stats
                    .iter()
                    .zip(ours.stats.iter())
                    .all(|(a, b)| a.to_bits() == b.to_bits());
            let max_diff = stats
                .iter()
                .zip(ours.stats.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            println!("12 stats bit-identical: {identical} (max abs diff {max_diff:e})");
            if !identical {
                for ((name, a), b) in STAT_NAMES.iter().zip(&stats).zip(&ours.stats) {
                    println!("  {name:>5}: pycocotools {a:?}  detlab {b:?}");
                }
                return Err("the 12 stats differ from pycocotools".into());
            }
        }
        Err(e) => println!("pycocotools not run: {e}"),
    }
    Ok(())
}

type PyResult = (serde_json::Value, Vec<f64>);

fn run_pycocotools(python: &str, gt: &Path, dt: &Path) -> Result<PyResult, String> {
    let out = Command::new(python)
        .arg("-c")
        .arg(PYCOCOTOOLS)
        .arg(gt)
        .arg(dt)
        .output()
        .map_err(|e| format!("cannot start {python}: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("bad output: {e}"))?;
    let stats = v["stats"]
        .as_array()
        .ok_or("no stats")?
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    Ok((v["times"].clone(), stats))
}
