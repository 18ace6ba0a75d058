//! The label picker: the class of a new box (next to it) or of the selected boxes. A
//! fuzzy filter, the number of boxes of each class on the image and in the folder, the
//! classes assigned last in a "Recent" row, and digits 1–9 for the first nine classes in
//! class-list order.

use std::collections::HashMap;

use crate::app::session::Session;
use crate::app::{AppState, Command, UiState};
use crate::dataset::{ClassList, LabelBox};

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

/// The number of boxes of each class in `boxes`.
pub fn box_counts(boxes: &[LabelBox]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for b in boxes {
        *counts.entry(b.class_name.as_str()).or_insert(0) += 1;
    }
    counts
}

/// The folder's boxes and labelled images, as the file list knows them (the statuses the
/// scan read and the saves since; no disk access).
pub fn folder_totals(session: &Session) -> (usize, usize) {
    use crate::app::session::ImageStatus;
    session
        .images
        .iter()
        .fold((0, 0), |(boxes, images), e| match e.status {
            ImageStatus::Labelled { boxes: n } | ImageStatus::Verified { boxes: n } => {
                (boxes + n, images + 1)
            }
            _ => (boxes, images),
        })
}

/// The counts shown after a class in the picker: its boxes on this image and in the
/// folder ("3 · 340"), or on this image only ("×3") without a folder; empty for none.
pub fn count_text(here: usize, folder: Option<usize>) -> String {
    match folder {
        Some(f) if here > 0 || f > 0 => format!("{here} · {f}"),
        None if here > 0 => format!("×{here}"),
        _ => String::new(),
    }
}

/// The hover text of [`count_text`]; `scanning`: the folder's labels are still being read.
pub fn count_hover(here: usize, folder: Option<usize>, scanning: bool) -> String {
    let Some(f) = folder else {
        return format!("{here} on this image");
    };
    let partial = if scanning {
        "; the folder's labels are still being read, so this is a partial count"
    } else {
        ""
    };
    format!(
        "{here} on this image · {f} in the folder (every label file as last read or saved in \
         this window, with this image as it is now; changes made elsewhere to other images \
         count once they are opened or the folder is reopened{partial})"
    )
}

/// The label dialog: for a new box (next to it) or the selected boxes.
pub fn label_picker(
    ctx: &egui::Context,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    let view = ui_state.view;
    let doc = state.workspace.doc.as_ref();
    let selected_box = ui_state
        .pending_label
        .as_ref()
        .and_then(|p| p.targets.first())
        .and_then(|&i| doc?.annotation.boxes.get(i))
        .map(|b| b.bbox);
    let all = state.workspace.classes.names();
    let recent: Vec<String> = ui_state
        .recent_classes
        .known(all)
        .into_iter()
        .cloned()
        .collect();
    let Some(pending) = &mut ui_state.pending_label else {
        return;
    };
    let boxes = doc.map_or(&[][..], |d| d.annotation.boxes.as_slice());
    let counts = box_counts(boxes);
    // No disk access: what the folder scan read, kept up to date by reads and saves.
    let folder_counts = state.workspace.folder_class_counts();
    let scanning = state.workspace.session.as_ref().is_some_and(|s| s.scanning);
    // Digits pick the n-th class of the class list (never of the Recent row), but only
    // while nothing is typed.
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
            pending.typed = true;
        }
        // The classes assigned last, while nothing is typed (a pre-filled default label
        // counts as nothing typed).
        if !recent.is_empty() && (!pending.typed || pending.text.trim().is_empty()) {
            ui.horizontal_wrapped(|ui| {
                ui.weak("Recent:");
                for n in &recent {
                    if ui.button(n).on_hover_text("assigned recently").clicked() {
                        accept = Some(n.clone());
                    }
                }
            });
            ui.separator();
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
                // Two columns, so that the counts line up.
                egui::Grid::new("label_picker_classes")
                    .num_columns(2)
                    .spacing([12.0, 2.0])
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
                            let here = counts.get(n.as_str()).copied().unwrap_or(0);
                            let folder = folder_counts
                                .as_ref()
                                .map(|f| f.get(n.as_str()).copied().unwrap_or(0));
                            let text = count_text(here, folder);
                            if text.is_empty() {
                                ui.label("");
                            } else {
                                ui.weak(text)
                                    .on_hover_text(count_hover(here, folder, scanning));
                            }
                            ui.end_row();
                        }
                    });
            });
        let typed = pending.text.trim().to_string();
        let exact = enter_choice(&names, &typed, None);
        if !typed.is_empty() {
            if let Err(e) = ClassList::check_name(&typed) {
                ui.colored_label(egui::Color32::from_rgb(230, 90, 80), e);
            }
        }
        if pending.confirm_new {
            ui.colored_label(
                egui::Color32::from_rgb(240, 200, 80),
                format!("\"{typed}\" is a new class: Enter again or Create class adds it"),
            );
        }
        // The folder's total is what its label files held when last read or saved.
        let folder = state
            .workspace
            .session
            .as_ref()
            .map(folder_totals)
            .map(|(b, i)| format!(" · folder: {b} on {i} images"))
            .unwrap_or_default();
        ui.weak(format!("{} boxes here{folder}", boxes.len()))
            .on_hover_text(if folder_counts.is_some() {
                "n · m after a class: its boxes on this image · in the folder"
            } else {
                "×n after a class: its boxes on this image"
            });
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
    if let Some(label) = accept.filter(|l| ClassList::check_name(l).is_ok()) {
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

    #[test]
    fn fuzzy_filter_on_a_shelf_of_classes() {
        let names: Vec<String> = ["sprite-330ml", "coke-zero", "fanta", "coke", "cookies"]
            .map(String::from)
            .to_vec();
        // "cok": the prefixes first (class order between them), then the letters in order.
        assert_eq!(
            filtered_classes(&names, "cok"),
            [&names[1], &names[3], &names[4]]
        );
        assert_eq!(filtered_classes(&names, "czr"), [&names[1]]);
        assert_eq!(filtered_classes(&names, "ZERO"), [&names[1]]);
        assert!(filtered_classes(&names, "xyz").is_empty());
        // Nothing typed: every class, in class-list order (the digits' order).
        assert_eq!(filtered_classes(&names, " ").len(), names.len());
    }

    #[test]
    fn counts_per_class_and_their_text() {
        let b = |name: &str| LabelBox::new(name, crate::geometry::BoxXyxy::new(0.0, 0.0, 1.0, 1.0));
        let boxes = [b("coke"), b("fanta"), b("coke")];
        let counts = box_counts(&boxes);
        assert_eq!(counts.get("coke"), Some(&2));
        assert_eq!(counts.get("fanta"), Some(&1));
        assert_eq!(counts.get("sprite"), None);
        assert_eq!(count_text(2, None), "×2");
        assert_eq!(count_text(0, None), "");
        assert_eq!(count_text(2, Some(340)), "2 · 340");
        assert_eq!(count_text(0, Some(340)), "0 · 340");
        assert_eq!(count_text(0, Some(0)), "");
        assert!(count_hover(2, Some(340), true).contains("partial"));
        assert!(!count_hover(2, Some(340), false).contains("partial"));
    }
}
