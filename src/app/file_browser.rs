//! detlab's own file dialog, for desktops where no native one opens (no file-chooser
//! portal and no zenity). The folder listing is read on a background task, so the UI
//! thread never waits on a slow or network disk.

use std::path::{Path, PathBuf};

use super::jobs::{repaint, Job, PickPurpose};
use super::AppState;

/// One entry of the listed folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserEntry {
    pub name: String,
    pub is_dir: bool,
}

/// The state of the built-in file dialog.
pub struct FileBrowser {
    pub purpose: PickPurpose,
    /// The folder shown.
    pub dir: PathBuf,
    /// The path field (what the user types; set to `dir` on each move).
    pub typed: String,
    /// The file chosen in the list (file purposes only).
    pub chosen_file: Option<PathBuf>,
    /// The listing of `dir`, once read: folders first, then the files this purpose takes.
    pub entries: Result<Vec<BrowserEntry>, String>,
    listing: Option<Job<Result<Vec<BrowserEntry>, String>>>,
    ctx: Option<egui::Context>,
}

impl FileBrowser {
    /// Opens the dialog on `dir` for `purpose`.
    pub fn new(purpose: PickPurpose, dir: PathBuf, ctx: Option<egui::Context>) -> Self {
        let mut browser = Self {
            purpose,
            dir: PathBuf::new(),
            typed: String::new(),
            chosen_file: None,
            entries: Ok(Vec::new()),
            listing: None,
            ctx,
        };
        browser.go_to(dir);
        browser
    }

    /// Whether this dialog chooses a file (else a folder).
    pub fn picks_files(&self) -> bool {
        matches!(
            self.purpose,
            PickPurpose::OpenFile | PickPurpose::ModelFile | PickPurpose::VideoFile
        )
    }

    /// Shows `dir` (its listing arrives in the background).
    pub fn go_to(&mut self, dir: PathBuf) {
        self.typed = dir.to_string_lossy().into_owned();
        self.chosen_file = None;
        self.entries = Ok(Vec::new());
        let (from, purpose) = (dir.clone(), self.purpose);
        self.listing = Some(Job::spawn(
            "list-folder",
            repaint(self.ctx.clone()),
            move |_| list(&from, purpose),
        ));
        self.dir = dir;
    }

    /// Moves to the parent folder.
    pub fn up(&mut self) {
        if let Some(parent) = self.dir.parent().map(Path::to_path_buf) {
            self.go_to(parent);
        }
    }

    /// Takes the listing once it has been read; `true` while it is still being read.
    pub fn poll(&mut self) -> bool {
        if let Some(result) = self.listing.as_ref().and_then(Job::outcome) {
            self.entries = result;
            self.listing = None;
        }
        self.listing.is_some()
    }

    /// The path typed into the field: a folder is shown; for a file purpose, an existing
    /// file is the answer.
    pub fn enter_typed(&mut self) -> Option<PathBuf> {
        let path = PathBuf::from(self.typed.trim());
        if path.is_dir() {
            self.go_to(path);
            None
        } else if self.picks_files() && path.is_file() {
            Some(path)
        } else {
            self.entries = Err(format!("{} is not a folder", path.display()));
            None
        }
    }

    /// The answer of the Open button: the chosen file, or the folder shown.
    pub fn answer(&self) -> Option<PathBuf> {
        if self.picks_files() {
            self.chosen_file.clone()
        } else {
            Some(self.dir.clone())
        }
    }
}

impl AppState {
    /// Shows detlab's own file dialog for `purpose` (where no native one opens).
    pub fn open_file_browser(&mut self, purpose: PickPurpose) {
        let start = self
            .workspace
            .session
            .as_ref()
            .map(|s| s.root.clone())
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        self.ui.file_browser = Some(FileBrowser::new(purpose, start, self.ctx.clone()));
    }

    /// What a file dialog answered: the path chosen for `purpose`.
    pub fn picked(&mut self, purpose: PickPurpose, path: PathBuf) {
        match purpose {
            PickPurpose::OpenFolder => self.request_open_folder(path),
            PickPurpose::OpenFile => self.open_file(path),
            PickPurpose::SaveDir => self.change_save_dir(path),
            PickPurpose::ExportFolder => {
                if let Some(f) = &mut self.ui.export_form {
                    f.out_dir = path.to_string_lossy().into_owned();
                }
            }
            PickPurpose::DemoFolder => self.create_demo(path, false),
            PickPurpose::DenseDemoFolder => self.create_demo(path, true),
            PickPurpose::ModelFile => self.load_model(path),
            PickPurpose::VideoFile => self.open_extract_dialog(path),
            PickPurpose::FramesFolder => {
                if let Some(f) = &mut self.ui.extract_form {
                    f.out_dir = path.to_string_lossy().into_owned();
                }
            }
        }
    }
}

/// The folders of `dir` and the files `purpose` can take, folders first, by natural order.
fn list(dir: &Path, purpose: PickPurpose) -> Result<Vec<BrowserEntry>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut entries: Vec<BrowserEntry> = read
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let is_dir = path.is_dir();
            let wanted = match purpose {
                PickPurpose::OpenFile => crate::dataset::is_image_path(&path),
                PickPurpose::ModelFile => path.extension().is_some_and(|x| x == "safetensors"),
                PickPurpose::VideoFile => crate::video::is_video_path(&path),
                _ => false,
            };
            (!name.starts_with('.') && (is_dir || wanted)).then_some(BrowserEntry { name, is_dir })
        })
        .collect();
    entries.sort_by(|a, b| {
        b.is_dir
            .cmp(&a.is_dir)
            .then_with(|| natord::compare(&a.name, &b.name))
    });
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_come_first_and_only_the_purposes_files_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["b10", "b2", ".hidden"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        for f in ["x.jpg", "notes.txt", "m.safetensors"] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        let names = |purpose| -> Vec<String> {
            list(dir.path(), purpose)
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect()
        };
        assert_eq!(names(PickPurpose::OpenFolder), ["b2", "b10"]);
        assert_eq!(names(PickPurpose::OpenFile), ["b2", "b10", "x.jpg"]);
        assert_eq!(
            names(PickPurpose::ModelFile),
            ["b2", "b10", "m.safetensors"]
        );
        let err = list(&dir.path().join("gone"), PickPurpose::OpenFolder).unwrap_err();
        assert!(err.contains("gone"), "{err}");
    }
}
