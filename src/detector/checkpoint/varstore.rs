//! Moving named tensors between detlab's checkpoint types and a `tch::nn::VarStore`.

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::dtype::DType;
use super::expected_keys::{compare_keys, KeyMismatch};
use super::tensor::CheckpointTensor;

/// Loading weights into a VarStore failed.
#[derive(Debug, thiserror::Error)]
pub enum VarStoreError {
    #[error("tensor `{name}`: {len} data bytes do not match shape {shape:?} of {dtype}")]
    DataSize {
        name: String,
        len: usize,
        shape: Vec<usize>,
        dtype: DType,
    },
    #[error("the weights do not fit the model: {0}")]
    Keys(KeyMismatch),
    #[error("tensor `{name}`: {source}")]
    Tch {
        name: String,
        #[source]
        source: tch::TchError,
    },
}

/// The tch kind of a dtype.
pub fn kind_of(d: DType) -> Kind {
    match d {
        DType::F32 => Kind::Float,
        DType::F64 => Kind::Double,
        DType::F16 => Kind::Half,
        DType::BF16 => Kind::BFloat16,
        DType::I64 => Kind::Int64,
        DType::I32 => Kind::Int,
        DType::I16 => Kind::Int16,
        DType::I8 => Kind::Int8,
        DType::U8 => Kind::Uint8,
        DType::Bool => Kind::Bool,
    }
}

/// The dtype of a tch kind, if detlab stores it.
pub fn dtype_of(k: Kind) -> Option<DType> {
    Some(match k {
        Kind::Float => DType::F32,
        Kind::Double => DType::F64,
        Kind::Half => DType::F16,
        Kind::BFloat16 => DType::BF16,
        Kind::Int64 => DType::I64,
        Kind::Int => DType::I32,
        Kind::Int16 => DType::I16,
        Kind::Int8 => DType::I8,
        Kind::Uint8 => DType::U8,
        Kind::Bool => DType::Bool,
        _ => return None,
    })
}

/// A CPU tch tensor holding a copy of `t` (same dtype and shape).
pub fn to_tch(t: &CheckpointTensor) -> Result<Tensor, VarStoreError> {
    if t.data.len() != t.numel() * t.dtype.size() {
        return Err(VarStoreError::DataSize {
            name: t.name.clone(),
            len: t.data.len(),
            shape: t.shape.clone(),
            dtype: t.dtype,
        });
    }
    Tensor::f_from_data_size(&t.data, &t.shape_i64(), kind_of(t.dtype)).map_err(|source| {
        VarStoreError::Tch {
            name: t.name.clone(),
            source,
        }
    })
}

/// A copy of a tch tensor (any device, any layout) as a [`CheckpointTensor`].
pub fn from_tch(name: &str, t: &Tensor) -> Result<CheckpointTensor, VarStoreError> {
    let tch_err = |source| VarStoreError::Tch {
        name: name.to_string(),
        source,
    };
    let dtype = match dtype_of(t.kind()) {
        Some(d) => d,
        None => {
            return Err(tch_err(tch::TchError::Kind(format!(
                "unsupported kind {:?}",
                t.kind()
            ))))
        }
    };
    let t = t
        .f_to_device(tch::Device::Cpu)
        .and_then(|t| t.f_contiguous())
        .map_err(tch_err)?;
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let numel: usize = shape.iter().product();
    let mut data = vec![0u8; numel * dtype.size()];
    t.f_copy_data_u8(&mut data, numel).map_err(tch_err)?;
    Ok(CheckpointTensor {
        name: name.to_string(),
        dtype,
        shape,
        data,
    })
}

/// The VarStore's variables as `(name, shape)`, sorted by name: the expected keys of a
/// model built in `vs`, for [`super::import::import_tensors`] and
/// [`super::ModelFile::check_keys`].
pub fn expected_keys(vs: &VarStore) -> Vec<(String, Vec<i64>)> {
    let mut keys: Vec<(String, Vec<i64>)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    keys.sort();
    keys
}

/// Copies `tensors` into the variables of the same name (converting dtype and moving to
/// the variable's device), under `no_grad`. Every variable must be provided with its
/// exact shape, unless `allow_missing`; tensors without a variable are ignored (e.g.
/// `num_batches_tracked`). Returns the names of the variables left untouched.
pub fn load_into(
    vs: &VarStore,
    tensors: &[CheckpointTensor],
    allow_missing: bool,
) -> Result<Vec<String>, VarStoreError> {
    let vars = vs.variables();
    let expected = expected_keys(vs);
    let mut mismatch = compare_keys(
        tensors
            .iter()
            .filter(|t| vars.contains_key(&t.name))
            .map(|t| (t.name.as_str(), t.shape_i64())),
        &expected,
    );
    let missing = std::mem::take(&mut mismatch.missing);
    if !allow_missing {
        mismatch.missing = missing.clone();
    }
    if !mismatch.is_empty() {
        return Err(VarStoreError::Keys(mismatch));
    }
    tch::no_grad(|| {
        for t in tensors {
            if let Some(var) = vars.get(&t.name) {
                let src = to_tch(t)?;
                let mut var = var.shallow_clone();
                var.f_copy_(&src).map_err(|source| VarStoreError::Tch {
                    name: t.name.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    })?;
    Ok(missing)
}

/// Every variable of `vs` as a [`CheckpointTensor`], sorted by name (for writing a model file).
pub fn from_varstore(vs: &VarStore) -> Result<Vec<CheckpointTensor>, VarStoreError> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars.iter().map(|(n, t)| from_tch(n, t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_varstore() {
        let vs = VarStore::new(tch::Device::Cpu);
        let layer = vs.root() / "layer";
        let _w = layer.zeros("weight", &[2, 3]);
        let _b = layer.zeros_no_train("running_mean", &[2]);
        let w = CheckpointTensor {
            name: "layer.weight".into(),
            dtype: DType::F32,
            shape: vec![2, 3],
            data: (0..6)
                .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
                .collect(),
        };
        // Stored as float64: converted to the variable's float32 on copy.
        let m = CheckpointTensor {
            name: "layer.running_mean".into(),
            dtype: DType::F64,
            shape: vec![2],
            data: [1.5f64, -2.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        };
        let extra = CheckpointTensor {
            name: "layer.num_batches_tracked".into(),
            dtype: DType::I64,
            shape: vec![],
            data: 7i64.to_le_bytes().to_vec(),
        };
        assert!(load_into(&vs, &[w.clone(), m.clone(), extra], false)
            .unwrap()
            .is_empty());
        let back = from_varstore(&vs).unwrap();
        assert_eq!(back[0].name, "layer.running_mean");
        assert_eq!(back[0].to_f32(), vec![1.5, -2.0]);
        assert_eq!(back[1], w);
        // Missing and mis-shaped weights are reported.
        let err = load_into(&vs, &[m], false).unwrap_err().to_string();
        assert!(err.contains("1 missing"), "{err}");
        assert_eq!(load_into(&vs, &[], true).unwrap().len(), 2);
        let bad = CheckpointTensor {
            shape: vec![3, 2],
            ..w
        };
        assert!(load_into(&vs, &[bad], true)
            .unwrap_err()
            .to_string()
            .contains("mis-shaped"));
    }
}
