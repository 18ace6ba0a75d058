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

/// How well `name` matches the typed `filter` (higher is better), or `None`: exact, then
/// prefix, then substring, then the letters in order (fuzzy).
pub fn match_score(name: &str, filter: &str) -> Option<u32> {
    let (n, f) = (name.to_lowercase(), filter.trim().to_lowercase());
    if f.is_empty() {
        return Some(0);
    }
    if n == f {
        return Some(400);
    }
    if n.starts_with(&f) {
        return Some(300);
    }
    if n.contains(&f) {
        return Some(200);
    }
    let mut chars = n.chars();
    f.chars()
        .all(|c| c == ' ' || chars.any(|m| m == c))
        .then_some(100)
}

/// The classes listed for `filter`, best match first (ties keep the class order).
pub fn filtered_classes<'a>(names: &'a [String], filter: &str) -> Vec<&'a String> {
    let mut scored: Vec<(u32, usize, &String)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match_score(n, filter).map(|s| (s, i, n)))
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, _, n)| n).collect()
}

/// The class Enter takes: the class named exactly as typed, else the highlighted one;
/// `None` with a name typed means a new class (confirmed separately).
pub fn enter_choice(names: &[&String], typed: &str, highlight: Option<usize>) -> Option<String> {
    let typed = typed.trim();
    names
        .iter()
        .find(|n| n.as_str() == typed)
        .or_else(|| names.iter().find(|n| n.eq_ignore_ascii_case(typed)))
        .or_else(|| highlight.and_then(|i| names.get(i)))
        .map(|n| (*n).clone())
}

/// A digit 1–9 typed this frame, as a key, a text event or an input-method commit (X11
/// sends typed text through the input method once a text field has focus); its events are
/// removed so that the text field never sees it.
fn take_digit(ctx: &egui::Context) -> Option<u32> {
    let digit_of = |t: &str| {
        let mut c = t.chars();
        match (c.next(), c.next()) {
            (Some(d), None) => d.to_digit(10).filter(|d| *d > 0),
            _ => None,
        }
    };
    let key_digit = |e: &egui::Event| match e {
        egui::Event::Key {
            key,
            pressed,
            modifiers,
            ..
        } if !modifiers.any() || *modifiers == egui::Modifiers::SHIFT => {
            digit_of(key.name()).filter(|_| *pressed)
        }
        _ => None,
    };
    let text_digit = |e: &egui::Event| match e {
        egui::Event::Text(t) | egui::Event::Ime(egui::ImeEvent::Commit(t)) => digit_of(t),
        _ => None,
    };
    ctx.input_mut(|i| {
        let d = i
            .events
            .iter()
            .find_map(|e| key_digit(e).or_else(|| text_digit(e)))?;
        i.events.retain(|e| {
            let digit_key =
                matches!(e, egui::Event::Key { key, .. } if digit_of(key.name()).is_some());
            !digit_key && text_digit(e).is_none()
        });
        Some(d)
    })
}

