//! The file list: one virtualised row per image (10,000+ rows stay fast), with a status
//! icon, the number of predictions still to review, and a filter.

use crate::app::session::ImageStatus;
use crate::app::{AppState, Command, UiState};

/// A status dot: hollow = unlabelled, blue = labelled, green = verified, red = error.
fn status_dot(ui: &mut egui::Ui, status: &ImageStatus) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
    let (c, r) = (rect.center(), 4.0);
    let p = ui.painter();
    match status {
        ImageStatus::Unknown => {
            p.circle_filled(c, 1.5, egui::Color32::GRAY);
        }
        ImageStatus::Unlabelled => {
            p.circle_stroke(c, r, egui::Stroke::new(1.0, egui::Color32::LIGHT_GRAY));
        }
        ImageStatus::Labelled { .. } => {
            p.circle_filled(c, r, egui::Color32::from_rgb(90, 160, 255));
        }
        ImageStatus::Verified { .. } => {
            p.circle_filled(c, r, egui::Color32::from_rgb(120, 220, 90));
        }
        ImageStatus::LabelError(_) | ImageStatus::ImageError(_) => {
            p.circle_filled(c, r, egui::Color32::from_rgb(255, 90, 70));
        }
    }
}

pub fn file_list(
    ui: &mut egui::Ui,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        ui.label("Filter");
        ui.add(
            egui::TextEdit::singleline(&mut ui_state.file_filter)
                .hint_text("name, or: unlabelled, verified, error"),
        );
    });
    ui.horizontal(|ui| {
        if ui.button("Next unlabelled (n)").clicked() {
            out.push(Command::NextUnlabelled);
        }
        if ui.button("Next unverified (u)").clicked() {
            out.push(Command::NextUnverified);
        }
    });
    ui.add_enabled_ui(state.review.model.is_some(), |ui| {
        ui.checkbox(&mut ui_state.sort_by_usefulness, "Most useful first")
            .on_hover_text(
                "unlabelled images ordered by what labelling them teaches the model (its doubt, and how unlike the labelled images they are); the rest after them",
            );
    });
    let formats = ui_state.label_formats.as_ref();
    let current = state.current_path();
    if let Some(warning) = formats
        .filter(|f| current.as_ref() == Some(&f.image))
        .and_then(|f| f.warning(state.settings.format))
    {
        ui.colored_label(
            egui::Color32::from_rgb(255, 170, 60),
            "this image has label files in two formats",
        )
        .on_hover_text(warning);
    }
    ui.separator();
    let order = ui_state
        .sort_by_usefulness
        .then(|| useful_order(state, ui_state))
        .flatten();
    if let Some(i) = rows(ui, state, &ui_state.file_filter, order.as_deref()) {
        out.push(Command::GoTo(i));
    }
}

/// The images in "most useful first" order: the unlabelled ones by usefulness, then the
/// rest in file order. Recomputed only when the predictions or the labels change.
fn useful_order(state: &AppState, ui_state: &mut UiState) -> Option<Vec<usize>> {
    let session = state.workspace.session.as_ref()?;
    let labelled = session
        .images
        .iter()
        .filter(|e| e.status.is_labelled())
        .count();
    let key = (
        state.review.predictions.len(),
        labelled,
        session.images.len(),
    );
    if let Some((k, order)) = &ui_state.useful_order {
        if *k == key {
            return Some(order.clone());
        }
    }
    let mut order = state.unlabelled_by_usefulness()?;
    let first: std::collections::HashSet<usize> = order.iter().copied().collect();
    order.extend((0..session.images.len()).filter(|i| !first.contains(i)));
    ui_state.useful_order = Some((key, order.clone()));
    Some(order)
}

/// The rows that pass `filter`, in `order` if given; returns the clicked row.
fn rows(
    ui: &mut egui::Ui,
    state: &AppState,
    filter: &str,
    order: Option<&[usize]>,
) -> Option<usize> {
    let Some(session) = &state.workspace.session else {
        return None;
    };
    let filter = filter.trim().to_lowercase();
    let all: Vec<usize> =
        order.map_or_else(|| (0..session.images.len()).collect(), <[usize]>::to_vec);
    let rows: Vec<usize> = if filter.is_empty() {
        all
    } else {
        all.into_iter()
            .map(|i| (i, &session.images[i]))
            .filter(|(_, e)| match filter.as_str() {
                "unlabelled" | "unlabeled" => !e.status.is_labelled(),
                "labelled" | "labeled" => e.status.is_labelled(),
                "verified" => e.status.is_verified(),
                "unverified" => !e.status.is_verified(),
                "error" | "errors" => matches!(
                    e.status,
                    ImageStatus::LabelError(_) | ImageStatus::ImageError(_)
                ),
                f => e.path.to_string_lossy().to_lowercase().contains(f),
            })
            .map(|(i, _)| i)
            .collect()
    };
    let row_height = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
    let mut clicked = None;
    let current = state.workspace.current;
    egui::ScrollArea::vertical().auto_shrink(false).show_rows(
        ui,
        row_height,
        rows.len(),
        |ui, range| {
            for &i in &rows[range] {
                let entry = &session.images[i];
                let name = entry
                    .path
                    .strip_prefix(&session.root)
                    .unwrap_or(&entry.path)
                    .to_string_lossy();
                ui.horizontal(|ui| {
                    status_dot(ui, &entry.status);
                    let pending = if state.review.show {
                        state.pending_count(&entry.path)
                    } else {
                        0
                    };
                    if pending > 0 {
                        ui.label(
                            egui::RichText::new(format!("{pending} pending"))
                                .small()
                                .color(egui::Color32::from_rgb(255, 170, 60)),
                        )
                        .on_hover_text("predictions to review (Tab goes to the next one)");
                    }
                    if let Some(mark) = &entry.elsewhere {
                        elsewhere_marker(ui, mark);
                    }
                    let row = ui.selectable_label(current == Some(i), name.as_ref());
                    let row = match &entry.status {
                        ImageStatus::LabelError(e) | ImageStatus::ImageError(e) => {
                            row.on_hover_text(e.as_str())
                        }
                        ImageStatus::Labelled { boxes } | ImageStatus::Verified { boxes } => {
                            row.on_hover_text(format!("{boxes} boxes"))
                        }
                        _ => row,
                    };
                    if row.clicked() {
                        clicked = Some(i);
                    }
                });
            }
        },
    );
    clicked
}

/// Marks an image whose label file someone else changed during this session.
fn elsewhere_marker(ui: &mut egui::Ui, mark: &crate::app::session::ChangedElsewhere) {
    use crate::app::session::ChangedElsewhere;
    let (text, color, hover) = match mark {
        ChangedElsewhere::Changed => (
            "changed",
            egui::Color32::from_rgb(120, 170, 255),
            "changed by someone else: reloaded, or merged with your changes when saved".to_string(),
        ),
        ChangedElsewhere::Merged => (
            "merged",
            egui::Color32::from_rgb(120, 170, 255),
            "someone else changed these labels too; both sets of changes were saved".to_string(),
        ),
        ChangedElsewhere::Conflict(theirs) => (
            "conflict",
            egui::Color32::from_rgb(255, 90, 90),
            format!(
                "someone else changed the same boxes: your version is saved, theirs is kept as {}",
                theirs.display()
            ),
        ),
    };
    ui.label(egui::RichText::new(text).small().color(color))
        .on_hover_text(hover);
}
