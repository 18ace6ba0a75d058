//! The menu bar.

use crate::app::jobs::PickPurpose;
use crate::app::AppState;
use crate::dataset::LabelFormat;

pub fn menu_bar(ui: &mut egui::Ui, state: &mut AppState) {
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui.button("Open Dir…  (Ctrl+U)").clicked() {
                state.pick(PickPurpose::OpenFolder);
            }
            if ui.button("Open File…  (Ctrl+O)").clicked() {
                state.pick(PickPurpose::OpenFile);
            }
            if ui.button("Change Save Dir…  (Ctrl+R)").clicked() {
                state.pick(PickPurpose::SaveDir);
            }
            ui.menu_button("Recent folders", |ui| {
                for folder in state.settings.recent_folders.clone() {
                    if ui.button(folder.display().to_string()).clicked() {
                        state.request_open_folder(folder, state.ctx.clone());
                    }
                }
            });
            ui.separator();
            if ui.button("Save  (Ctrl+S)").clicked() {
                state.save();
            }
            ui.menu_button("Save format", |ui| {
                for f in LabelFormat::ALL {
                    if ui.radio(state.settings.format == f, f.name()).clicked() {
                        state.set_format(f);
                    }
                }
            });
            if ui
                .checkbox(&mut state.settings.autosave, "Autosave")
                .changed()
            {
                state.save_settings();
            }
            ui.separator();
            if ui.button("Export COCO…  (Ctrl+E)").clicked() {
                state.open_export_dialog();
            }
            if ui.button("Create demo dataset…").clicked() {
                state.pick(PickPurpose::DemoFolder);
            }
            if let Some(path) = state.current_path() {
                if ui.button("Move image to trash…").clicked() {
                    state.confirm_delete = Some(path);
                }
            }
            ui.separator();
            if ui.button("Quit").clicked() {
                ui.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        });
        ui.menu_button("Edit", |ui| {
            if ui.button("Undo  (Ctrl+Z)").clicked() {
                state.undo();
            }
            if ui.button("Redo  (Ctrl+Shift+Z)").clicked() {
                state.redo();
            }
            if ui.button("Duplicate box  (Ctrl+D)").clicked() {
                state.duplicate_selected();
            }
            if ui.button("Copy previous image's boxes  (Ctrl+V)").clicked() {
                state.copy_previous_boxes();
            }
            if ui.button("Delete box  (Del)").clicked() {
                state.delete_selected();
            }
            if ui
                .checkbox(
                    &mut state.settings.single_class_mode,
                    "Single class mode (no label dialog)",
                )
                .changed()
            {
                state.save_settings();
            }
        });
        ui.menu_button("View", |ui| {
            if ui.button("Fit window  (Ctrl+F)").clicked() {
                state.view.fit = crate::app::Fit::Window;
            }
            if ui.button("Fit width  (Ctrl+Shift+F)").clicked() {
                state.view.fit = crate::app::Fit::Width;
            }
            if ui.button("100 %  (Ctrl+0)").clicked() {
                state.view.fit = crate::app::Fit::Manual;
                state.view.zoom = 1.0;
            }
            ui.add(egui::Slider::new(&mut state.view.brightness, -1.0..=1.0).text("Brightness"));
            ui.checkbox(&mut state.settings.show_box_labels, "Show labels on boxes");
        });
        ui.menu_button("Help", |ui| {
            ui.label(format!("detlab {}", env!("CARGO_PKG_VERSION")));
            ui.separator();
            egui::Grid::new("keys").striped(true).show(ui, |ui| {
                for (k, v) in super::shortcuts::HELP {
                    ui.monospace(*k);
                    ui.label(*v);
                    ui.end_row();
                }
            });
        });
    });
}
