//! Atomic file writes: a temp file in the destination folder, fsync, then rename.
//!
//! A reader (or a crash) sees either the old complete file or the new complete file,
//! never a truncated one. A file the user cannot write (or one with no write permission
//! bit at all, which detlab respects even as root) is never replaced: the write fails
//! with [`io::ErrorKind::PermissionDenied`] and a message that says so. A replaced file
//! keeps its permission bits.
//!
//! [`stage_with`] splits a write in two: the new content is complete and synced under a
//! temporary name, and [`Staged::commit`] renames it into place. Writers of several files
//! that belong together (a split COCO export) stage every file first and rename them only
//! once all are written, so that a failure (a full disk) leaves every old file in place;
//! a journal of the renames lets the next writer complete a set whose renames a killed
//! process left half done ([`commit_all`]).

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically. The parent folder must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Writes to `path` atomically through `fill`, which receives the temporary file.
/// On any error the temporary file is removed and `path` is untouched.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    stage_with(path, fill)?.commit()
}

/// A new version of a file, complete and synced under a temporary name in the
/// destination's folder, not yet in place. Dropping it without [`Staged::commit`] removes
/// the temporary file.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl Staged {
    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the new version into place (and syncs the folder where supported).
    pub fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.tmp, &self.path)?;
        self.committed = true;
        sync_parent(&self.path);
        Ok(())
    }
}

/// The file [`commit_all`] keeps beside a set while it renames it into place.
pub const COMMIT_JOURNAL: &str = ".detlab-commit.json";

/// Renames every staged file into place, back to back, then syncs their folders (once
/// each). Before the first rename the list of renames is written atomically to `journal`,
/// and removed after the last: a process killed between two renames leaves the journal,
/// and [`finish_interrupted_commit`] completes the set. On a failed rename, returns its
/// position in `staged` and the error: the files before it are in place, that one and
/// the rest are not (their temporary files are removed).
pub fn commit_all(staged: Vec<Staged>, journal: &Path) -> Result<(), (usize, io::Error)> {
    let renames: Vec<(&Path, &Path)> = staged
        .iter()
        .map(|s| (s.tmp.as_path(), s.path.as_path()))
        .collect();
    let list = serde_json::to_vec(&renames).map_err(|e| (0, io::Error::other(e)))?;
    write_atomic(journal, &list).map_err(|e| (0, e))?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (k, mut file) in staged.into_iter().enumerate() {
        if let Err(e) = fs::rename(&file.tmp, &file.path) {
            let _ = fs::remove_file(journal);
            return Err((k, e));
        }
        file.committed = true;
        let dir = file
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        sync_parent(&dir.join("x"));
    }
    // Left behind, it names no temporary file any more and the next writer removes it.
    let _ = fs::remove_file(journal);
    sync_parent(journal);
    Ok(())
}

/// Completes a [`commit_all`] that was interrupted (the process killed between two
/// renames): renames the files whose new version is still under its temporary name and
/// removes the journal. Returns how many it renamed; with no journal, does nothing.
pub fn finish_interrupted_commit(journal: &Path) -> io::Result<usize> {
    let list = match fs::read(journal) {
        Ok(list) => list,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let renames: Vec<(PathBuf, PathBuf)> = serde_json::from_slice(&list).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a rename list: {e}", journal.display()),
        )
    })?;
    let mut done = 0;
    for (tmp, path) in &renames {
        if tmp.exists() {
            fs::rename(tmp, path)?;
            sync_parent(path);
            done += 1;
        }
    }
    fs::remove_file(journal)?;
    sync_parent(journal);
    Ok(done)
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes the new version of `path` through `fill` into a temporary file beside it and
/// syncs it; [`Staged::commit`] puts it in place. Refuses a destination that is
/// read-only (see the module documentation). The new file gets the old one's mode.
pub fn stage_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<Staged> {
    let mode = check_replaceable(path)?;
    let staged = Staged {
        tmp: temp_path_for(path),
        path: path.to_path_buf(),
        committed: false,
    };
    let mut file = File::create(&staged.tmp)?;
    if let Some(mode) = mode {
        file.set_permissions(mode)?;
    }
    fill(&mut file)?;
    file.flush()?;
    file.sync_all()?;
    Ok(staged)
}

