//! Torch's meaning of pickled objects: persistent ids → storages, and finding the
//! state_dict (name → tensor) inside the unpickled value.

use std::collections::HashMap;
use std::rc::Rc;

use super::dtype::DType;
use super::error::ReadError;
use super::pickle::{PersistentLoader, StorageRef, TensorRef, Value};

/// Which layout of persistent id to expect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidLayout {
    /// `('storage', type, key, location, numel)` (zip format).
    Zip,
    /// `('storage', type, root_key, location, root_numel, view_metadata)` (legacy format).
    Legacy,
}

/// Resolves persistent ids and remembers every storage the pickle referenced.
pub struct StorageCollector {
    layout: PidLayout,
    /// key → (dtype, elements), in first-reference order.
    pub storages: Vec<(String, DType, u64)>,
    index: HashMap<String, usize>,
}

impl StorageCollector {
    pub fn new(layout: PidLayout) -> Self {
        Self {
            layout,
            storages: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// The recorded dtype and element count of a storage key.
    pub fn get(&self, key: &str) -> Option<(DType, u64)> {
        self.index
            .get(key)
            .map(|&i| (self.storages[i].1, self.storages[i].2))
    }

    fn record(&mut self, key: &str, dtype: DType, numel: u64) -> Result<(), String> {
        match self.index.get(key) {
            Some(&i) if self.storages[i].1 == dtype && self.storages[i].2 == numel => Ok(()),
            Some(_) => Err(format!(
                "storage `{key}` is used with two different element types or sizes"
            )),
            None => {
                self.index.insert(key.to_string(), self.storages.len());
                self.storages.push((key.to_string(), dtype, numel));
                Ok(())
            }
        }
    }
}

impl PersistentLoader for StorageCollector {
    fn persistent_load(&mut self, pid: &Value) -> Result<Value, String> {
        let Value::Tuple(t) = pid else {
            return Err(format!("persistent id is a {}, not a tuple", pid.kind()));
        };
        let want = match self.layout {
            PidLayout::Zip => 5,
            PidLayout::Legacy => 6,
        };
        if t.len() != want || !matches!(&t[0], Value::Str(s) if &**s == "storage") {
            return Err(format!(
                "unsupported persistent id (expected a {want}-tuple starting with 'storage')"
            ));
        }
        let dtype = match &t[1] {
            Value::Global(super::pickle::Global::Storage(d)) => *d,
            other => {
                return Err(format!(
                    "storage type is a {}, not a torch storage class",
                    other.kind()
                ))
            }
        };
        let key = match &t[2] {
            Value::Str(s) => s.to_string(),
            other => return Err(format!("storage key is a {}, not a str", other.kind())),
        };
        let root_numel = match &t[4] {
            Value::Int(n) if *n >= 0 => *n as u64,
            other => {
                return Err(format!(
                    "storage size must be a non-negative int, got {other:?}"
                ))
            }
        };
        self.record(&key, dtype, root_numel)?;
        let (offset, numel) = if self.layout == PidLayout::Legacy {
            match &t[5] {
                Value::None => (0, root_numel),
                Value::Tuple(view) if view.len() == 3 => match (&view[1], &view[2]) {
                    (Value::Int(o), Value::Int(n)) if *o >= 0 && *n >= 0 => {
                        let (o, n) = (*o as u64, *n as u64);
                        if o.checked_add(n).is_none_or(|end| end > root_numel) {
                            return Err(format!(
                                "storage view [{o}, {o}+{n}) lies outside storage `{key}`"
                            ));
                        }
                        (o, n)
                    }
                    _ => return Err("malformed storage view metadata".into()),
                },
                _ => return Err("malformed storage view metadata".into()),
            }
        } else {
            (0, root_numel)
        };
        Ok(Value::Storage(Rc::new(StorageRef {
            key,
            dtype,
            root_numel,
            offset,
            numel,
        })))
    }
}

/// Keys under which training scripts commonly nest the weights, tried in this order
/// when the top-level dict holds no tensors itself.
const WRAPPER_KEYS: &[&str] = &[
    "state_dict",
    "model_state_dict",
    "model",
    "ema",
    "model_ema",
    "net",
    "network",
    "module",
    "weights",
];

/// The (name, tensor) pairs of the state_dict in an unpickled checkpoint, in file order.
///
/// Accepts a dict (plain or `OrderedDict`) of tensors, or a dict wrapping one under a
/// key of [`WRAPPER_KEYS`] (e.g. `{'model': state_dict, 'epoch': 3}`). Entries of a
/// state_dict that are not tensors are skipped.
pub fn find_state_dict(top: &Value) -> Result<Vec<(String, Rc<TensorRef>)>, ReadError> {
    let Value::Dict(d) = top else {
        return Err(ReadError::NoStateDict(format!(
            "the checkpoint holds a {}, not a dict",
            top.kind()
        )));
    };
    let tensors = tensors_of(top);
    if !tensors.is_empty() {
        return Ok(tensors);
    }
    let d = d.borrow();
    for key in WRAPPER_KEYS {
        if let Some(inner) = d.get_str(key) {
            let t = tensors_of(inner);
            if !t.is_empty() {
                return Ok(t);
            }
        }
    }
    let keys: Vec<String> = d
        .entries()
        .iter()
        .take(12)
        .map(|(k, _)| format!("{k:?}"))
        .collect();
    Err(ReadError::NoStateDict(format!(
        "no tensors at the top level or under {WRAPPER_KEYS:?}; top-level keys: [{}]{}",
        keys.join(", "),
        if d.len() > 12 { ", ..." } else { "" }
    )))
}

/// The string-keyed tensor entries of a dict value.
fn tensors_of(v: &Value) -> Vec<(String, Rc<TensorRef>)> {
    let Value::Dict(d) = v else { return Vec::new() };
    d.borrow()
        .entries()
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (Value::Str(k), Value::Tensor(t)) => Some((k.to_string(), t.clone())),
            _ => None,
        })
        .collect()
}
