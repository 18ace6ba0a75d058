//! Small modal windows: detlab's own file dialog, unsaved changes, image deletion,
//! conflicts, errors (the label picker is [`super::label_picker`]).

use crate::app::{AppState, Command, UiState};

pub fn dialogs(
    ctx: &egui::Context,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    super::label_picker::label_picker(ctx, state, ui_state, out);
    super::file_browser::file_browser(ctx, ui_state, out);
    unsaved_prompt(ctx, ui_state, out);
    confirm_delete(ctx, ui_state, out);
    conflicts(ctx, state, out);
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

/// Saves that met someone else's conflicting changes: keep mine, or take theirs.
fn conflicts(ctx: &egui::Context, state: &AppState, out: &mut Vec<Command>) {
    let list = &state.workspace.conflicts;
    if list.is_empty() {
        return;
    }
    egui::Window::new("Changed by someone else")
        .collapsible(false)
        .resizable(true)
        .show(ctx, |ui| {
            ui.label(
                "Someone else changed the same boxes. Your version is saved; theirs is kept \
                 beside it until you choose.",
            );
            for (index, c) in list.iter().enumerate() {
                ui.separator();
                ui.label(c.label.display().to_string());
                for d in &c.details {
                    ui.label(egui::RichText::new(d).small());
                }
                ui.horizontal(|ui| {
                    if ui.button("Keep mine").clicked() {
                        out.push(Command::ResolveConflict {
                            index,
                            take_theirs: false,
                        });
                    }
                    if ui
                        .button("Take theirs")
                        .on_hover_text(c.theirs.display().to_string())
                        .clicked()
                    {
                        out.push(Command::ResolveConflict {
                            index,
                            take_theirs: true,
                        });
                    }
                });
            }
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

/// Help → Keyboard shortcuts (F1): the table of [`super::shortcuts::SHORTCUTS`].
pub fn shortcuts_window(ctx: &egui::Context, ui_state: &mut UiState) {
    egui::Window::new("Keyboard shortcuts")
        .open(&mut ui_state.show_shortcuts)
        .collapsible(false)
        .default_height(520.0)
        .show(ctx, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                egui::Grid::new("keys").striped(true).show(ui, |ui| {
                    for r in super::shortcuts::SHORTCUTS {
                        ui.monospace(r.keys);
                        ui.label(r.does);
                        ui.end_row();
                    }
                });
            });
        });
}
