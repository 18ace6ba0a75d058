//! The transient state of the window: which tool and page, the canvas view, filters,
//! open prompts and the forms of the dialogs. The UI writes it directly; none of it is
//! saved, and none of it is the labels themselves (that is [`super::workspace`]).

use std::collections::HashSet;
use std::path::PathBuf;

use super::file_browser::FileBrowser;
use super::review::{ImportForm, OnnxExportForm};
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
    /// The last wheel turn was Ctrl+Shift (brightness, not zoom).
    pub wheel_brightness: bool,
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
            wheel_brightness: false,
        }
    }
}

/// The label dialog: a new box waiting for its class, or selected boxes to relabel.
#[derive(Clone, Debug, Default)]
pub struct PendingLabel {
    /// The new box (`None`: the dialog relabels `targets`).
    pub bbox: Option<BoxXyxy>,
    /// The boxes the dialog relabels (when `bbox` is `None`).
    pub targets: Vec<usize>,
    /// The typed filter / name.
    pub text: String,
    /// The user has changed `text` (a pre-filled default label is not typed).
    pub typed: bool,
    /// The listed class Enter takes (chosen with the arrow keys or the pointer).
    pub highlight: Option<usize>,
    /// The typed name is new and waits for "Create class" to be confirmed.
    pub confirm_new: bool,
    /// Frames the dialog has been drawn (a new window needs a second frame to show).
    pub frames: u8,
}

impl PendingLabel {
    /// The dialog for a newly drawn box, with `text` typed in.
    pub fn new_box(bbox: BoxXyxy, text: String) -> Self {
        Self {
            bbox: Some(bbox),
            text,
            ..Self::default()
        }
    }
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
    /// The file list shows the most useful unlabelled images first.
    pub sort_by_usefulness: bool,
    /// The "most useful first" order, with the (predictions, labelled, images) counts it
    /// was computed for.
    pub useful_order: Option<((usize, usize, usize), Vec<usize>)>,
    /// The unsaved-changes prompt, with what happens after it.
    pub unsaved_prompt: Option<AfterPrompt>,
    /// The image the "move to trash" prompt asks about.
    pub confirm_delete: Option<PathBuf>,
    /// The Export COCO dialog, when open.
    pub export_form: Option<ExportForm>,
    /// The Extract frames dialog, when open.
    pub extract_form: Option<super::extract_frames::ExtractForm>,
    /// The "Import PyTorch weights" form, when open.
    pub import_form: Option<ImportForm>,
    /// The "Export model to ONNX" form, when open.
    pub onnx_export_form: Option<OnnxExportForm>,
    /// detlab's own file dialog, shown where no native one can open.
    pub file_browser: Option<FileBrowser>,
    /// The Train page's settings.
    pub training_form: TrainingForm,
    /// Continuous drawing: after each box the next drag draws again (Esc / `e` leaves).
    pub continuous: bool,
    /// Boxes selected besides the document's selected box (Ctrl/Shift-click, rubber
    /// band), valid for the image in `selection_image`.
    pub multi_selection: Vec<usize>,
    /// The image `multi_selection` belongs to.
    pub selection_image: Option<PathBuf>,
    /// The Help → Keyboard shortcuts window is open.
    pub show_shortcuts: bool,
    /// The right (labels and review) panel is hidden (Ctrl+Shift+L).
    pub labels_panel_hidden: bool,
    /// The last window title sent (the title shows the image and the zoom).
    pub window_title: String,
    /// The label formats the shown image has files in (checked on each image and save).
    pub label_formats: Option<super::label_formats::LabelFormats>,
    /// The classes assigned last, newest first (the label picker's "Recent" row).
    pub recent_classes: super::recent_classes::RecentClasses,
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
            sort_by_usefulness: false,
            useful_order: None,
            unsaved_prompt: None,
            confirm_delete: None,
            export_form: None,
            extract_form: None,
            import_form: None,
            onnx_export_form: None,
            file_browser: None,
            training_form: TrainingForm::default(),
            continuous: false,
            multi_selection: Vec::new(),
            selection_image: None,
            show_shortcuts: false,
            labels_panel_hidden: false,
            window_title: String::new(),
            label_formats: None,
            recent_classes: Default::default(),
        }
    }
}
