//! What a pointer does on the canvas: which box or prediction it is over, the drag it
//! starts (draw, move, resize, fix a prediction, pan, rubber band), what the drag gives
//! on release, and the right-click menu.

use egui::{CursorIcon, Pos2};

use super::geometry::{clamp_point, drawn_box, edges_at, moved, resized, Edges};
use super::{drag_id, Transform, MIN_BOX};
use crate::app::editing::labels_inside;
use crate::app::review::ShownPrediction;
use crate::app::{AppState, Command, Fit, Tool, UiState};
use crate::geometry::BoxXyxy;
use crate::review::PredictionState;

/// The drag in progress (kept in egui's memory under [`drag_id`] between frames).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Drag {
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

/// The box under `p`: the smallest one that contains it, so nested boxes stay reachable.
pub(super) fn box_at(state: &AppState, ui_state: &UiState, t: Transform, p: Pos2) -> Option<usize> {
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
pub(super) fn interact(
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
                let (a, b) = (t.to_image(start), t.to_image(p));
                let band = BoxXyxy::new(a[0], a[1], b[0], b[1]);
                let inside = labels_inside(doc, ui_state, band);
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

pub(super) fn finish(ui: &egui::Ui, id: egui::Id, drag: Option<Drag>) {
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
pub(super) fn context_menu(
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
pub(super) fn prediction_at(
    predictions: &[ShownPrediction],
    t: Transform,
    p: Pos2,
) -> Option<usize> {
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
pub(super) fn start_fix_drag(
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

pub(super) fn start_edit_drag(
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
