//! Setting a run up: the effective settings (a resumed run's own, but for `epochs`,
//! `threads` and `device`), the device and thread pool, the network and its initial or
//! resumed weights, the optimiser, EMA, BatchNorm warm-up and loss scaler, the anchors, the
//! pre-processing of both sets and the schedule; it reports `Started`.

use std::sync::Arc;

use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::{resolve_device, TrainError, TrainJob};
use crate::detector::checkpoint::ModelMeta;
use crate::detector::inference::network_config;
use crate::detector::model::{anchors_tensor, EfficientDet};
use crate::detector::train::bn_warmup::BnWarmup;
use crate::detector::train::checkpoint::{self, BestSoFar, ResumeFile};
use crate::detector::train::config::{
    ConfigError, LossParams, OptimizerKind, Setting, TrainConfig,
};
use crate::detector::train::data::{batches, Preprocess, Sample};
use crate::detector::train::ema::Ema;
use crate::detector::train::events::{TrainEvent, ValMetrics};
use crate::detector::train::grad_scaler::GradScaler;
use crate::detector::train::init::{load_initial_weights, seeded_fresh_init};
use crate::detector::train::optimizer::{Optimizer, OptimizerSettings};
use crate::detector::train::schedule::Schedule;

/// Mutable run state that the resume file carries.
pub(super) struct Progress {
    pub(super) epochs_completed: usize,
    pub(super) global_step: usize,
    pub(super) best: Option<BestSoFar>,
    pub(super) epochs_without_improvement: usize,
    pub(super) early_stop_reference: Option<f64>,
    pub(super) seconds: f64,
    pub(super) init: String,
    pub(super) validations: Vec<(usize, ValMetrics)>,
}

/// A run ready for its first epoch.
pub(super) struct Setup {
    /// The effective settings.
    pub(super) cfg: TrainConfig,
    pub(super) pool: Option<Arc<rayon::ThreadPool>>,
    pub(super) device: Device,
    pub(super) class_names: Vec<String>,
    /// The metadata of the model files the run writes.
    pub(super) meta: ModelMeta,
    /// The number of classes.
    pub(super) nc: i64,
    pub(super) vs: VarStore,
    pub(super) model: EfficientDet,
    pub(super) progress: Progress,
    /// The optimised parameters, sorted by name.
    pub(super) params: Vec<(String, Tensor)>,
    pub(super) opt: Optimizer,
    pub(super) ema: Option<Ema>,
    pub(super) bn_warmup: BnWarmup,
    pub(super) scaler: Option<GradScaler>,
    pub(super) loss_params: LossParams,
    /// The input size.
    pub(super) size: u32,
    pub(super) anchors_flat: Vec<f32>,
    /// The anchors `[N, 4]` on the device.
    pub(super) anchors_t: Tensor,
    pub(super) train_set: Arc<Vec<Sample>>,
    pub(super) val_set: Arc<Vec<Sample>>,
    pub(super) pre_train: Preprocess,
    pub(super) pre_val: Preprocess,
    pub(super) steps_per_epoch: usize,
    pub(super) schedule: Schedule,
    pub(super) start_epoch: usize,
}

