//! The transient state of the window: which tool and page, the canvas view, filters,
//! open prompts and the forms of the dialogs. The UI writes it directly; none of it is
//! saved, and none of it is the labels themselves (that is [`super::workspace`]).

use std::collections::HashSet;
use std::path::PathBuf;

use super::file_browser::FileBrowser;
use super::review::ImportForm;
use super::training::TrainingForm;
use crate::geometry::BoxXyxy;

/// What a left-drag on the canvas does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Select, move and resize boxes; drag empty canvas to pan.
    Edit,
    /// Drag to draw a new box (`w`).
    Draw,
}

/// How the image is fitted into the canvas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fit {
    Window,
    Width,
    /// A user-chosen zoom (screen points per image pixel).
    Manual,
}

/// The canvas view: zoom and pan, in screen points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    pub fit: Fit,
    pub zoom: f32,
    /// Screen offset of the image's top-left corner from the canvas' top-left corner.
    pub pan: egui::Vec2,
    /// −1 (dark) … 0 … +1 (bright).
    pub brightness: f32,
    /// Keyboard zoom to apply about the canvas centre on the next frame (1 = none).
    pub pending_zoom: f32,
    /// Screen position of the image's top-left corner in the last frame.
    pub origin: egui::Pos2,
}

impl Default for View {
    fn default() -> Self {
        Self {
            fit: Fit::Window,
            zoom: 1.0,
            pan: egui::Vec2::ZERO,
            brightness: 0.0,
            pending_zoom: 1.0,
            origin: egui::Pos2::ZERO,
        }
    }
}

/// A new box waiting for its class (the label picker is open).
#[derive(Clone, Debug)]
pub struct PendingLabel {
    pub bbox: BoxXyxy,
    pub text: String,
}

/// A navigation that waits for the user's answer about unsaved changes.
#[derive(Clone, Debug, PartialEq)]
pub enum AfterPrompt {
    GoTo(usize),
    OpenFolder(PathBuf),
    Quit,
}

/// What the central area shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Page {
    /// The image with its labels and the model's predictions.
    #[default]
    Label,
    /// COCO numbers and PR curves of the model on the labels.
    Evaluate,
    /// The training panel.
    Train,
}

/// The Export COCO dialog's choices.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportForm {
    pub split: SplitChoice,
    pub val_fraction: f64,
    pub seed: u64,
    pub zylo117: bool,
    pub project: String,
    pub out_dir: String,
    pub difficult_as_crowd: bool,
}

/// How the Export COCO dialog splits the images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitChoice {
    None,
    Fraction,
    ByFolder,
}

/// Everything about the window that is neither labels nor settings nor a job.
pub struct UiState {
    /// What a left-drag on the canvas does.
    pub tool: Tool,
    /// The canvas zoom and pan.
    pub view: View,
    /// What the central area shows.
    pub page: Page,
    /// Classes whose boxes are not drawn.
    pub hidden_classes: HashSet<String>,
    /// The file list's filter text.
    pub file_filter: String,
    /// Cursor position / box size in image pixels, for the status bar.
    pub canvas_info: String,
    /// A drawn box waiting for its class (the label picker is open).
    pub pending_label: Option<PendingLabel>,
    /// The unsaved-changes prompt, with what happens after it.
    pub unsaved_prompt: Option<AfterPrompt>,
    /// The image the "move to trash" prompt asks about.
    pub confirm_delete: Option<PathBuf>,
    /// The Export COCO dialog, when open.
    pub export_form: Option<ExportForm>,
    /// The "Import PyTorch weights" form, when open.
    pub import_form: Option<ImportForm>,
    /// detlab's own file dialog, shown where no native one can open.
    pub file_browser: Option<FileBrowser>,
    /// The Train page's settings.
    pub training_form: TrainingForm,
}

impl Default for UiState {
    fn default() -> Self {
        Self {
            tool: Tool::Edit,
            view: View::default(),
            page: Page::Label,
            hidden_classes: HashSet::new(),
            file_filter: String::new(),
            canvas_info: String::new(),
            pending_label: None,
            unsaved_prompt: None,
            confirm_delete: None,
            export_form: None,
            import_form: None,
            file_browser: None,
            training_form: TrainingForm::default(),
        }
    }
}
