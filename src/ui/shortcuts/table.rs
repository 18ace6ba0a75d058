//! The one keyboard table: every shortcut's keys, what it does, the chords the handler
//! listens for and its action.

use egui::{Key, Modifiers};

pub(super) const NONE: Modifiers = Modifiers::NONE;
pub(super) const SHIFT: Modifiers = Modifiers::SHIFT;
pub(super) const CTRL: Modifiers = Modifiers::COMMAND;
const CTRL_SHIFT: Modifiers = Modifiers {
    shift: true,
    ..Modifiers::COMMAND
};

/// What a shortcut in [`SHORTCUTS`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    OpenFolder,
    OpenFile,
    ChangeSaveDir,
    Save,
    CycleFormat,
    ExportCoco,
    DeleteImage,
    Undo,
    Redo,
    Duplicate,
    CopyPrevious,
    EditLabel,
    DeleteBox,
    Draw,
    EditMode,
    Continuous,
    DrawSquares,
    Tighten,
    FindSimilar,
    FindKnown,
    ShowBoxLabels,
    LabelsPanel,
    Next,
    Previous,
    NextUnlabelled,
    NextUnverified,
    ToggleVerified,
    ZoomIn,
    ZoomOut,
    FitWindow,
    FitWidth,
    Zoom100,
    Brighter,
    Darker,
    HideAll,
    ShowAll,
    Gallery,
    Help,
}

/// One row of the keyboard table: the keys as shown, what they do, the chords the
/// handler listens for and the action (rows without one are handled elsewhere: mouse,
/// digits, arrows, the review keys, the label dialog).
pub struct Shortcut {
    pub keys: &'static str,
    pub does: &'static str,
    pub chords: &'static [(Modifiers, Key)],
    pub action: Option<Action>,
}

const fn row(
    keys: &'static str,
    does: &'static str,
    chords: &'static [(Modifiers, Key)],
    action: Action,
) -> Shortcut {
    Shortcut {
        keys,
        does,
        chords,
        action: Some(action),
    }
}

const fn note(keys: &'static str, does: &'static str) -> Shortcut {
    Shortcut {
        keys,
        does,
        chords: &[],
        action: None,
    }
}

