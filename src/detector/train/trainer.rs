//! The training loop. It runs on the calling thread, which owns every tensor; a loader
//! thread prepares batches ahead (see [`super::data`]).
//!
//! Per epoch: (stage) freeze or unfreeze the backbone → for each batch: learning rate from
//! the schedule, forward, anchor assignment, loss; a non-finite loss or gradient norm skips
//! the step with a `Warning` event and fails the run after
//! [`TrainConfig::max_nonfinite_steps`] in a row; backward, gradient clipping, optimiser
//! step, EMA update → a check that the weights are finite (a diverged epoch, or one whose
//! every step was skipped, fails the run and saves nothing) → validation with the COCO
//! evaluator → `last` / `best` files, then the resume file → the epoch's events (so an
//! epoch reported complete can always be resumed) → early stopping. An image that cannot
//! be decoded is skipped with a warning. A libtorch failure inside a step (CUDA out of
//! memory included) ends the run with an error that names the batch size and input size.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::assign::{assign, pad_ground_truth};
use super::autocast::autocast;
use super::bn_warmup::BnWarmup;
use super::checkpoint::{self, BestSoFar, CheckpointFileError, ResumeFile, ResumeState};
use super::config::{ConfigError, DeviceChoice, OptimizerKind, Setting, TrainConfig};
use super::data::{batches, epoch_order, DataError, Dataset, Loader, Preprocess, Sample};
use super::ema::Ema;
use super::events::{CancelHandle, CheckpointKind, TrainEvent, ValMetrics};
use super::grad_scaler::{GradScaler, ScaledStep};
use super::init::{load_initial_weights, seeded_fresh_init, Init, InitError};
use super::loss::detection_loss;
use super::optimizer::{Optimizer, OptimizerSettings};
use super::schedule::Schedule;
use super::validate::{validate, ValidateError};
use crate::detector::checkpoint::{ModelFile, ModelFileError, ModelMeta};
use crate::detector::inference::{network_config, InferenceError};
use crate::detector::model::{anchors_tensor, EfficientDet, ModelError, TrainModes};
use crate::detector::settings::DeviceError;

