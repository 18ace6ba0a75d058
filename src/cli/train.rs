//! `detlab train`: fine-tune EfficientDet on a labelled folder or a COCO file, with a
//! progress bar, `RUN_DIR/metrics.jsonl` (one JSON object per event) and a final summary.
//!
//! The arguments become the library's [`TrainRequest`] and the run is prepared by
//! [`prepare`], as the app's Train page does; the defaults are the library's (the recipe
//! of `models/README.md`), and every default can be turned off (`--ema 0`,
//! `--freeze-backbone-epochs 0`, `--loss reference`, `--no-fit-anchors`,
//! `--scale-jitter 1,1`).
//!
//! This file holds the run and its progress; the arguments are in `train_args`, the
//! request they make and the flags named in errors in `train_request`, and `--folds` in
//! `cross_val`.
//!
//! [`TrainRequest`]: detlab::detector::train::TrainRequest

use std::path::Path;
use std::time::Duration;

use detlab::detector::train::{prepare, CancelHandle, PreparedRun, TrainEvent, TrainSummary};

pub use super::train_args::TrainArgs;
pub use super::train_request::request;
pub(crate) use super::train_request::{prepare_error, with_flag};

fn format_ratios(ratios: &[(f64, f64)]) -> String {
    ratios
        .iter()
        .map(|(x, y)| format!("{x:.3},{y:.3} (h/w {:.2})", y / x))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs `detlab train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    if let Some(k) = args.folds {
        return super::cross_val::run(&args, k);
    }
    let request = request(&args)?;
    let prepared = prepare(&request).map_err(prepare_error)?;
    train_prepared(prepared, &mut |_| {})?;
    Ok(())
}

/// Trains a prepared run with a progress bar and a summary; `on_event` sees every event
/// too.
pub(crate) fn train_prepared(
    prepared: PreparedRun,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> anyhow::Result<TrainSummary> {
    let out_dir = prepared.job.out_dir.clone();
    announce(&prepared);
    let mut progress = Progress::new();
    let mut sink = |e: &TrainEvent| {
        on_event(e);
        progress.show(e)
    };
    let cancel = CancelHandle::new();
    let result = prepared.run(&mut sink, &cancel);
    progress.finish();
    let summary = result.map_err(|e| with_flag(e.setting(), e))?;
    report(&summary, &out_dir);
    Ok(summary)
}

/// What a prepared run will train on and how, before its progress bar.
pub(crate) fn announce(prepared: &PreparedRun) {
    for path in &prepared.replaced {
        eprintln!("note: --overwrite: removed {}", path.display());
    }
    let data = &prepared.job.data;
    for (path, why) in data.skipped.iter().take(5) {
        eprintln!("note: skipped {} ({why})", path.display());
    }
    if data.skipped.len() > 5 {
        eprintln!("note: … and {} more images skipped", data.skipped.len() - 5);
    }
    for (path, why) in data.unreadable.iter().take(5) {
        eprintln!(
            "warning: skipping unreadable image {} ({why})",
            path.display()
        );
    }
    if !data.unreadable.is_empty() {
        eprintln!(
            "warning: {} unreadable image(s) skipped",
            data.unreadable.len()
        );
    }
    if let (Some(boxes), Some(ratios)) = (
        prepared.anchors_fitted_to,
        &prepared.job.config.anchor_ratios,
    ) {
        eprintln!(
            "anchors: ratios fitted to {boxes} boxes: {}",
            format_ratios(ratios)
        );
    }
    if let Some(small) = &prepared.small_set {
        eprintln!("{small} (--no-small-set-rule keeps the recipe)");
    }
    if let Some(hint) = &prepared.tile_hint {
        eprintln!("{hint}");
    }
    if let Some(tile) = prepared.job.config.tile {
        eprintln!(
            "tiles: training on {tile}-pixel crops at native resolution; validation on one \
             fixed crop per image (`detlab eval --model` scores whole photos in tiles)"
        );
    }
    let counts = data.train_box_counts();
    eprintln!(
        "data: {} train / {} val images; classes: {}",
        data.train.len(),
        data.val.len(),
        data.class_names
            .iter()
            .zip(&counts)
            .map(|(n, c)| format!("{n} ({c} boxes)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// A run's progress bar and its event lines.
pub(crate) struct Progress {
    bar: indicatif::ProgressBar,
    epochs_total: usize,
}

impl Progress {
    /// A new bar, ticking.
    pub(crate) fn new() -> Self {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "epoch {prefix} [{bar:25}] {pos}/{len} {msg} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(500));
        Self {
            bar,
            epochs_total: 0,
        }
    }

    fn say(&self, line: String) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Shows one event.
    pub(crate) fn show(&mut self, e: &TrainEvent) {
        match e {
            TrainEvent::Started {
                device,
                params,
                init,
                steps_per_epoch,
                start_epoch,
                config,
                ..
            } => {
                self.epochs_total = config.epochs;
                self.say(format!(
                    "training {} ({params} parameters) on {device}, input {}, batch {}, {} loss{}; from {init}{}",
                    config.arch,
                    config.input_size,
                    config.batch_size,
                    config.loss.name(),
                    if config.giou_weight > 0.0 { format!(" + GIoU ×{}", config.giou_weight) } else { String::new() },
                    if *start_epoch > 1 { format!("; resuming at epoch {start_epoch} with the run's own settings (of the options given, only --epochs, --threads and --device apply)") } else { String::new() }
                ));
                self.bar
                    .set_length((*steps_per_epoch * (config.epochs + 1 - start_epoch)) as u64);
                self.bar
                    .set_prefix(format!("{start_epoch}/{}", config.epochs));
            }
            TrainEvent::Step {
                epoch,
                loss,
                cls,
                box_loss,
                images_per_sec,
                ..
            } => {
                self.bar
                    .set_prefix(format!("{epoch}/{}", self.epochs_total));
                self.bar.set_message(format!(
                    "loss {loss:.4} (cls {cls:.4} box {box_loss:.4}) {images_per_sec:.1} img/s"
                ));
                self.bar.inc(1);
            }
            TrainEvent::Warning { message, .. } => self.say(format!("warning: {message}")),
            TrainEvent::Epoch {
                epoch,
                train_loss,
                val,
                seconds,
                images_per_sec,
            } => {
                let v = val.as_ref().map_or(String::new(), |v| {
                    format!(
                        "  val AP {:.4} AP50 {:.4} [{}]",
                        v.ap,
                        v.ap50,
                        v.per_class
                            .iter()
                            .map(|c| format!("{} {:.3}", c.name, c.ap))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
                self.say(format!(
                    "epoch {epoch}: loss {train_loss:.4}, {images_per_sec:.2} img/s, {seconds:.0} s{v}"
                ));
            }
            _ => {}
        }
    }

    /// Clears the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The summary of a finished run in `out_dir`.
pub(crate) fn report(summary: &TrainSummary, out_dir: &Path) {
    println!(
        "finished {} epoch(s) in {:.0} s{}",
        summary.epochs_completed,
        summary.seconds,
        if summary.stopped_early {
            " (early stop)"
        } else {
            ""
        }
    );
    if let Some(b) = summary.best {
        match (b.ap, b.ap50) {
            (Some(ap), Some(ap50)) => println!("best: epoch {} AP {ap:.4} AP50 {ap50:.4}", b.epoch),
            _ => println!("best: epoch {} (training loss {:.4})", b.epoch, -b.metric),
        }
    }
    if let Some(v) = &summary.last_val {
        for c in &v.per_class {
            println!("  {}: AP {:.4} AP50 {:.4}", c.name, c.ap, c.ap50);
        }
    }
    for p in [&summary.best_path, &summary.last_path]
        .into_iter()
        .flatten()
    {
        println!("wrote {}", p.display());
    }
    println!("metrics: {}", out_dir.join("metrics.jsonl").display());
}
