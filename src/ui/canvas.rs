//! The image with its boxes: drawing, selecting, moving, resizing, zooming and panning.
//! Boxes live in image pixels; only this file converts to and from screen points.

use egui::{Color32, CursorIcon, Pos2, Rect, Sense, Stroke, StrokeKind, Vec2};

use super::box_labels;
use super::colors::class_color;
use crate::app::image_loader::ImageSlot;
use crate::app::review::ShownPrediction;
use crate::app::{AppState, Command, Fit, Tool, UiState, View};
use crate::geometry::BoxXyxy;
use crate::review::PredictionState;

/// Screen distance (points) within which a handle or edge is grabbed.
const GRAB: f32 = 6.0;
/// Smallest box (image pixels) that drawing creates.
const MIN_BOX: f64 = 2.0;

/// Which edges a resize drag moves.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
struct Edges {
    left: bool,
    right: bool,
    top: bool,
    bottom: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Drag {
    Draw {
        start: [f64; 2],
    },
    Move {
        index: usize,
        start: [f64; 2],
        original: BoxXyxy,
    },
    Resize {
        index: usize,
        edges: Edges,
        original: BoxXyxy,
    },
    /// Fixing a prediction: moving it (`edges` all false) or resizing it; on release it
    /// becomes a label.
    Fix {
        index: usize,
        edges: Edges,
        start: [f64; 2],
        original: BoxXyxy,
        current: BoxXyxy,
    },
    Pan,
    /// Shift+drag on empty canvas: rubber-band selection.
    Band {
        start: Pos2,
    },
}

/// Image ↔ screen mapping for this frame.
#[derive(Clone, Copy, Debug)]
pub struct Transform {
    pub origin: Pos2,
    pub zoom: f32,
}

impl Transform {
    pub fn to_screen(self, x: f64, y: f64) -> Pos2 {
        self.origin + Vec2::new(x as f32 * self.zoom, y as f32 * self.zoom)
    }

    pub fn to_image(self, p: Pos2) -> [f64; 2] {
        let v = (p - self.origin) / self.zoom;
        [v.x as f64, v.y as f64]
    }