/// The one keyboard table: the handler ([`super::handle`]), Help → Keyboard shortcuts and the README
/// (checked by a test) all use it. LabelImg's keys do what they do in LabelImg.
pub const SHORTCUTS: &[Shortcut] = &[
    row(
        "d / a",
        "next / previous image (saves first)",
        &[(NONE, Key::D), (NONE, Key::A)],
        Action::Next,
    ),
    row(
        "n / u",
        "next unlabelled image (with a model: the most useful one) / next unverified image",
        &[(NONE, Key::N), (NONE, Key::U)],
        Action::NextUnlabelled,
    ),
    row(
        "w",
        "draw one box (Esc cancels)",
        &[(NONE, Key::W)],
        Action::Draw,
    ),
    row(
        "Ctrl+Shift+A",
        "continuous drawing on / off: every drag draws a box (Esc or e leaves)",
        &[(CTRL_SHIFT, Key::A)],
        Action::Continuous,
    ),
    row(
        "e / Ctrl+J",
        "edit mode: select, move, resize",
        &[(NONE, Key::E), (CTRL, Key::J)],
        Action::EditMode,
    ),
    row(
        "Ctrl+Shift+R",
        "draw squares on / off (or hold Ctrl while drawing)",
        &[(CTRL_SHIFT, Key::R)],
        Action::DrawSquares,
    ),
    note(
        "click, drag",
        "select, move; drag a handle or edge to resize; drag empty canvas to pan",
    ),
    note(
        "Ctrl/Shift+click, Shift+drag",
        "add to the selection; rubber-band select",
    ),
    note(
        "right-click a box",
        "menu: edit label, duplicate, hide class, difficult, delete",
    ),
    note("double-click a box", "edit its label"),
    note(
        "click (drawing)",
        "box the object under the click: the model's best candidate there, else a box grown from the image",
    ),
    row(
        "t",
        "tighten: snap the selected boxes to the object's edges",
        &[(NONE, Key::T)],
        Action::Tighten,
    ),
    row(
        "f",
        "find similar: propose every facing like the selected box (review with Tab / Enter / Del)",
        &[(NONE, Key::F)],
        Action::FindSimilar,
    ),
    row(
        "k",
        "find known products: propose every facing like the products labelled on this photo, each with its class",
        &[(NONE, Key::K)],
        Action::FindKnown,
    ),
    row(
        "Ctrl+E",
        "edit the label of the selected box(es): searchable class list",
        &[(CTRL, Key::E)],
        Action::EditLabel,
    ),
    note(
        "1 … 9",
        "class 1–9: relabel the selected boxes, or set the default label",
    ),
    row(
        "Delete",
        "delete the selected boxes",
        &[(NONE, Key::Delete), (NONE, Key::Backspace)],
        Action::DeleteBox,
    ),
    row(
        "Ctrl+D",
        "duplicate the selected box",
        &[(CTRL, Key::D)],
        Action::Duplicate,
    ),
    row(
        "Ctrl+V",
        "copy the previous image's boxes (merged)",
        &[(CTRL, Key::V)],
        Action::CopyPrevious,
    ),
    note(
        "arrows / Shift+arrows",
        "move the selected box 1 px / 10 px",
    ),
    row(
        "Space",
        "toggle verified (and save)",
        &[(NONE, Key::Space)],
        Action::ToggleVerified,
    ),
    row("Ctrl+S", "save", &[(CTRL, Key::S)], Action::Save),
    row(
        "Ctrl+Y",
        "next save format (VOC, YOLO, CreateML in turn)",
        &[(CTRL, Key::Y)],
        Action::CycleFormat,
    ),
    row("Ctrl+Z", "undo", &[(CTRL, Key::Z)], Action::Undo),
    row(
        "Ctrl+Shift+Z",
        "redo",
        &[(CTRL_SHIFT, Key::Z)],
        Action::Redo,
    ),
    row(
        "Ctrl++ / Ctrl+= / +",
        "zoom the image in",
        &[
            (CTRL, Key::Plus),
            (CTRL, Key::Equals),
            (NONE, Key::Plus),
            (NONE, Key::Equals),
        ],
        Action::ZoomIn,
    ),
    row(
        "Ctrl+- / -",
        "zoom the image out",
        &[(CTRL, Key::Minus), (NONE, Key::Minus)],
        Action::ZoomOut,
    ),
    note("Ctrl+wheel", "zoom towards the cursor"),
    note("wheel", "pan"),
    row("Ctrl+F", "fit window", &[(CTRL, Key::F)], Action::FitWindow),
    row(
        "Ctrl+Shift+F",
        "fit width",
        &[(CTRL_SHIFT, Key::F)],
        Action::FitWidth,
    ),
    row("Ctrl+0", "100 %", &[(CTRL, Key::Num0)], Action::Zoom100),
    row(
        "Ctrl+Shift+Up",
        "brighter (also Ctrl+Shift+wheel)",
        &[(CTRL_SHIFT, Key::ArrowUp)],
        Action::Brighter,
    ),
    row(
        "Ctrl+Shift+Down / Ctrl+Shift+-",
        "darker",
        &[(CTRL_SHIFT, Key::ArrowDown), (CTRL_SHIFT, Key::Minus)],
        Action::Darker,
    ),
    row(
        "Ctrl+H",
        "hide all boxes",
        &[(CTRL, Key::H)],
        Action::HideAll,
    ),
    row(
        "Ctrl+A",
        "show all boxes",
        &[(CTRL, Key::A)],
        Action::ShowAll,
    ),
    row(
        "Ctrl+Shift+P",
        "show / hide the class names on boxes",
        &[(CTRL_SHIFT, Key::P)],
        Action::ShowBoxLabels,
    ),
    row(
        "Ctrl+G",
        "crop gallery on / off: every box as a thumbnail, similar ones together; 1 … 9 / Ctrl+A / Esc act on it while shown",
        &[(CTRL, Key::G)],
        Action::Gallery,
    ),
    row(
        "Ctrl+Shift+L",
        "hide / show the labels panel",
        &[(CTRL_SHIFT, Key::L)],
        Action::LabelsPanel,
    ),
    row(
        "Ctrl+U",
        "open folder",
        &[(CTRL, Key::U)],
        Action::OpenFolder,
    ),
    row("Ctrl+O", "open file", &[(CTRL, Key::O)], Action::OpenFile),
    row(
        "Ctrl+R",
        "change the save folder",
        &[(CTRL, Key::R)],
        Action::ChangeSaveDir,
    ),
    row(
        "Ctrl+Shift+D",
        "move the image to the trash (asks first)",
        &[(CTRL_SHIFT, Key::D)],
        Action::DeleteImage,
    ),
    row(
        "Ctrl+Shift+E",
        "export COCO",
        &[(CTRL_SHIFT, Key::E)],
        Action::ExportCoco,
    ),
    row("F1", "this table", &[(NONE, Key::F1)], Action::Help),
    note("Tab", "next pending prediction (across images)"),
    note("Enter or a", "accept the selected prediction"),
    note("Delete or r", "reject the selected prediction"),
    note("1 … 9 (prediction selected)", "accept it as class 1–9"),
    note(
        "t (prediction selected)",
        "accept it with a tighter box (the model's candidates on it fused; a proposal: snapped to the edges)",
    ),
    note("drag a prediction", "fix it (it becomes a label)"),
    note(
        "draw a box over a prediction",
        "fix it with the drawn box and its class (drawing mode; IoU ≥ 0.5)",
    ),
    note(
        "Shift+Enter",
        "accept all pending predictions on this image",
    ),
    note(
        "Ctrl+Enter",
        "accept all pending predictions and go to the next unlabelled image",
    ),
    note(
        "Shift+Delete",
        "reject all pending predictions on this image (the rest, once the right ones are taken)",
    ),
    note(
        "Ctrl+Delete",
        "reject all pending predictions and go to the next unlabelled image",
    ),
];

/// The rows of [`SHORTCUTS`] as a Markdown table (the README carries the same).
pub fn markdown_table() -> String {
    let mut s = String::from("| keys | action |\n| --- | --- |\n");
    for r in SHORTCUTS {
        s += &format!("| `{}` | {} |\n", r.keys, r.does);
    }
    s
}
