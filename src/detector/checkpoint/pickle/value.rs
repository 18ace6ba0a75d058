//! The objects a torch checkpoint pickle can build, and nothing more.
//!
//! Containers are reference-counted so that memo lookups (`BINGET`) are O(1) and share
//! mutations the way Python does. Dropping is iterative, so a hostile pickle that nests
//! a million tuples cannot overflow the stack.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::detector::checkpoint::dtype::DType;

/// A Python callable the reader accepts. Anything else in a `GLOBAL` is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    /// `collections.OrderedDict`
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`
    RebuildTensorV2,
    /// `torch._utils._rebuild_parameter`
    RebuildParameter,
    /// `torch.FloatStorage` and friends: the storage's element type.
    Storage(DType),
}

impl Global {
    /// Maps a `module.name` pair to an accepted callable, or `None` for anything else.
    pub fn resolve(module: &str, name: &str) -> Option<Self> {
        match (module, name) {
            ("collections", "OrderedDict") => Some(Self::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Self::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => Some(Self::RebuildParameter),
            ("torch", storage) => DType::from_storage_name(storage).map(Self::Storage),
            _ => None,
        }
    }
}

/// One storage referenced by a persistent id: `key` names its bytes in the file.
/// `offset`/`numel` select a view inside the root storage (legacy files only; else 0/all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRef {
    pub key: String,
    pub dtype: DType,
    /// Elements in the root storage (as the file claims; checked against the bytes).
    pub root_numel: u64,
    /// First element of this view inside the root storage.
    pub offset: u64,
    /// Elements in this view.
    pub numel: u64,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided window on a storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRef {
    pub storage: Rc<StorageRef>,
    /// In elements, relative to the storage (view).
    pub offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

/// A dict key that can be looked up (Python would hash it); other keys are kept unindexed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum DictKey {
    Str(Rc<str>),
    Int(i64),
}

/// An insertion-ordered dict (plain `dict` and `OrderedDict` alike).
#[derive(Default)]
pub struct Dict {
    entries: Vec<(Value, Value)>,
    index: HashMap<DictKey, usize>,
    /// Built by `collections.OrderedDict` rather than `{}`.
    pub ordered: bool,
}

impl Dict {
    pub fn new(ordered: bool) -> Self {
        Self {
            ordered,
            ..Self::default()
        }
    }

    /// `d[key] = value`: replaces an existing string/int key in place, else appends.
    pub fn insert(&mut self, key: Value, value: Value) {
        let hashed = match &key {
            Value::Str(s) => Some(DictKey::Str(s.clone())),
            Value::Int(i) => Some(DictKey::Int(*i)),
            _ => None,
        };
        if let Some(k) = hashed {
            if let Some(&i) = self.index.get(&k) {
                self.entries[i].1 = value;
                return;
            }
            self.index.insert(k, self.entries.len());
        }
        self.entries.push((key, value));
    }

    pub fn entries(&self) -> &[(Value, Value)] {
        &self.entries
    }

    /// The value under a string key.
    pub fn get_str(&self, key: &str) -> Option<&Value> {
        self.index
            .get(&DictKey::Str(Rc::from(key)))
            .map(|&i| &self.entries[i].1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A value on the pickle stack.
#[derive(Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits, as little-endian two's complement bytes.
    BigInt(Rc<[u8]>),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Dict>>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    /// A short name of the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }

    pub fn tuple(items: Vec<Value>) -> Self {
        Value::Tuple(Rc::new(items))
    }

    pub fn str(s: &str) -> Self {
        Value::Str(Rc::from(s))
    }

    /// A tuple, list or dict: something that holds other values.
    pub fn is_container(&self) -> bool {
        matches!(self, Value::Tuple(_) | Value::List(_) | Value::Dict(_))
    }

    /// The container's identity (its allocation), or `None` for a leaf.
    fn container_ptr(&self) -> Option<*const ()> {
        match self {
            Value::Tuple(t) => Some(Rc::as_ptr(t) as *const ()),
            Value::List(l) => Some(Rc::as_ptr(l) as *const ()),
            Value::Dict(d) => Some(Rc::as_ptr(d) as *const ()),
            _ => None,
        }
    }

    /// The container's items (keys and values for a dict) that are containers themselves.
    fn container_children(&self) -> Vec<Value> {
        match self {
            Value::Tuple(t) => t.iter().filter(|v| v.is_container()).cloned().collect(),
            Value::List(l) => l
                .borrow()
                .iter()
                .filter(|v| v.is_container())
                .cloned()
                .collect(),
            Value::Dict(d) => d
                .borrow()
                .entries
                .iter()
                .flat_map(|(k, v)| [k, v])
                .filter(|v| v.is_container())
                .cloned()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Moves this value's children into `out`, when this is their only owner.
    fn take_children(&mut self, out: &mut Vec<Value>) {
        match self {
            Value::Tuple(t) => {
                if let Some(v) = Rc::get_mut(t) {
                    out.append(v);
                }
            }
            Value::List(l) => {
                if let Some(cell) = Rc::get_mut(l) {
                    out.append(cell.get_mut());
                }
            }
            Value::Dict(d) => {
                if let Some(cell) = Rc::get_mut(d) {
                    let d = cell.get_mut();
                    d.index.clear();
                    for (k, v) in d.entries.drain(..) {
                        out.push(k);
                        out.push(v);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether a container reachable from `roots` contains itself (iterative DFS, linear in
/// the number of container links; no recursion, so deep nesting is fine).
pub(super) fn has_cycle(roots: &[Value]) -> bool {
    use std::collections::hash_map::Entry;
    // false: on the current path; true: finished.
    let mut state: HashMap<*const (), bool> = HashMap::new();
    for root in roots {
        let Some(p) = root.container_ptr() else {
            continue;
        };
        if state.contains_key(&p) {
            continue;
        }
        state.insert(p, false);
        let mut path: Vec<(*const (), Vec<Value>)> = vec![(p, root.container_children())];
        while let Some(top) = path.last_mut() {
            match top.1.pop() {
                Some(child) => {
                    let cp = child.container_ptr().expect("children are containers");
                    match state.entry(cp) {
                        Entry::Occupied(e) if !*e.get() => return true,
                        Entry::Occupied(_) => {}
                        Entry::Vacant(e) => {
                            e.insert(false);
                            path.push((cp, child.container_children()));
                        }
                    }
                }
                None => {
                    state.insert(top.0, true);
                    path.pop();
                }
            }
        }
    }
    false
}

/// Empties a list or dict (dropping its items outside the borrow), breaking any cycle
/// through it.
pub(super) fn clear_container(v: &Value) {
    match v {
        Value::List(l) => drop(std::mem::take(&mut *l.borrow_mut())),
        Value::Dict(d) => drop(std::mem::take(&mut *d.borrow_mut())),
        _ => {}
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        let mut pending = Vec::new();
        self.take_children(&mut pending);
        while let Some(mut v) = pending.pop() {
            v.take_children(&mut pending);
            // `v` is dropped here with no uniquely-owned children left.
        }
    }
}

impl fmt::Debug for Value {
    /// Shallow on purpose: a hostile pickle can build arbitrarily deep values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Float(x) => write!(f, "{x}"),
            other => f.write_str(other.kind()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_drops_without_stack_overflow() {
        let mut v = Value::None;
        for _ in 0..1_000_000 {
            v = Value::tuple(vec![v]);
        }
        drop(v);
    }

    #[test]
    fn dict_insert_replaces_existing_keys() {
        let mut d = Dict::new(true);
        d.insert(Value::str("a"), Value::Int(1));
        d.insert(Value::str("b"), Value::Int(2));
        d.insert(Value::str("a"), Value::Int(3));
        assert_eq!(d.len(), 2);
        assert!(matches!(d.get_str("a"), Some(Value::Int(3))));
    }
}
