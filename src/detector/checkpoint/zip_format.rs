//! The zip container `torch.save` writes since PyTorch 1.6:
//! `<root>/data.pkl` (the pickle) and `<root>/data/<key>` (one raw storage per key).

use std::collections::HashMap;
use std::io::{Cursor, Read};

use super::error::ReadError;
use super::pickle::{unpickle, Value};
use super::torch_objects::{PidLayout, StorageCollector};

/// Unpickles `data.pkl` and loads every storage it references, by key.
pub fn read_zip(bytes: &[u8]) -> Result<(Value, HashMap<String, Vec<u8>>), ReadError> {
    let file_len = bytes.len() as u64;
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ReadError::Zip(e.to_string()))?;
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let pkl = names
        .iter()
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .min_by_key(|n| n.len())
        .or_else(|| names.iter().find(|n| *n == "data.pkl"))
        .cloned();
    let Some(pkl) = pkl else {
        return Err(ReadError::Zip("no data.pkl in the archive".into()));
    };
    let root = &pkl[..pkl.len() - "data.pkl".len()];
    if names
        .iter()
        .any(|n| n == &format!("{root}constants.pkl") || n.starts_with(&format!("{root}code/")))
    {
        return Err(ReadError::TorchScript);
    }
    if let Some(order) = names.iter().find(|n| *n == &format!("{root}byteorder")) {
        let order = read_entry(&mut archive, order, file_len)?;
        if order.trim_ascii() == b"big" {
            return Err(ReadError::BigEndian);
        }
    }
    let pickle = read_entry(&mut archive, &pkl, file_len)?;
    let mut collector = StorageCollector::new(PidLayout::Zip);
    let (top, _) = unpickle(&pickle, &mut collector).map_err(|source| ReadError::Pickle {
        what: "data.pkl",
        source,
    })?;
    let mut storages = HashMap::new();
    for (key, dtype, numel) in &collector.storages {
        let name = format!("{root}data/{key}");
        if !names.contains(&name) {
            return Err(ReadError::MissingStorage { key: key.clone() });
        }
        let claimed = numel.saturating_mul(dtype.size() as u64);
        let entry_size = archive
            .by_name(&name)
            .map_err(|e| ReadError::Zip(e.to_string()))?
            .size();
        if entry_size < claimed {
            return Err(ReadError::StorageSize {
                key: key.clone(),
                claimed,
                actual: entry_size,
            });
        }
        storages.insert(key.clone(), read_entry(&mut archive, &name, file_len)?);
    }
    Ok((top, storages))
}

/// Reads one entry, refusing claimed sizes the archive cannot hold: a stored entry is
/// never bigger than the file, a deflated one never more than 1032× its compressed size.
fn read_entry(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    file_len: u64,
) -> Result<Vec<u8>, ReadError> {
    let mut f = archive
        .by_name(name)
        .map_err(|e| ReadError::Zip(format!("{name}: {e}")))?;
    let size = f.size();
    let limit = match f.compression() {
        zip::CompressionMethod::Stored => file_len,
        _ => f.compressed_size().min(file_len).saturating_mul(1032),
    };
    if size > limit {
        return Err(ReadError::Zip(format!(
            "{name} claims {size} bytes, impossible in a {file_len}-byte file"
        )));
    }
    // Capacity from the claim only up to the file's size; beyond, the data must really be there.
    let mut out = Vec::with_capacity(size.min(file_len) as usize);
    (&mut f)
        .take(size)
        .read_to_end(&mut out)
        .map_err(|e| ReadError::Zip(format!("{name}: {e}")))?;
    if out.len() as u64 != size {
        return Err(ReadError::Zip(format!(
            "{name} is truncated ({} of {size} bytes)",
            out.len()
        )));
    }
    Ok(out)
}