/// Stages `to` as a hard link to `from` (same filesystem), else as a copy of it.
pub fn stage_link_or_copy(from: &Path, to: &Path) -> io::Result<Staged> {
    check_replaceable(to)?;
    let tmp = temp_path_for(to);
    if fs::hard_link(from, &tmp).is_ok() {
        return Ok(Staged {
            tmp,
            path: to.to_path_buf(),
            committed: false,
        });
    }
    let mut source = File::open(from)?;
    stage_with(to, |f| io::copy(&mut source, f).map(drop))
}

/// The permissions to give the new version of `path` (`None` when there is no old file),
/// or an error when `path` must not be replaced: the user cannot open it for writing, or
/// its mode has no write bit at all.
fn check_replaceable(path: &Path) -> io::Result<Option<fs::Permissions>> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        // A folder (or a device) in the way: the rename reports it.
        return Ok(None);
    }
    let mode = meta.permissions().mode() & 0o7777;
    let refused = mode & 0o222 == 0
        || fs::OpenOptions::new()
            .write(true)
            .open(path)
            .is_err_and(|e| e.kind() == io::ErrorKind::PermissionDenied);
    if refused {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is read-only (mode {mode:04o}); detlab does not replace a file you cannot \
                 write (make it writable to save it)",
                path.display()
            ),
        ));
    }
    Ok(Some(meta.permissions()))
}

/// Persists a rename in `path`'s folder; not every filesystem supports this.
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// `dir/.name.<pid>.<n>.tmp`, unique per process and call.
pub fn temp_path_for(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// The target's name and the writer's process id of a temporary file name
/// `.NAME.<pid>.<n>.tmp` (see [`temp_path_for`]).
pub fn temp_file_target(name: &str) -> Option<(&str, u32)> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = rest.rsplitn(3, '.');
    let n = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    let target = parts.next()?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some((target, pid))
}

/// Whether process `pid` may still be running (and writing): this process, or any process
/// `/proc` lists. Where there is no `/proc`, only this process counts as running.
fn may_be_running(pid: u32) -> bool {
    pid == std::process::id()
        || (Path::new("/proc/self").exists() && Path::new("/proc").join(pid.to_string()).exists())
}

/// Removes the files of `dir` that `writer` takes for the unfinished output of a process
/// (it returns that process's id) no longer running: what a killed write left behind. A
/// folder that cannot be listed removes nothing. Returns the files removed, sorted.
pub fn remove_dead_writers_files(dir: &Path, writer: impl Fn(&str) -> Option<u32>) -> Vec<PathBuf> {
    let listed = if dir.as_os_str().is_empty() {
        fs::read_dir(".")
    } else {
        fs::read_dir(dir)
    };
    let Ok(entries) = listed else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(&writer) else {
            continue;
        };
        let path = dir.join(entry.file_name());
        if !may_be_running(pid) && path.is_file() && fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed.sort();
    removed
}

