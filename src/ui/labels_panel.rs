//! The right panel: classes (colour, key, visibility), the current image's boxes, and
//! the verified / difficult flags.

use super::colors::class_color;
use crate::app::{AppState, Command, UiState};

pub fn labels_panel(
    ui: &mut egui::Ui,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    ui.heading("Classes");
    ui.horizontal(|ui| {
        let mut single = state.settings.single_class_mode;
        if ui
            .checkbox(&mut single, "Use default label")
            .on_hover_text("new boxes take the default label without asking")
            .changed()
        {
            out.push(Command::SetSingleClassMode(single));
        }
        let mut by_look = state.settings.class_by_look;
        if ui
            .checkbox(&mut by_look, "Class by look")
            .on_hover_text(
                "a box drawn by hand takes the class of the labelled box it looks most like \
                 (colour, layout, shape) when that is clearly nearer than any box of the \
                 default label",
            )
            .changed()
        {
            out.push(Command::SetClassByLook(by_look));
        }
    });
    let classes = &state.workspace.classes;
    let default = state.settings.default_label.clone().unwrap_or_default();
    egui::ComboBox::from_label("Default")
        .selected_text(if default.is_empty() {
            "—".to_string()
        } else {
            default.clone()
        })
        .show_ui(ui, |ui| {
            for name in classes.names() {
                if ui.selectable_label(default == *name, name).clicked() {
                    out.push(Command::SetDefaultLabel(name.clone()));
                }
            }
        });
    egui::ScrollArea::vertical()
        .id_salt("classes")
        .max_height(180.0)
        .show(ui, |ui| {
            for (i, name) in classes.names().iter().enumerate() {
                ui.horizontal(|ui| {
                    let mut visible = !ui_state.hidden_classes.contains(name);
                    if ui
                        .checkbox(&mut visible, "")
                        .on_hover_text(format!("show {name}"))
                        .changed()
                    {
                        if visible {
                            ui_state.hidden_classes.remove(name);
                        } else {
                            ui_state.hidden_classes.insert(name.clone());
                        }
                    }
                    let color = class_color(name, &state.settings.class_colors);
                    let mut rgb = [color.r(), color.g(), color.b()];
                    let edit = ui.color_edit_button_srgb(&mut rgb);
                    if edit.on_hover_text(format!("colour of {name}")).changed() {
                        out.push(Command::SetClassColor(name.clone(), rgb));
                    }
                    let key = if i < 9 {
                        format!("{}  ", i + 1)
                    } else {
                        "   ".into()
                    };
                    if ui.selectable_label(false, format!("{key}{name}")).clicked() {
                        out.push(Command::UseClass(i));
                    }
                });
            }
        });
    ui.separator();
    let Some(doc) = &state.workspace.doc else {
        return;
    };
    let mut verified = doc.annotation.verified;
    if ui.checkbox(&mut verified, "Verified (Space)").changed() {
        out.push(Command::ToggleVerified);
    }
    if doc.load_error.is_some() && !doc.overwrite_allowed {
        ui.colored_label(
            egui::Color32::from_rgb(255, 110, 90),
            "The label file could not be read.",
        );
        if ui.button("Overwrite it with new labels").clicked() {
            out.push(Command::AllowOverwrite);
        }
    }
    ui.heading(format!("Boxes ({})", doc.annotation.boxes.len()));
    let selected = doc.selected;
    egui::ScrollArea::vertical()
        .id_salt("boxes")
        .max_height(320.0)
        .show_rows(ui, 20.0, doc.annotation.boxes.len(), |ui, range| {
            for i in range {
                let b = &doc.annotation.boxes[i];
                ui.horizontal(|ui| {
                    let mut difficult = b.difficult;
                    if ui
                        .checkbox(&mut difficult, "")
                        .on_hover_text("difficult")
                        .changed()
                    {
                        out.push(Command::ToggleDifficult(i));
                    }
                    let text = format!(
                        "{}  {:.0}×{:.0}",
                        b.class_name,
                        b.bbox.width(),
                        b.bbox.height()
                    );
                    if ui.selectable_label(selected == Some(i), text).clicked() {
                        out.push(Command::SelectBox(Some(i)));
                    }
                });
            }
        });
}
