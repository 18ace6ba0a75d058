//! Keyboard shortcuts (LabelImg's, plus undo/redo, class keys and review keys).
//! Ignored while a text field has keyboard focus.

use egui::{Key, KeyboardShortcut, Modifiers};

use crate::app::{AppState, Fit, Tool};

const CTRL: Modifiers = Modifiers::COMMAND;
const CTRL_SHIFT: Modifiers = Modifiers {
    shift: true,
    ..Modifiers::COMMAND
};

/// The shortcut table shown in Help → Keyboard.
pub const HELP: &[(&str, &str)] = &[
    ("d / a", "next / previous image (saves first)"),
    ("n / u", "next unlabelled / next unverified image"),
    ("w", "draw a box (Ctrl while dragging: square; Esc cancels)"),
    (
        "click, drag",
        "select, move; drag a handle or edge to resize; drag empty canvas to pan",
    ),
    (
        "1 … 9",
        "class 1–9: relabel the selected box, or set the default label",
    ),
    ("Delete", "delete the selected box"),
    ("Ctrl+D", "duplicate the selected box"),
    ("Ctrl+V", "copy the previous image's boxes (merged)"),
    (
        "arrows / Shift+arrows",
        "move the selected box 1 px / 10 px",
    ),
    ("Space", "toggle verified (and save)"),
    ("Ctrl+S", "save"),
    ("Ctrl+Z / Ctrl+Shift+Z, Ctrl+Y", "undo / redo"),
    ("+ / - , Ctrl+wheel", "zoom (towards the cursor)"),
    (
        "Ctrl+F / Ctrl+Shift+F / Ctrl+0",
        "fit window / fit width / 100 %",
    ),
    ("wheel", "pan"),
    ("Ctrl+H / Ctrl+A", "hide / show all boxes"),
    (
        "Ctrl+U / Ctrl+R / Ctrl+O",
        "open folder / change save folder / open file",
    ),
    ("Ctrl+E", "export COCO"),
    ("Tab", "next pending prediction (across images)"),
    ("Enter or a", "accept the selected prediction"),
    ("Delete or r", "reject the selected prediction"),
    (
        "1 … 9",
        "with a prediction selected: accept it as class 1–9",
    ),
    ("drag a prediction", "fix it (it becomes a label)"),
    (
        "Shift+Enter",
        "accept all pending predictions on this image",
    ),
];

