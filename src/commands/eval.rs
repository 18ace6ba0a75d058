//! `detlab eval --gt GT.json --dt RESULTS.json`: COCO bbox evaluation of a results file
//! against ground truth, printed the way pycocotools' `COCOeval.summarize()` prints it (or
//! as JSON). Predicting the detections first (`--model`/`--data`) is the network half's.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::eval::{
    evaluate, load_detections, retain_known_categories, CocoGroundTruth, Detection, EvalResult,
    MaxDets, Params, DENSE_BOXES_PER_IMAGE, DENSE_MAX_DETS,
};

/// The arguments of `detlab eval` that need no network.
#[derive(clap::Args, Debug)]
pub struct EvalFilesArgs {
    /// COCO ground-truth JSON (images, annotations, categories).
    #[arg(long, value_name = "GT.json", requires = "dt")]
    pub gt: Option<PathBuf>,
    /// COCO results JSON: a list of {image_id, category_id, bbox, score}.
    #[arg(long, value_name = "RESULTS.json", requires = "gt")]
    pub dt: Option<PathBuf>,
    #[command(flatten)]
    pub output: EvalOutputArgs,
}

/// How `detlab eval` reports.
#[derive(clap::Args, Debug)]
pub struct EvalOutputArgs {
    /// Print {"stats": [12 numbers], "per_category": {...}} instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// Also print AP, AP50 and AR100 for every category.
    #[arg(long)]
    pub per_class: bool,
    /// Drop detections whose category is not in the ground truth (as pycocotools does
    /// silently) instead of reporting them as an error.
    #[arg(long)]
    pub drop_unknown_categories: bool,
    /// The three maxDets of the summary (detections per image and category that AR@1,
    /// AR@10 and AP/AR read), e.g. 1,10,300 for dense shelves. Default: pycocotools'
    /// 1,10,100; with --data, 1,10,300 when a labelled image holds more than 100 boxes.
    #[arg(long, value_name = "A,B,C")]
    pub max_dets: Option<MaxDets>,
}

/// Runs `detlab eval --gt GT.json --dt RESULTS.json`.
pub fn run(args: EvalFilesArgs) -> anyhow::Result<()> {
    let (Some(gt), Some(dt)) = (&args.gt, &args.dt) else {
        bail!("pass either --gt GT.json --dt RESULTS.json, or --model M.safetensors --data DIR|COCO.json");
    };
    let (gt, dets) = rayon::join(|| CocoGroundTruth::from_path(gt), || load_detections(dt));
    let gt = gt.context("loading ground truth")?;
    let dets = dets.context("loading detections")?;
    let max_dets = match args.output.max_dets {
        Some(m) => m,
        None => {
            let densest = gt.max_annotations_per_image();
            if densest > DENSE_BOXES_PER_IMAGE {
                eprintln!(
                    "note: an image holds {densest} ground-truth boxes but maxDets is \
                     pycocotools' default 1,10,100; pass --max-dets {DENSE_MAX_DETS} to count \
                     more than 100 detections per image"
                );
            }
            MaxDets::default()
        }
    };
    report(&args.output, gt, dets, &dt.display().to_string(), max_dets)
}

/// Evaluates `dets` against `gt` with `max_dets` and prints the summary (or JSON) to stdout.
pub fn report(
    args: &EvalOutputArgs,
    gt: CocoGroundTruth,
    mut dets: Vec<Detection>,
    what: &str,
    max_dets: MaxDets,
) -> anyhow::Result<()> {
    if args.drop_unknown_categories {
        let dropped = retain_known_categories(&gt, &mut dets);
        if dropped > 0 {
            eprintln!("note: dropped {dropped} detections of categories not in the ground truth");
        }
    }
    let result = evaluate(&gt, &dets, &Params::with_max_dets(max_dets))
        .with_context(|| format!("evaluating {what}"))?;

    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &json_report(&result))?;
        writeln!(out)?;
    } else {
        out.write_all(result.summary_text().as_bytes())?;
        if args.per_class {
            writeln!(out)?;
            out.write_all(per_class_table(&result).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The `--json` document: stats in COCOeval order (with their names), the maxDets used and
/// per-category numbers (`ar100` is the recall at the largest maxDets).
fn json_report(r: &EvalResult) -> serde_json::Value {
    let per_category: serde_json::Map<String, serde_json::Value> = r
        .per_category
        .iter()
        .map(|c| {
            (
                c.id.to_string(),
                serde_json::json!({"name": c.name, "ap": c.ap, "ap50": c.ap50, "ar100": c.ar100}),
            )
        })
        .collect();
    serde_json::json!({
        "stats": r.stats,
        "stat_names": r.stat_names(),
        "max_dets": r.params.max_dets,
        "per_category": per_category,
    })
}

/// A fixed-width table of per-category AP / AP50 / AR at the largest maxDets (`-` where
/// undefined).
fn per_class_table(r: &EvalResult) -> String {
    let width = r
        .per_category
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(8);
    let cell = |v: f64| {
        if v < 0.0 {
            format!("{:>7}", "-")
        } else {
            format!("{v:>7.3}")
        }
    };
    let mut s = format!(
        "{:>6}  {:<width$}  {:>7}{:>7}{:>7}\n",
        "id",
        "category",
        "AP",
        "AP50",
        format!("AR{}", r.max_dets_last())
    );
    for c in &r.per_category {
        s.push_str(&format!(
            "{:>6}  {:<width$}  {}{}{}\n",
            c.id,
            c.name,
            cell(c.ap),
            cell(c.ap50),
            cell(c.ar100)
        ));
    }
    s
}