/// The label dialog: for a new box (next to it) or the selected boxes.
fn label_picker(
    ctx: &egui::Context,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    let view = ui_state.view;
    let selected_box = ui_state
        .pending_label
        .as_ref()
        .and_then(|p| p.targets.first())
        .and_then(|&i| state.workspace.doc.as_ref()?.annotation.boxes.get(i))
        .map(|b| b.bbox);
    let Some(pending) = &mut ui_state.pending_label else {
        return;
    };
    let all = state.workspace.classes.names();
    // Digits pick the n-th listed class, but only while nothing is typed.
    let mut accept: Option<String> = None;
    if pending.text.is_empty() {
        let digit = take_digit(ctx);
        if let Some(d) = digit {
            match all.get(d as usize - 1) {
                Some(n) => accept = Some(n.clone()),
                None => out.push(Command::Info(format!(
                    "there is no class {d} ({} classes)",
                    all.len()
                ))),
            }
        }
    }
    let mut cancel = false;
    if pending.frames < 3 {
        // egui sizes a new window in an invisible first pass: draw it again at once.
        pending.frames += 1;
        ctx.request_repaint();
    }
    let anchor = pending.bbox.or(selected_box);
    let mut window = egui::Window::new(if pending.bbox.is_some() {
        "Label"
    } else {
        "Edit label"
    })
    .collapsible(false)
    .resizable(false)
    .constrain(true);
    if let Some(b) = anchor {
        // Next to the box: right of its top-right corner (the window keeps itself on screen).
        let beside =
            view.origin + egui::vec2(b.x2 as f32 * view.zoom + 12.0, b.y1 as f32 * view.zoom);
        window = window.current_pos(beside);
    }
    window.show(ctx, |ui| {
        if pending.bbox.is_none() {
            let k = pending.targets.len();
            ui.label(format!(
                "{k} box{} selected",
                if k == 1 { "" } else { "es" }
            ));
        }
        let before = pending.text.clone();
        let edit = ui.add(
            egui::TextEdit::singleline(&mut pending.text)
                .hint_text("type to filter, or a new name")
                .id_salt("label_text"),
        );
        edit.request_focus();
        if pending.text != before {
            pending.highlight = None;
            pending.confirm_new = false;
        }
        let names = filtered_classes(all, &pending.text);
        let (down, up) = ui.input(|i| {
            (
                i.key_pressed(egui::Key::ArrowDown),
                i.key_pressed(egui::Key::ArrowUp),
            )
        });
        if !names.is_empty() {
            let last = names.len() - 1;
            if down {
                pending.highlight = Some(pending.highlight.map_or(0, |h| (h + 1).min(last)));
            }
            if up {
                pending.highlight = Some(pending.highlight.map_or(0, |h| h.saturating_sub(1)));
            }
        }
        if pending.text.trim().is_empty() && pending.highlight.is_none() && !names.is_empty() {
            pending.highlight = Some(0);
        }
        egui::ScrollArea::vertical()
            .max_height(220.0)
            .show(ui, |ui| {
                for (i, n) in names.iter().enumerate() {
                    let key = if i < 9 && pending.text.is_empty() {
                        format!("{} ", i + 1)
                    } else {
                        String::new()
                    };
                    let on = pending.highlight == Some(i);
                    let r = ui.selectable_label(on, format!("{key}{n}"));
                    if on {
                        r.scroll_to_me(None);
                    }
                    if r.clicked() {
                        accept = Some((*n).clone());
                    }
                }
            });
        let typed = pending.text.trim().to_string();
        let exact = enter_choice(&names, &typed, None);
        if pending.confirm_new {
            ui.colored_label(
                egui::Color32::from_rgb(240, 200, 80),
                format!("\"{typed}\" is a new class: Enter again or Create class adds it"),
            );
        }
        ui.horizontal(|ui| {
            let ok = match (&exact, pending.highlight.and_then(|h| names.get(h))) {
                (Some(_), _) | (None, Some(_)) => "OK",
                _ => "Create class",
            };
            if ui
                .add_enabled(
                    !typed.is_empty() || pending.highlight.is_some(),
                    egui::Button::new(ok),
                )
                .clicked()
            {
                accept = enter_choice(&names, &typed, pending.highlight).or(Some(typed.clone()));
            }
            if ui.button("Cancel").clicked() {
                cancel = true;
            }
        });
        if ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            match enter_choice(&names, &typed, pending.highlight) {
                Some(name) => accept = Some(name),
                None if typed.is_empty() => {}
                None if pending.confirm_new => accept = Some(typed.clone()),
                None => pending.confirm_new = true,
            }
        }
        if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
            cancel = true;
        }
    });
    if let Some(label) = accept.filter(|l| !l.trim().is_empty()) {
        let pending = ui_state.pending_label.take().unwrap_or_default();
        match pending.bbox {
            Some(bbox) => out.push(Command::AddBox { bbox, label }),
            None => out.push(Command::RelabelBoxes {
                targets: pending.targets,
                label,
            }),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enter_takes_an_exact_name_or_the_highlight_never_a_mere_prefix() {
        let names: Vec<String> = ["Cola Zero", "Sprite"].map(String::from).to_vec();
        let listed = filtered_classes(&names, "Cola");
        assert_eq!(listed, [&names[0]]);
        assert_eq!(enter_choice(&listed, "Cola", None), None);
        assert_eq!(
            enter_choice(&listed, "cola zero", None).as_deref(),
            Some("Cola Zero")
        );
        assert_eq!(
            enter_choice(&listed, "Cola", Some(0)).as_deref(),
            Some("Cola Zero")
        );
        // Fuzzy: the letters in order; prefix matches rank first.
        assert_eq!(filtered_classes(&names, "spt"), [&names[1]]);
        let more: Vec<String> = ["Fanta Cola", "Cola"].map(String::from).to_vec();
        assert_eq!(filtered_classes(&more, "col"), [&more[1], &more[0]]);
    }
}
