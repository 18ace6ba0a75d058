//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The `../shared` folder beside the checkout (or `$DETLAB_SHARED`), if present.
/// Tests that need it call this and return early, with a message, when it is `None`.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DETLAB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    if dir.join("DESIGN.md").exists() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: ../shared is absent ({}); this test needs it",
            dir.display()
        );
        None
    }
}

/// The Python of the project venv (`$DETLAB_PYTHON`, set by the Makefile), if usable.
pub fn venv_python() -> Option<PathBuf> {
    let py = std::env::var_os("DETLAB_PYTHON").map(PathBuf::from)?;
    if py.exists() {
        Some(py)
    } else {
        eprintln!("SKIP: DETLAB_PYTHON={} does not exist", py.display());
        None
    }
}

/// Runs the `detlab` binary built for these tests.
pub fn detlab<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_detlab"))
        .args(args)
        .output()
        .expect("run detlab")
}

/// A command's stdout and stderr together, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
