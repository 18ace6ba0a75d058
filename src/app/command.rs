//! What the UI asks of the app. Panels read the state and return [`Command`]s;
//! [`AppState::apply`] is the one place that carries them out (after the frame is drawn).
//! Only the transient [`super::UiState`] is written by the UI directly.

use std::path::PathBuf;

use super::jobs::PickPurpose;
use super::review::{ImportForm, OnnxExportForm, RunScope};
use super::AppState;
use crate::dataset::LabelFormat;
use crate::detector::maths::postprocess::SelectConfig;
use crate::geometry::BoxXyxy;
use crate::review::DisagreementKind;

/// A change the UI asks for.
#[must_use]
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    // Files and folders.
    /// Open a native file dialog (or detlab's own) for this purpose.
    Pick(PickPurpose),
    /// A file dialog answered `path` for this purpose.
    Picked(PickPurpose, PathBuf),
    /// Close detlab's own file dialog without an answer.
    CloseFileBrowser,
    OpenFolder(PathBuf),

    // Moving between images.
    GoTo(usize),
    GoToPath(PathBuf),
    Next,
    Previous,
    NextUnlabelled,
    NextUnverified,
    /// The unsaved-changes prompt was answered: save, or discard.
    AnswerPrompt {
        save: bool,
    },

    // Saving.
    Save,
    SetFormat(LabelFormat),
    /// Replace a label file that could not be read.
    AllowOverwrite,
    /// Settle a conflict with someone else's save (see [`super::Workspace::conflicts`]):
    /// keep ours, or take theirs.
    ResolveConflict {
        index: usize,
        take_theirs: bool,
    },

    // Editing the shown image's labels.
    /// A box was drawn: label it, or open the label picker.
    BoxDrawn(BoxXyxy),
    AddBox {
        bbox: BoxXyxy,
        label: String,
    },
    SelectBox(Option<usize>),
    /// A drag of box `.0` starts (one undo step for the whole drag).
    BeginBoxDrag(usize),
    DragBox {
        index: usize,
        bbox: BoxXyxy,
    },
    /// The shown image's size in pixels, once decoded.
    ImageSize([u32; 2]),
    /// Delete every selected box.
    DeleteSelected,
    /// Select exactly these boxes (rubber band).
    SelectBoxes(Vec<usize>),
    /// Ctrl/Shift-click: add the box to the selection, or remove it.
    ToggleInSelection(usize),
    /// Give these boxes the class `label`.
    RelabelBoxes {
        targets: Vec<usize>,
        label: String,
    },
    /// A click in draw mode (image pixels): the box of the object under it.
    ClickBox([f64; 2]),
    /// Snap the selected boxes to the object's edges.
    TightenSelected,
    /// Accept prediction `.0` snapped to the object's edges.
    TightenPrediction(usize),
    /// Accept every pending prediction shown and go to the next unlabelled image.
    AcceptAllAndNext,
    /// Reject every pending prediction on this image and go to the next unlabelled one.
    RejectAllAndNext,
    /// Fine-tune the review model after every this many newly labelled images (0: off).
    SetAutoRetrain(usize),
    /// Go back to the model the last automatic retraining replaced.
    RevertAutoModel,
    /// Show predictions with their boxes refined by candidate fusion.
    SetRefineBoxes(bool),
    /// The precision of the next runs of the model.
    SetPrecision(crate::detector::precision::Precision),
    /// Whole photos or tiles for the review runs (predictions are cached per setting).
    SetTiling(crate::detector::maths::tiling::Tiling),
    /// Test-time augmentation for the review runs (predictions are cached per setting).
    SetTta(crate::detector::maths::tta::Tta),
    /// Let the review's TTA follow what measures cheaper on the labelled images.
    SetAutoTta(bool),
    /// Propose every facing like the selected box, for review.
    FindSimilar,
    /// Proposes every product labelled before (here or on another photo) on this one.
    FindKnown,
    /// Open the label dialog for the selected boxes (Ctrl+E, double-click).
    EditLabel,
    /// Hide the classes of the selected boxes.
    HideSelectedClasses,
    DuplicateSelected,
    CopyPreviousBoxes,
    /// Class key `.0`: relabel the selected box, or make it the default label.
    UseClass(usize),
    ToggleDifficult(usize),
    ToggleVerified,
    Nudge {
        dx: f64,
        dy: f64,
    },
    Undo,
    Redo,

    // Settings.
    SetAutosave(bool),
    SetSingleClassMode(bool),
    SetDefaultLabel(String),
    /// *Class by look* on or off.
    SetClassByLook(bool),
    SetClassColor(String, [u8; 3]),
    SetShowBoxLabels(bool),
    /// New boxes are squares.
    SetDrawSquares(bool),
    /// Ctrl+Y: the next save format.
    CycleFormat,
    /// A message for the status bar (e.g. why a shortcut did nothing).
    Info(String),
    /// Look up which label formats the shown image has files in.
    CheckLabelFormats,

    // Jobs.
    OpenExportDialog,
    StartExport,
    /// Start or stop extracting a video's frames (File → Extract frames…).
    ExtractFrames(super::extract_frames::FramesAction),
    /// Move this image to the system trash.
    DeleteImage(PathBuf),
    DismissError,

    // Review.
    LoadModel(PathBuf),
    ImportModel(ImportForm),
    /// Export a model file to ONNX (Review → Export model…).
    ExportOnnx(OnnxExportForm),
    RunModel(RunScope),
    CancelRun,
    SelectPrediction(Option<usize>),
    AcceptPrediction {
        index: usize,
        class: Option<String>,
        bbox: Option<BoxXyxy>,
    },
    RejectPrediction(usize),
    AcceptAllShown,
    /// Reject every pending prediction on this image.
    RejectAllPending,
    NextPending,
    ShowPredictions(bool),
    SetReviewSelect(SelectConfig),
    SetDisagreementKind(DisagreementKind),
    FindDisagreements,
    EvaluateModel,
    /// The Evaluate page's maxDets: `None` chooses from the labels (1,10,300 when one
    /// image holds more than 100 boxes, else 1,10,100).
    SetEvalMaxDets(Option<crate::eval::MaxDets>),

    // Training.
    /// Start a training run (with `resume`, continue the last one).
    StartTraining {
        resume: bool,
    },
    StopTraining,

    // The crop gallery.
    /// What the crop gallery window asks for.
    Gallery(super::gallery::GalleryAction),
}