/// Sets `job` up (see the module documentation), reporting through `sink`.
pub(super) fn setup(
    job: &TrainJob,
    sink: &mut dyn FnMut(&TrainEvent),
) -> Result<Setup, TrainError> {
    std::fs::create_dir_all(&job.out_dir).map_err(|e| TrainError::OutDir {
        path: job.out_dir.clone(),
        reason: e.to_string(),
    })?;
    // What killed writes of an earlier run left behind (up to a model's size each).
    checkpoint::remove_stale_temp_files(&job.out_dir);
    let resume = if job.resume {
        let r = ResumeFile::read(&job.out_dir)?;
        if r.state.class_names != job.data.class_names {
            return Err(TrainError::Resume(format!(
                "the run was trained on classes {:?}, the data now has {:?}",
                r.state.class_names, job.data.class_names
            )));
        }
        Some(r)
    } else {
        None
    };
    let cfg = match &resume {
        Some(r) => TrainConfig {
            epochs: job.config.epochs,
            threads: job.config.threads,
            device: job.config.device,
            ..r.state.config.clone()
        },
        None => job.config.clone(),
    };
    cfg.validate()?;
    job.data.check_trainable()?;
    if let Some(n) = cfg.threads {
        tch::set_num_threads(n as i32);
    }
    let pool = match cfg.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .ok()
            .map(Arc::new),
        None => None,
    };
    let device = resolve_device(cfg.device)?;
    if cfg.mixed_precision && !device.is_cuda() {
        return Err(ConfigError::invalid(
            Setting::MixedPrecision,
            "mixed precision needs CUDA, and this run resolved to the CPU",
        )
        .into());
    }
    if device.is_cuda() {
        // Fixed input sizes: let cuDNN pick the fastest convolution algorithms.
        tch::Cuda::cudnn_set_benchmark(true);
    }
    tch::manual_seed(cfg.seed as i64);
    let arch = cfg.arch;
    let class_names = job.data.class_names.clone();
    let mut meta = cfg.model_meta(class_names.clone());
    let net_cfg = network_config(&meta)?;
    let nc = class_names.len() as i64;
    let vs = VarStore::new(device);
    let model = EfficientDet::new(&vs.root(), &net_cfg, nc)?;
    seeded_fresh_init(&vs, cfg.seed);

    let progress = match &resume {
        Some(r) => {
            r.load_weights(&vs)?;
            let s = &r.state;
            Progress {
                epochs_completed: s.epochs_completed,
                global_step: s.global_step,
                best: s.best,
                epochs_without_improvement: s.epochs_without_improvement,
                early_stop_reference: s.early_stop_reference,
                seconds: s.seconds,
                init: s.init.clone(),
                validations: s.validations.clone(),
            }
        }
        None => Progress {
            epochs_completed: 0,
            global_step: 0,
            best: None,
            epochs_without_improvement: 0,
            early_stop_reference: None,
            seconds: 0.0,
            init: load_initial_weights(&vs, arch, &job.init)?,
            validations: Vec::new(),
        },
    };
    meta.source = Some(format!("detlab train ({})", progress.init));

    // Optimised parameters: every variable that requires gradients (not BN statistics).
    let mut params: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let n_params: i64 = params.iter().map(|(_, t)| t.numel() as i64).sum();
    let mut opt = Optimizer::new(
        OptimizerSettings {
            kind: cfg.optimizer,
            weight_decay: cfg.weight_decay,
            momentum: cfg.momentum,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        params
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect(),
    );
    let mut ema = cfg.ema_decay.map(|d| Ema::new(&vs, d));
    let bn_warmup = BnWarmup::new(&vs);
    let mut scaler = cfg.mixed_precision.then(GradScaler::default);
    if let Some(r) = &resume {
        let missing = opt.load_state(|k| r.get(k), r.state.optimizer_steps);
        if !missing.is_empty() && cfg.optimizer == OptimizerKind::AdamW {
            sink(&TrainEvent::Warning {
                epoch: progress.epochs_completed,
                step: 0,
                message: format!(
                    "{} optimiser state tensors were missing from the resume file",
                    missing.len()
                ),
            });
        }
        if let Some(e) = &mut ema {
            e.load_state(|k| r.get(k), r.state.ema_updates);
        }
        if let (Some(s), Some(scale)) = (&mut scaler, r.state.loss_scale) {
            *s = GradScaler::new(scale);
        }
    }
    drop(resume);

    let loss_params = cfg.loss_params();
    let size = cfg.input_size;
    let anchors = model.anchors(size as usize, size as usize)?;
    let anchors_flat = anchors.to_flat();
    let anchors_t = anchors_tensor(&anchors, device).squeeze_dim(0);
    let train_set = Arc::new(job.data.train.clone());
    let val_set: Arc<Vec<Sample>> = Arc::new(job.data.val.clone());
    let pre_train = Preprocess {
        input_size: size,
        normalization: meta.normalization,
        augment: Some(cfg.augment.clone()),
        seed: cfg.seed,
        tile: cfg.tile,
    };
    let pre_val = Preprocess {
        augment: None,
        ..pre_train.clone()
    };
    let full_batches = batches(&(0..train_set.len()).collect::<Vec<_>>(), cfg.batch_size).len();
    let steps_per_epoch = cfg
        .max_steps_per_epoch
        .map_or(full_batches, |m| m.min(full_batches))
        .max(1);
    let schedule = Schedule::new(&cfg, steps_per_epoch);
    let start_epoch = progress.epochs_completed + 1;
    sink(&TrainEvent::Started {
        device: format!("{device:?}"),
        params: n_params,
        arch: arch.name().into(),
        class_names: class_names.clone(),
        train_images: train_set.len(),
        val_images: if cfg.skip_validation {
            0
        } else {
            val_set.len()
        },
        steps_per_epoch,
        start_epoch,
        init: progress.init.clone(),
        config: Box::new(cfg.clone()),
    });
    if let Some((path, reason)) = job.data.unreadable.first() {
        sink(&TrainEvent::Warning {
            epoch: progress.epochs_completed,
            step: 0,
            message: format!(
                "{} unreadable image(s) skipped, e.g. {} ({reason})",
                job.data.unreadable.len(),
                path.display()
            ),
        });
    }
    if let Some((path, what)) = job.data.fitted.first() {
        sink(&TrainEvent::Warning {
            epoch: progress.epochs_completed,
            step: 0,
            message: format!(
                "{} label file(s) disagree with their image's header and were fitted to it, \
                 e.g. {}: {what}",
                job.data.fitted.len(),
                path.display()
            ),
        });
    }
    Ok(Setup {
        cfg,
        pool,
        device,
        class_names,
        meta,
        nc,
        vs,
        model,
        progress,
        params,
        opt,
        ema,
        bn_warmup,
        scaler,
        loss_params,
        size,
        anchors_flat,
        anchors_t,
        train_set,
        val_set,
        pre_train,
        pre_val,
        steps_per_epoch,
        schedule,
        start_epoch,
    })
}
