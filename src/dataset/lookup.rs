//! Where an image's label file lives, by LabelImg's rules: in the save folder when one is
//! set, else next to the image; named `<stem>.<ext>` with the stem as Python's
//! `splitext` gives it (`cola.v2.jpg` → `cola.v2.xml`); `.xml` before `.txt` before `.json`.

use std::path::{Path, PathBuf};

/// The label file formats LabelImg reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum LabelFormat {
    Voc,
    Yolo,
    CreateMl,
}

impl LabelFormat {
    /// Lookup priority order.
    pub const ALL: [LabelFormat; 3] = [LabelFormat::Voc, LabelFormat::Yolo, LabelFormat::CreateMl];

    pub fn extension(self) -> &'static str {
        match self {
            LabelFormat::Voc => "xml",
            LabelFormat::Yolo => "txt",
            LabelFormat::CreateMl => "json",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LabelFormat::Voc => "Pascal VOC",
            LabelFormat::Yolo => "YOLO",
            LabelFormat::CreateMl => "CreateML",
        }
    }
}

impl std::str::FromStr for LabelFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "voc" | "pascal" | "xml" => Ok(LabelFormat::Voc),
            "yolo" | "txt" => Ok(LabelFormat::Yolo),
            "createml" | "json" => Ok(LabelFormat::CreateMl),
            _ => Err(format!("unknown label format {s:?} (voc, yolo, createml)")),
        }
    }
}

/// The label path for `image` in `format`, in `save_dir` if given, else beside the image.
pub fn label_path(image: &Path, save_dir: Option<&Path>, format: LabelFormat) -> PathBuf {
    let stem = image
        .file_stem()
        .map(|s| s.to_os_string())
        .unwrap_or_default();
    let dir = save_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| image.parent().map(Path::to_path_buf).unwrap_or_default());
    let mut name = stem;
    name.push(".");
    name.push(format.extension());
    dir.join(name)
}

/// The existing label file of `image`, by LabelImg's priority (`.xml` > `.txt` > `.json`).
/// A `.txt` counts only when a `classes.txt` sits beside it (otherwise it is not YOLO).
pub fn find_label(image: &Path, save_dir: Option<&Path>) -> Option<(PathBuf, LabelFormat)> {
    LabelFormat::ALL.into_iter().find_map(|format| {
        let path = label_path(image, save_dir, format);
        let usable = path.is_file()
            && (format != LabelFormat::Yolo || path.with_file_name("classes.txt").is_file());
        usable.then_some((path, format))
    })
}

/// A label folder (`--labels`, LabelImg's "save dir") that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("label folder {path}: {reason}")]
pub struct LabelFolderError {
    /// The folder as given.
    pub path: PathBuf,
    /// Why it cannot be used (missing, a file, a symlink loop, unreadable).
    pub reason: String,
}

/// Checks that `dir` is a folder that can be listed. A wrong `--labels` path must be an
/// error: read as "no label files", it turned into an export of 0 boxes, "converted 0",
/// or an AP of −1.
pub fn check_label_folder(dir: &Path) -> Result<(), LabelFolderError> {
    let fail = |reason: String| LabelFolderError {
        path: dir.to_path_buf(),
        reason,
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(fail("is a file, not a folder".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail("does not exist".into()))
        }
        Err(e) => return Err(fail(format!("cannot be opened: {e}"))),
    }
    std::fs::read_dir(dir)
        .map(drop)
        .map_err(|e| fail(format!("cannot be read: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_follow_splitext() {
        assert_eq!(
            label_path(Path::new("/d/cola.v2.jpg"), None, LabelFormat::Voc),
            Path::new("/d/cola.v2.xml")
        );
        assert_eq!(
            label_path(
                Path::new("/d/A B.JPG"),
                Some(Path::new("/s")),
                LabelFormat::Yolo
            ),
            Path::new("/s/A B.txt")
        );
        assert_eq!(
            label_path(Path::new("/d/可乐.png"), None, LabelFormat::CreateMl),
            Path::new("/d/可乐.json")
        );
    }

    #[test]
    fn priority_is_xml_then_txt_then_json() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("a.jpg");
        assert_eq!(find_label(&img, None), None);
        std::fs::write(dir.path().join("a.json"), "[]").unwrap();
        assert_eq!(find_label(&img, None).unwrap().1, LabelFormat::CreateMl);
        std::fs::write(dir.path().join("a.txt"), "").unwrap();
        assert_eq!(
            find_label(&img, None).unwrap().1,
            LabelFormat::CreateMl,
            "no classes.txt"
        );
        std::fs::write(dir.path().join("classes.txt"), "x\n").unwrap();
        assert_eq!(find_label(&img, None).unwrap().1, LabelFormat::Yolo);
        std::fs::write(dir.path().join("a.xml"), "<annotation/>").unwrap();
        assert_eq!(find_label(&img, None).unwrap().1, LabelFormat::Voc);
    }

    #[test]
    fn wrong_label_folders_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(check_label_folder(d).is_ok());
        let missing = check_label_folder(&d.join("nope")).unwrap_err().to_string();
        assert!(
            missing.contains("nope") && missing.contains("does not exist"),
            "{missing}"
        );
        std::fs::write(d.join("f"), "").unwrap();
        let file = check_label_folder(&d.join("f")).unwrap_err().to_string();
        assert!(file.contains("is a file"), "{file}");
        std::os::unix::fs::symlink(d.join("loop"), d.join("loop")).unwrap();
        let looped = check_label_folder(&d.join("loop")).unwrap_err().to_string();
        assert!(looped.contains("cannot be opened"), "{looped}");
    }
}