/// What to train and where.
#[derive(Clone, Debug)]
pub struct TrainJob {
    pub config: TrainConfig,
    pub data: Dataset,
    /// The run folder (created if missing).
    pub out_dir: PathBuf,
    pub init: Init,
    /// Continue from `out_dir/resume.safetensors` (its config wins, except `epochs`,
    /// `threads` and `device`).
    pub resume: bool,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSummary {
    pub epochs_completed: usize,
    pub best: Option<BestSoFar>,
    pub last_val: Option<ValMetrics>,
    pub last_path: Option<PathBuf>,
    pub best_path: Option<PathBuf>,
    pub stopped_early: bool,
    pub cancelled: bool,
    pub seconds: f64,
    /// Mean training loss of each completed epoch of this process.
    pub epoch_losses: Vec<f64>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointFileError),
    #[error("validation failed: {0}")]
    Validate(#[from] ValidateError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    ModelFile(#[from] ModelFileError),
    #[error(transparent)]
    Network(#[from] InferenceError),
    #[error("out of memory at batch size {batch} and input size {input_size}: lower the batch size or the input size ({detail})")]
    OutOfMemory {
        batch: usize,
        input_size: u32,
        detail: String,
    },
    #[error("the loss was not finite for {steps} steps in a row (epoch {epoch}, step {step}); the run diverged: lower the learning rate (now {lr:e}) or check the labels")]
    NonFinite {
        steps: usize,
        epoch: usize,
        step: usize,
        lr: f64,
    },
    /// The weights stopped being finite; nothing of that epoch was saved.
    #[error("the weights are not finite after epoch {epoch} (`{tensor}`): the run diverged, and nothing of this epoch was saved; lower the learning rate (now {lr:e}) or check the labels")]
    NonFiniteWeights {
        /// The epoch that ended with them.
        epoch: usize,
        /// The first variable with a NaN or infinite value.
        tensor: String,
        /// The learning rate of the epoch's last step.
        lr: f64,
    },
    #[error("libtorch failed at epoch {epoch}, step {step}: {detail}")]
    Torch {
        epoch: usize,
        step: usize,
        detail: String,
    },
    #[error("{0}")]
    Resume(String),
    #[error("cannot create {path}: {reason}")]
    OutDir { path: PathBuf, reason: String },
}

impl TrainError {
    /// The setting to change, when one is at fault (an out-of-range value, a batch too
    /// large for the memory, a learning rate that diverged).
    pub fn setting(&self) -> Option<Setting> {
        match self {
            Self::Config(e) => Some(e.setting()),
            Self::Device(_) => Some(Setting::Device),
            Self::OutOfMemory { .. } => Some(Setting::BatchSize),
            Self::NonFinite { .. } | Self::NonFiniteWeights { .. } => Some(Setting::LearningRate),
            _ => None,
        }
    }
}

/// The device a choice resolves to ([`DeviceChoice::resolve`]).
pub fn resolve_device(choice: DeviceChoice) -> Result<Device, TrainError> {
    Ok(choice.resolve()?)
}

/// Result of one attempted step.
enum StepOutcome {
    Done {
        loss: f64,
        cls: f64,
        box_loss: f64,
    },
    NonFinite(&'static str),
    /// Mixed precision: the scaled gradients overflowed; the step was skipped and the loss
    /// scale lowered (expected now and then, not a divergence).
    Overflow,
}

/// Mutable run state that the resume file carries.
struct Progress {
    epochs_completed: usize,
    global_step: usize,
    best: Option<BestSoFar>,
    epochs_without_improvement: usize,
    early_stop_reference: Option<f64>,
    seconds: f64,
    init: String,
    validations: Vec<(usize, ValMetrics)>,
}

/// Trains `job`, reporting through `sink`; stops early when `cancel` is set. Emits
/// `Failed` before returning an error.
pub fn train(
    job: &TrainJob,
    sink: &mut dyn FnMut(&TrainEvent),
    cancel: &CancelHandle,
) -> Result<TrainSummary, TrainError> {
    let result = run(job, sink, cancel);
    if let Err(e) = &result {
        sink(&TrainEvent::Failed {
            reason: e.to_string(),
        });
    }
    result
}

/// The first floating-point variable of `vs` with a NaN or infinite value.
fn first_non_finite_variable(vs: &VarStore) -> Option<String> {
    let mut vars = vs.variables().into_iter().collect::<Vec<_>>();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        vars.into_iter()
            .filter(|(_, t)| t.is_floating_point())
            .find(|(_, t)| t.isfinite().all().int64_value(&[]) == 0)
            .map(|(name, _)| name)
    })
}

/// Sets requires-grad on the backbone's trainable parameters.
fn set_backbone_trainable(params: &[(String, Tensor)], trainable: bool) {
    for (name, t) in params {
        if name.starts_with("backbone_net.") {
            let _ = t.set_requires_grad(trainable);
        }
    }
}

fn run(
    job: &TrainJob,
    sink: &mut dyn FnMut(&TrainEvent),
    cancel: &CancelHandle,
) -> Result<TrainSummary, TrainError> {
    let t0 = Instant::now();
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

    let mut progress = match &resume {
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
    let mut bn_warmup = BnWarmup::new(&vs);
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
    // Images the loader could not decode, reported once each.
    let mut undecodable = std::collections::BTreeSet::new();

    let mut summary = TrainSummary {
        epochs_completed: progress.epochs_completed,
        best: progress.best,
        last_val: None,
        last_path: None,
        best_path: None,
        stopped_early: false,
        cancelled: false,
        seconds: 0.0,
        epoch_losses: Vec::new(),
    };
    let mut nonfinite_run = 0usize;
    let last_path = job.out_dir.join(checkpoint::LAST);
    let best_path = job.out_dir.join(checkpoint::BEST);

    if cfg.validate_first && !cfg.skip_validation && !val_set.is_empty() {
        let (val, _, _) = validate(
            &model,
            &val_set,
            &class_names,
            &pre_val,
            cfg.batch_size,
            &anchors_flat,
            device,
            pool.clone(),
        )?;
        sink(&TrainEvent::Baseline { val });
    }
    for epoch in start_epoch..=cfg.epochs {
        let epoch_start = Instant::now();
        let frozen = epoch <= cfg.freeze_backbone_epochs;
        set_backbone_trainable(&params, !frozen);
        let modes = TrainModes {
            backbone: !frozen,
            bifpn: true,
            heads: true,
        };
        tch::manual_seed(cfg.seed.wrapping_add(epoch as u64) as i64);
        let order = epoch_order(train_set.len(), cfg.seed, epoch);
        let mut plan = batches(&order, cfg.batch_size);
        plan.truncate(steps_per_epoch);
        let loader = Loader::spawn(
            train_set.clone(),
            plan,
            epoch,
            pre_train.clone(),
            cfg.prefetch_batches,
            pool.clone(),
        );
        let (mut loss_sum, mut loss_n, mut images) = (0.0, 0usize, 0usize);
        let mut epoch_nonfinite = 0usize;
        let mut last_lr = schedule.lr(progress.global_step);
        let mut last_tick = Instant::now();
        for (i, batch) in loader.enumerate() {
            let step = i + 1;
            if cancel.is_cancelled() {
                summary.cancelled = true;
                break;
            }
            let batch = batch?;
            for (_, path, reason) in &batch.skipped {
                if undecodable.insert(path.clone()) {
                    sink(&TrainEvent::Warning {
                        epoch,
                        step,
                        message: format!(
                            "skipped {}: it cannot be decoded ({reason}); {} image(s) skipped so far",
                            path.display(),
                            undecodable.len()
                        ),
                    });
                }
            }
            let lr = schedule.lr(progress.global_step);
            last_lr = lr;
            let b = batch.len();
            if b == 0 {
                progress.global_step += 1;
                continue;
            }
            // The BatchNorm statistics' updates so far: every step's for the BiFPN and
            // heads, those since it was unfrozen for the backbone. The forward pass updates
            // them; they are warmed up once the step is over (backward needs them as the
            // forward pass left them).
            let unfrozen_at = cfg.freeze_backbone_epochs * steps_per_epoch;
            let bn_updates = (
                (!frozen).then(|| progress.global_step.saturating_sub(unfrozen_at)),
                progress.global_step,
            );
            if cfg.bn_warmup {
                bn_warmup.before_step(bn_updates.0, bn_updates.1);
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| -> StepOutcome {
                let xs = Tensor::from_slice(&batch.pixels)
                    .view([b as i64, 3, size as i64, size as i64])
                    .to_device(device);
                let (g, c) = pad_ground_truth(&batch.boxes, &batch.classes, device);
                let amp = scaler.is_some();
                let out = autocast(device, amp, || model.forward_modes(&xs, modes));
                let targets = tch::no_grad(|| assign(&anchors_t, &g, &c, nc, &loss_params));
                // The loss is always computed in float32.
                let parts = detection_loss(
                    &out.classification.to_kind(Kind::Float),
                    &out.regression.to_kind(Kind::Float),
                    &targets,
                    &loss_params,
                );
                let loss = parts.total.double_value(&[]);
                if !loss.is_finite() {
                    return StepOutcome::NonFinite("loss");
                }
                opt.zero_grad();
                let grad_scale = scaler.as_ref().map_or(1.0, |s| s.scale);
                match &scaler {
                    Some(s) => s.scale_loss(&parts.total).backward(),
                    None => parts.total.backward(),
                }
                let finite = opt.clip_grad_norm(cfg.grad_clip, grad_scale).is_ok();
                let verdict = match &mut scaler {
                    Some(s) => s.update(finite),
                    None if finite => ScaledStep::Apply,
                    None => ScaledStep::Diverged,
                };
                match verdict {
                    ScaledStep::Apply => {}
                    ScaledStep::SkipOverflow => {
                        opt.zero_grad();
                        return StepOutcome::Overflow;
                    }
                    ScaledStep::Diverged => {
                        opt.zero_grad();
                        return StepOutcome::NonFinite("gradient");
                    }
                }
                opt.step(lr);
                if let Some(e) = &mut ema {
                    e.update();
                }
                StepOutcome::Done {
                    loss,
                    cls: parts.cls.double_value(&[]),
                    // The box terms together (the GIoU one is 0 when off).
                    box_loss: (&parts.box_loss + &parts.giou).double_value(&[]),
                }
            }));
            if outcome.is_ok() && cfg.bn_warmup {
                bn_warmup.after_step(bn_updates.0, bn_updates.1);
            }
            progress.global_step += 1;
            match outcome {
                Err(p) => {
                    let detail = crate::task::panic_message(p);
                    let lower = detail.to_ascii_lowercase();
                    if lower.contains("out of memory") || lower.contains("can't allocate") {
                        return Err(TrainError::OutOfMemory {
                            batch: cfg.batch_size,
                            input_size: size,
                            detail: detail.lines().next().unwrap_or("").to_string(),
                        });
                    }
                    return Err(TrainError::Torch {
                        epoch,
                        step,
                        detail,
                    });
                }
                Ok(StepOutcome::Overflow) => {}
                Ok(StepOutcome::NonFinite(what)) => {
                    nonfinite_run += 1;
                    epoch_nonfinite += 1;
                    sink(&TrainEvent::Warning {
                        epoch,
                        step,
                        message: format!(
                            "non-finite {what} at lr {lr:e}: step skipped ({nonfinite_run} in a row)"
                        ),
                    });
                    if nonfinite_run >= cfg.max_nonfinite_steps.max(1) {
                        return Err(TrainError::NonFinite {
                            steps: nonfinite_run,
                            epoch,
                            step,
                            lr,
                        });
                    }
                }
                Ok(StepOutcome::Done {
                    loss,
                    cls,
                    box_loss,
                }) => {
                    nonfinite_run = 0;
                    loss_sum += loss;
                    loss_n += 1;
                    images += b;
                    let dt = last_tick.elapsed().as_secs_f64().max(1e-9);
                    if step % cfg.log_every.max(1) == 0 || step == steps_per_epoch {
                        sink(&TrainEvent::Step {
                            epoch,
                            step,
                            steps_per_epoch,
                            loss,
                            cls,
                            box_loss,
                            lr,
                            images_per_sec: b as f64 / dt,
                        });
                    }
                }
            }
            last_tick = Instant::now();
        }
        if summary.cancelled {
            break;
        }
        let train_seconds = epoch_start.elapsed().as_secs_f64();
        let train_loss = if loss_n > 0 {
            loss_sum / loss_n as f64
        } else {
            f64::NAN
        };
        // An epoch whose every step diverged has nothing worth saving.
        if loss_n == 0 && epoch_nonfinite > 0 {
            return Err(TrainError::NonFinite {
                steps: nonfinite_run,
                epoch,
                step: steps_per_epoch,
                lr: last_lr,
            });
        }
        // Neither a broken model nor a resume point that would reload it is ever saved.
        let non_finite = |tensor: String| TrainError::NonFiniteWeights {
            epoch,
            tensor,
            lr: last_lr,
        };
        if let Some(name) = first_non_finite_variable(&vs) {
            return Err(non_finite(name));
        }

        // Validation and model files use the averaged weights when EMA is on.
        if let Some(e) = &mut ema {
            e.swap();
        }
        let averaged_broken = first_non_finite_variable(&vs);
        let val = if averaged_broken.is_some() || cfg.skip_validation || val_set.is_empty() {
            Ok(None)
        } else {
            validate(
                &model,
                &val_set,
                &class_names,
                &pre_val,
                cfg.batch_size,
                &anchors_flat,
                device,
                pool.clone(),
            )
            .map(|(m, _, skipped)| Some((m, skipped)))
        };
        let saved = match (&averaged_broken, &val) {
            (None, Ok(val)) => {
                let metric = val.as_ref().map_or(-train_loss, |(v, _)| v.ap);
                let improved = progress
                    .best
                    .is_none_or(|b| metric > b.metric || b.metric.is_nan());
                let r = checkpoint::save_model(&last_path, &vs, &meta).and_then(|()| {
                    if improved {
                        checkpoint::save_model(&best_path, &vs, &meta)?;
                    }
                    Ok(improved)
                });
                Some((metric, r))
            }
            _ => None,
        };
        if let Some(e) = &mut ema {
            e.swap();
        }
        if let Some(name) = averaged_broken {
            return Err(non_finite(format!("{name} (averaged)")));
        }
        let val = val?;
        let (metric, improved) = match saved {
            Some((metric, r)) => (metric, r?),
            None => unreachable!("validation succeeded"),
        };
        let (val, val_skipped) = match val {
            Some((v, skipped)) => (Some(v), skipped),
            None => (None, Vec::new()),
        };
        for (path, reason) in val_skipped {
            if undecodable.insert(path.clone()) {
                sink(&TrainEvent::Warning {
                    epoch,
                    step: steps_per_epoch,
                    message: format!(
                        "validation skipped {}: it cannot be decoded ({reason}); {} image(s) skipped so far",
                        path.display(),
                        undecodable.len()
                    ),
                });
            }
        }
        progress.epochs_completed = epoch;
        progress.seconds += epoch_start.elapsed().as_secs_f64();
        if let Some(v) = &val {
            progress.validations.push((epoch, v.clone()));
        }
        if improved {
            progress.best = Some(BestSoFar {
                epoch,
                metric,
                ap: val.as_ref().map(|v| v.ap),
                ap50: val.as_ref().map(|v| v.ap50),
            });
        }
        // Early stopping on the same metric, with a minimum improvement.
        if let Some(es) = cfg.early_stopping {
            match progress.early_stop_reference {
                Some(r) if metric <= r + es.min_delta => progress.epochs_without_improvement += 1,
                _ => {
                    progress.early_stop_reference = Some(metric);
                    progress.epochs_without_improvement = 0;
                }
            }
        }
        // The resume point is written before the epoch is reported: once `metrics.jsonl`
        // (or any sink) says an epoch is complete, `--resume` continues after it.
        let mut extra = opt.state();
        if let Some(e) = &ema {
            extra.extend(e.state());
        }
        let state = ResumeState {
            config: cfg.clone(),
            class_names: class_names.clone(),
            epochs_completed: epoch,
            global_step: progress.global_step,
            optimizer_steps: opt.step_count,
            ema_updates: ema.as_ref().map_or(0, |e| e.updates),
            best: progress.best,
            epochs_without_improvement: progress.epochs_without_improvement,
            early_stop_reference: progress.early_stop_reference,
            seconds: progress.seconds,
            init: progress.init.clone(),
            loss_scale: scaler.as_ref().map(|s| s.scale),
            validations: progress.validations.clone(),
        };
        let resume_path = checkpoint::write_resume(&job.out_dir, &state, &vs, &extra)?;
        sink(&TrainEvent::Epoch {
            epoch,
            train_loss,
            val: val.clone(),
            seconds: epoch_start.elapsed().as_secs_f64(),
            images_per_sec: images as f64 / train_seconds.max(1e-9),
        });
        summary.epoch_losses.push(train_loss);
        summary.last_val = val.clone();
        summary.last_path = Some(last_path.clone());
        sink(&TrainEvent::Checkpoint {
            kind: CheckpointKind::Last,
            path: last_path.clone(),
            epoch,
        });
        if improved {
            sink(&TrainEvent::Checkpoint {
                kind: CheckpointKind::Best,
                path: best_path.clone(),
                epoch,
            });
        }
        if progress.best.is_some() {
            summary.best_path = Some(best_path.clone());
        }
        sink(&TrainEvent::Checkpoint {
            kind: CheckpointKind::Resume,
            path: resume_path,
            epoch,
        });
        summary.epochs_completed = epoch;
        summary.best = progress.best;
        if let Some(es) = cfg.early_stopping {
            if progress.epochs_without_improvement >= es.patience.max(1) {
                summary.stopped_early = true;
                break;
            }
        }
    }
    summary.seconds = t0.elapsed().as_secs_f64();
    sink(&TrainEvent::Finished {
        epochs_completed: summary.epochs_completed,
        best_epoch: summary.best.map(|b| b.epoch),
        best_ap: summary.best.and_then(|b| b.ap),
        best_ap50: summary.best.and_then(|b| b.ap50),
        stopped_early: summary.stopped_early,
        cancelled: summary.cancelled,
        seconds: summary.seconds,
        best_path: summary.best_path.clone(),
        last_path: summary.last_path.clone(),
    });
    Ok(summary)
}

/// Builds the network of a model file and loads its weights (e.g. to check a trained
/// `best.safetensors`): the file is read once, and a read error names it.
pub fn load_trained(
    path: &Path,
    device: Device,
) -> Result<(VarStore, EfficientDet, ModelMeta), TrainError> {
    let file = ModelFile::read(path)?;
    let vs = VarStore::new(device);
    let model = EfficientDet::from_model_file(&vs, &file, path)?;
    Ok((vs, model, file.meta))
}
