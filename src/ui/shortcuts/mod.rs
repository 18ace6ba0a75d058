//! Keyboard shortcuts (LabelImg's, plus undo/redo, class keys and review keys), as the
//! table in [`table`] lists them. Ignored while a text field has keyboard focus.

mod table;

use egui::{Key, KeyboardShortcut, Modifiers};

pub use self::table::{markdown_table, Action, Shortcut, SHORTCUTS};
use self::table::{CTRL, NONE, SHIFT};
use crate::app::jobs::PickPurpose;
use crate::app::{AppState, Command, Fit, Tool, UiState};

/// The action of the first chord of [`SHORTCUTS`] pressed this frame. Chords with Shift
/// are tried first, so that Ctrl+Shift+D is never taken for Ctrl+D.
fn pressed_action(ctx: &egui::Context) -> Option<(Action, usize)> {
    for with_shift in [true, false] {
        for r in SHORTCUTS {
            let Some(action) = r.action else { continue };
            for (i, (m, k)) in r.chords.iter().enumerate() {
                if m.shift == with_shift
                    && ctx.input_mut(|inp| inp.consume_shortcut(&KeyboardShortcut::new(*m, *k)))
                {
                    return Some((action, i));
                }
            }
        }
    }
    None
}

/// With egui-winit's clipboard shortcuts off (so that Ctrl+V reaches detlab in the real
/// window), text fields still get cut / copy / paste from here.
fn clipboard_for_text_fields(ctx: &egui::Context) {
    let (cut, copy, paste) = ctx.input_mut(|i| {
        (
            i.consume_shortcut(&KeyboardShortcut::new(CTRL, Key::X)),
            i.consume_shortcut(&KeyboardShortcut::new(CTRL, Key::C)),
            i.consume_shortcut(&KeyboardShortcut::new(CTRL, Key::V)),
        )
    });
    ctx.input_mut(|i| {
        if cut {
            i.events.push(egui::Event::Cut);
        }
        if copy {
            i.events.push(egui::Event::Copy);
        }
    });
    if paste {
        ctx.send_viewport_cmd(egui::ViewportCommand::RequestPaste);
    }
}

/// Applies the shortcuts pressed this frame: window changes at once, the rest as commands.
pub fn handle(
    ctx: &egui::Context,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    if ctx.egui_wants_keyboard_input() {
        clipboard_for_text_fields(ctx);
        return;
    }
    if ui_state.pending_label.is_some() || ui_state.unsaved_prompt.is_some() {
        return;
    }
    // Where egui-winit's clipboard shortcuts are on (kittest, other backends), Ctrl+V
    // arrives as a paste event.
    let pasted = ctx.input_mut(|i| {
        let before = i.events.len();
        i.events.retain(|e| !matches!(e, egui::Event::Paste(_)));
        i.events.len() != before
    });
    let pressed =
        |m: Modifiers, k: Key| ctx.input_mut(|i| i.consume_shortcut(&KeyboardShortcut::new(m, k)));
    // With a prediction selected, the review keys take `a`, Delete and the digits.
    let proposals = state.assist.proposals.values().any(|v| !v.is_empty());
    if state.workspace.session.is_some() && (state.review.model.is_some() || proposals) {
        review_keys(ctx, state, out, &pressed);
    }
    let mut actions: Vec<(Action, usize)> = Vec::new();
    if pasted {
        actions.push((Action::CopyPrevious, 0));
    }
    while let Some(a) = pressed_action(ctx) {
        actions.push(a);
    }
    for (action, chord) in actions {
        run(action, chord, state, ui_state, out);
    }
    if state.workspace.session.is_none() {
        return;
    }
    for (i, k) in DIGITS.iter().enumerate() {
        if pressed(NONE, *k) {
            out.push(Command::UseClass(i));
        }
    }
    for (key, dx, dy) in [
        (Key::ArrowLeft, -1.0, 0.0),
        (Key::ArrowRight, 1.0, 0.0),
        (Key::ArrowUp, 0.0, -1.0),
        (Key::ArrowDown, 0.0, 1.0),
    ] {
        if pressed(SHIFT, key) {
            out.push(Command::Nudge {
                dx: dx * 10.0,
                dy: dy * 10.0,
            });
        }
        if pressed(NONE, key) {
            out.push(Command::Nudge { dx, dy });
        }
    }
}

