//! The epoch loop of a run: per epoch the backbone stage, the loader, the steps and their
//! events, the checks that the weights are finite, validation, the `last` / `best` files,
//! the resume file, the epoch's events and early stopping (see [`super`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use super::setup::{setup, Setup};
use super::step::{train_step, StepInputs, StepOutcome};
use super::vars::{first_non_finite_variable, set_backbone_trainable};
use super::{TrainError, TrainJob, TrainSummary};
use crate::detector::model::TrainModes;
use crate::detector::train::checkpoint::{self, BestSoFar, ResumeState};
use crate::detector::train::data::{batches, epoch_order, Loader};
use crate::detector::train::events::{CancelHandle, CheckpointKind, TrainEvent};
use crate::detector::train::validate::validate;

/// Runs `job` to its end (see [`super::train`], which reports a failure).
pub(super) fn run(
    job: &TrainJob,
    sink: &mut dyn FnMut(&TrainEvent),
    cancel: &CancelHandle,
) -> Result<TrainSummary, TrainError> {
    let t0 = Instant::now();
    let Setup {
        cfg,
        pool,
        device,
        class_names,
        meta,
        nc,
        vs,
        model,
        mut progress,
        params,
        mut opt,
        mut ema,
        mut bn_warmup,
        mut scaler,
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
    } = setup(job, sink)?;
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

    let validate_now = || {
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
    };
    // Each image that cannot be decoded is reported once, by the loader or by validation.
    let mut warn_undecodable = |sink: &mut dyn FnMut(&TrainEvent),
                                epoch,
                                step,
                                path: &std::path::Path,
                                reason: &str,
                                by: &str| {
        if undecodable.insert(path.to_path_buf()) {
            sink(&TrainEvent::Warning {
                epoch,
                step,
                message: format!(
                    "{by}skipped {}: it cannot be decoded ({reason}); {} image(s) skipped so far",
                    path.display(),
                    undecodable.len()
                ),
            });
        }
    };

    if cfg.validate_first && !cfg.skip_validation && !val_set.is_empty() {
        let (val, _, _) = validate_now()?;
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
                warn_undecodable(sink, epoch, step, path, reason, "");
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
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let inputs = StepInputs {
                    model: &model,
                    batch: &batch,
                    size,
                    device,
                    modes,
                    anchors_t: &anchors_t,
                    nc,
                    loss_params: &loss_params,
                    cfg: &cfg,
                    lr,
                };
                train_step(&inputs, &mut opt, &mut scaler, &mut ema)
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
            validate_now().map(|(m, _, skipped)| Some((m, skipped)))
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
        for (path, reason) in &val_skipped {
            warn_undecodable(sink, epoch, steps_per_epoch, path, reason, "validation ");
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
