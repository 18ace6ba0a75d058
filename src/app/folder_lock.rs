//! An advisory "who has this folder open" marker, so that a second window (or a second
//! labeller on a shared drive) is told who else is working on the folder.
//!
//! Each window that opens a folder writes `<labels dir>/.detlab/open/<host>.<pid>.<n>.json`
//! (`{"host", "pid", "since"}`, `since` in seconds since 1970) and removes it when it
//! opens another folder or closes. Nothing is ever refused because of it: it only tells.
//! A window that crashed leaves its file behind; such a file is **stale**, and removed by
//! the next window that looks, when it names this host and a process that is no longer
//! alive. A file of another host is never taken as stale (its processes cannot be seen
//! from here); it is shown with its `since`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One window that has the folder open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// The machine's host name.
    pub host: String,
    /// The process id there.
    pub pid: u32,
    /// When it opened the folder, in seconds since 1970 (UTC).
    pub since: u64,
}

impl LockInfo {
    /// This process, now.
    pub fn current() -> Self {
        Self {
            host: host_name(),
            pid: std::process::id(),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// Whether the window that wrote this is gone: same host, and its process is not
    /// alive.
    pub fn is_stale(&self) -> bool {
        self.host == host_name() && !process_alive(self.pid)
    }

    /// "host (process N) since HH:MM UTC".
    pub fn describe(&self) -> String {
        let day = self.since % 86_400;
        format!(
            "{} (process {}) since {:02}:{:02} UTC",
            self.host,
            self.pid,
            day / 3600,
            day / 60 % 60
        )
    }
}

/// This window's marker in a folder; removed when dropped.
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
}

impl FolderLock {
    /// The folder holding the markers of the labels in `labels_dir`.
    pub fn dir(labels_dir: &Path) -> PathBuf {
        labels_dir.join(crate::review::SIDECAR_DIR).join("open")
    }

    /// Marks `labels_dir` as open here, and returns the other windows that have it open
    /// (removing stale markers). The marker is `None` when it cannot be written (a
    /// read-only folder): it is only advice.
    pub fn acquire(labels_dir: &Path) -> (Option<Self>, Vec<LockInfo>) {
        let others = Self::holders(labels_dir);
        let me = LockInfo::current();
        let dir = Self::dir(labels_dir);
        let lock = (|| {
            use std::sync::atomic::{AtomicU64, Ordering};
            static NEXT: AtomicU64 = AtomicU64::new(0);
            std::fs::create_dir_all(&dir).ok()?;
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("{}.{}.{n}.json", sanitize(&me.host), me.pid);
            let path = dir.join(name);
            let json = serde_json::to_vec(&me).ok()?;
            crate::atomic::write_atomic(&path, &json).ok()?;
            Some(Self { path })
        })();
        (lock, others)
    }

    /// The windows that have `labels_dir` open now (stale markers are removed).
    pub fn holders(labels_dir: &Path) -> Vec<LockInfo> {
        let Ok(entries) = std::fs::read_dir(Self::dir(labels_dir)) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let Ok(info) = std::fs::read(&path)
                .map_err(|_| ())
                .and_then(|b| serde_json::from_slice::<LockInfo>(&b).map_err(|_| ()))
            else {
                continue;
            };
            if info.is_stale() {
                let _ = std::fs::remove_file(&path);
            } else {
                found.push(info);
            }
        }
        found.sort_by_key(|i| i.since);
        found
    }

    /// The marker file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn sanitize(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The host name (`/etc/hostname`, else `$HOSTNAME` / `$COMPUTERNAME`).
fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Whether process `pid` of this host is alive (where that cannot be told, it is taken
/// as alive: a marker is then never removed as stale by mistake).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_window_sees_the_first_until_it_closes() {
        let dir = tempfile::tempdir().unwrap();
        let (first, others) = FolderLock::acquire(dir.path());
        let first = first.unwrap();
        assert!(others.is_empty());
        let (second, others) = FolderLock::acquire(dir.path());
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].pid, std::process::id());
        assert!(others[0].describe().contains("UTC"));
        drop(first);
        drop(second);
        assert!(FolderLock::holders(dir.path()).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_crashed_window_s_marker_is_stale_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let folder = FolderLock::dir(dir.path());
        std::fs::create_dir_all(&folder).unwrap();
        let crashed = LockInfo {
            pid: dead,
            ..LockInfo::current()
        };
        let path = folder.join("crashed.json");
        std::fs::write(&path, serde_json::to_vec(&crashed).unwrap()).unwrap();
        // Another host's marker is never stale.
        let remote = LockInfo {
            host: "elsewhere".into(),
            pid: dead,
            since: 0,
        };
        std::fs::write(
            folder.join("remote.json"),
            serde_json::to_vec(&remote).unwrap(),
        )
        .unwrap();
        let holders = FolderLock::holders(dir.path());
        assert_eq!(holders, vec![remote]);
        assert!(!path.exists(), "the stale marker is removed");
    }
}
