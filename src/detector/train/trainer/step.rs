//! One optimisation step on a batch: forward (autocast under mixed precision), anchor
//! assignment, loss in float32, backward, gradient clipping (and loss scaling), optimiser
//! step and EMA update; a non-finite loss or gradient skips the step.

use tch::{Device, Kind, Tensor};

use crate::detector::model::{EfficientDet, TrainModes};
use crate::detector::train::assign::{assign, pad_ground_truth};
use crate::detector::train::autocast::autocast;
use crate::detector::train::config::{LossParams, TrainConfig};
use crate::detector::train::data::Batch;
use crate::detector::train::ema::Ema;
use crate::detector::train::grad_scaler::{GradScaler, ScaledStep};
use crate::detector::train::loss::detection_loss;
use crate::detector::train::optimizer::Optimizer;

/// Result of one attempted step.
pub(super) enum StepOutcome {
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

/// What one step reads: the network, the batch and the run's settings.
pub(super) struct StepInputs<'a> {
    pub(super) model: &'a EfficientDet,
    pub(super) batch: &'a Batch,
    pub(super) size: u32,
    pub(super) device: Device,
    pub(super) modes: TrainModes,
    /// The anchors `[N, 4]` (y1, x1, y2, x2) on the device.
    pub(super) anchors_t: &'a Tensor,
    /// The number of classes.
    pub(super) nc: i64,
    pub(super) loss_params: &'a LossParams,
    pub(super) cfg: &'a TrainConfig,
    /// The learning rate of this step.
    pub(super) lr: f64,
}

/// Runs one step on `inputs.batch` (not empty). Mixed precision is on when `scaler` is.
pub(super) fn train_step(
    inputs: &StepInputs,
    opt: &mut Optimizer,
    scaler: &mut Option<GradScaler>,
    ema: &mut Option<Ema>,
) -> StepOutcome {
    let StepInputs {
        model,
        batch,
        size,
        device,
        modes,
        anchors_t,
        nc,
        loss_params,
        cfg,
        lr,
    } = *inputs;
    let b = batch.len();
    let xs = Tensor::from_slice(&batch.pixels)
        .view([b as i64, 3, size as i64, size as i64])
        .to_device(device);
    let (g, c) = pad_ground_truth(&batch.boxes, &batch.classes, device);
    let amp = scaler.is_some();
    let out = autocast(device, amp, || model.forward_modes(&xs, modes));
    let targets = tch::no_grad(|| assign(anchors_t, &g, &c, nc, loss_params));
    // The loss is always computed in float32.
    let parts = detection_loss(
        &out.classification.to_kind(Kind::Float),
        &out.regression.to_kind(Kind::Float),
        &targets,
        loss_params,
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
    let verdict = match scaler {
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
    if let Some(e) = ema {
        e.update();
    }
    StepOutcome::Done {
        loss,
        cls: parts.cls.double_value(&[]),
        // The box terms together (the GIoU one is 0 when off).
        box_loss: (&parts.box_loss + &parts.giou).double_value(&[]),
    }
}
