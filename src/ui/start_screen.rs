//! What the app shows before a folder is open.

use crate::app::jobs::PickPurpose;
use crate::app::{AppState, Command};

pub fn start_screen(ui: &mut egui::Ui, state: &AppState, out: &mut Vec<Command>) {
    ui.vertical_centered(|ui| {
        ui.add_space(60.0);
        ui.heading("detlab");
        ui.label("Label product photos, export COCO, train and review detectors.");
        ui.add_space(20.0);
        if ui.button("Open folder…").clicked() {
            out.push(Command::Pick(PickPurpose::OpenFolder));
        }
        if state.jobs.demo.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("creating the demo dataset…");
            });
        } else {
            if ui.button("Create and open the demo dataset…").clicked() {
                out.push(Command::Pick(PickPurpose::DemoFolder));
            }
            if ui
                .button("Create and open a dense shelf demo…")
                .on_hover_text(
                    "20 shelf photos of 3500 × 2600 with 80–250 touching facings of 40 \
                     similar products each (about a minute)",
                )
                .clicked()
            {
                out.push(Command::Pick(PickPurpose::DenseDemoFolder));
            }
        }
        ui.label("…or drop a folder or an image on this window.");
        if !state.settings.recent_folders.is_empty() {
            ui.add_space(20.0);
            ui.label("Recent folders");
            for folder in &state.settings.recent_folders {
                if ui.link(folder.display().to_string()).clicked() {
                    out.push(Command::OpenFolder(folder.clone()));
                }
            }
        }
    });
}
