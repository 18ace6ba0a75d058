//! The legacy (PyTorch < 1.6, non-zip) serialisation: five consecutive pieces —
//! a pickled magic number, a pickled protocol version (1001), a pickled `sys_info` dict,
//! the main pickle, a pickled list of storage keys — then, for each key in that list,
//! an 8-byte little-endian element count followed by the raw elements.

use std::collections::HashMap;

use super::error::ReadError;
use super::pickle::{unpickle, PersistentLoader, Value};
use super::torch_objects::{PidLayout, StorageCollector};

/// `0x1950a86a20f9469cfc6c`, little-endian, as pickled by LONG1.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const PROTOCOL_VERSION: i64 = 1001;

/// Whether `bytes` starts like a legacy checkpoint (pickle protocol 2, then LONG1 of 10 bytes).
pub fn looks_legacy(bytes: &[u8]) -> bool {
    bytes.len() > 14 && bytes[..4] == [0x80, 0x02, 0x8a, 0x0a] && bytes[4..14] == MAGIC
}

/// A loader for the header pickles, which must not reference storages.
struct NoStorages;

impl PersistentLoader for NoStorages {
    fn persistent_load(&mut self, _pid: &Value) -> Result<Value, String> {
        Err("unexpected persistent id in a header pickle".into())
    }
}

/// Reads the main object and the storages (by key) of a legacy checkpoint.
pub fn read_legacy(bytes: &[u8]) -> Result<(Value, HashMap<String, Vec<u8>>), ReadError> {
    let mut pos = 0;
    let mut next =
        |what: &'static str, loader: &mut dyn PersistentLoader| -> Result<Value, ReadError> {
            let (v, used) = unpickle(&bytes[pos..], loader)
                .map_err(|source| ReadError::Pickle { what, source })?;
            pos += used;
            Ok(v)
        };
    let magic = next("magic number", &mut NoStorages)?;
    if !matches!(&magic, Value::BigInt(b) if **b == MAGIC) {
        return Err(ReadError::Legacy("wrong magic number".into()));
    }
    match next("protocol version", &mut NoStorages)? {
        Value::Int(PROTOCOL_VERSION) => {}
        other => {
            return Err(ReadError::Legacy(format!(
                "unsupported protocol version {other:?}"
            )))
        }
    }
    let sys_info = next("sys_info", &mut NoStorages)?;
    if let Value::Dict(d) = &sys_info {
        if matches!(
            d.borrow().get_str("little_endian"),
            Some(Value::Bool(false))
        ) {
            return Err(ReadError::BigEndian);
        }
    }
    let mut collector = StorageCollector::new(PidLayout::Legacy);
    let top = next("main pickle", &mut collector)?;
    let keys = next("storage key list", &mut NoStorages)?;
    let Value::List(keys) = &keys else {
        return Err(ReadError::Legacy(format!(
            "storage keys are a {}, not a list",
            keys.kind()
        )));
    };
    let keys: Vec<String> = keys
        .borrow()
        .iter()
        .map(|k| match k {
            Value::Str(s) => Ok(s.to_string()),
            other => Err(ReadError::Legacy(format!(
                "storage key is a {}",
                other.kind()
            ))),
        })
        .collect::<Result<_, _>>()?;

    let mut storages = HashMap::new();
    for key in keys {
        let (dtype, numel) = collector.get(&key).ok_or_else(|| {
            ReadError::Legacy(format!(
                "storage `{key}` is listed but no tensor uses it, so its element type is unknown"
            ))
        })?;
        let header = bytes
            .get(pos..pos + 8)
            .ok_or_else(|| truncated(&key, pos))?;
        let mut n = [0u8; 8];
        n.copy_from_slice(header);
        let stored = u64::from_le_bytes(n);
        pos += 8;
        if stored != numel {
            return Err(ReadError::Legacy(format!(
                "storage `{key}` holds {stored} elements but the pickle says {numel}"
            )));
        }
        let len = stored
            .checked_mul(dtype.size() as u64)
            .filter(|&l| l <= (bytes.len() - pos) as u64);
        let len = len.ok_or_else(|| truncated(&key, pos))? as usize;
        storages.insert(key, bytes[pos..pos + len].to_vec());
        pos += len;
    }
    Ok((top, storages))
}

fn truncated(key: &str, pos: usize) -> ReadError {
    ReadError::Legacy(format!(
        "the file ends inside storage `{key}` (at byte {pos})"
    ))
}
