//! Application state, actions and background jobs, with no drawing: `ui` draws this
//! state and calls the actions here; [`crate::desktop`] (the `eframe::App`) sits on top
//! of both.

pub mod document;
pub mod file_browser;
pub mod image_loader;
pub mod jobs;
pub mod label_io;
pub mod review;
pub mod session;
pub mod settings;
pub mod state;
pub mod training;

pub use state::{AppState, Fit, Page, Tool, View};

use std::path::PathBuf;

/// How the app starts (the CLI's `detlab gui` arguments convert into this).
#[derive(Debug, Default, Clone)]
pub struct AppOptions {
    /// Image folder (or image) to open.
    pub dir: Option<PathBuf>,
    /// Save a screenshot of the first frames to this PNG and exit.
    pub screenshot: Option<PathBuf>,
    /// Model to review with (default: the shipped model).
    pub model: Option<PathBuf>,
    /// Start without a model.
    pub no_model: bool,
}
