//! The Train page: settings, Start / Stop / Resume, live loss and AP plots, the event log.

use egui_plot::{Legend, Line, Plot};

use crate::app::training::{RunStatus, TrainingForm, MAX_FOLDS};
use crate::app::{AppState, Command, UiState};
use crate::detector::train::{DeviceChoice, TrainConfig};

const ARCHES: [&str; 5] = ["lite0", "d0", "d1", "d2", "d3"];

pub fn training_panel(
    ui: &mut egui::Ui,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    egui::ScrollArea::vertical().show(ui, |ui| {
        ui.heading("Train a detector on these labels");
        let running = state
            .training
            .as_ref()
            .is_some_and(|r| r.status.is_active());
        ui.add_enabled_ui(!running, |ui| settings(ui, &mut ui_state.training_form));
        ui.add_space(6.0);
        controls(ui, state, running, out);
        if let Some(run) = &state.training {
            ui.separator();
            plots(ui, run);
            ui.collapsing("Log", |ui| {
                for line in run.log.iter().rev().take(200) {
                    ui.label(egui::RichText::new(line).monospace());
                }
            });
        }
    });
}

fn settings(ui: &mut egui::Ui, f: &mut TrainingForm) {
    egui::Grid::new("train_settings")
        .num_columns(4)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            ui.label("Model");
            egui::ComboBox::from_id_salt("train_arch")
                .selected_text(&f.arch)
                .show_ui(ui, |ui| {
                    for a in ARCHES {
                        if ui.selectable_value(&mut f.arch, a.to_string(), a).changed() {
                            f.input_size = a
                                .parse::<crate::detector::checkpoint::ModelArch>()
                                .map_or(f.input_size, TrainConfig::recommended_input_size);
                        }
                    }
                });
            ui.label("Input size");
            ui.add(
                egui::DragValue::new(&mut f.input_size)
                    .range(64..=1536)
                    .speed(8.0),
            );
            ui.end_row();

            ui.label("Epochs");
            ui.add(egui::DragValue::new(&mut f.epochs).range(1..=1000));
            ui.label("Batch");
            ui.add(egui::DragValue::new(&mut f.batch_size).range(1..=256));
            ui.end_row();

            ui.label("Learning rate");
            ui.add(
                egui::DragValue::new(&mut f.lr)
                    .range(1e-6..=1.0)
                    .speed(1e-5)
                    .max_decimals(6),
            );
            ui.label("Device");
            ui.horizontal(|ui| {
                egui::ComboBox::from_id_salt("train_device")
                    .selected_text(f.device.to_string())
                    .show_ui(ui, |ui| {
                        let cuda = match f.device {
                            DeviceChoice::Cuda(n) => DeviceChoice::Cuda(n),
                            _ => DeviceChoice::Cuda(0),
                        };
                        for d in [DeviceChoice::Auto, DeviceChoice::Cpu, cuda] {
                            ui.selectable_value(&mut f.device, d, d.to_string());
                        }
                    });
                if let DeviceChoice::Cuda(n) = &mut f.device {
                    ui.add(egui::DragValue::new(n).range(0..=15).prefix("GPU "))
                        .on_hover_text("which CUDA device (cuda:N)");
                }
                ui.add_enabled(
                    f.device != DeviceChoice::Cpu,
                    egui::Checkbox::new(&mut f.mixed_precision, "mixed precision"),
                )
                .on_hover_text("Float16 autocast with loss scaling; CUDA only");
            });
            ui.end_row();

            ui.label("Threads (0 = all)");
            ui.add(egui::DragValue::new(&mut f.threads).range(0..=256));
            ui.label("Validation fraction");
            ui.add(
                egui::DragValue::new(&mut f.val_fraction)
                    .range(0.0..=0.5)
                    .speed(0.01),
            );
            ui.end_row();

            ui.label("Flip probability");
            ui.add(egui::Slider::new(&mut f.augment.hflip, 0.0..=1.0));
            ui.label("Colour jitter");
            ui.add(egui::Slider::new(&mut f.augment.color, 0.0..=0.5));
            ui.end_row();

            ui.label("Rotation (± degrees)");
            ui.add(egui::Slider::new(&mut f.augment.rotate_deg, 0.0..=15.0))
                .on_hover_text("Small random rotations of the training images (0 = off)");
            ui.label("Mosaic probability");
            ui.add(egui::Slider::new(&mut f.augment.mosaic, 0.0..=1.0))
                .on_hover_text("Four training images in the quadrants of one input (0 = off)");
            ui.end_row();

            ui.label("Copy-paste probability");
            ui.add(egui::Slider::new(&mut f.augment.copy_paste, 0.0..=1.0))
                .on_hover_text("Paste labelled boxes cut from other training images (0 = off)");
            ui.label("Pasted boxes (most)");
            ui.add(egui::DragValue::new(&mut f.augment.copy_paste_max).range(1..=20));
            ui.end_row();

            ui.label("Scale jitter");
            ui.horizontal(|ui| {
                ui.add(
                    egui::DragValue::new(&mut f.augment.scale_min)
                        .range(0.3..=1.0)
                        .speed(0.01),
                );
                ui.label("–");
                ui.add(
                    egui::DragValue::new(&mut f.augment.scale_max)
                        .range(1.0..=3.0)
                        .speed(0.01),
                );
            });
            ui.label("Frozen-backbone epochs");
            ui.add(egui::DragValue::new(&mut f.freeze_backbone_epochs).range(0..=100));
            ui.end_row();

            ui.checkbox(&mut f.ema, "EMA of weights");
            ui.checkbox(&mut f.fit_anchors, "Fit anchors to boxes");
            ui.checkbox(&mut f.from_scratch, "From scratch");
            ui.end_row();

            ui.checkbox(&mut f.tiles, "Tiles").on_hover_text(
                "train on windows of this many photo pixels instead of whole photos \
                     (the input size is native resolution): for small objects on large \
                     photos (shelves); the model then detects large photos in tiles of that \
                     size",
            );
            ui.add_enabled(
                f.tiles,
                egui::DragValue::new(&mut f.tile_size)
                    .range(64..=8192)
                    .suffix(" px"),
            );
            ui.label("GIoU box weight").on_hover_text(
                "adds 1 − GIoU of each predicted box and its ground truth to the loss, \
                     for tighter boxes (AP75); 0 = off, the default; 1 is the suggested value",
            );
            ui.add(
                egui::DragValue::new(&mut f.giou_weight)
                    .range(0.0..=10.0)
                    .speed(0.05),
            );
            ui.end_row();

            ui.label("Cross-validation folds").on_hover_text(
                "0 = off (a plain run). 2–10: k-fold cross-validation of these settings \
                 (as `detlab train --folds K`): trained on each fold's other images and \
                 scored on the fold, the table of AP mean ± sd in <run folder>/cv.md, then \
                 the final model on every image in <run folder>/model.safetensors",
            );
            ui.add(egui::DragValue::new(&mut f.folds).range(0..=MAX_FOLDS));
            ui.end_row();
        });
    ui.horizontal(|ui| {
        ui.label("Start weights");
        ui.add(
            egui::TextEdit::singleline(&mut f.weights)
                .hint_text("default: ImageNet backbone (Lite0)")
                .desired_width(320.0),
        );
    });
    ui.horizontal(|ui| {
        ui.label("Run folder");
        ui.add(
            egui::TextEdit::singleline(&mut f.out_dir)
                .hint_text("default: <labels>/.detlab/runs/<model>")
                .desired_width(320.0),
        );
    });
}

