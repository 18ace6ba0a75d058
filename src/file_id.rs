//! Which file a path names, to tell whether an output would replace an input (the same
//! file under another path: `..`, a symbolic link, a hard link).

use std::path::{Path, PathBuf};

/// Which file a path is, to tell whether an output would replace an input: the path made
/// absolute with every existing part resolved (symbolic links, `..`), and the device and
/// inode of an existing file (the same file under another name).
#[derive(Clone, Debug)]
pub struct FileId {
    path: PathBuf,
    inode: Option<(u64, u64)>,
}

impl FileId {
    /// The identity of `path` (which need not exist).
    pub fn of(path: &Path) -> Self {
        #[cfg(unix)]
        let inode = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
        };
        #[cfg(not(unix))]
        let inode = None;
        Self {
            path: resolve(path),
            inode,
        }
    }

    /// Whether both name the same file.
    pub fn is(&self, other: &FileId) -> bool {
        self.path == other.path || (self.inode.is_some() && self.inode == other.inode)
    }

    /// The resolved path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `path` made absolute, its longest existing prefix canonicalized and the rest appended.
fn resolve(path: &Path) -> PathBuf {
    let absolute = match std::env::current_dir() {
        Ok(cwd) if path.is_relative() => cwd.join(path),
        _ => path.to_path_buf(),
    };
    let mut rest = Vec::new();
    let mut at = absolute.as_path();
    loop {
        if let Ok(real) = at.canonicalize() {
            return rest.iter().rev().fold(real, |p, name| p.join(name));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return absolute,
        }
    }
}
