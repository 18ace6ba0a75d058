//! What a run has reported so far, for the Train page's plots and progress line: the loss
//! and validation curves, the pace and the ETA.

use std::time::Instant;

use crate::detector::train::TrainEvent;

/// The curves the panel plots, as `[x, y]` points.
#[derive(Clone, Debug, Default)]
pub struct TrainingHistory {
    /// x: fractional epoch (`epoch - 1 + step / steps_per_epoch`).
    pub loss: Vec<[f64; 2]>,
    pub cls: Vec<[f64; 2]>,
    pub box_loss: Vec<[f64; 2]>,
    /// x: epoch.
    pub val_ap: Vec<[f64; 2]>,
    pub val_ap50: Vec<[f64; 2]>,
    /// The starting weights' validation AP (runs with `validate_first`).
    pub baseline_ap: Option<f64>,
    pub images_per_sec: f64,
    pub epoch: usize,
    pub epochs: usize,
    pub step: usize,
    pub steps_per_epoch: usize,
    pub device: String,
    /// Steps done in this process and when the first one was seen, for the ETA.
    steps_done: usize,
    first_step_at: Option<Instant>,
}

impl TrainingHistory {
    /// Seconds left at the pace of this process's steps so far.
    pub fn eta_seconds(&self) -> Option<f64> {
        let started = self.first_step_at?;
        if self.steps_done < 2 || self.steps_per_epoch == 0 {
            return None;
        }
        let total = self.epochs * self.steps_per_epoch;
        let done = (self.epoch.saturating_sub(1)) * self.steps_per_epoch + self.step;
        let per_step = started.elapsed().as_secs_f64() / (self.steps_done - 1) as f64;
        Some(total.saturating_sub(done) as f64 * per_step)
    }

    pub(super) fn record(&mut self, e: &TrainEvent) {
        match e {
            TrainEvent::Started {
                device,
                steps_per_epoch,
                config,
                start_epoch,
                ..
            } => {
                self.device = device.clone();
                self.steps_per_epoch = *steps_per_epoch;
                self.epochs = config.epochs;
                self.epoch = *start_epoch;
            }
            TrainEvent::Step {
                epoch,
                step,
                steps_per_epoch,
                loss,
                cls,
                box_loss,
                images_per_sec,
                ..
            } => {
                let x = (*epoch as f64 - 1.0) + *step as f64 / (*steps_per_epoch).max(1) as f64;
                self.loss.push([x, *loss]);
                self.cls.push([x, *cls]);
                self.box_loss.push([x, *box_loss]);
                self.images_per_sec = *images_per_sec;
                (self.epoch, self.step) = (*epoch, *step);
                self.steps_done += 1;
                self.first_step_at.get_or_insert_with(Instant::now);
            }
            TrainEvent::Epoch {
                epoch,
                val: Some(v),
                ..
            } => {
                self.val_ap.push([*epoch as f64, v.ap]);
                self.val_ap50.push([*epoch as f64, v.ap50]);
            }
            TrainEvent::Baseline { val } => self.baseline_ap = Some(val.ap),
            _ => {}
        }
    }
}
