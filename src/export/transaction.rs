//! Writing an export's files as one set: everything staged first, then renamed into place
//! under a commit journal, so that a failure leaves the previous export whole.

use std::path::{Path, PathBuf};

use super::ExportError;
use crate::atomic::Staged;

/// The files of one export, written (and synced) under temporary names first; only when
/// all of them are complete are they renamed into place, one after the other. A failure
/// before that (a full disk, a read-only file) removes what was written and the folders
/// this export created, and leaves the previous export whole.
pub(super) struct Transaction {
    out: PathBuf,
    staged: Vec<Staged>,
    created_dirs: Vec<PathBuf>,
    committed: bool,
}

impl Transaction {
    pub(super) fn new(out: &Path) -> Self {
        Self {
            out: out.to_path_buf(),
            staged: Vec::new(),
            created_dirs: Vec::new(),
            committed: false,
        }
    }

    fn not_written(&self, path: &Path, source: std::io::Error) -> ExportError {
        ExportError::NotWritten {
            path: path.to_path_buf(),
            source,
            out: self.out.clone(),
        }
    }

    /// Creates `dir` and its missing parents, remembering the ones it created.
    pub(super) fn mkdir(&mut self, dir: &Path) -> Result<(), ExportError> {
        let mut missing = Vec::new();
        let mut d = Some(dir);
        while let Some(p) = d.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
            missing.push(p.to_path_buf());
            d = p.parent();
        }
        for p in missing.into_iter().rev() {
            match std::fs::create_dir(&p) {
                Ok(()) => self.created_dirs.push(p),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && p.is_dir() => {}
                Err(source) => return Err(ExportError::Write { path: p, source }),
            }
        }
        Ok(())
    }

    pub(super) fn stage(&mut self, path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
        use std::io::Write;
        let staged = crate::atomic::stage_with(path, |f| f.write_all(bytes))
            .map_err(|e| self.not_written(path, e))?;
        self.staged.push(staged);
        Ok(())
    }

    pub(super) fn stage_image(&mut self, from: &Path, to: &Path) -> Result<(), ExportError> {
        use std::os::unix::fs::MetadataExt;
        // Already the same file (hard-linked by an earlier export): nothing to do.
        if let (Ok(a), Ok(b)) = (std::fs::metadata(from), std::fs::metadata(to)) {
            if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
                return Ok(());
            }
        }
        let staged =
            crate::atomic::stage_link_or_copy(from, to).map_err(|e| self.not_written(to, e))?;
        self.staged.push(staged);
        Ok(())
    }

    /// Renames every staged file into place, in staging order, then removes what killed
    /// exports left beside them (their temporary files); returns their paths.
    pub(super) fn commit(mut self) -> Result<Vec<PathBuf>, ExportError> {
        let staged = std::mem::take(&mut self.staged);
        let all: Vec<PathBuf> = staged.iter().map(|s| s.path().to_path_buf()).collect();
        self.committed = true;
        let journal = self.out.join(crate::atomic::COMMIT_JOURNAL);
        crate::atomic::commit_all(staged, &journal).map_err(|(k, source)| {
            let list = |paths: &[PathBuf]| {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            };
            ExportError::Inconsistent {
                path: all[k].clone(),
                source,
                out: self.out.clone(),
                new: list(&all[..k]),
                old: list(&all[k..]),
            }
        })?;
        crate::atomic::remove_stale_temp_files(&all);
        Ok(all)
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // The staged temporary files go first (their own drop), then the empty folders
        // this export created.
        self.staged.clear();
        if !self.committed {
            for dir in self.created_dirs.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}