    pub fn rect(self, b: &BoxXyxy) -> Rect {
        Rect::from_two_pos(self.to_screen(b.x1, b.y1), self.to_screen(b.x2, b.y2))
    }
}

/// Draws the canvas into the remaining space.
pub fn canvas(ui: &mut egui::Ui, state: &AppState, ui_state: &mut UiState, out: &mut Vec<Command>) {
    let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
    let painter = ui.painter_at(rect);
    let doc = state.workspace.doc.as_ref();
    let verified = doc.is_some_and(|d| d.annotation.verified);
    painter.rect_filled(
        rect,
        0.0,
        if verified {
            Color32::from_rgb(150, 190, 60)
        } else {
            Color32::from_gray(40)
        },
    );

    let Some(path) = state.current_path() else {
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            "no image",
            egui::FontId::proportional(18.0),
            Color32::GRAY,
        );
        return;
    };
    let slot = state.workspace.loader.as_ref().and_then(|l| l.get(&path));
    let (texture, full_size, image_warning) = match slot {
        Some(ImageSlot::Ready {
            texture,
            full_size,
            warning,
        }) => (texture.clone(), *full_size, *warning),
        Some(ImageSlot::Failed(reason)) => {
            let text = format!("cannot show {}:\n{reason}", path.display());
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                text,
                egui::FontId::proportional(16.0),
                Color32::from_rgb(255, 120, 120),
            );
            return;
        }
        _ => {
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "loading…",
                egui::FontId::proportional(18.0),
                Color32::GRAY,
            );
            return;
        }
    };
    if doc.is_some_and(|d| !d.annotation.has_size()) {
        out.push(Command::ImageSize(full_size));
    }
    let (w, h) = (full_size[0] as f32, full_size[1] as f32);
    let t = update_view(ui, &mut ui_state.view, rect, &response, w, h);

    let image_rect = Rect::from_min_size(t.origin, Vec2::new(w * t.zoom, h * t.zoom));
    let b = ui_state.view.brightness;
    let tint = if b < 0.0 {
        Color32::from_gray((255.0 * (1.0 + b)) as u8)
    } else {
        Color32::WHITE
    };
    painter.image(
        texture.id(),
        image_rect,
        Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
        tint,
    );
    if b > 0.0 {
        painter.rect_filled(
            image_rect,
            0.0,
            Color32::from_white_alpha((b * 160.0) as u8),
        );
    }

    let predictions = state.shown_predictions();
    interact(
        ui,
        state,
        ui_state,
        out,
        &response,
        t,
        full_size,
        &predictions,
    );
    context_menu(&response, state, ui_state, out);
    let hovered = response
        .hover_pos()
        .and_then(|p| box_at(state, ui_state, t, p));
    paint_boxes(ui, state, ui_state, &painter, t, hovered);
    paint_predictions(ui, state, ui_state, &painter, t, &predictions);
    let mut notes = Vec::new();
    if let Some(err) = doc.and_then(|d| d.load_error.clone()) {
        notes.push(format!(
            "labels not loaded — the file is left untouched:\n{err}"
        ));
    }
    if let Some(w) = image_warning {
        notes.push(format!("image incomplete: {w}"));
    }
    match &ui_state.label_formats {
        Some(f) if f.image == path => {
            if let Some(w) = f.warning(state.settings.format) {
                notes.push(w);
            }
        }
        // Saves finish on the label thread: look again once none is pending.
        _ if !state.workspace.labels.busy() => out.push(Command::CheckLabelFormats),
        _ => {}
    }
    if !notes.is_empty() {
        painter.text(
            rect.left_top() + Vec2::new(8.0, 8.0),
            egui::Align2::LEFT_TOP,
            notes.join("\n"),
            egui::FontId::proportional(14.0),
            Color32::from_rgb(255, 110, 110),
        );
    }
}

/// Applies fit modes, the wheel (pan), Ctrl+wheel (zoom at the cursor) and keyboard zoom.
fn update_view(
    ui: &egui::Ui,
    view: &mut View,
    rect: Rect,
    response: &egui::Response,
    w: f32,
    h: f32,
) -> Transform {
    match view.fit {
        Fit::Window => {
            view.zoom = (rect.width() / w).min(rect.height() / h).max(1e-3);
            view.pan = (rect.size() - Vec2::new(w, h) * view.zoom) / 2.0;
        }
        Fit::Width => {
            view.zoom = (rect.width() / w).max(1e-3);
            view.pan.x = 0.0;
        }
        Fit::Manual => {}
    }
    let zoom_about = |factor: f32, about: Pos2, view: &mut View| {
        let new_zoom = (view.zoom * factor).clamp(0.01, 64.0);
        let origin = rect.min + view.pan;
        let new_origin = about - (about - origin) * (new_zoom / view.zoom);
        view.pan = new_origin - rect.min;
        view.zoom = new_zoom;
        view.fit = Fit::Manual;
    };
    if view.pending_zoom != 1.0 {
        let f = view.pending_zoom;
        view.pending_zoom = 1.0;
        zoom_about(f, rect.center(), view);
    }
    if response.hovered() {
        let (zoom, scroll, pointer, shift) = ui.input(|i| {
            (
                i.zoom_delta(),
                i.smooth_scroll_delta,
                i.pointer.hover_pos(),
                i.events.iter().rev().find_map(|e| match e {
                    egui::Event::MouseWheel { modifiers: m, .. } => Some(m.shift && m.command),
                    _ => None,
                }),
            )
        });
        // egui smooths a wheel turn over frames: a Ctrl+Shift turn stays brightness.
        if let Some(brightness) = shift {
            view.wheel_brightness = brightness;
        }
        if view.wheel_brightness && zoom != 1.0 {
            // Ctrl+Shift+wheel: brightness (LabelImg), not zoom.
            view.brightness = (view.brightness + zoom.ln() * 0.5).clamp(-1.0, 1.0);
        } else if zoom != 1.0 {
            zoom_about(zoom, pointer.unwrap_or(rect.center()), view);
        } else if scroll != Vec2::ZERO {
            view.pan += scroll;
            if view.fit == Fit::Window {
                view.fit = Fit::Manual;
            }
        }
    }
    view.origin = rect.min + view.pan;
    Transform {
        origin: view.origin,
        zoom: view.zoom,
    }
}

