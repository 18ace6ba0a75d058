//! A named tensor read from a checkpoint, and gathering one out of its storage.

use super::dtype::DType;
use super::pickle::TensorRef;

/// One entry of a state_dict: contiguous row-major little-endian data in its own dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointTensor {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// `numel · dtype.size()` bytes, row-major, little-endian (bit-exact copy of the file's values).
    pub data: Vec<u8>,
}

impl CheckpointTensor {
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The shape as tch/safetensors-style `i64`s.
    pub fn shape_i64(&self) -> Vec<i64> {
        self.shape.iter().map(|&d| d as i64).collect()
    }

    /// The values converted to `f32` (see [`DType::to_f32_vec`]).
    pub fn to_f32(&self) -> Vec<f32> {
        self.dtype.to_f32_vec(&self.data)
    }

    /// The same tensor stored as `f32` (no-op for `F32`).
    pub fn into_f32(self) -> Self {
        if self.dtype == DType::F32 {
            return self;
        }
        let data = self.to_f32().iter().flat_map(|x| x.to_le_bytes()).collect();
        Self {
            dtype: DType::F32,
            data,
            ..self
        }
    }
}

/// Copies the elements `t` selects out of `storage` (the bytes of its root storage) into
/// a contiguous tensor. Every index is checked against the storage; the result may not
/// exceed `max_bytes` (callers pass the file's size, so a claimed shape can never make
/// the reader allocate more than the file holds, even with zero strides).
pub fn materialize(
    name: &str,
    t: &TensorRef,
    storage: &[u8],
    max_bytes: u64,
) -> Result<CheckpointTensor, String> {
    let s = &t.storage;
    let es = s.dtype.size() as u64;
    let numel = t
        .size
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or("element count overflows")?;
    let nbytes = numel.checked_mul(es).ok_or("byte size overflows")?;
    if nbytes > max_bytes {
        return Err(format!(
            "shape {:?} needs {nbytes} bytes, more than the file's {max_bytes}",
            t.size
        ));
    }
    let shape: Vec<usize> = t.size.iter().map(|&d| d as usize).collect();
    if numel == 0 {
        return Ok(CheckpointTensor {
            name: name.to_string(),
            dtype: s.dtype,
            shape,
            data: Vec::new(),
        });
    }
    // Highest element index touched, relative to the storage view.
    let span = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |acc, (&d, &st)| {
            (d - 1).checked_mul(st).and_then(|x| acc.checked_add(x))
        })
        .ok_or("strides overflow")?;
    if span >= s.numel {
        return Err(format!(
            "offset {} / size {:?} / stride {:?} reach element {span}, past the {} elements of storage `{}`",
            t.offset, t.size, t.stride, s.numel, s.key
        ));
    }
    let base = s.offset.checked_add(t.offset).ok_or("offset overflows")?;
    let root_bytes = s
        .root_numel
        .checked_mul(es)
        .ok_or("storage size overflows")?;
    if (storage.len() as u64) < root_bytes {
        return Err(format!(
            "storage `{}` holds {} bytes, {root_bytes} needed",
            s.key,
            storage.len()
        ));
    }
    let es = es as usize;
    let mut data = Vec::with_capacity(nbytes as usize);
    if is_contiguous(&t.size, &t.stride) {
        let start = base as usize * es;
        data.extend_from_slice(&storage[start..start + nbytes as usize]);
    } else {
        // Odometer over the multi-index; `pos` is the current element's storage index.
        let nd = t.size.len();
        let mut idx = vec![0u64; nd];
        let mut pos = base;
        for _ in 0..numel {
            let at = pos as usize * es;
            data.extend_from_slice(&storage[at..at + es]);
            for d in (0..nd).rev() {
                idx[d] += 1;
                // Wrapping: a huge stride on a size-1 dim is stepped over and back.
                pos = pos.wrapping_add(t.stride[d]);
                if idx[d] < t.size[d] {
                    break;
                }
                pos = pos.wrapping_sub(t.stride[d].wrapping_mul(t.size[d]));
                idx[d] = 0;
            }
        }
    }
    Ok(CheckpointTensor {
        name: name.to_string(),
        dtype: s.dtype,
        shape,
        data,
    })
}

/// Row-major contiguity, ignoring the strides of size-1 dimensions.
fn is_contiguous(size: &[u64], stride: &[u64]) -> bool {
    let mut expect = 1u64;
    for (&d, &s) in size.iter().zip(stride).rev() {
        if d != 1 && s != expect {
            return false;
        }
        expect = expect.saturating_mul(d);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::checkpoint::pickle::StorageRef;
    use std::rc::Rc;

    fn storage(n: u64) -> (Rc<StorageRef>, Vec<u8>) {
        let s = StorageRef {
            key: "0".into(),
            dtype: DType::F32,
            root_numel: n,
            offset: 0,
            numel: n,
        };
        let bytes = (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect();
        (Rc::new(s), bytes)
    }

    #[test]
    fn transposed_view_with_offset_is_gathered() {
        let (s, bytes) = storage(10);
        // A 2x3 view at offset 1 whose rows are the columns of a 3x2 block: stride (1, 2).
        let t = TensorRef {
            storage: s,
            offset: 1,
            size: vec![2, 3],
            stride: vec![1, 2],
        };
        let m = materialize("w", &t, &bytes, 1 << 20).unwrap();
        assert_eq!(m.shape, vec![2, 3]);
        assert_eq!(m.to_f32(), vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    }

    #[test]
    fn contiguous_slice_and_scalar() {
        let (s, bytes) = storage(10);
        let t = TensorRef {
            storage: s.clone(),
            offset: 4,
            size: vec![3],
            stride: vec![1],
        };
        assert_eq!(
            materialize("a", &t, &bytes, 1 << 20).unwrap().to_f32(),
            vec![4.0, 5.0, 6.0]
        );
        let t = TensorRef {
            storage: s,
            offset: 9,
            size: vec![],
            stride: vec![],
        };
        let m = materialize("b", &t, &bytes, 1 << 20).unwrap();
        assert_eq!((m.numel(), m.to_f32()), (1, vec![9.0]));
    }

    #[test]
    fn out_of_bounds_and_oversized_views_are_errors() {
        let (s, bytes) = storage(10);
        let t = TensorRef {
            storage: s.clone(),
            offset: 5,
            size: vec![2, 3],
            stride: vec![3, 1],
        };
        assert!(materialize("a", &t, &bytes, 1 << 20)
            .unwrap_err()
            .contains("past the 10 elements"));
        let t = TensorRef {
            storage: s.clone(),
            offset: 0,
            size: vec![1 << 40],
            stride: vec![0],
        };
        assert!(materialize("b", &t, &bytes, 1 << 20)
            .unwrap_err()
            .contains("more than the file"));
        let t = TensorRef {
            storage: s,
            offset: 0,
            size: vec![u64::MAX, 3],
            stride: vec![1, 1],
        };
        assert!(materialize("c", &t, &bytes, 1 << 20).is_err());
    }
}