fn controls(ui: &mut egui::Ui, state: &AppState, running: bool, out: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        if ui
            .add_enabled(!running, egui::Button::new("Start"))
            .clicked()
        {
            out.push(Command::StartTraining { resume: false });
        }
        if ui.add_enabled(running, egui::Button::new("Stop")).clicked() {
            out.push(Command::StopTraining);
        }
        if ui
            .add_enabled(!running, egui::Button::new("Resume"))
            .on_hover_text("continue the run in the run folder from its last complete epoch")
            .clicked()
        {
            out.push(Command::StartTraining { resume: true });
        }
        let best = match state.training.as_ref().map(|r| &r.status) {
            Some(RunStatus::Finished {
                best_path: Some(p), ..
            }) => Some(p.clone()),
            _ => None,
        };
        if let Some(best) = best {
            if ui.button("Load best model for review").clicked() {
                out.push(Command::LoadModel(best));
            }
        }
    });
    let Some(run) = &state.training else {
        return;
    };
    let h = &run.history;
    let status = match &run.status {
        RunStatus::LoadingData => "loading the labels…".to_string(),
        RunStatus::Training => format!(
            "{}epoch {}/{} step {}/{} · {:.1} img/s · ETA {} · {}",
            run.cv
                .as_ref()
                .and_then(|cv| cv.stage)
                .map_or(String::new(), |stage| format!("{stage} · ")),
            h.epoch,
            h.epochs,
            h.step,
            h.steps_per_epoch,
            h.images_per_sec,
            h.eta_seconds().map_or("–".into(), format_duration),
            h.device
        ),
        RunStatus::Stopping => "stopping after this step…".into(),
        RunStatus::Finished { .. } => format!("finished — {}", run.out_dir.display()),
        RunStatus::Failed(reason) => format!("failed: {reason}"),
    };
    let color = if matches!(run.status, RunStatus::Failed(_)) {
        egui::Color32::from_rgb(230, 90, 90)
    } else {
        ui.visuals().text_color()
    };
    ui.label(egui::RichText::new(status).color(color));
    if let Some(result) = run.cv.as_ref().and_then(|cv| cv.result.as_ref()) {
        cross_validation(ui, result);
    }
}

/// A finished cross-validation: the table's mean ± sd and the files.
fn cross_validation(ui: &mut egui::Ui, r: &crate::app::training::CvResult) {
    let last = &r.cv.last;
    ui.label(format!(
        "{}-fold cross-validation (last epoch, mean ± sd): AP {} · AP50 {} · AP75 {}",
        r.cv.folds, last.ap, last.ap50, last.ap75
    ));
    ui.label(format!("table: {}", r.table.display()));
    if let Some(model) = &r.model {
        ui.label(format!("model: {}", model.display()));
    }
}

fn plots(ui: &mut egui::Ui, run: &crate::app::training::TrainingRun) {
    let h = &run.history;
    ui.label("Loss (x: epoch)");
    Plot::new("train_loss")
        .height(180.0)
        .legend(Legend::default())
        .include_y(0.0)
        .allow_scroll(false)
        .show(ui, |p| {
            p.line(Line::new("loss", h.loss.clone()));
            p.line(Line::new("class", h.cls.clone()));
            p.line(Line::new("box", h.box_loss.clone()));
        });
    ui.label("Validation AP (x: epoch)");
    Plot::new("train_ap")
        .height(160.0)
        .legend(Legend::default())
        .include_y(0.0)
        .include_y(1.0)
        .allow_scroll(false)
        .show(ui, |p| {
            p.line(Line::new("AP", h.val_ap.clone()));
            p.line(Line::new("AP50", h.val_ap50.clone()));
        });
}

fn format_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}
