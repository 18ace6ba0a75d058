//! The crop gallery window (View → Crop gallery, Ctrl+G): a class filter, the crops as a
//! grid of thumbnails (only the visible rows are laid out), the selection, and the class
//! buttons. While it is shown, Ctrl+A, the class keys and Esc act on it.

use egui::{Color32, Key, KeyboardShortcut, Modifiers, Rect, Sense, Stroke};

use super::shortcuts::DIGITS;
use crate::app::gallery::selection::ClickKind;
use crate::app::gallery::{Gallery, GalleryAction};
use crate::app::{AppState, Command};

/// A grid cell's side (a 96-pixel thumbnail and its margin), in points.
const CELL: f32 = 104.0;
/// The caption under each thumbnail.
const CAPTION: f32 = 16.0;

fn send(out: &mut Vec<Command>, action: GalleryAction) {
    out.push(Command::Gallery(action));
}

/// The gallery, when it is shown.
fn shown(state: &AppState) -> Option<&Gallery> {
    state.gallery.as_ref().filter(|g| g.visible)
}

/// The gallery's keys (before the canvas shortcuts, which then do not see them):
/// Ctrl+A selects every crop shown, 1 … 9 give the selected crops that class, Esc
/// clears the selection (or hides the gallery when nothing is selected).
pub fn gallery_keys(ctx: &egui::Context, state: &AppState, out: &mut Vec<Command>) {
    let Some(g) = shown(state) else { return };
    if ctx.egui_wants_keyboard_input() {
        return;
    }
    let pressed =
        |m: Modifiers, k: Key| ctx.input_mut(|i| i.consume_shortcut(&KeyboardShortcut::new(m, k)));
    if pressed(Modifiers::COMMAND, Key::A) {
        send(out, GalleryAction::SelectAll);
    }
    for (k, key) in DIGITS.iter().enumerate() {
        if pressed(Modifiers::NONE, *key) {
            send(out, GalleryAction::AssignKey(k));
        }
    }
    if pressed(Modifiers::NONE, Key::Escape) {
        send(
            out,
            if g.selection.is_empty() {
                GalleryAction::Close
            } else {
                GalleryAction::ClearSelection
            },
        );
    }
}

/// Draws the gallery window, when it is shown.
pub fn gallery_window(ctx: &egui::Context, state: &AppState, out: &mut Vec<Command>) {
    let Some(g) = shown(state) else { return };
    let mut open = true;
    egui::Window::new("Crop gallery")
        .open(&mut open)
        .collapsible(false)
        .resizable(true)
        .default_size([940.0, 620.0])
        .show(ctx, |ui| {
            header(ui, state, g, out);
            assign_row(ui, state, g, out);
            ui.separator();
            grid(ui, state, g, out);
        });
    if !open {
        send(out, GalleryAction::Close);
    }
}

/// The class filter, the progress and Reload.
fn header(ui: &mut egui::Ui, state: &AppState, g: &Gallery, out: &mut Vec<Command>) {
    let counts = g.class_counts();
    ui.horizontal(|ui| {
        ui.label("Class");
        let all = format!("All classes ({})", g.crops.len());
        let current = g.filter.clone().unwrap_or_else(|| all.clone());
        egui::ComboBox::from_id_salt("gallery_filter")
            .selected_text(current)
            .show_ui(ui, |ui| {
                if ui.selectable_label(g.filter.is_none(), all).clicked() {
                    send(out, GalleryAction::SetFilter(None));
                }
                // Class-list order first, then names only the crops have.
                let listed = state.workspace.classes.names();
                let extra = counts.keys().filter(|n| !listed.iter().any(|l| l == *n));
                let names: Vec<&str> = listed
                    .iter()
                    .map(String::as_str)
                    .filter(|n| counts.contains_key(n))
                    .chain(extra.copied())
                    .collect();
                for name in names {
                    let text = format!("{name} ({})", counts.get(name).copied().unwrap_or(0));
                    let on = g.filter.as_deref() == Some(name);
                    if ui.selectable_label(on, text).clicked() {
                        send(out, GalleryAction::SetFilter(Some(name.to_string())));
                    }
                }
            });
        let status = match (g.scanning(), g.grouping(), g.grouped) {
            (true, _, _) => format!(
                "reading boxes: {} of {} images…",
                g.progress.1, g.progress.0
            ),
            (false, true, _) => "grouping similar crops…".to_string(),
            (false, false, true) => "grouped by class, then by look".to_string(),
            (false, false, false) => String::new(),
        };
        ui.label(format!("{} crops shown  {status}", g.shown.len()));
        if g.crops.len() >= crate::app::gallery::scan::MAX_CROPS {
            ui.label(
                egui::RichText::new(format!(
                    "the first {} boxes only",
                    crate::app::gallery::scan::MAX_CROPS
                ))
                .color(Color32::from_rgb(255, 170, 60)),
            )
            .on_hover_text("the gallery reads at most this many boxes (memory stays bounded)");
        }
        if !g.failures.is_empty() {
            ui.label(
                egui::RichText::new(format!("{} unreadable", g.failures.len()))
                    .color(Color32::from_rgb(255, 120, 90)),
            )
            .on_hover_text(g.failures.join("\n"));
        }
        if ui
            .button("Reload")
            .on_hover_text("read the folder's boxes again")
            .clicked()
        {
            send(out, GalleryAction::Reload);
        }
    });
}

