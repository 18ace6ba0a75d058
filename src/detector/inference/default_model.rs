//! Where the shipped Cola/Sprite model is found when no model is named.

use std::path::PathBuf;

/// File name of the shipped model (in the repository's `models/` folder).
pub const SHIPPED_MODEL: &str = "cola-sprite-lite0.safetensors";

/// The model used when none is named: `$DETLAB_MODEL` if set, else the first existing
/// `models/cola-sprite-lite0.safetensors` beside the executable, in the folders above it
/// (a `target/<profile>/` build inside the repository) or in the source tree this binary
/// was built from.
pub fn default_model_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DETLAB_MODEL").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(4) {
            candidates.push(dir.join("models").join(SHIPPED_MODEL));
        }
    }
    candidates.push(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(SHIPPED_MODEL),
    );
    candidates.into_iter().find(|p| p.is_file())
}
