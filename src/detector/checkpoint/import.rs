//! PyTorch checkpoint → detlab model file, checked against the keys a model expects.

use std::path::{Path, PathBuf};

use super::arch::ModelArch;
use super::error::CheckpointError;
use super::expected_keys::{compare_keys, ExpectedKeys, KeyMismatch};
use super::keymap::{normalize_names, KeyStyle, BACKBONE_PREFIX};
use super::model_file::{ModelFile, ModelMeta};
use super::tensor::CheckpointTensor;

/// How strict an import is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Accept a checkpoint that lacks some parameters (e.g. a backbone-only ImageNet
    /// checkpoint); unexpected tensors are then dropped instead of refused. The model
    /// file is marked partial. Mis-shaped tensors are always an error.
    pub partial: bool,
}

/// What an import did besides producing the model file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub style: Option<KeyStyle>,
    /// Tensors of the checkpoint left out (unexpected; partial imports only).
    pub dropped: Vec<String>,
    /// Parameters the checkpoint lacks (partial imports only).
    pub missing: Vec<String>,
}

/// An import failed: the file could not be read, or does not fit the architecture.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Read(#[from] CheckpointError),
    #[error("{} does not fit {arch} with these classes: {mismatch}", path.display())]
    Keys {
        path: PathBuf,
        arch: ModelArch,
        mismatch: KeyMismatch,
    },
    #[error("{}: {found}", path.display())]
    NonFinite { path: PathBuf, found: NonFinite },
}

/// A NaN or infinite value in a floating-point tensor (as stored, after `f32` conversion).
#[derive(Clone, Debug, PartialEq)]
pub struct NonFinite {
    pub tensor: String,
    /// Flat (row-major) index of the first bad element.
    pub index: usize,
    pub value: f32,
}

impl std::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tensor {} holds a non-finite value ({} at flat index {}); refusing to import \
             weights that would make every detection NaN",
            self.tensor, self.value, self.index
        )
    }
}

/// The first NaN or ±inf among the floating-point tensors, if any.
pub fn first_non_finite(tensors: &[CheckpointTensor]) -> Option<NonFinite> {
    tensors.iter().filter(|t| t.dtype.is_float()).find_map(|t| {
        let values = t.dtype.to_f32_vec(&t.data);
        let index = values.iter().position(|v| !v.is_finite())?;
        Some(NonFinite {
            tensor: t.name.clone(),
            index,
            value: values[index],
        })
    })
}

/// Reads a PyTorch checkpoint and turns it into a model file for `meta`.
///
/// Names are normalised first (see [`super::keymap`]); `num_batches_tracked` buffers are
/// dropped unless expected; floating-point tensors are stored as `f32`; tensors follow
/// the order of `expected`. A NaN or infinite value (also one from an `f64` beyond the
/// `f32` range) is refused.
pub fn import_checkpoint(
    path: &Path,
    expected: &ExpectedKeys,
    meta: ModelMeta,
    options: ImportOptions,
) -> Result<(ModelFile, ImportReport), ImportError> {
    let mut tensors = super::read_checkpoint(path)?;
    let style = normalize_names(&mut tensors);
    let (model, mut report) =
        import_tensors(tensors, expected, meta, options).map_err(|(arch, mismatch)| {
            ImportError::Keys {
                path: path.to_path_buf(),
                arch,
                mismatch,
            }
        })?;
    if let Some(found) = first_non_finite(&model.tensors) {
        return Err(ImportError::NonFinite {
            path: path.to_path_buf(),
            found,
        });
    }
    report.style = Some(style);
    Ok((model, report))
}