fn drag_id() -> egui::Id {
    egui::Id::unique("detlab_canvas_drag")
}

fn clamp_point(p: [f64; 2], size: [u32; 2]) -> [f64; 2] {
    [
        p[0].clamp(0.0, size[0] as f64),
        p[1].clamp(0.0, size[1] as f64),
    ]
}

/// Box from a drag start to the pointer; with `square`, a square with the shorter side
/// (as LabelImg draws them), kept inside the image.
pub fn drawn_box(start: [f64; 2], end: [f64; 2], square: bool, size: [u32; 2]) -> BoxXyxy {
    let mut end = clamp_point(end, size);
    if square {
        let side = (end[0] - start[0]).abs().min((end[1] - start[1]).abs());
        end = [
            start[0] + side * (end[0] - start[0]).signum(),
            start[1] + side * (end[1] - start[1]).signum(),
        ];
    }
    BoxXyxy::new(start[0], start[1], end[0], end[1]).normalized()
}

/// `original` dragged from `start` to `cur` (image pixels), kept inside the image, on whole
/// pixels.
fn moved(original: BoxXyxy, start: [f64; 2], cur: [f64; 2], size: [u32; 2]) -> BoxXyxy {
    let (w, h) = (size[0] as f64, size[1] as f64);
    let dx = (cur[0] - start[0]).clamp(-original.x1, w - original.x2);
    let dy = (cur[1] - start[1]).clamp(-original.y1, h - original.y2);
    original.translated(dx.round(), dy.round())
}

/// `original` with its `edges` moved to `cur` (clamped to the image, whole pixels).
fn resized(original: BoxXyxy, edges: Edges, cur: [f64; 2], size: [u32; 2]) -> BoxXyxy {
    let c = clamp_point(cur, size);
    let mut b = original;
    if edges.left {
        b.x1 = c[0].round();
    }
    if edges.right {
        b.x2 = c[0].round();
    }
    if edges.top {
        b.y1 = c[1].round();
    }
    if edges.bottom {
        b.y2 = c[1].round();
    }
    b.normalized()
}

/// Which edges of `r` are within grab distance of `p` (corners give two).
fn edges_at(r: Rect, p: Pos2) -> Edges {
    let inside_x = p.x > r.left() - GRAB && p.x < r.right() + GRAB;
    let inside_y = p.y > r.top() - GRAB && p.y < r.bottom() + GRAB;
    Edges {
        left: inside_y && (p.x - r.left()).abs() <= GRAB,
        right: inside_y && (p.x - r.right()).abs() <= GRAB,
        top: inside_x && (p.y - r.top()).abs() <= GRAB,
        bottom: inside_x && (p.y - r.bottom()).abs() <= GRAB,
    }
}

impl Edges {
    fn any(&self) -> bool {
        self.left || self.right || self.top || self.bottom
    }

    fn cursor(&self) -> CursorIcon {
        match (self.left || self.right, self.top || self.bottom) {
            (true, true) if (self.left && self.top) || (self.right && self.bottom) => {
                CursorIcon::ResizeNwSe
            }
            (true, true) => CursorIcon::ResizeNeSw,
            (true, false) => CursorIcon::ResizeHorizontal,
            (false, true) => CursorIcon::ResizeVertical,
            _ => CursorIcon::Default,
        }
    }
}