/// The selection count and the class buttons (1 … 9 as on the canvas), and a new class.
fn assign_row(ui: &mut egui::Ui, state: &AppState, g: &Gallery, out: &mut Vec<Command>) {
    ui.horizontal_wrapped(|ui| {
        ui.label(format!(
            "{} selected (click, Ctrl/Shift+click, Ctrl+A) — assign:",
            g.selection.len()
        ));
        let enabled = !g.selection.is_empty();
        for (i, name) in state.workspace.classes.names().iter().enumerate() {
            let text = if i < 9 {
                format!("{} {name}", i + 1)
            } else {
                name.clone()
            };
            if ui.add_enabled(enabled, egui::Button::new(text)).clicked() {
                send(out, GalleryAction::Assign(name.clone()));
            }
        }
        let id = egui::Id::unique("gallery_new_class");
        let mut text: String = ui.data_mut(|d| d.get_temp(id).unwrap_or_default());
        ui.add(
            egui::TextEdit::singleline(&mut text)
                .hint_text("new class")
                .desired_width(110.0),
        );
        let new = text.trim().to_string();
        if ui
            .add_enabled(enabled && !new.is_empty(), egui::Button::new("Assign"))
            .clicked()
        {
            send(out, GalleryAction::Assign(new));
            text.clear();
        }
        ui.data_mut(|d| d.insert_temp(id, text));
    });
}

/// The thumbnails, a row at a time (only the rows in view are laid out).
fn grid(ui: &mut egui::Ui, state: &AppState, g: &Gallery, out: &mut Vec<Command>) {
    let width = ui.available_width();
    let spacing = ui.spacing().item_spacing.x;
    let columns = (((width + spacing) / (CELL + spacing)).floor() as usize).max(1);
    let rows = g.shown.len().div_ceil(columns);
    let row_height = CELL + CAPTION;
    egui::ScrollArea::vertical()
        .id_salt("gallery_grid")
        .auto_shrink(false)
        .show_rows(ui, row_height, rows, |ui, range| {
            for row in range {
                ui.horizontal(|ui| {
                    let first = row * columns;
                    let last = (first + columns).min(g.shown.len());
                    for at in first..last {
                        cell(ui, state, g, at, out);
                    }
                });
            }
        });
}

/// One crop: its thumbnail fitted into the cell, its class under it, a frame when
/// selected; click selects, double-click shows it in its image.
fn cell(ui: &mut egui::Ui, state: &AppState, g: &Gallery, at: usize, out: &mut Vec<Command>) {
    let id = g.shown[at];
    let crop = &g.crops[id];
    let selected = g.selection.contains(id);
    let (rect, response) = ui.allocate_exact_size(egui::vec2(CELL, CELL + CAPTION), Sense::click());
    response.widget_info(|| {
        egui::WidgetInfo::selected(
            egui::Role::CheckBox,
            true,
            selected,
            format!("crop {}", at + 1),
        )
    });
    if ui.is_rect_visible(rect) {
        let painter = ui.painter();
        let colour = crate::ui::colors::class_color(&crop.class_name, &state.settings.class_colors);
        let area = Rect::from_min_size(rect.min, egui::vec2(CELL, CELL)).shrink(4.0);
        if selected {
            painter.rect_filled(
                rect,
                3.0,
                ui.visuals().selection.bg_fill.gamma_multiply(0.6),
            );
        } else if response.hovered() {
            painter.rect_filled(rect, 3.0, ui.visuals().widgets.hovered.bg_fill);
        }
        let [w, h] = [crop.size[0] as f32, crop.size[1] as f32];
        let scale = (area.width() / w.max(1.0)).min(area.height() / h.max(1.0));
        let image = Rect::from_center_size(area.center(), egui::vec2(w * scale, h * scale));
        match &crop.texture {
            Some(t) => {
                let uv = Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
                painter.image(t.id(), image, uv, Color32::WHITE);
            }
            None => {
                painter.rect_filled(image, 0.0, Color32::from_gray(70));
            }
        }
        painter.rect_stroke(
            image,
            0.0,
            Stroke::new(if selected { 3.0 } else { 1.0 }, colour),
            egui::StrokeKind::Outside,
        );
        let caption = Rect::from_min_max(egui::pos2(rect.min.x, rect.min.y + CELL), rect.max);
        painter.with_clip_rect(caption).text(
            caption.left_center() + egui::vec2(4.0, 0.0),
            egui::Align2::LEFT_CENTER,
            &crop.class_name,
            egui::FontId::proportional(11.0),
            if selected {
                ui.visuals().strong_text_color()
            } else {
                ui.visuals().text_color()
            },
        );
    }
    if response.double_clicked() {
        send(out, GalleryAction::Jump(id));
    } else if response.clicked() {
        let m = ui.input(|i| i.modifiers);
        let kind = ClickKind {
            ctrl: m.command,
            shift: m.shift,
        };
        send(out, GalleryAction::Click { at, kind });
    }
    response.on_hover_ui_at_pointer(|ui| {
        let file = crop.image.file_name().unwrap_or_default().to_string_lossy();
        ui.label(format!(
            "{} in {file} (box {}); double-click to show it",
            crop.class_name,
            crop.index + 1
        ));
    });
}