/// [`import_checkpoint`] on tensors already read and renamed.
/// The error is the architecture and the key mismatch.
pub fn import_tensors(
    tensors: Vec<CheckpointTensor>,
    expected: &ExpectedKeys,
    mut meta: ModelMeta,
    options: ImportOptions,
) -> Result<(ModelFile, ImportReport), (ModelArch, KeyMismatch)> {
    let is_expected = |name: &str| expected.iter().any(|(n, _)| n == name);
    let tensors: Vec<CheckpointTensor> = tensors
        .into_iter()
        .filter(|t| !t.name.ends_with("num_batches_tracked") || is_expected(&t.name))
        .collect();
    let mut mismatch = compare_keys(
        tensors.iter().map(|t| (t.name.as_str(), t.shape_i64())),
        expected,
    );
    let mut report = ImportReport::default();
    if options.partial {
        report.missing = std::mem::take(&mut mismatch.missing);
        report.dropped = std::mem::take(&mut mismatch.unexpected);
    }
    if !mismatch.is_empty() {
        return Err((meta.arch, mismatch));
    }
    let mut by_name: std::collections::HashMap<String, CheckpointTensor> =
        tensors.into_iter().map(|t| (t.name.clone(), t)).collect();
    let ordered = expected
        .iter()
        .filter_map(|(n, _)| by_name.remove(n))
        .map(|t| if t.dtype.is_float() { t.into_f32() } else { t })
        .collect();
    meta.partial = !report.missing.is_empty();
    Ok((
        ModelFile {
            meta,
            tensors: ordered,
        },
        report,
    ))
}

/// **Provisional** expected keys for `arch`, derived from a checkpoint's own names and
/// shapes (`present`, after [`super::keymap::normalize_names`]) plus the shapes the architecture fixes (BiFPN width and depth, head depth,
/// header channels for `num_classes`), so that a checkpoint of another architecture or
/// class count is refused with a key list.
///
/// INTEGRATION POINT: once the model exists, use the real list instead —
/// `varstore::expected_keys(&vs)` of the model built for `arch`/`num_classes`. This
/// fallback cannot see parameters the model has and the checkpoint lacks, except the
/// sentinels below.
pub fn provisional_expected_keys(
    arch: ModelArch,
    num_classes: usize,
    present: &ExpectedKeys,
) -> Vec<(String, Vec<i64>)> {
    let w = arch.bifpn_width() as i64;
    let a = 9i64;
    let layer_of = |name: &str, prefix: &str| -> Option<usize> {
        name.strip_prefix(prefix)
            .and_then(|r| r.split('.').next())
            .and_then(|l| l.parse().ok())
    };
    let allowed = |name: &str| -> bool {
        let head_layer = layer_of(name, "regressor.conv_list.")
            .or_else(|| layer_of(name, "classifier.conv_list."));
        let head_bn_layer = ["regressor.bn_list.", "classifier.bn_list."]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .and_then(|r| r.split('.').nth(1))
            .and_then(|l| l.parse::<usize>().ok());
        let deleted_head = ["_conv_head.", "_bn1.", "_fc."]
            .iter()
            .any(|h| name.starts_with(&format!("{BACKBONE_PREFIX}{h}")));
        ["bifpn.", "regressor.", "classifier.", BACKBONE_PREFIX]
            .iter()
            .any(|p| name.starts_with(p))
            && !deleted_head
            && layer_of(name, "bifpn.").is_none_or(|l| l < arch.bifpn_repeats())
            && head_layer.is_none_or(|l| l < arch.head_repeats())
            && head_bn_layer.is_none_or(|l| l < arch.head_repeats())
    };
    let mut keys: Vec<(String, Vec<i64>)> = present
        .iter()
        .filter(|(n, _)| allowed(n))
        .cloned()
        .collect();
    let mut sentinels: Vec<(String, Vec<i64>)> = (0..arch.bifpn_repeats())
        .map(|l| {
            (
                format!("bifpn.{l}.conv6_up.pointwise_conv.conv.weight"),
                vec![w, w, 1, 1],
            )
        })
        .collect();
    let last = arch.head_repeats() - 1;
    for (head, out) in [("regressor", a * 4), ("classifier", a * num_classes as i64)] {
        sentinels.push((
            format!("{head}.conv_list.{last}.pointwise_conv.conv.weight"),
            vec![w, w, 1, 1],
        ));
        sentinels.push((
            format!("{head}.header.pointwise_conv.conv.weight"),
            vec![out, w, 1, 1],
        ));
        sentinels.push((format!("{head}.header.pointwise_conv.conv.bias"), vec![out]));
    }
    sentinels.push((
        format!("{BACKBONE_PREFIX}_conv_stem.conv.weight"),
        vec![stem_channels(arch), 3, 3, 3],
    ));
    for (name, shape) in sentinels {
        match keys.iter_mut().find(|(n, _)| *n == name) {
            Some(k) => k.1 = shape,
            None => keys.push((name, shape)),
        }
    }
    keys
}

