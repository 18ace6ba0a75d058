//! `detlab bench labelling`: human actions per labelled box, measured by the simulated
//! labeller ([`detlab::app::simulated_labeller`]) on a labelled folder, with the
//! assistants and without them (review only), beside LabelImg's manual count.

use std::path::PathBuf;
use std::time::Duration;

use super::Report;
use detlab::app::simulated_labeller::{simulate, SimOptions, SimReport};

/// What to measure.
pub struct LabellingBenchOptions {
    pub images: PathBuf,
    pub labels: Option<PathBuf>,
    pub model: Option<PathBuf>,
    /// Write both runs' reports here as JSON.
    pub json: Option<PathBuf>,
}

/// Runs the simulated labeller with and without the assistants.
pub fn run(options: &LabellingBenchOptions) -> anyhow::Result<Report> {
    let mut runs = Vec::new();
    for assistants in [true, false] {
        let work = std::env::temp_dir().join(format!(
            "detlab-bench-labelling-{}-{assistants}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&work);
        let sim = SimOptions {
            images: options.images.clone(),
            labels: options.labels.clone(),
            model: options.model.clone(),
            assistants,
            timeout: Duration::from_secs(600),
        };
        let result = simulate(&sim, &work);
        let _ = std::fs::remove_dir_all(&work);
        runs.push((assistants, result?));
    }
    let mut report = Report {
        title: format!(
            "Human actions per labelled box: {} ({})",
            options.images.display(),
            options
                .model
                .as_ref()
                .map_or("no model".to_string(), |m| m.display().to_string())
        ),
        ..Report::default()
    };
    let (_, with) = &runs[0];
    let (_, without) = &runs[1];
    report.row("images", with.images as f64, "");
    report.row("boxes", with.boxes as f64, "");
    report.row(
        "actions per box, with the assistants",
        with.actions_per_box,
        "actions",
    );
    report.row(
        "actions per box, review only (no assistants)",
        without.actions_per_box,
        "actions",
    );
    report.row(
        "actions per box, by hand (LabelImg)",
        with.manual_actions_per_box,
        "actions",
    );
    report.row("model time", with.model_seconds, "s");
    report.row(
        "boxes not reached (must be 0)",
        (with.missed + without.missed) as f64,
        "",
    );
    report
        .notes
        .push(format!("With the assistants, by kind: {}", kinds(with)));
    report
        .notes
        .push(format!("Review only, by kind: {}", kinds(without)));
    if let Some(path) = &options.json {
        let value = serde_json::json!({
            "assistants": with,
            "review_only": without,
        });
        detlab::atomic::write_atomic(path, serde_json::to_string_pretty(&value)?.as_bytes())?;
    }
    println!("{}", serde_json::to_string(with)?);
    Ok(report)
}

fn kinds(r: &SimReport) -> String {
    r.by_kind
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
