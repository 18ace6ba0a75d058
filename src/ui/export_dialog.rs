//! The Export COCO dialog: split, layout, output folder, progress and the result.

use crate::app::jobs::PickPurpose;
use crate::app::ui_state::SplitChoice;
use crate::app::{AppState, Command, UiState};

pub fn export_dialog(
    ctx: &egui::Context,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    if ui_state.export_form.is_none() {
        return;
    }
    let mut open = true;
    let mut start = false;
    let mut browse = false;
    egui::Window::new("Export COCO")
        .open(&mut open)
        .collapsible(false)
        .show(ctx, |ui| {
            let running = state.jobs.export.is_some();
            let Some(form) = &mut ui_state.export_form else {
                return;
            };
            ui.add_enabled_ui(!running, |ui| {
                ui.label("Split");
                ui.radio_value(&mut form.split, SplitChoice::None, "everything in train");
                ui.horizontal(|ui| {
                    ui.radio_value(&mut form.split, SplitChoice::Fraction, "val fraction");
                    ui.add(
                        egui::DragValue::new(&mut form.val_fraction)
                            .range(0.0..=1.0)
                            .speed(0.01),
                    );
                    ui.label("seed");
                    ui.add(egui::DragValue::new(&mut form.seed));
                });
                ui.radio_value(
                    &mut form.split,
                    SplitChoice::ByFolder,
                    "by sub-folder (train/, val/, …)",
                );
                ui.separator();
                ui.checkbox(
                    &mut form.zylo117,
                    "Zylo117 EfficientDet layout (datasets/ + projects/NAME.yml)",
                );
                if form.zylo117 {
                    ui.horizontal(|ui| {
                        ui.label("project");
                        ui.text_edit_singleline(&mut form.project);
                    });
                }
                ui.checkbox(
                    &mut form.difficult_as_crowd,
                    "difficult boxes as iscrowd (ignored by evaluation)",
                );
                ui.horizontal(|ui| {
                    ui.label("Output folder");
                    ui.text_edit_singleline(&mut form.out_dir);
                    if ui.button("Browse…").clicked() {
                        browse = true;
                    }
                });
                if ui.button("Export").clicked() {
                    start = true;
                }
            });
            if let Some(job) = &state.jobs.export {
                ui.add(egui::ProgressBar::new(job.fraction()).show_percentage());
            }
            match &state.jobs.export_result {
                Some(Ok(summary)) => {
                    ui.separator();
                    ui.label("Done.");
                    egui::ScrollArea::vertical()
                        .max_height(240.0)
                        .show(ui, |ui| ui.monospace(summary.report()));
                }
                Some(Err(e)) => {
                    ui.colored_label(
                        egui::Color32::from_rgb(255, 110, 90),
                        format!("Export failed: {e}"),
                    );
                }
                None => {}
            }
        });
    if browse {
        out.push(Command::Pick(PickPurpose::ExportFolder));
    }
    if start {
        out.push(Command::StartExport);
    }
    if !open {
        ui_state.export_form = None;
    }
}