/// Applies the shortcuts pressed this frame.
pub fn handle(ctx: &egui::Context, state: &mut AppState) {
    if ctx.egui_wants_keyboard_input()
        || state.pending_label.is_some()
        || state.unsaved_prompt.is_some()
    {
        return;
    }
    let pressed =
        |m: Modifiers, k: Key| ctx.input_mut(|i| i.consume_shortcut(&KeyboardShortcut::new(m, k)));
    use crate::app::jobs::PickPurpose;
    if pressed(CTRL, Key::U) {
        state.pick(PickPurpose::OpenFolder);
    }
    if pressed(CTRL, Key::O) {
        state.pick(PickPurpose::OpenFile);
    }
    if pressed(CTRL, Key::R) {
        state.pick(PickPurpose::SaveDir);
    }
    if pressed(CTRL, Key::E) {
        state.open_export_dialog();
    }
    if state.session.is_none() {
        return;
    }
    if pressed(CTRL, Key::S) {
        state.save();
    }
    if pressed(CTRL_SHIFT, Key::Z) || pressed(CTRL, Key::Y) {
        state.redo();
    }
    if pressed(CTRL, Key::Z) {
        state.undo();
    }
    if pressed(CTRL, Key::D) {
        state.duplicate_selected();
    }
    if pressed(CTRL, Key::V) {
        state.copy_previous_boxes();
    }
    if state.review.model.is_some() {
        review_keys(ctx, state, &pressed);
    }
    if pressed(CTRL_SHIFT, Key::F) {
        state.view.fit = Fit::Width;
    }
    if pressed(CTRL, Key::F) {
        state.view.fit = Fit::Window;
    }
    if pressed(CTRL, Key::Num0) {
        state.view.fit = Fit::Manual;
        state.view.zoom = 1.0;
    }
    if pressed(CTRL, Key::H) {
        state.hidden_classes = state.classes.names().iter().cloned().collect();
    }
    if pressed(CTRL, Key::A) {
        state.hidden_classes.clear();
    }
    if pressed(Modifiers::NONE, Key::D) {
        state.next();
    }
    if pressed(Modifiers::NONE, Key::A) {
        state.previous();
    }
    if pressed(Modifiers::NONE, Key::N) {
        state.next_matching(|s| !s.is_labelled());
    }
    if pressed(Modifiers::NONE, Key::U) {
        state.next_matching(|s| !s.is_verified());
    }
    if pressed(Modifiers::NONE, Key::W) {
        state.tool = Tool::Draw;
    }
    if pressed(Modifiers::NONE, Key::Delete) || pressed(Modifiers::NONE, Key::Backspace) {
        state.delete_selected();
    }
    if pressed(Modifiers::NONE, Key::Space) {
        state.toggle_verified();
    }
    if pressed(Modifiers::NONE, Key::Plus) || pressed(Modifiers::NONE, Key::Equals) {
        zoom_by(state, 1.1);
    }
    if pressed(Modifiers::NONE, Key::Minus) {
        zoom_by(state, 1.0 / 1.1);
    }
    for (i, k) in DIGITS.iter().enumerate() {
        if pressed(Modifiers::NONE, *k) {
            state.use_class(i);
        }
    }
    for (key, dx, dy) in [
        (Key::ArrowLeft, -1.0, 0.0),
        (Key::ArrowRight, 1.0, 0.0),
        (Key::ArrowUp, 0.0, -1.0),
        (Key::ArrowDown, 0.0, 1.0),
    ] {
        if pressed(Modifiers::SHIFT, key) {
            state.nudge_selected(dx * 10.0, dy * 10.0);
        }
        if pressed(Modifiers::NONE, key) {
            state.nudge_selected(dx, dy);
        }
    }
}

const DIGITS: [Key; 9] = [
    Key::Num1,
    Key::Num2,
    Key::Num3,
    Key::Num4,
    Key::Num5,
    Key::Num6,
    Key::Num7,
    Key::Num8,
    Key::Num9,
];

/// Review keys; with a prediction selected they take precedence over the labelling keys
/// (`a`, Delete, digits).
fn review_keys(
    ctx: &egui::Context,
    state: &mut AppState,
    pressed: &dyn Fn(Modifiers, Key) -> bool,
) {
    if pressed(Modifiers::SHIFT, Key::Enter) {
        state.accept_all_shown();
    }
    if pressed(Modifiers::NONE, Key::Tab) {
        // Tab walks predictions here, not keyboard focus through the widgets.
        ctx.memory_mut(|m| m.move_focus(egui::FocusDirection::None));
        state.next_pending();
    }
    let Some(index) = state.review.selected else {
        return;
    };
    if pressed(Modifiers::NONE, Key::Escape) {
        state.review.selected = None;
    } else if pressed(Modifiers::NONE, Key::Enter) || pressed(Modifiers::NONE, Key::A) {
        state.accept_prediction(index, None, None);
    } else if pressed(Modifiers::NONE, Key::Delete)
        || pressed(Modifiers::NONE, Key::Backspace)
        || pressed(Modifiers::NONE, Key::R)
    {
        state.reject_prediction(index);
    } else if let Some(k) = DIGITS.iter().position(|k| pressed(Modifiers::NONE, *k)) {
        if let Some(name) = state.classes.names().get(k).cloned() {
            state.accept_prediction(index, Some(name), None);
        }
    }
}

/// Zooms by `factor` about the canvas centre (applied by the canvas next frame).
pub fn zoom_by(state: &mut AppState, factor: f32) {
    state.view.pending_zoom *= factor;
}
