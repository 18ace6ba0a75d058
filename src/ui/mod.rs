//! egui drawing. Panels read `AppState` and call its actions; no file I/O happens here.

mod canvas;
pub mod colors;
mod dialogs;
mod evaluation_page;
mod export_dialog;
mod file_browser;
mod file_list;
mod labels_panel;
mod menu_bar;
mod review_panel;
pub mod shortcuts;
mod start_screen;
mod status_bar;
mod training_panel;

use crate::app::{AppState, Page};

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
            .default_size(260.0)
            .resizable(true)
            .show(ui, |ui| {
                egui::Panel::bottom("review")
                    .resizable(true)
                    .default_size(420.0)
                    .min_size(240.0)
                    .show(ui, |ui| {
                        egui::ScrollArea::vertical()
                            .id_salt("review_scroll")
                            .auto_shrink(false)
                            .show(ui, |ui| review_panel::review_panel(ui, state));
                    });
                labels_panel::labels_panel(ui, state);
            });
        egui::Panel::top("pages").show(ui, |ui| page_tabs(ui, state));
        match state.page {
            Page::Label => {
                egui::CentralPanel::default()
                    .frame(egui::Frame::NONE)
                    .show(ui, |ui| canvas::canvas(ui, state));
            }
            Page::Evaluate => {
                egui::CentralPanel::default()
                    .show(ui, |ui| evaluation_page::evaluation_page(ui, state));
            }
            Page::Train => {
                egui::CentralPanel::default()
                    .show(ui, |ui| training_panel::training_panel(ui, state));
            }
        }
    }
    dialogs::dialogs(ui.ctx(), state);
    export_dialog::export_dialog(ui.ctx(), state);
}

fn page_tabs(ui: &mut egui::Ui, state: &mut AppState) {
    ui.horizontal(|ui| {
        ui.selectable_value(&mut state.page, Page::Label, "Label & review");
        ui.selectable_value(&mut state.page, Page::Evaluate, "Evaluate");
        let training = state
            .training
            .as_ref()
            .is_some_and(|r| r.status.is_active());
        let train = if training { "Train (running)" } else { "Train" };
        ui.selectable_value(&mut state.page, Page::Train, train);
    });
}