/// Removes the temporary files that killed atomic writes of `targets` left beside them
/// (a killed export can leave a 100 MB `.instances_train.json.<pid>.<n>.tmp`), except
/// those of a process that is still running. Each folder is listed once. Returns the
/// files removed, sorted.
pub fn remove_stale_temp_files(targets: &[PathBuf]) -> Vec<PathBuf> {
    let mut by_dir: HashMap<&Path, HashSet<&OsStr>> = HashMap::new();
    for t in targets {
        if let (Some(dir), Some(name)) = (t.parent(), t.file_name()) {
            by_dir.entry(dir).or_default().insert(name);
        }
    }
    let mut removed: Vec<PathBuf> = by_dir
        .into_iter()
        .flat_map(|(dir, names)| {
            remove_dead_writers_files(dir, |n| {
                temp_file_target(n)
                    .filter(|(target, _)| names.contains(OsStr::new(target)))
                    .map(|(_, pid)| pid)
            })
        })
        .collect();
    removed.sort();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_writers_temp_files_of_the_targets_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let targets = [dir.path().join("resume.json"), dir.path().join("a.b.json")];
        // No process has a pid this large (Linux's limit is 2^22).
        let dead = dir.path().join(".resume.json.99999999.0.tmp");
        let dotted = dir.path().join(".a.b.json.99999999.12.tmp");
        let mine = dir
            .path()
            .join(format!(".resume.json.{}.0.tmp", std::process::id()));
        let others = [
            ".photo.jpg.99999999.0.tmp",
            ".resume.json.x.0.tmp",
            ".resume.json.99999999.tmp",
            ".resume.json.99999999.0.1.tmp",
            ".resume.jsonX.99999999.0.tmp",
            "resume.json.99999999.0.tmp",
        ]
        .map(|n| dir.path().join(n));
        for p in [&dead, &dotted, &mine].into_iter().chain(&others) {
            std::fs::write(p, b"partial").unwrap();
        }
        assert_eq!(
            remove_stale_temp_files(&targets),
            vec![dotted.clone(), dead.clone()]
        );
        assert!(!dead.exists() && !dotted.exists() && mine.exists());
        assert!(others.iter().all(|p| p.exists()));
    }

    #[test]
    fn a_set_commit_interrupted_between_renames_is_completed_from_its_journal() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join(COMMIT_JOURNAL);
        let names = ["a.json", "b.json", "c.txt"];
        for n in names {
            write_atomic(&dir.path().join(n), b"old").unwrap();
        }
        let stage = |n: &str| stage_with(&dir.path().join(n), |f| f.write_all(b"new")).unwrap();

        commit_all(names.iter().map(|n| stage(n)).collect(), &journal).unwrap();
        assert!(!journal.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);

        // Killed after the journal and the first rename: the rest is still staged.
        let staged: Vec<Staged> = names.iter().map(|n| stage(n)).collect();
        let renames: Vec<(&Path, &Path)> = staged
            .iter()
            .map(|s| (s.tmp.as_path(), s.path.as_path()))
            .collect();
        write_atomic(&journal, &serde_json::to_vec(&renames).unwrap()).unwrap();
        fs::rename(&staged[0].tmp, &staged[0].path).unwrap();
        std::mem::forget(staged);
        assert_eq!(finish_interrupted_commit(&journal).unwrap(), 2);
        for n in names {
            assert_eq!(fs::read(dir.path().join(n)).unwrap(), b"new", "{n}");
        }
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            3,
            "journal and temps gone"
        );
        assert_eq!(finish_interrupted_commit(&journal).unwrap(), 0);
    }

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.xml");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_fill_keeps_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.xml");
        write_atomic(&p, b"old").unwrap();
        let err = write_atomic_with(&p, |f| {
            f.write_all(b"partial")?;
            Err(io::Error::other("disk full"))
        });
        // The fill's own error comes back, unchanged.
        let err = err.unwrap_err();
        assert_eq!(
            (err.kind(), err.to_string()),
            (io::ErrorKind::Other, "disk full".to_string())
        );
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/a.xml");
        let err = write_atomic(&p, b"x").unwrap_err();
        // The temp file cannot be created: the folder is missing, not some other failure.
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert!(!dir.path().join("no").exists());
    }

    /// Defect 7 of issue 21: a read-only label file was replaced (and came back 0644).
    #[test]
    fn read_only_file_is_refused_and_modes_are_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.xml");
        write_atomic(&p, b"old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o444)).unwrap();
        let err = write_atomic(&p, b"new").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        let msg = err.to_string();
        assert!(msg.contains("a.xml") && msg.contains("read-only"), "{msg}");
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o444
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // A writable file keeps its own mode when replaced.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    #[test]
    fn staged_files_appear_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_atomic(&a, b"old a").unwrap();
        let sa = stage_with(&a, |f| f.write_all(b"new a")).unwrap();
        let sb = stage_link_or_copy(&a, &b).unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"old a");
        assert!(!b.exists());
        sa.commit().unwrap();
        sb.commit().unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"new a");
        assert_eq!(fs::read(&b).unwrap(), b"old a");
        // Dropped without a commit: nothing is left.
        drop(stage_with(&b, |f| f.write_all(b"x")).unwrap());
        assert_eq!(fs::read(&b).unwrap(), b"old a");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
