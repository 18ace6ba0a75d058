//! Painting the canvas: labels, their class names, and the model's predictions.

use egui::{Color32, Pos2, Rect, Stroke, StrokeKind, Vec2};

use super::geometry::drawn_box;
use super::interaction::Drag;
use super::{drag_id, Transform};
use crate::app::review::ShownPrediction;
use crate::app::{AppState, Tool, UiState};
use crate::review::PredictionState;
use crate::ui::box_labels;
use crate::ui::colors::class_color;

pub(super) fn paint_boxes(
    ui: &egui::Ui,
    state: &AppState,
    ui_state: &UiState,
    painter: &egui::Painter,
    t: Transform,
    hovered: Option<usize>,
) {
    let Some(doc) = &state.workspace.doc else {
        return;
    };
    let selection = crate::app::editing::selection_of(Some(doc), ui_state);
    // The class names drawn after every box, so that no box outline crosses one.
    let mut tags = Vec::new();
    for (i, b) in doc.annotation.boxes.iter().enumerate() {
        if ui_state.hidden_classes.contains(&b.class_name) {
            continue;
        }
        let color = class_color(&b.class_name, &state.settings.class_colors);
        let r = t.rect(&b.bbox);
        let selected = selection.contains(&i);
        if selected {
            painter.rect_filled(r, 0.0, color.gamma_multiply(0.25));
            painter.rect_stroke(
                r,
                0.0,
                Stroke::new(2.5, Color32::WHITE),
                StrokeKind::Outside,
            );
        }
        painter.rect_stroke(r, 0.0, Stroke::new(2.0, color), StrokeKind::Inside);
        let always = selected || hovered == Some(i);
        // Names of boxes off the canvas are never laid out.
        let on_canvas = painter.clip_rect().intersects(r.expand(24.0));
        if state.settings.show_box_labels
            && on_canvas
            && (always || box_labels::big_enough(r.size()))
        {
            tags.push((i, r, color, always));
        }
    }
    paint_names(painter, doc, &tags);
    if let Some(r) = doc
        .selected
        .and_then(|i| doc.annotation.boxes.get(i))
        .filter(|b| !ui_state.hidden_classes.contains(&b.class_name))
        .map(|b| t.rect(&b.bbox))
    {
        for c in [
            r.left_top(),
            r.right_top(),
            r.left_bottom(),
            r.right_bottom(),
            r.center_top(),
            r.center_bottom(),
            r.left_center(),
            r.right_center(),
        ] {
            painter.rect_filled(
                Rect::from_center_size(c, Vec2::splat(7.0)),
                1.0,
                Color32::WHITE,
            );
            painter.rect_stroke(
                Rect::from_center_size(c, Vec2::splat(7.0)),
                1.0,
                Stroke::new(1.0, Color32::BLACK),
                StrokeKind::Inside,
            );
        }
    }
    // A box waiting for its label stays drawn while the label picker is open.
    if let Some(bbox) = ui_state.pending_label.as_ref().and_then(|p| p.bbox) {
        painter.rect_stroke(
            t.rect(&bbox),
            0.0,
            Stroke::new(2.0, Color32::from_rgb(0, 255, 0)),
            StrokeKind::Inside,
        );
    }
    // The box being drawn, and a crosshair in draw mode.
    let drag: Option<Drag> = ui.data(|d| d.get_temp(drag_id()));
    if let Some(p) = ui.input(|i| i.pointer.hover_pos()) {
        if ui_state.tool == Tool::Draw && painter.clip_rect().contains(p) {
            let cross = Stroke::new(1.0, Color32::from_white_alpha(160));
            painter.line_segment(
                [
                    Pos2::new(painter.clip_rect().left(), p.y),
                    Pos2::new(painter.clip_rect().right(), p.y),
                ],
                cross,
            );
            painter.line_segment(
                [
                    Pos2::new(p.x, painter.clip_rect().top()),
                    Pos2::new(p.x, painter.clip_rect().bottom()),
                ],
                cross,
            );
        }
        if let Some(Drag::Band { start }) = drag {
            painter.rect_stroke(
                Rect::from_two_pos(start, p),
                0.0,
                Stroke::new(1.0, Color32::from_rgb(120, 180, 255)),
                StrokeKind::Inside,
            );
        }
        if let Some(Drag::Draw { start }) = drag {
            let square = state.settings.draw_squares || ui.input(|i| i.modifiers.command);
            let a = &doc.annotation;
            let size = if a.has_size() {
                [a.width, a.height]
            } else {
                [u32::MAX, u32::MAX]
            };
            let b = drawn_box(start, t.to_image(p), square, size);
            let r = t.rect(&b);
            painter.rect_stroke(
                r,
                0.0,
                Stroke::new(2.0, Color32::from_rgb(0, 255, 0)),
                StrokeKind::Inside,
            );
        }
    }
}

