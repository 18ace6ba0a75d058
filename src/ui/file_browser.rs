//! detlab's own file dialog (where no native one opens): a path field, the folder's
//! entries, Up, Open and Cancel.

use crate::app::{Command, UiState};

pub fn file_browser(ctx: &egui::Context, ui_state: &mut UiState, out: &mut Vec<Command>) {
    let Some(browser) = &mut ui_state.file_browser else {
        return;
    };
    let reading = browser.poll();
    let mut answer = None;
    let mut close = false;
    egui::Window::new(browser.purpose.title())
        .collapsible(false)
        .default_size([520.0, 420.0])
        .show(ctx, |ui| {
            ui.horizontal(|ui| {
                if ui.button("Up").clicked() {
                    browser.up();
                }
                let field = ui.add(
                    egui::TextEdit::singleline(&mut browser.typed)
                        .desired_width(f32::INFINITY)
                        .id_salt("file_browser_path"),
                );
                if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                    answer = browser.enter_typed();
                }
            });
            ui.separator();
            egui::ScrollArea::vertical()
                .max_height(300.0)
                .auto_shrink([false, false])
                .show(ui, |ui| match &browser.entries {
                    _ if reading => {
                        ui.label("reading…");
                    }
                    Err(e) => {
                        ui.colored_label(ui.visuals().error_fg_color, e.as_str());
                    }
                    Ok(entries) => {
                        let mut open_dir = None;
                        for entry in entries {
                            let path = browser.dir.join(&entry.name);
                            let label = if entry.is_dir {
                                format!("{}/", entry.name)
                            } else {
                                entry.name.clone()
                            };
                            let chosen = browser.chosen_file.as_ref() == Some(&path);
                            let response = ui.selectable_label(chosen, label);
                            if entry.is_dir && response.clicked() {
                                open_dir = Some(path);
                            } else if response.double_clicked() {
                                answer = Some(path);
                            } else if response.clicked() {
                                browser.chosen_file = Some(path);
                            }
                        }
                        if let Some(dir) = open_dir {
                            browser.go_to(dir);
                        }
                    }
                });
            ui.separator();
            ui.horizontal(|ui| {
                let open = browser.answer();
                if ui
                    .add_enabled(open.is_some(), egui::Button::new("Open"))
                    .clicked()
                {
                    answer = open;
                }
                if ui.button("Cancel").clicked() || ui.input(|i| i.key_pressed(egui::Key::Escape)) {
                    close = true;
                }
            });
        });
    if let Some(path) = answer {
        out.push(Command::Picked(browser.purpose, path));
    } else if close {
        ui_state.file_browser = None;
    }
}
