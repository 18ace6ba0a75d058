//! Application state, actions and background jobs, with no drawing: `ui` draws this
//! state and returns [`Command`]s, which [`AppState::apply`] carries out;
//! [`crate::desktop`] (the `eframe::App`) sits on top of both.
//!
//! [`AppState`] is made of named parts: the saved [`settings`], the [`workspace`] (folder,
//! image, labels; edited in [`editing`], saved in [`saving`]), the transient [`ui_state`],
//! the one-shot [`background`] jobs, the [`review`] and the [`training`] run.

pub mod assist;
pub mod auto_retrain;
pub mod background;
pub mod class_by_look;
pub mod command;
pub mod document;
pub mod editing;
pub mod extract_frames;
pub mod file_browser;
pub mod folder_lock;
pub mod gallery;
pub mod image_loader;
pub mod jobs;
pub mod known_products;
pub mod label_formats;
pub mod label_io;
pub mod merge;
mod own_writes;
pub mod recent_classes;
pub mod review;
pub mod saving;
pub mod session;
pub mod settings;
pub mod simulated_labeller;
pub mod state;
pub mod training;
pub mod ui_state;
pub mod workspace;

pub use command::Command;
pub use state::AppState;
pub use ui_state::{Fit, Page, Tool, UiState, View};
pub use workspace::Workspace;

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
