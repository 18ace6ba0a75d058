//! The app's state, in named parts: saved settings, the [`Workspace`] (folder, image,
//! labels), the transient [`UiState`], the one-shot [`Jobs`], the review and the training
//! run. The UI changes it through [`super::Command`]s; no drawing here.

use std::path::{Path, PathBuf};

use super::assist::Assist;
use super::auto_retrain::AutoRetrain;
use super::background::Jobs;
use super::class_by_look::ClassByLook;
use super::image_loader::ImageLoader;
use super::jobs::LatestWriter;
use super::review::Review;
use super::settings::Settings;
use super::training::TrainingRun;
use super::ui_state::UiState;
use super::workspace::Workspace;

/// Everything the app shows.
pub struct AppState {
    /// The saved settings (written off the UI thread by [`Self::save_settings`]).
    pub settings: Settings,
    /// Where the settings are saved.
    pub settings_path: PathBuf,
    settings_writer: LatestWriter<Settings>,
    /// The open folder, the image shown, its labels and the label thread.
    pub workspace: Workspace,
    /// The window's transient state: tool, view, filters, prompts, forms.
    pub ui: UiState,
    /// One-shot background jobs: export, demo, trash, file dialog.
    pub jobs: Jobs,
    /// The model, its predictions and the review decisions.
    pub review: Review,
    /// The training run, once started.
    pub training: Option<TrainingRun>,
    /// The labelling assistants (click-to-box, tighten, find similar) and their proposals.
    pub assist: Assist,
    /// *Class by look*: the labelled boxes' appearance, to class new boxes.
    pub looks: ClassByLook,
    /// Fine-tuning the review model in the background as labels come in.
    pub auto_retrain: AutoRetrain,
    /// The crop gallery, once opened (View → Crop gallery).
    pub gallery: Option<super::gallery::Gallery>,
    /// Messages for the status bar / log (latest last).
    pub messages: Vec<String>,
    /// Last error shown prominently until dismissed.
    pub error: Option<String>,
    /// The user chose to quit (the window closes on the next frame).
    pub quit_requested: bool,
    /// The window that background work wakes when it has news (`None` in headless use).
    /// Set once, here, and handed to every thread the app starts.
    pub(super) ctx: Option<egui::Context>,
}

impl AppState {
    /// The state of a window on `ctx` (repainted by background threads), or headless.
    pub fn new(
        settings: Settings,
        settings_path: PathBuf,
        loader: Option<ImageLoader>,
        ctx: Option<egui::Context>,
    ) -> Self {
        let mut review = Review::default();
        review.select.score_threshold = settings.review_score.clamp(0.0, 1.0);
        review.select.iou_threshold = settings.review_iou.clamp(0.0, 1.0);
        review.select.class_agnostic = settings.review_class_agnostic;
        Self {
            settings,
            settings_path,
            settings_writer: LatestWriter::spawn("settings", save_settings_file),
            workspace: Workspace::new(loader, ctx.clone()),
            ui: UiState::default(),
            jobs: Jobs::default(),
            review,
            training: None,
            assist: Assist::default(),
            looks: ClassByLook::default(),
            auto_retrain: AutoRetrain::default(),
            gallery: None,
            messages: Vec::new(),
            error: None,
            quit_requested: false,
            ctx,
        }
    }

    /// Adds a message to the status bar / log.
    pub fn info(&mut self, message: impl Into<String>) {
        self.messages.push(message.into());
        if self.messages.len() > 200 {
            self.messages.remove(0);
        }
    }

    /// Adds a message and shows it as the error until dismissed.
    pub fn fail(&mut self, message: impl Into<String>) {
        let m = message.into();
        self.messages.push(m.clone());
        self.error = Some(m);
    }

    /// Saves the settings (with the review thresholds) in the background.
    pub fn save_settings(&mut self) {
        let select = &self.review.select;
        self.settings.review_score = select.score_threshold;
        self.settings.review_iou = select.iou_threshold;
        self.settings.review_class_agnostic = select.class_agnostic;
        let (path, settings) = (self.settings_path.clone(), self.settings.clone());
        if let Err(e) = self.settings_writer.write(path, settings) {
            self.info(e);
        }
    }

    /// Finishes every write in flight: label files, settings and the review log (when
    /// the app closes). Failures go to stderr, as the window is gone.
    pub fn finish_writes(&mut self) {
        self.flush_labels();
        for e in self.settings_writer.finish() {
            eprintln!("{e}");
        }
        if let Some(writer) = &mut self.review.log_writer {
            for e in writer.finish() {
                eprintln!("{e}");
            }
        }
    }

    /// Applies everything the background threads have finished: the folder scan, label
    /// files, jobs, predictions, training events and decoded images.
    pub fn poll_background(&mut self) {
        for e in self.settings_writer.errors() {
            self.info(e);
        }
        self.poll_session();
        self.poll_labels();
        self.poll_jobs();
        self.poll_review();
        self.poll_training();
        self.poll_assist();
        self.poll_class_by_look();
        self.poll_auto_retrain();
        self.poll_gallery();
        let keep = self.current_path();
        if let Some(loader) = &mut self.workspace.loader {
            loader.poll(keep.as_deref());
        }
    }
}

impl Drop for AppState {
    /// The background work ends first ([`AppState::finish_background_work`]; nothing to
    /// wait for when the window's exit did it already): a process that ends while a
    /// thread is inside libtorch can crash in its teardown, headless users included.
    fn drop(&mut self) {
        self.finish_background_work();
    }
}

/// Saves the settings (for [`LatestWriter`]); the error is the message to show.
fn save_settings_file(settings: &Settings, path: &Path) -> Result<(), String> {
    settings
        .save(path)
        .map_err(|e| format!("cannot save settings: {e}"))
}
