//! `detlab bench labelling`: human actions per labelled box, measured by the simulated
//! labeller ([`detlab::app::simulated_labeller`]) on a labelled folder, with the
//! assistants and without them (review only), beside LabelImg's manual count; optionally
//! with the app retraining its model every N labelled images (from zero with no model).

use std::path::PathBuf;
use std::time::Duration;

use super::Report;
use detlab::app::simulated_labeller::{simulate, SimOptions, SimReport};
use detlab::app::training::TrainingForm;
use detlab::detector::train::DeviceChoice;

/// What to measure.
pub struct LabellingBenchOptions {
    pub images: PathBuf,
    pub labels: Option<PathBuf>,
    pub model: Option<PathBuf>,
    /// Retrain every N labelled images (0: never).
    pub retrain_every: usize,
    /// Where retraining computes.
    pub device: DeviceChoice,
    /// Skip the review-only run.
    pub assistants_only: bool,
    /// Test-time augmentation of the model's predictions (`None`: the panel's auto).
    pub tta: Option<detlab::detector::maths::tta::Tta>,
    /// The Review panel's score threshold.
    pub review_score: f32,
    /// The hold-out AP a first model needs to be shown.
    pub first_model_min_ap: f64,
    /// Images a retrained model's trial waits for (`None`: the app's default; 0: none).
    pub trial_images: Option<usize>,
    /// Write both runs' reports here as JSON.
    pub json: Option<PathBuf>,
}

/// Runs the simulated labeller with and without the assistants.
pub fn run(options: &LabellingBenchOptions) -> anyhow::Result<Report> {
    let mut runs = Vec::new();
    let modes: &[bool] = if options.assistants_only {
        &[true]
    } else {
        &[true, false]
    };
    for &assistants in modes {
        let work = std::env::temp_dir().join(format!(
            "detlab-bench-labelling-{}-{assistants}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&work);
        let sim = SimOptions {
            labels: options.labels.clone(),
            model: options.model.clone(),
            assistants,
            // A retraining generation from zero takes minutes on a CPU.
            timeout: Duration::from_secs(3 * 3600),
            retrain_every: options.retrain_every,
            tta: options.tta,
            review_score: options.review_score,
            first_model_min_ap: options.first_model_min_ap,
            trial_images: options.trial_images,
            training: TrainingForm {
                device: options.device,
                ..TrainingForm::default()
            },
            ..SimOptions::new(options.images.clone())
        };
        let result = simulate(&sim, &work);
        let _ = std::fs::remove_dir_all(&work);
        runs.push((assistants, result?));
    }
    let mut report = Report {
        title: format!(
            "Human actions per labelled box: {} ({}{}{}, review score {})",
            options.images.display(),
            options
                .model
                .as_ref()
                .map_or("no model".to_string(), |m| m.display().to_string()),
            match options.retrain_every {
                0 => String::new(),
                n => format!(", retrained every {n} images"),
            },
            match options.tta {
                Some(t) => format!(", TTA {}", t.describe()),
                None => ", TTA auto".to_string(),
            },
            options.review_score
        ),
        ..Report::default()
    };
    let (_, with) = &runs[0];
    let without = runs.get(1).map(|(_, r)| r);
    report.row("images", with.images as f64, "");
    report.row("boxes", with.boxes as f64, "");
    report.row(
        "actions per box, with the assistants",
        with.actions_per_box,
        "actions",
    );
    if let Some(without) = without {
        report.row(
            "actions per box, review only (no assistants)",
            without.actions_per_box,
            "actions",
        );
    }
    report.row(
        "actions per box, by hand (LabelImg)",
        with.manual_actions_per_box,
        "actions",
    );
    report.row("model time", with.model_seconds, "s");
    report.row(
        "boxes not reached (must be 0)",
        (with.missed + without.map_or(0, |w| w.missed)) as f64,
        "",
    );
    report
        .notes
        .push(format!("With the assistants, by kind: {}", kinds(with)));
    if let Some(without) = without {
        report
            .notes
            .push(format!("Review only, by kind: {}", kinds(without)));
    }
    for p in &with.ap_over_time {
        report.notes.push(format!(
            "After {} images (generation {}{}): AP {:.3}, AP50 {:.3} on the {} images not labelled yet",
            p.labelled,
            p.generation,
            if p.swapped { ", now the review model" } else { ", kept the old model" },
            p.ap,
            p.ap50,
            p.images
        ));
    }
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