/// Carries out one table action (`chord`: which of its chords was pressed).
fn run(
    action: Action,
    chord: usize,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    let folder_actions = !matches!(
        action,
        Action::OpenFolder | Action::OpenFile | Action::Help | Action::LabelsPanel
    );
    if folder_actions && state.workspace.session.is_none() {
        out.push(Command::Info("open a folder first (Ctrl+U)".into()));
        return;
    }
    let info = |out: &mut Vec<Command>, m: &str| out.push(Command::Info(m.into()));
    let view = &mut ui_state.view;
    match action {
        Action::OpenFolder => out.push(Command::Pick(PickPurpose::OpenFolder)),
        Action::OpenFile => out.push(Command::Pick(PickPurpose::OpenFile)),
        Action::ChangeSaveDir => {
            info(out, "choose the folder label files are saved to");
            out.push(Command::Pick(PickPurpose::SaveDir));
        }
        Action::Save => out.push(Command::Save),
        Action::CycleFormat => out.push(Command::CycleFormat),
        Action::ExportCoco => out.push(Command::OpenExportDialog),
        Action::DeleteImage => match state.current_path() {
            Some(path) => ui_state.confirm_delete = Some(path),
            None => info(out, "no image to move to the trash"),
        },
        Action::Undo => out.push(Command::Undo),
        Action::Redo => out.push(Command::Redo),
        Action::Duplicate => out.push(Command::DuplicateSelected),
        Action::CopyPrevious => out.push(Command::CopyPreviousBoxes),
        Action::EditLabel => out.push(Command::EditLabel),
        Action::DeleteBox => out.push(Command::DeleteSelected),
        Action::Draw => {
            ui_state.tool = Tool::Draw;
            ui_state.continuous = false;
        }
        Action::EditMode => {
            ui_state.tool = Tool::Edit;
            ui_state.continuous = false;
        }
        Action::Continuous => {
            ui_state.continuous = !ui_state.continuous;
            ui_state.tool = if ui_state.continuous {
                Tool::Draw
            } else {
                Tool::Edit
            };
            info(
                out,
                if ui_state.continuous {
                    "continuous drawing: every drag draws a box (Esc or e leaves)"
                } else {
                    "continuous drawing off"
                },
            );
        }
        Action::Tighten => out.push(Command::TightenSelected),
        Action::FindSimilar => out.push(Command::FindSimilar),
        Action::FindKnown => out.push(Command::FindKnown),
        Action::DrawSquares => out.push(Command::SetDrawSquares(!state.settings.draw_squares)),
        Action::ShowBoxLabels => {
            out.push(Command::SetShowBoxLabels(!state.settings.show_box_labels))
        }
        Action::LabelsPanel => ui_state.labels_panel_hidden = !ui_state.labels_panel_hidden,
        Action::Next => out.push(if chord == 0 {
            Command::Next
        } else {
            Command::Previous
        }),
        Action::Previous => out.push(Command::Previous),
        Action::NextUnlabelled => out.push(if chord == 0 {
            Command::NextUnlabelled
        } else {
            Command::NextUnverified
        }),
        Action::NextUnverified => out.push(Command::NextUnverified),
        Action::ToggleVerified => out.push(Command::ToggleVerified),
        Action::ZoomIn => zoom_by(ui_state, 1.25),
        Action::ZoomOut => zoom_by(ui_state, 0.8),
        Action::FitWindow => view.fit = Fit::Window,
        Action::FitWidth => view.fit = Fit::Width,
        Action::Zoom100 => {
            view.fit = Fit::Manual;
            view.zoom = 1.0;
        }
        Action::Brighter => view.brightness = (view.brightness + 0.1).min(1.0),
        Action::Darker => view.brightness = (view.brightness - 0.1).max(-1.0),
        Action::HideAll => {
            ui_state.hidden_classes = state.workspace.classes.names().iter().cloned().collect();
        }
        Action::ShowAll => ui_state.hidden_classes.clear(),
        Action::Gallery => {
            use crate::app::gallery::GalleryAction;
            let shown = state.gallery.as_ref().is_some_and(|g| g.visible);
            out.push(Command::Gallery(if shown {
                GalleryAction::Close
            } else {
                GalleryAction::Open
            }));
        }
        Action::Help => ui_state.show_shortcuts = !ui_state.show_shortcuts,
    }
}

/// The class keys 1–9.
pub(super) const DIGITS: [Key; 9] = [
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
    if pressed(Modifiers::COMMAND, Key::Enter) {
        out.push(Command::AcceptAllAndNext);
    }
    if pressed(Modifiers::SHIFT, Key::Delete) {
        out.push(Command::RejectAllPending);
    }
    if pressed(Modifiers::COMMAND, Key::Delete) {
        out.push(Command::RejectAllAndNext);
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
    } else if pressed(Modifiers::NONE, Key::T) {
        out.push(Command::TightenPrediction(index));
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
