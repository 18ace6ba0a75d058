//! The menu bar.

use crate::app::jobs::PickPurpose;
use crate::app::{AppState, Command, Fit, Tool, UiState};
use crate::dataset::LabelFormat;

pub fn menu_bar(
    ui: &mut egui::Ui,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui.button("Open Dir…  (Ctrl+U)").clicked() {
                out.push(Command::Pick(PickPurpose::OpenFolder));
            }
            if ui.button("Open File…  (Ctrl+O)").clicked() {
                out.push(Command::Pick(PickPurpose::OpenFile));
            }
            if ui.button("Change Save Dir…  (Ctrl+R)").clicked() {
                out.push(Command::Pick(PickPurpose::SaveDir));
            }
            ui.menu_button("Recent folders", |ui| {
                for folder in &state.settings.recent_folders {
                    if ui.button(folder.display().to_string()).clicked() {
                        out.push(Command::OpenFolder(folder.clone()));
                    }
                }
            });
            ui.separator();
            if ui.button("Save  (Ctrl+S)").clicked() {
                out.push(Command::Save);
            }
            ui.menu_button("Save format  (Ctrl+Y cycles)", |ui| {
                for f in LabelFormat::ALL {
                    if ui.radio(state.settings.format == f, f.name()).clicked() {
                        out.push(Command::SetFormat(f));
                    }
                }
            });
            let mut autosave = state.settings.autosave;
            if ui.checkbox(&mut autosave, "Autosave").changed() {
                out.push(Command::SetAutosave(autosave));
            }
            ui.separator();
            if ui.button("Export COCO…  (Ctrl+Shift+E)").clicked() {
                out.push(Command::OpenExportDialog);
            }
            if ui.button("Create demo dataset…").clicked() {
                out.push(Command::Pick(PickPurpose::DemoFolder));
            }
            if ui.button("Create dense shelf demo…").clicked() {
                out.push(Command::Pick(PickPurpose::DenseDemoFolder));
            }
            if ui.button("Extract frames…").clicked() {
                out.push(Command::Pick(PickPurpose::VideoFile));
            }
            if let Some(path) = state.current_path() {
                if ui.button("Move image to trash…  (Ctrl+Shift+D)").clicked() {
                    ui_state.confirm_delete = Some(path);
                }
            }
            ui.separator();
            if ui.button("Quit").clicked() {
                ui.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        });
        ui.menu_button("Edit", |ui| {
            if ui.button("Undo  (Ctrl+Z)").clicked() {
                out.push(Command::Undo);
            }
            if ui.button("Redo  (Ctrl+Shift+Z)").clicked() {
                out.push(Command::Redo);
            }
            if ui.button("Duplicate box  (Ctrl+D)").clicked() {
                out.push(Command::DuplicateSelected);
            }
            if ui.button("Copy previous image's boxes  (Ctrl+V)").clicked() {
                out.push(Command::CopyPreviousBoxes);
            }
            if ui.button("Edit label…  (Ctrl+E)").clicked() {
                out.push(Command::EditLabel);
            }
            if ui.button("Delete selected boxes  (Del)").clicked() {
                out.push(Command::DeleteSelected);
            }
            ui.separator();
            let mut squares = state.settings.draw_squares;
            if ui
                .checkbox(&mut squares, "Draw squares  (Ctrl+Shift+R)")
                .changed()
            {
                out.push(Command::SetDrawSquares(squares));
            }
            if ui
                .checkbox(
                    &mut ui_state.continuous,
                    "Continuous drawing  (Ctrl+Shift+A)",
                )
                .changed()
            {
                ui_state.tool = if ui_state.continuous {
                    Tool::Draw
                } else {
                    Tool::Edit
                };
            }
            let mut single = state.settings.single_class_mode;
            if ui
                .checkbox(&mut single, "Single class mode (no label dialog)")
                .changed()
            {
                out.push(Command::SetSingleClassMode(single));
            }
        });
        ui.menu_button("View", |ui| {
            let view = &mut ui_state.view;
            if ui.button("Fit window  (Ctrl+F)").clicked() {
                view.fit = Fit::Window;
            }
            if ui.button("Fit width  (Ctrl+Shift+F)").clicked() {
                view.fit = Fit::Width;
            }
            if ui.button("100 %  (Ctrl+0)").clicked() {
                view.fit = Fit::Manual;
                view.zoom = 1.0;
            }
            ui.add(egui::Slider::new(&mut view.brightness, -1.0..=1.0).text("Brightness"));
            let mut show = state.settings.show_box_labels;
            if ui
                .checkbox(&mut show, "Show labels on boxes  (Ctrl+Shift+P)")
                .changed()
            {
                out.push(Command::SetShowBoxLabels(show));
            }
            ui.separator();
            if ui
                .add_enabled(
                    state.workspace.session.is_some(),
                    egui::Button::new("Crop gallery  (Ctrl+G)"),
                )
                .clicked()
            {
                out.push(Command::Gallery(crate::app::gallery::GalleryAction::Open));
            }
        });
        ui.menu_button("Help", |ui| {
            ui.label(format!("detlab {}", env!("CARGO_PKG_VERSION")));
            ui.separator();
            if ui.button("Keyboard shortcuts  (F1)").clicked() {
                ui_state.show_shortcuts = true;
            }
        });
    });
}
