//! Keyboard shortcuts (LabelImg's, plus undo/redo, class keys and review keys).
//! Ignored while a text field has keyboard focus.

use egui::{Key, KeyboardShortcut, Modifiers};

use crate::app::jobs::PickPurpose;
use crate::app::{AppState, Command, Fit, Tool, UiState};

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

/// Applies the shortcuts pressed this frame: window changes at once, the rest as commands.
pub fn handle(
    ctx: &egui::Context,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    if ctx.egui_wants_keyboard_input()
        || ui_state.pending_label.is_some()
        || ui_state.unsaved_prompt.is_some()
    {
        return;
    }
    let pressed =
        |m: Modifiers, k: Key| ctx.input_mut(|i| i.consume_shortcut(&KeyboardShortcut::new(m, k)));
    if pressed(CTRL, Key::U) {
        out.push(Command::Pick(PickPurpose::OpenFolder));
    }
    if pressed(CTRL, Key::O) {
        out.push(Command::Pick(PickPurpose::OpenFile));
    }
    if pressed(CTRL, Key::R) {
        out.push(Command::Pick(PickPurpose::SaveDir));
    }
    if pressed(CTRL, Key::E) {
        out.push(Command::OpenExportDialog);
    }
    if state.workspace.session.is_none() {
        return;
    }
    if pressed(CTRL, Key::S) {
        out.push(Command::Save);
    }
    if pressed(CTRL_SHIFT, Key::Z) || pressed(CTRL, Key::Y) {
        out.push(Command::Redo);
    }
    if pressed(CTRL, Key::Z) {
        out.push(Command::Undo);
    }
    if pressed(CTRL, Key::D) {
        out.push(Command::DuplicateSelected);
    }
    if pressed(CTRL, Key::V) {
        out.push(Command::CopyPreviousBoxes);
    }
    if state.review.model.is_some() {
        review_keys(ctx, state, out, &pressed);
    }
    let view = &mut ui_state.view;
    if pressed(CTRL_SHIFT, Key::F) {
        view.fit = Fit::Width;
    }
    if pressed(CTRL, Key::F) {
        view.fit = Fit::Window;
    }
    if pressed(CTRL, Key::Num0) {
        view.fit = Fit::Manual;
        view.zoom = 1.0;
    }
    if pressed(CTRL, Key::H) {
        ui_state.hidden_classes = state.workspace.classes.names().iter().cloned().collect();
    }
    if pressed(CTRL, Key::A) {
        ui_state.hidden_classes.clear();
    }
    if pressed(Modifiers::NONE, Key::D) {
        out.push(Command::Next);
    }
    if pressed(Modifiers::NONE, Key::A) {
        out.push(Command::Previous);
    }
    if pressed(Modifiers::NONE, Key::N) {
        out.push(Command::NextUnlabelled);
    }
    if pressed(Modifiers::NONE, Key::U) {
        out.push(Command::NextUnverified);
    }
    if pressed(Modifiers::NONE, Key::W) {
        ui_state.tool = Tool::Draw;
    }
    if pressed(Modifiers::NONE, Key::Delete) || pressed(Modifiers::NONE, Key::Backspace) {
        out.push(Command::DeleteSelected);
    }
    if pressed(Modifiers::NONE, Key::Space) {
        out.push(Command::ToggleVerified);
    }
    if pressed(Modifiers::NONE, Key::Plus) || pressed(Modifiers::NONE, Key::Equals) {
        zoom_by(ui_state, 1.1);
    }
    if pressed(Modifiers::NONE, Key::Minus) {
        zoom_by(ui_state, 1.0 / 1.1);
    }
    for (i, k) in DIGITS.iter().enumerate() {
        if pressed(Modifiers::NONE, *k) {
            out.push(Command::UseClass(i));
        }
    }
    for (key, dx, dy) in [
        (Key::ArrowLeft, -1.0, 0.0),
        (Key::ArrowRight, 1.0, 0.0),
        (Key::ArrowUp, 0.0, -1.0),
        (Key::ArrowDown, 0.0, 1.0),
    ] {
        if pressed(Modifiers::SHIFT, key) {
            out.push(Command::Nudge {
                dx: dx * 10.0,
                dy: dy * 10.0,
            });
        }
        if pressed(Modifiers::NONE, key) {
            out.push(Command::Nudge { dx, dy });
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
    state: &AppState,
    out: &mut Vec<Command>,
    pressed: &dyn Fn(Modifiers, Key) -> bool,
) {
    if pressed(Modifiers::SHIFT, Key::Enter) {
        out.push(Command::AcceptAllShown);
    }
    if pressed(Modifiers::NONE, Key::Tab) {
        // Tab walks predictions here, not keyboard focus through the widgets.
        ctx.memory_mut(|m| m.move_focus(egui::FocusDirection::None));
        out.push(Command::NextPending);
    }
    let Some(index) = state.review.selected else {
        return;
    };
    if pressed(Modifiers::NONE, Key::Escape) {
        out.push(Command::SelectPrediction(None));
    } else if pressed(Modifiers::NONE, Key::Enter) || pressed(Modifiers::NONE, Key::A) {
        out.push(Command::AcceptPrediction {
            index,
            class: None,
            bbox: None,
        });
    } else if pressed(Modifiers::NONE, Key::Delete)
        || pressed(Modifiers::NONE, Key::Backspace)
        || pressed(Modifiers::NONE, Key::R)
    {
        out.push(Command::RejectPrediction(index));
    } else if let Some(k) = DIGITS.iter().position(|k| pressed(Modifiers::NONE, *k)) {
        if let Some(name) = state.workspace.classes.names().get(k).cloned() {
            out.push(Command::AcceptPrediction {
                index,
                class: Some(name),
                bbox: None,
            });
        }
    }
}

/// Zooms by `factor` about the canvas centre (applied by the canvas next frame).
pub fn zoom_by(ui_state: &mut UiState, factor: f32) {
    ui_state.view.pending_zoom *= factor;
}
