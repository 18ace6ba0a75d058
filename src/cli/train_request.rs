//! How the arguments of `detlab train` become the library's [`TrainRequest`], and how a
//! library error is shown led by the flag that sets the setting at fault.

use anyhow::Context;

use detlab::detector::train::data::DataSource;
use detlab::detector::train::{
    AnchorChoice, EarlyStopping, Init, OptimizerKind, PrepareError, Setting, TrainConfig,
    TrainRequest,
};

use super::train_args::{parse_pair, parse_ratios, TrainArgs};

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
        // Without validation no image is held out for it.
        val_fraction: if args.no_val { 0.0 } else { args.val_fraction },
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::train_args::tests::parse;
    use super::*;
    use detlab::detector::checkpoint::ModelArch;
    use detlab::detector::train::{prepare, DeviceChoice, LossPreset};

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