/// Output channels of the EfficientNet stem: `round_filters(32)` for B0–B7; 32 for Lite.
fn stem_channels(arch: ModelArch) -> i64 {
    match arch.compound_coef() {
        Some(c) => [32, 32, 32, 40, 48, 48, 56, 56, 64][c],
        None => 32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::checkpoint::dtype::DType;

    fn t(name: &str, shape: &[usize]) -> CheckpointTensor {
        let n: usize = shape.iter().product();
        CheckpointTensor {
            name: name.into(),
            dtype: DType::F64,
            shape: shape.to_vec(),
            data: vec![0; n * 8],
        }
    }

    #[test]
    fn orders_converts_and_drops_batch_counters() {
        let expected = vec![("b".to_string(), vec![2]), ("a".to_string(), vec![1])];
        let meta = ModelMeta::for_arch(ModelArch::D0, vec!["x".into()]);
        let input = vec![t("a", &[1]), t("bn.num_batches_tracked", &[]), t("b", &[2])];
        let (m, r) =
            import_tensors(input, &expected, meta.clone(), ImportOptions::default()).unwrap();
        assert_eq!(
            m.tensors
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>(),
            vec!["b", "a"]
        );
        assert!(m
            .tensors
            .iter()
            .all(|t| t.dtype == DType::F32 && t.data.len() == t.numel() * 4));
        assert!(!m.meta.partial && r.missing.is_empty());
        // Partial: missing allowed, unexpected dropped, mis-shaped still refused.
        let (m, r) = import_tensors(
            vec![t("a", &[1]), t("z", &[3])],
            &expected,
            meta.clone(),
            ImportOptions { partial: true },
        )
        .unwrap();
        assert!(m.meta.partial);
        assert_eq!(
            (r.missing, r.dropped),
            (vec!["b".to_string()], vec!["z".to_string()])
        );
        let err = import_tensors(
            vec![t("a", &[2])],
            &expected,
            meta,
            ImportOptions { partial: true },
        )
        .unwrap_err();
        assert_eq!(err.1.misshaped.len(), 1);
    }

    #[test]
    fn non_finite_values_are_found() {
        let f32s = |name: &str, v: &[f32]| CheckpointTensor {
            name: name.into(),
            dtype: DType::F32,
            shape: vec![v.len()],
            data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        };
        let ok = [f32s("a", &[0.0, -1.5]), t("b", &[3])];
        assert_eq!(first_non_finite(&ok), None);
        let bad = [ok[0].clone(), f32s("c", &[1.0, 2.0, f32::NAN])];
        let found = first_non_finite(&bad).unwrap();
        assert_eq!((found.tensor.as_str(), found.index), ("c", 2));
        assert!(found
            .to_string()
            .contains("tensor c holds a non-finite value (NaN"));
        // An f64 beyond the f32 range becomes inf when stored.
        let big = CheckpointTensor {
            name: "d".into(),
            dtype: DType::F64,
            shape: vec![1],
            data: 1e300f64.to_le_bytes().to_vec(),
        };
        assert_eq!(first_non_finite(&[big]).unwrap().value, f32::INFINITY);
        // Integer tensors are not checked (and cannot hold NaN).
        let ints = CheckpointTensor {
            name: "n".into(),
            dtype: DType::I64,
            shape: vec![1],
            data: i64::MAX.to_le_bytes().to_vec(),
        };
        assert_eq!(first_non_finite(&[ints]), None);
    }
}
