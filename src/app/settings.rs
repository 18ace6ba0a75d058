//! Settings that persist between runs, as JSON in the user's config folder
//! (`$DETLAB_CONFIG_DIR`, else `$XDG_CONFIG_HOME/detlab`, else `~/.config/detlab`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::LabelFormat;

/// How many recent folders are remembered.
pub const RECENT_LIMIT: usize = 10;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// Most recent first.
    pub recent_folders: Vec<PathBuf>,
    /// The image last shown, per folder (resume where you left off).
    pub last_image: HashMap<PathBuf, PathBuf>,
    /// The label folder chosen with "Change save dir", per image folder.
    pub save_dirs: HashMap<PathBuf, PathBuf>,
    /// Format of new label files.
    pub format: LabelFormat,
    pub autosave: bool,
    /// New boxes take the default (or last) label without asking.
    pub single_class_mode: bool,
    pub default_label: Option<String>,
    /// A new box drawn by hand takes the class it looks like when the look is sure
    /// (see [`super::class_by_look`]); otherwise the default label.
    pub class_by_look: bool,
    pub show_box_labels: bool,
    /// New boxes are squares (LabelImg's "draw squares", Ctrl+Shift+R).
    pub draw_squares: bool,
    /// User-chosen colours per class name (otherwise a stable hash colour).
    pub class_colors: HashMap<String, [u8; 3]>,
    pub window_size: Option<[f32; 2]>,
    /// The review sliders: score threshold, NMS IoU, class-agnostic NMS (on by default:
    /// two products never stand in one place, so a second class on a box is a duplicate).
    pub review_score: f32,
    pub review_iou: f64,
    pub review_class_agnostic: bool,
    /// Fine-tune the review model after every this many newly labelled images (0: off).
    pub auto_retrain_every: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            recent_folders: Vec::new(),
            last_image: HashMap::new(),
            save_dirs: HashMap::new(),
            format: LabelFormat::Voc,
            autosave: true,
            single_class_mode: false,
            default_label: None,
            class_by_look: true,
            show_box_labels: true,
            draw_squares: false,
            class_colors: HashMap::new(),
            window_size: None,
            review_score: 0.3,
            review_iou: 0.5,
            review_class_agnostic: true,
            auto_retrain_every: 0,
        }
    }
}

/// The settings file's default location.
pub fn default_settings_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("DETLAB_CONFIG_DIR") {
        return PathBuf::from(dir).join("settings.json");
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("detlab").join("settings.json")
}

impl Settings {
    /// Loads settings; a missing file gives defaults, a corrupt one gives defaults and a
    /// warning (the app must always start).
    pub fn load(path: &Path) -> (Self, Option<String>) {
        match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Self::default(), None),
            Err(e) => (
                Self::default(),
                Some(format!("cannot read settings {}: {e}", path.display())),
            ),
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(s) => (s, None),
                Err(e) => (
                    Self::default(),
                    Some(format!(
                        "settings {} are corrupt ({e}); using defaults",
                        path.display()
                    )),
                ),
            },
        }
    }

    /// Saves atomically, creating the folder.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::atomic::write_atomic(path, &bytes)
    }

    pub fn remember_folder(&mut self, folder: &Path) {
        self.recent_folders.retain(|f| f != folder);
        self.recent_folders.insert(0, folder.to_path_buf());
        self.recent_folders.truncate(RECENT_LIMIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x/settings.json");
        let mut s = Settings::default();
        for i in 0..15 {
            s.remember_folder(Path::new(&format!("/f{i}")));
        }
        s.remember_folder(Path::new("/f3"));
        assert_eq!(s.recent_folders.len(), RECENT_LIMIT);
        assert_eq!(s.recent_folders[0], Path::new("/f3"));
        s.save(&path).unwrap();
        assert_eq!(Settings::load(&path).0, s);
        std::fs::write(&path, b"{not json").unwrap();
        let (d, warning) = Settings::load(&path);
        assert_eq!(d, Settings::default());
        assert!(warning.unwrap().contains("corrupt"));
    }
}
