//! Review re-filtering: how long the score/IoU sliders take on 20,000 cached candidates
//! (`Candidates::select` + `to_original`), and how long one cache file takes to load.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{time, Report};
use detlab::detector::maths::box_coding::XyxyF32;
use detlab::detector::maths::letterbox::Letterbox;
use detlab::detector::maths::postprocess::{to_original, Candidates, SelectConfig, ShapeError};
use detlab::review::{CachedPrediction, CandidateCache, ImageStamp, ModelId};

/// Candidates per image in the benchmark.
pub const CANDIDATES: usize = 20_000;
/// Object centres of the "few objects" rows (the cap of 100 is never reached).
const FEW_CENTRES: usize = 10;
/// Timed runs per setting (the median is reported).
pub const RUNS: usize = 50;
const INPUT: f32 = 512.0;

/// `n` deterministic candidates on the image part of a 512 input (`letterbox`), 2 classes:
/// 400 object centres with jittered boxes around each (so NMS has real work), scores
/// uniform in (0.01, 1), sorted.
pub fn synthetic_candidates(n: usize, letterbox: &Letterbox) -> Result<Candidates, ShapeError> {
    candidates_around(n, 400, letterbox)
}

/// As [`synthetic_candidates`], around `centres` object centres.
fn candidates_around(
    n: usize,
    centres: usize,
    letterbox: &Letterbox,
) -> Result<Candidates, ShapeError> {
    let (rw, rh) = (
        letterbox.resized_width as f32,
        letterbox.resized_height as f32,
    );
    let mut rng = ChaCha8Rng::seed_from_u64(0x5EED);
    let centres: Vec<(f32, f32, f32, f32)> = (0..centres)
        .map(|_| {
            (
                rng.random_range(20.0..rw - 20.0),
                rng.random_range(20.0..rh - 20.0),
                rng.random_range(12.0..60.0),
                rng.random_range(20.0..120.0),
            )
        })
        .collect();
    let mut rows: Vec<(f32, XyxyF32, u32)> = (0..n)
        .map(|_| {
            let (cx, cy, w, h) = centres[rng.random_range(0..centres.len())];
            let j = |rng: &mut ChaCha8Rng, s: f32| rng.random_range(-0.15..0.15) * s;
            let (cx, cy) = (cx + j(&mut rng, w), cy + j(&mut rng, h));
            let (w, h) = (w * (1.0 + j(&mut rng, 1.0)), h * (1.0 + j(&mut rng, 1.0)));
            let b = XyxyF32 {
                x1: cx - w / 2.0,
                y1: cy - h / 2.0,
                x2: cx + w / 2.0,
                y2: cy + h / 2.0,
            }
            .clip_to_input(INPUT, INPUT);
            (rng.random_range(0.01f32..1.0), b, rng.random_range(0..2u32))
        })
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let anchors = (0..n as u32).collect();
    let (scores, rest): (Vec<f32>, Vec<(XyxyF32, u32)>) =
        rows.into_iter().map(|(s, b, c)| (s, (b, c))).unzip();
    let (boxes, classes) = rest.into_iter().unzip();
    Candidates::from_parts(boxes, scores, classes, anchors)
}

fn median_ms(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2] * 1e3
}

/// Runs the benchmark.
pub fn run() -> anyhow::Result<Report> {
    let letterbox = Letterbox::new(1920, 1080, INPUT as u32);
    let candidates = synthetic_candidates(CANDIDATES, &letterbox)?;
    let mut report = Report {
        title: format!(
            "Review re-filtering of {CANDIDATES} candidates (median of {RUNS} runs, {} build)",
            if cfg!(debug_assertions) {
                "dev"
            } else {
                "release"
            }
        ),
        ..Default::default()
    };
    for cfg in settings() {
        let (ms, kept) = time_select(&candidates, &letterbox, &cfg);
        report.row(
            format!(
                "score {} IoU {} {} cap {} ({kept} kept)",
                cfg.score_threshold,
                cfg.iou_threshold,
                if cfg.class_agnostic {
                    "agnostic"
                } else {
                    "per-class"
                },
                cfg.max_detections
                    .map_or("none".to_string(), |c| c.to_string())
            ),
            ms,
            "ms",
        );
    }

    // Few objects: the cap of 100 is never reached, so NMS visits every candidate (the
    // slow case at the app's settings; formerly a timed assertion in postprocess/tests.rs).
    let few = candidates_around(CANDIDATES, FEW_CENTRES, &letterbox)?;
    for class_agnostic in [false, true] {
        let cfg = SelectConfig {
            class_agnostic,
            ..SelectConfig::default()
        };
        let (ms, kept) = time_select(&few, &letterbox, &cfg);
        report.row(
            format!(
                "{FEW_CENTRES} centres, score 0.05 IoU 0.5 {} cap 100 ({kept} kept, every \
                 candidate visited)",
                if class_agnostic {
                    "agnostic"
                } else {
                    "per-class"
                },
            ),
            ms,
            "ms",
        );
    }

    let dir = std::env::temp_dir().join(format!("detlab-bench-review-{}", std::process::id()));
    let result = time_cache_load(&dir, candidates, letterbox, &mut report);
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    report.notes.push(format!(
        "Synthetic candidates: {CANDIDATES} boxes around 400 centres (or {FEW_CENTRES}) on the \
         512×288 image part of a 512 input (a 1920×1080 photo), 2 classes."
    ));
    Ok(report)
}

/// The slider settings timed: score × IoU × (per-class, agnostic) × (cap 100, no cap).
fn settings() -> Vec<SelectConfig> {
    let mut out = Vec::new();
    for max_detections in [Some(100), None] {
        for class_agnostic in [false, true] {
            for score_threshold in [0.05f32, 0.3, 0.6] {
                for iou_threshold in [0.3, 0.5, 0.7] {
                    out.push(SelectConfig {
                        score_threshold,
                        iou_threshold,
                        class_agnostic,
                        nms: Default::default(),
                        max_detections,
                    });
                }
            }
        }
    }
    out
}

/// Median milliseconds of `select` + `to_original` over [`RUNS`] runs, and how many
/// detections came out.
fn time_select(candidates: &Candidates, letterbox: &Letterbox, cfg: &SelectConfig) -> (f64, usize) {
    let mut kept = 0;
    let samples = (0..RUNS)
        .map(|_| {
            let (d, s) = time(|| to_original(&candidates.select(cfg), letterbox));
            kept = d.len();
            s
        })
        .collect();
    (median_ms(samples), kept)
}

fn time_cache_load(
    dir: &Path,
    candidates: Candidates,
    letterbox: Letterbox,
    report: &mut Report,
) -> anyhow::Result<()> {
    let cache = CandidateCache::new(dir, &ModelId::of_bytes(b"bench"));
    let pred = CachedPrediction {
        stamp: ImageStamp {
            len: 1,
            modified_ns: 1,
        },
        letterbox,
        candidates,
    };
    let rel = Path::new("a.jpg");
    cache.store(rel, &pred)?;
    let bytes = std::fs::metadata(cache.entry_path(rel))?.len();
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let (loaded, s) = time(|| cache.load(rel, &pred.stamp));
        anyhow::ensure!(loaded?.as_ref() == Some(&pred), "cache round trip differs");
        samples.push(s);
    }
    report.row(
        format!("load one cache file ({CANDIDATES} candidates, {bytes} bytes)"),
        median_ms(samples),
        "ms",
    );
    Ok(())
}
