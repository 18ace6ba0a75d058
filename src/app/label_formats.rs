//! Which label formats an image has files in: an image labelled in two formats (e.g. a
//! VOC `.xml` and a YOLO `.txt` after a format switch) is shown from the first one by
//! LabelImg's priority, so the app says so instead of letting an edit look lost.

use std::path::{Path, PathBuf};

use super::AppState;
use crate::dataset::lookup::label_path;
use crate::dataset::LabelFormat;

/// The label formats of one image's existing files, in read priority (first is shown).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelFormats {
    pub image: PathBuf,
    pub formats: Vec<LabelFormat>,
}

/// The formats `image` has label files in (a YOLO `.txt` counts with a `classes.txt`).
pub fn existing_formats(image: &Path, save_dir: Option<&Path>) -> Vec<LabelFormat> {
    LabelFormat::ALL
        .into_iter()
        .filter(|&format| {
            let path = label_path(image, save_dir, format);
            path.is_file()
                && (format != LabelFormat::Yolo || path.with_file_name("classes.txt").is_file())
        })
        .collect()
}

impl LabelFormats {
    /// The warning to show when there is more than one format, naming the one shown and
    /// the one saving writes.
    pub fn warning(&self, saving: LabelFormat) -> Option<String> {
        if self.formats.len() < 2 {
            return None;
        }
        let names: Vec<&str> = self.formats.iter().map(|f| f.name()).collect();
        Some(format!(
            "label files in {} formats ({}): showing {} (read first); saving writes {}",
            names.len(),
            names.join(", "),
            names[0],
            saving.name()
        ))
    }
}

impl AppState {
    /// Looks up which formats the shown image has label files in (a few `stat`s), for
    /// the warning on the canvas and in the file list.
    pub fn check_label_formats(&mut self) {
        let Some(image) = self.current_path() else {
            self.ui.label_formats = None;
            return;
        };
        let formats = existing_formats(&image, self.workspace.save_dir());
        self.ui.label_formats = Some(LabelFormats { image, formats });
    }
}
