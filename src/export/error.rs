//! What stops an export (or a conversion) as a whole, and the files it leaves out.

use std::path::PathBuf;

/// An image left out of the export, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// Failures that stop an export as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot scan {path}: {source}")]
    Scan {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("nothing to export from {}: {}", folder.display(), why_nothing(skipped))]
    Nothing {
        folder: PathBuf,
        /// Every image found, each with why it was left out (empty: no image found).
        skipped: Vec<Skipped>,
    },
    /// `strict` and some files would be skipped: nothing was written.
    #[error(
        "{} file(s) would be skipped (--strict), so nothing was written:\n{}",
        skipped.len(),
        list_skipped(skipped)
    )]
    Strict { skipped: Vec<Skipped> },
    /// Two images that would have the same name in one split of the export.
    #[error(
        "{first} and {second} would both be {split}/{file_name} in the export; rename one \
         of them (nothing was written)"
    )]
    SameName {
        split: String,
        file_name: String,
        first: PathBuf,
        second: PathBuf,
    },
    /// A Zylo117 project name that is not a plain folder name.
    #[error(
        "the project name {0:?} must be a plain folder name (no `/`, `\\`, `..`, not empty \
         or starting with `.`): it names OUT/datasets/NAME and OUT/projects/NAME.yml"
    )]
    ProjectName(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A failure while the new files were being written, before any was put in place.
    #[error(
        "cannot write {path}: {source}; nothing in {out} was changed (a previous export \
         there is still complete and consistent)"
    )]
    NotWritten {
        path: PathBuf,
        source: std::io::Error,
        out: PathBuf,
    },
    /// A failure while the written files were being renamed into place: the output is a
    /// mix of new and old files.
    #[error(
        "cannot put {path} in place: {source}; {out} is now INCONSISTENT: new {new}, \
         previous {old}; run the export again"
    )]
    Inconsistent {
        path: PathBuf,
        source: std::io::Error,
        out: PathBuf,
        new: String,
        old: String,
    },
    /// Two images whose converted label files would be the same file.
    #[error(
        "{first} and {second} would both be converted into {target}; rename one of them \
         (nothing was written)"
    )]
    Clash {
        target: PathBuf,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(transparent)]
    Classes(#[from] crate::dataset::ClassListError),
    #[error(transparent)]
    LabelFolder(#[from] crate::dataset::LabelFolderError),
    #[error(transparent)]
    Format(#[from] crate::formats::FormatError),
}

/// `path: reason` lines, at most 20, then how many more.
pub(super) fn list_skipped(skipped: &[Skipped]) -> String {
    const SHOWN: usize = 20;
    let mut lines: Vec<String> = skipped
        .iter()
        .take(SHOWN)
        .map(|k| format!("  {}: {}", k.path.display(), k.reason))
        .collect();
    if skipped.len() > SHOWN {
        lines.push(format!("  … and {} more", skipped.len() - SHOWN));
    }
    lines.join("\n")
}

fn why_nothing(skipped: &[Skipped]) -> String {
    if skipped.is_empty() {
        "it holds no images".to_string()
    } else {
        format!(
            "every image was left out ({}):\n{}",
            skipped.len(),
            list_skipped(skipped)
        )
    }
}