impl AppState {
    /// Carries out `commands` in order; wakes the window when there were any, so that the
    /// next frame shows their effect.
    pub fn apply_all(&mut self, commands: Vec<Command>) {
        if commands.is_empty() {
            return;
        }
        for command in commands {
            self.apply(command);
        }
        if let Some(ctx) = &self.ctx {
            ctx.request_repaint();
        }
    }

    /// Carries out one command.
    pub fn apply(&mut self, command: Command) {
        match command {
            Command::Pick(purpose) => self.pick(purpose),
            Command::Picked(purpose, path) => {
                self.ui.file_browser = None;
                self.picked(purpose, path);
            }
            Command::CloseFileBrowser => self.ui.file_browser = None,
            Command::OpenFolder(folder) => self.request_open_folder(folder),
            Command::GoTo(index) => self.go_to(index),
            Command::GoToPath(path) => self.go_to_path(&path),
            Command::Next => self.next(),
            Command::Previous => self.previous(),
            Command::NextUnlabelled => self.next_unlabelled(),
            Command::NextUnverified => self.next_matching(|s| !s.is_verified()),
            Command::AnswerPrompt { save } => self.answer_prompt(save),
            Command::Save => {
                self.save();
                self.ui.label_formats = None;
            }
            Command::SetFormat(format) => {
                self.set_format(format);
                self.ui.label_formats = None;
            }
            Command::AllowOverwrite => self.allow_overwrite(),
            Command::ResolveConflict { index, take_theirs } => {
                self.resolve_conflict(index, take_theirs)
            }
            Command::BoxDrawn(bbox) => self.box_drawn(bbox),
            Command::AddBox { bbox, label } => self.add_box(bbox, &label),
            Command::SelectBox(index) => {
                self.ui.multi_selection.clear();
                self.select_box(index);
            }
            Command::BeginBoxDrag(index) => self.begin_box_drag(index),
            Command::DragBox { index, bbox } => self.drag_box(index, bbox),
            Command::ImageSize(size) => self.set_image_size(size),
            Command::DeleteSelected => self.delete_selected(),
            Command::SelectBoxes(indices) => self.select_boxes(indices),
            Command::ToggleInSelection(index) => self.toggle_in_selection(index),
            Command::RelabelBoxes { targets, label } => self.relabel_selected(&targets, &label),
            Command::EditLabel => self.edit_label(),
            Command::ClickBox(at) => self.click_box(at),
            Command::TightenSelected => self.tighten_selected(),
            Command::TightenPrediction(index) => self.tighten_prediction(index),
            Command::AcceptAllAndNext => self.accept_all_and_next(),
            Command::RejectAllAndNext => self.reject_all_and_next(),
            Command::SetAutoRetrain(every) => self.set_auto_retrain(every),
            Command::RevertAutoModel => self.revert_auto_model(),
            Command::SetRefineBoxes(on) => self.review.refine_boxes = on,
            Command::SetPrecision(p) => self.set_precision(p),
            Command::SetTiling(t) => self.set_tiling(t),
            Command::SetTta(t) => self.set_tta(t),
            Command::SetAutoTta(on) => self.set_auto_tta(on),
            Command::FindSimilar => self.find_similar(),
            Command::FindKnown => self.find_known(),
            Command::HideSelectedClasses => self.hide_selected_classes(),
            Command::DuplicateSelected => self.duplicate_selected(),
            Command::CopyPreviousBoxes => self.copy_previous_boxes(),
            Command::UseClass(id) => self.use_class(id),
            Command::ToggleDifficult(index) => self.toggle_difficult(index),
            Command::ToggleVerified => self.toggle_verified(),
            Command::Nudge { dx, dy } => self.nudge_selected(dx, dy),
            Command::Undo => self.undo(),
            Command::Redo => self.redo(),
            Command::SetAutosave(on) => {
                self.settings.autosave = on;
                self.save_settings();
            }
            Command::SetSingleClassMode(on) => {
                self.settings.single_class_mode = on;
                self.save_settings();
            }
            Command::SetDefaultLabel(name) => self.settings.default_label = Some(name),
            Command::SetClassByLook(on) => {
                self.settings.class_by_look = on;
                self.save_settings();
            }
            Command::SetClassColor(name, rgb) => {
                self.settings.class_colors.insert(name, rgb);
                self.save_settings();
            }
            Command::SetShowBoxLabels(on) => {
                self.settings.show_box_labels = on;
                self.save_settings();
            }
            Command::SetDrawSquares(on) => {
                self.settings.draw_squares = on;
                self.save_settings();
                self.info(if on {
                    "draw squares: on"
                } else {
                    "draw squares: off"
                });
            }
            Command::CycleFormat => {
                let all = LabelFormat::ALL;
                let i = all
                    .iter()
                    .position(|&f| f == self.settings.format)
                    .unwrap_or(0);
                let next = all[(i + 1) % all.len()];
                self.set_format(next);
                self.ui.label_formats = None;
                self.info(format!("save format: {}", next.name()));
            }
            Command::Info(message) => self.info(message),
            Command::CheckLabelFormats => self.check_label_formats(),
            Command::OpenExportDialog => self.open_export_dialog(),
            Command::StartExport => self.start_export(),
            Command::ExtractFrames(action) => self.frames_action(action),
            Command::DeleteImage(path) => self.delete_image(&path),
            Command::DismissError => self.error = None,
            Command::LoadModel(path) => self.load_model(path),
            Command::ImportModel(form) => self.import_model(form),
            Command::ExportOnnx(form) => self.export_onnx(form),
            Command::RunModel(scope) => self.run_model(scope),
            Command::CancelRun => {
                if let Some(run) = &self.review.run {
                    run.cancel();
                }
            }
            Command::SelectPrediction(index) => {
                self.review.selected = index;
                if index.is_some() {
                    self.select_box(None);
                }
            }
            Command::AcceptPrediction { index, class, bbox } => {
                self.accept_prediction(index, class, bbox);
            }
            Command::RejectPrediction(index) => self.reject_prediction(index),
            Command::AcceptAllShown => self.accept_all_shown(),
            Command::RejectAllPending => self.reject_all_pending(),
            Command::NextPending => self.next_pending(),
            Command::ShowPredictions(on) => self.review.show = on,
            Command::SetReviewSelect(select) => self.review.select = select,
            Command::SetDisagreementKind(kind) => self.review.disagreement_kind = kind,
            Command::FindDisagreements => self.find_disagreements(),
            Command::EvaluateModel => self.evaluate_model(),
            Command::SetEvalMaxDets(m) => self.review.eval_max_dets = m,
            Command::StartTraining { resume } => self.start_training(resume),
            Command::StopTraining => self.stop_training(),
            Command::Gallery(action) => self.gallery_action(action),
        }
    }
}