/// The box under `p`: the smallest one that contains it, so nested boxes stay reachable.
fn box_at(state: &AppState, ui_state: &UiState, t: Transform, p: Pos2) -> Option<usize> {
    let doc = state.workspace.doc.as_ref()?;
    doc.annotation
        .boxes
        .iter()
        .enumerate()
        .filter(|(_, b)| !ui_state.hidden_classes.contains(&b.class_name))
        .filter(|(_, b)| t.rect(&b.bbox).expand(2.0).contains(p))
        .min_by(|(_, a), (_, b)| a.bbox.area().total_cmp(&b.bbox.area()))
        .map(|(i, _)| i)
}

#[allow(clippy::too_many_arguments)]
fn interact(
    ui: &egui::Ui,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
    response: &egui::Response,
    t: Transform,
    size: [u32; 2],
    predictions: &[ShownPrediction],
) {
    let id = drag_id();
    let doc = state.workspace.doc.as_ref();
    let editable = doc.is_some_and(|d| d.can_save());
    let pointer = response.interact_pointer_pos().or(response.hover_pos());
    let mut drag: Option<Drag> = ui.data(|d| d.get_temp(id));
    let square = state.settings.draw_squares || ui.input(|i| i.modifiers.command);
    let labelling = ui_state.pending_label.is_some();

    if ui_state.tool == Tool::Draw {
        ui.ctx().set_cursor_icon(CursorIcon::Crosshair);
        if !labelling && ui.input(|i| i.key_pressed(egui::Key::Escape)) {
            drag = None;
            ui_state.tool = Tool::Edit;
            ui_state.continuous = false;
        }
    }
    // Hover feedback.
    if drag.is_none() && ui_state.tool == Tool::Edit {
        if let (Some(p), Some(doc)) = (response.hover_pos(), doc) {
            let sel = doc
                .selected
                .and_then(|i| doc.annotation.boxes.get(i))
                .map(|b| t.rect(&b.bbox));
            match sel.map(|r| edges_at(r, p)).filter(Edges::any) {
                Some(e) => ui.ctx().set_cursor_icon(e.cursor()),
                None if box_at(state, ui_state, t, p).is_some() => {
                    ui.ctx().set_cursor_icon(CursorIcon::Grab);
                }
                None => {}
            }
        }
    }

    if response.drag_started() && !labelling {
        let start = ui.input(|i| i.pointer.press_origin()).or(pointer);
        if let Some(p) = start {
            let panning = ui.input(|i| i.pointer.middle_down() || i.pointer.secondary_down());
            let band = ui.input(|i| i.modifiers.shift);
            drag = Some(if panning || !editable {
                Drag::Pan
            } else if band && ui_state.tool == Tool::Edit && box_at(state, ui_state, t, p).is_none()
            {
                Drag::Band { start: p }
            } else if ui_state.tool == Tool::Draw {
                Drag::Draw {
                    start: clamp_point(t.to_image(p), size),
                }
            } else {
                start_fix_drag(state, t, p, predictions)
                    .unwrap_or_else(|| start_edit_drag(state, ui_state, out, t, p))
            });
        }
    }

    if let (Some(d), Some(p)) = (drag, pointer) {
        if response.dragged() {
            let cur = t.to_image(p);
            match d {
                Drag::Pan => {
                    ui_state.view.pan += response.drag_delta();
                    ui_state.view.fit = Fit::Manual;
                }
                Drag::Move {
                    index,
                    start,
                    original,
                } => {
                    let bbox = moved(original, start, cur, size);
                    out.push(Command::DragBox { index, bbox });
                    ui.ctx().set_cursor_icon(CursorIcon::Grabbing);
                }
                Drag::Resize {
                    index,
                    edges,
                    original,
                } => {
                    let bbox = resized(original, edges, cur, size);
                    out.push(Command::DragBox { index, bbox });
                    ui.ctx().set_cursor_icon(edges.cursor());
                }
                Drag::Draw { start } => {
                    let b = drawn_box(start, cur, square, size);
                    ui_state.canvas_info = format!("new box {:.0} × {:.0}", b.width(), b.height());
                }
                Drag::Band { .. } => {}
                Drag::Fix {
                    index,
                    edges,
                    start,
                    original,
                    ..
                } => {
                    let current = if edges.any() {
                        resized(original, edges, cur, size)
                    } else {
                        moved(original, start, cur, size)
                    };
                    drag = Some(Drag::Fix {
                        index,
                        edges,
                        start,
                        original,
                        current,
                    });
                }
            }
        }
        if response.drag_stopped() {
            if let Some(Drag::Fix {
                index,
                current,
                original,
                ..
            }) = drag
            {
                if current != original {
                    out.push(Command::AcceptPrediction {
                        index,
                        class: None,
                        bbox: Some(current),
                    });
                }
            }
            if let Drag::Draw { start } = d {
                let b = drawn_box(start, t.to_image(p), square, size);
                let b = b.rounded();
                if b.width() >= MIN_BOX && b.height() >= MIN_BOX {
                    out.push(Command::BoxDrawn(b));
                }
                if !ui_state.continuous {
                    ui_state.tool = Tool::Edit;
                }
            }
            if let Drag::Band { start } = d {
                let band = Rect::from_two_pos(start, p);
                let inside: Vec<usize> = doc
                    .map(|doc| {
                        doc.annotation
                            .boxes
                            .iter()
                            .enumerate()
                            .filter(|(_, b)| !ui_state.hidden_classes.contains(&b.class_name))
                            .filter(|(_, b)| band.contains_rect(t.rect(&b.bbox)))
                            .map(|(i, _)| i)
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Command::SelectBoxes(inside));
            }
            drag = None;
        }
    }

    if response.clicked() && ui_state.tool == Tool::Draw && editable && !labelling {
        if let Some(p) = pointer {
            out.push(Command::ClickBox(clamp_point(t.to_image(p), size)));
            if !ui_state.continuous {
                ui_state.tool = Tool::Edit;
            }
            return finish(ui, id, drag);
        }
    }
    if response.clicked() && ui_state.tool == Tool::Edit {
        if let Some(p) = pointer {
            let hit = box_at(state, ui_state, t, p);
            let adding = ui.input(|i| i.modifiers.shift || i.modifiers.command);
            if let (true, Some(i)) = (adding, hit) {
                out.push(Command::ToggleInSelection(i));
                return finish(ui, id, drag);
            }
            let prediction = prediction_at(predictions, t, p);
            let prefer_prediction = match (hit, prediction) {
                (_, Some(i)) if predictions[i].state == PredictionState::Pending => true,
                (None, Some(_)) => true,
                _ => false,
            };
            if prefer_prediction {
                out.push(Command::SelectPrediction(prediction));
            } else {
                out.push(Command::SelectPrediction(None));
                out.push(Command::SelectBox(hit));
            }
        }
    }
    if let Some(p) = response.hover_pos() {
        let [x, y] = t.to_image(p);
        if !matches!(drag, Some(Drag::Draw { .. })) {
            ui_state.canvas_info = format!("x {:.0}, y {:.0}", x, y);
            if let Some(b) = doc.and_then(|d| d.selected_box()) {
                ui_state.canvas_info += &format!(
                    "   selected {} {:.0} × {:.0}",
                    b.class_name,
                    b.bbox.width(),
                    b.bbox.height()
                );
            }
        }
    }
    if response.double_clicked() && ui_state.tool == Tool::Edit {
        if let Some(i) = pointer.and_then(|p| box_at(state, ui_state, t, p)) {
            out.push(Command::SelectBox(Some(i)));
            out.push(Command::EditLabel);
        }
    }
    if response.secondary_clicked() {
        if let Some(i) = pointer.and_then(|p| box_at(state, ui_state, t, p)) {
            let selection = crate::app::editing::selection_of(doc, ui_state);
            if !selection.contains(&i) {
                out.push(Command::SelectBox(Some(i)));
            }
        }
    }
    finish(ui, id, drag);
}

fn finish(ui: &egui::Ui, id: egui::Id, drag: Option<Drag>) {
    ui.data_mut(|d| match drag {
        Some(v) => {
            d.insert_temp(id, v);
        }
        None => {
            d.remove::<Drag>(id);
        }
    });
}

/// The right-click menu on the canvas: acts on the selected boxes.
fn context_menu(
    response: &egui::Response,
    state: &AppState,
    ui_state: &UiState,
    out: &mut Vec<Command>,
) {
    let selection = crate::app::editing::selection_of(state.workspace.doc.as_ref(), ui_state);
    response.context_menu(|ui| {
        if selection.is_empty() {
            ui.label("right-click a box for its menu");
            return;
        }
        let k = selection.len();
        ui.label(format!(
            "{k} box{} selected",
            if k == 1 { "" } else { "es" }
        ));
        if ui.button("Edit label…  (Ctrl+E)").clicked() {
            out.push(Command::EditLabel);
            ui.close();
        }
        if k == 1 && ui.button("Duplicate  (Ctrl+D)").clicked() {
            out.push(Command::DuplicateSelected);
            ui.close();
        }
        if k == 1 && ui.button("Difficult on / off").clicked() {
            out.push(Command::ToggleDifficult(selection[0]));
            ui.close();
        }
        if ui.button("Hide their class").clicked() {
            out.push(Command::HideSelectedClasses);
            ui.close();
        }
        if ui.button("Delete  (Del)").clicked() {
            out.push(Command::DeleteSelected);
            ui.close();
        }
    });
}

/// The prediction under `p` that can be selected (pending or matching a label): the
/// smallest one.
fn prediction_at(predictions: &[ShownPrediction], t: Transform, p: Pos2) -> Option<usize> {
    predictions
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            matches!(
                s.state,
                PredictionState::Pending | PredictionState::MatchesLabel
            )
        })
        .filter(|(_, s)| t.rect(&s.detection.bbox).expand(2.0).contains(p))
        .min_by(|(_, a), (_, b)| a.detection.bbox.area().total_cmp(&b.detection.bbox.area()))
        .map(|(i, _)| i)
}

