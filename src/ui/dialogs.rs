//! Small modal windows: the label picker, detlab's own file dialog, unsaved changes,
//! image deletion, errors.

use crate::app::{AppState, Command, UiState};

pub fn dialogs(
    ctx: &egui::Context,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    label_picker(ctx, state, ui_state, out);
    super::file_browser::file_browser(ctx, ui_state, out);
    unsaved_prompt(ctx, ui_state, out);
    confirm_delete(ctx, ui_state, out);
    if let Some(error) = &state.error {
        egui::Window::new("Problem")
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                ui.label(error);
                if ui.button("OK").clicked() {
                    out.push(Command::DismissError);
                }
            });
    }
}

fn label_picker(
    ctx: &egui::Context,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    let Some(pending) = &mut ui_state.pending_label else {
        return;
    };
    let mut accept: Option<String> = None;
    let mut cancel = false;
    // Next to the box: right of its top-right corner (the window keeps itself on screen).
    let view = &ui_state.view;
    let beside = view.origin
        + egui::vec2(
            pending.bbox.x2 as f32 * view.zoom + 12.0,
            pending.bbox.y1 as f32 * view.zoom,
        );
    egui::Window::new("Label")
        .collapsible(false)
        .resizable(false)
        .current_pos(beside)
        .constrain(true)
        .show(ctx, |ui| {
            let edit = ui.add(
                egui::TextEdit::singleline(&mut pending.text)
                    .hint_text("class name")
                    .id_salt("label_text"),
            );
            edit.request_focus();
            let filter = pending.text.trim().to_lowercase();
            let names: Vec<&String> = state
                .workspace
                .classes
                .names()
                .iter()
                .filter(|n| n.to_lowercase().contains(&filter))
                .collect();
            egui::ScrollArea::vertical()
                .max_height(200.0)
                .show(ui, |ui| {
                    for (i, n) in names.iter().enumerate() {
                        let key = if i < 9 {
                            format!("{} ", i + 1)
                        } else {
                            String::new()
                        };
                        if ui.selectable_label(false, format!("{key}{n}")).clicked() {
                            accept = Some((*n).clone());
                        }
                    }
                });
            ui.horizontal(|ui| {
                if ui.button("OK").clicked() {
                    accept = Some(pending.text.clone());
                }
                if ui.button("Cancel").clicked() {
                    cancel = true;
                }
            });
            if ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                // Enter takes the typed name, or the only/first match of a partial name.
                let typed = pending.text.trim().to_string();
                let exact = names.iter().any(|n| **n == typed);
                accept = Some(if exact || names.is_empty() {
                    typed
                } else {
                    names[0].clone()
                });
            }
            if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
                cancel = true;
            }
        });
    if let Some(label) = accept.filter(|l| !l.trim().is_empty()) {
        let bbox = pending.bbox;
        ui_state.pending_label = None;
        out.push(Command::AddBox { bbox, label });
    } else if cancel {
        ui_state.pending_label = None;
    }
}

fn unsaved_prompt(ctx: &egui::Context, ui_state: &mut UiState, out: &mut Vec<Command>) {
    if ui_state.unsaved_prompt.is_none() {
        return;
    }
    egui::Window::new("Unsaved changes")
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
            ui.label("This image has unsaved changes.");
            ui.horizontal(|ui| {
                if ui.button("Save").clicked() {
                    out.push(Command::AnswerPrompt { save: true });
                }
                if ui.button("Discard").clicked() {
                    out.push(Command::AnswerPrompt { save: false });
                }
                if ui.button("Cancel").clicked() {
                    ui_state.unsaved_prompt = None;
                }
            });
        });
}

fn confirm_delete(ctx: &egui::Context, ui_state: &mut UiState, out: &mut Vec<Command>) {
    let Some(path) = ui_state.confirm_delete.clone() else {
        return;
    };
    egui::Window::new("Move image to trash")
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
            ui.label(format!(
                "Move {} to the system trash? Its label file stays.",
                path.display()
            ));
            ui.horizontal(|ui| {
                if ui.button("Move to trash").clicked() {
                    ui_state.confirm_delete = None;
                    out.push(Command::DeleteImage(path.clone()));
                }
                if ui.button("Cancel").clicked() {
                    ui_state.confirm_delete = None;
                }
            });
        });
}
