//! egui drawing. Panels read the [`AppState`], change only the window's [`UiState`], and
//! return [`Command`]s for everything else; no file I/O happens here.

mod box_labels;
mod canvas;
pub mod colors;
mod dialogs;
mod evaluation_page;
mod export_dialog;
mod extract_dialog;
mod file_browser;
mod file_list;
mod gallery;
mod label_picker;
mod labels_panel;
mod menu_bar;
mod review_panel;
pub mod shortcuts;
mod start_screen;
mod status_bar;
mod training_panel;

use crate::app::{AppState, Command, Page, Tool, UiState};

/// Draws the whole window; returns what the user asked for, to apply with
/// [`AppState::apply_all`].
#[must_use]
pub fn root(ui: &mut egui::Ui, state: &mut AppState) -> Vec<Command> {
    // The panels get the state read-only and the window state to change: the window
    // state is taken out while they draw.
    let mut ui_state = std::mem::take(&mut state.ui);
    let mut out = Vec::new();
    draw(ui, state, &mut ui_state, &mut out);
    state.ui = ui_state;
    out
}

fn draw(ui: &mut egui::Ui, state: &AppState, ui_state: &mut UiState, out: &mut Vec<Command>) {
    // Ctrl+plus / minus zoom the image (shortcuts.rs), never the whole interface.
    ui.ctx().options_mut(|o| o.zoom_with_keyboard = false);
    // The crop gallery, when shown, takes Ctrl+A, the class keys and Esc first.
    if ui_state.pending_label.is_none() && ui_state.unsaved_prompt.is_none() {
        gallery::gallery_keys(ui.ctx(), state, out);
    }
    shortcuts::handle(ui.ctx(), state, ui_state, out);
    egui::Panel::top("menu_bar").show(ui, |ui| menu_bar::menu_bar(ui, state, ui_state, out));
    egui::Panel::bottom("status_bar").show(ui, |ui| status_bar::status_bar(ui, state, ui_state));
    if state.workspace.session.is_none() {
        egui::CentralPanel::default().show(ui, |ui| start_screen::start_screen(ui, state, out));
    } else {
        egui::Panel::left("file_list")
            .default_size(260.0)
            .resizable(true)
            .show(ui, |ui| file_list::file_list(ui, state, ui_state, out));
        if !ui_state.labels_panel_hidden {
            egui::Panel::right("labels")
                .default_size(260.0)
                .resizable(true)
                .show(ui, |ui| {
                    // The classes and boxes above keep at least a third of the height
                    // (they scroll when that is too little).
                    let height = ui.available_height();
                    egui::Panel::bottom("review")
                        .resizable(true)
                        .default_size(420.0f32.min(height * 0.5))
                        .min_size(240.0f32.min(height * 0.4))
                        .max_size((height * 0.67).max(240.0))
                        .show(ui, |ui| {
                            egui::ScrollArea::vertical()
                                .id_salt("review_scroll")
                                .auto_shrink(false)
                                .show(ui, |ui| {
                                    review_panel::review_panel(ui, state, ui_state, out)
                                });
                        });
                    egui::ScrollArea::vertical()
                        .id_salt("labels_scroll")
                        .auto_shrink(false)
                        .show(ui, |ui| {
                            labels_panel::labels_panel(ui, state, ui_state, out)
                        });
                });
        }
        egui::Panel::top("pages").show(ui, |ui| page_tabs(ui, state, ui_state, out));
        match ui_state.page {
            Page::Label => {
                egui::CentralPanel::default()
                    .frame(egui::Frame::NONE)
                    .show(ui, |ui| canvas::canvas(ui, state, ui_state, out));
            }
            Page::Evaluate => {
                egui::CentralPanel::default()
                    .show(ui, |ui| evaluation_page::evaluation_page(ui, state, out));
            }
            Page::Train => {
                egui::CentralPanel::default().show(ui, |ui| {
                    training_panel::training_panel(ui, state, ui_state, out)
                });
            }
        }
    }
    dialogs::dialogs(ui.ctx(), state, ui_state, out);
    dialogs::shortcuts_window(ui.ctx(), ui_state);
    window_title(ui.ctx(), state, ui_state);
    export_dialog::export_dialog(ui.ctx(), state, ui_state, out);
    extract_dialog::extract_dialog(ui.ctx(), state, ui_state, out);
    gallery::gallery_window(ui.ctx(), state, out);
}

/// The window title names the image and the image zoom (as the status bar does), so
/// that window tools see them too.
fn window_title(ctx: &egui::Context, state: &AppState, ui_state: &mut UiState) {
    let title = match state.current_path() {
        Some(p) => format!(
            "detlab — {} — zoom {:.0} %",
            p.file_name().unwrap_or_default().to_string_lossy(),
            ui_state.view.zoom * 100.0
        ),
        None => "detlab".to_string(),
    };
    if title != ui_state.window_title {
        ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
        ui_state.window_title = title;
    }
}

fn page_tabs(ui: &mut egui::Ui, state: &AppState, ui_state: &mut UiState, out: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        ui.selectable_value(&mut ui_state.page, Page::Label, "Label & review");
        ui.selectable_value(&mut ui_state.page, Page::Evaluate, "Evaluate");
        let training = state
            .training
            .as_ref()
            .is_some_and(|r| r.status.is_active());
        let train = if training { "Train (running)" } else { "Train" };
        ui.selectable_value(&mut ui_state.page, Page::Train, train);
        ui.separator();
        let drawing = ui_state.tool == Tool::Draw;
        if ui
            .selectable_label(drawing && !ui_state.continuous, "Draw box (w)")
            .on_hover_text("drag to draw; a click boxes the object under it")
            .clicked()
        {
            ui_state.tool = Tool::Draw;
            ui_state.continuous = false;
        }
        if ui
            .selectable_label(ui_state.continuous, "Keep drawing (Ctrl+Shift+A)")
            .on_hover_text("every drag (or click) draws a box; Esc or e leaves")
            .clicked()
        {
            ui_state.continuous = !ui_state.continuous;
            ui_state.tool = if ui_state.continuous {
                Tool::Draw
            } else {
                Tool::Edit
            };
        }
        if ui.selectable_label(!drawing, "Edit (e)").clicked() {
            ui_state.tool = Tool::Edit;
            ui_state.continuous = false;
        }
        let selected =
            !crate::app::editing::selection_of(state.workspace.doc.as_ref(), ui_state).is_empty();
        let labelled = state
            .workspace
            .doc
            .as_ref()
            .is_some_and(|d| !d.annotation.boxes.is_empty());
        let assistants = [
            (
                selected,
                "Tighten (t)",
                "snap the selected boxes to the object's edges",
                Command::TightenSelected,
            ),
            (
                selected,
                "Similar (f)",
                "find similar: propose every facing like the selected box, to review with Tab / Enter / Del",
                Command::FindSimilar,
            ),
            (
                labelled,
                "Known (k)",
                "find known products: propose every facing like the products labelled on this photo, each with its class",
                Command::FindKnown,
            ),
        ];
        let busy = state.assist.busy();
        for (enabled, text, hover, command) in assistants {
            if ui
                .add_enabled(enabled && !busy, egui::Button::new(text))
                .on_hover_text(hover)
                .clicked()
            {
                out.push(command);
            }
        }
    });
}