/// The class names of `tags` (box index, screen rectangle, colour, always shown) that
/// [`box_labels::visible_tags`] keeps, above their boxes (inside at the canvas' top); the
/// ones always shown last, on top.
pub(super) fn paint_names(
    painter: &egui::Painter,
    doc: &crate::app::document::Document,
    tags: &[(usize, Rect, Color32, bool)],
) {
    let font = egui::FontId::proportional(13.0);
    let laid: Vec<_> = tags
        .iter()
        .map(|&(i, r, color, always)| {
            let b = &doc.annotation.boxes[i];
            let text = if b.difficult {
                format!("{} (difficult)", b.class_name)
            } else {
                b.class_name.clone()
            };
            let galley = painter.layout_no_wrap(text, font.clone(), Color32::BLACK);
            let mut pos = r.left_top() - Vec2::new(0.0, galley.size().y + 2.0);
            if pos.y < painter.clip_rect().top() {
                pos.y = r.top() + 2.0;
            }
            let bg = Rect::from_min_size(pos, galley.size() + Vec2::new(6.0, 2.0));
            (box_labels::NameTag { rect: bg, always }, galley, color)
        })
        .collect();
    let tag_rects: Vec<box_labels::NameTag> = laid.iter().map(|l| l.0).collect();
    let shown = box_labels::visible_tags(&tag_rects);
    let (always, others): (Vec<_>, Vec<_>) = laid
        .into_iter()
        .zip(shown)
        .filter_map(|(l, shown)| shown.then_some(l))
        .partition(|l| l.0.always);
    for (tag, galley, color) in others.into_iter().chain(always) {
        painter.rect_filled(tag.rect, 2.0, color);
        painter.galley(tag.rect.min + Vec2::new(3.0, 1.0), galley, Color32::BLACK);
    }
}

/// Predictions: dashed outlines in the class colour with the score; the selected one
/// (or the one being fixed) is highlighted. Predictions that match a label are faint.
pub(super) fn paint_predictions(
    ui: &egui::Ui,
    state: &AppState,
    ui_state: &UiState,
    painter: &egui::Painter,
    t: Transform,
    predictions: &[ShownPrediction],
) {
    let drag: Option<Drag> = ui.data(|d| d.get_temp(drag_id()));
    let font = egui::FontId::proportional(12.0);
    for (i, p) in predictions.iter().enumerate() {
        let name = p.class_name.as_str();
        if ui_state.hidden_classes.contains(name) {
            continue;
        }
        let color = class_color(name, &state.settings.class_colors);
        let (width, color) = match p.state {
            PredictionState::Pending => (2.0, color),
            PredictionState::MatchesLabel => (1.0, color.gamma_multiply(0.45)),
            _ => continue,
        };
        let bbox = match drag {
            Some(Drag::Fix { index, current, .. }) if index == i => current,
            _ => p.detection.bbox,
        };
        let r = t.rect(&bbox);
        let selected = state.review.selected == Some(i);
        if selected {
            painter.rect_filled(r, 0.0, color.gamma_multiply(0.18));
        }
        let stroke = Stroke::new(if selected { width + 1.5 } else { width }, color);
        let corners = [
            r.left_top(),
            r.right_top(),
            r.right_bottom(),
            r.left_bottom(),
            r.left_top(),
        ];
        painter.extend(egui::Shape::dashed_line(&corners, stroke, 7.0, 4.0));
        if p.state == PredictionState::Pending || selected {
            let text = format!("{name} {:.2}", p.detection.score);
            let galley = painter.layout_no_wrap(text, font.clone(), Color32::WHITE);
            let pos = Pos2::new(r.left() + 2.0, r.bottom() - galley.size().y - 2.0);
            let bg = Rect::from_min_size(
                pos - Vec2::new(2.0, 0.0),
                galley.size() + Vec2::new(4.0, 0.0),
            );
            painter.rect_filled(bg, 2.0, Color32::from_black_alpha(170));
            painter.galley(pos, galley, Color32::WHITE);
        }
    }
}
