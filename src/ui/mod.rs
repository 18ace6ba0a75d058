//! egui drawing. Panels read `AppState` and call its actions; no file I/O happens here.

mod canvas;
pub mod colors;
mod dialogs;
mod export_dialog;
mod file_list;
mod labels_panel;
mod menu_bar;
pub mod shortcuts;
mod start_screen;
mod status_bar;

use crate::app::AppState;

/// Draws the whole window.
pub fn root(ui: &mut egui::Ui, state: &mut AppState) {
    shortcuts::handle(ui.ctx(), state);
    egui::Panel::top("menu_bar").show(ui, |ui| menu_bar::menu_bar(ui, state));
    egui::Panel::bottom("status_bar").show(ui, |ui| status_bar::status_bar(ui, state));
    if state.session.is_none() {
        egui::CentralPanel::default().show(ui, |ui| start_screen::start_screen(ui, state));
    } else {
        egui::Panel::left("file_list")
            .default_size(260.0)
            .resizable(true)
            .show(ui, |ui| file_list::file_list(ui, state));
        egui::Panel::right("labels")
            .default_size(240.0)
            .resizable(true)
            .show(ui, |ui| labels_panel::labels_panel(ui, state));
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE)
            .show(ui, |ui| canvas::canvas(ui, state));
    }
    dialogs::dialogs(ui.ctx(), state);
    export_dialog::export_dialog(ui.ctx(), state);
}