/// A drag that starts on the selected pending prediction fixes it.
fn start_fix_drag(
    state: &AppState,
    t: Transform,
    p: Pos2,
    predictions: &[ShownPrediction],
) -> Option<Drag> {
    let index = state.review.selected?;
    let shown = predictions.get(index)?;
    if shown.state != PredictionState::Pending {
        return None;
    }
    let b = shown.detection.bbox;
    let r = t.rect(&b);
    let edges = edges_at(r, p);
    if !edges.any() && !r.contains(p) {
        return None;
    }
    Some(Drag::Fix {
        index,
        edges,
        start: t.to_image(p),
        original: b,
        current: b,
    })
}

fn start_edit_drag(
    state: &AppState,
    ui_state: &UiState,
    out: &mut Vec<Command>,
    t: Transform,
    p: Pos2,
) -> Drag {
    let Some(doc) = &state.workspace.doc else {
        return Drag::Pan;
    };
    if let Some(i) = doc.selected.filter(|&i| i < doc.annotation.boxes.len()) {
        let edges = edges_at(t.rect(&doc.annotation.boxes[i].bbox), p);
        if edges.any() {
            out.push(Command::BeginBoxDrag(i));
            return Drag::Resize {
                index: i,
                edges,
                original: doc.annotation.boxes[i].bbox,
            };
        }
    }
    match box_at(state, ui_state, t, p) {
        Some(i) => {
            out.push(Command::BeginBoxDrag(i));
            Drag::Move {
                index: i,
                start: t.to_image(p),
                original: doc.annotation.boxes[i].bbox,
            }
        }
        None => {
            out.push(Command::SelectBox(None));
            Drag::Pan
        }
    }
}

fn paint_boxes(
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
fn paint_names(
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
fn paint_predictions(
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
