//! Which model (and which way of running it) a cache entry belongs to: a hash of the
//! model file's bytes, extended by the tiling, precision and test-time augmentation that
//! change its candidates.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::detector::maths::tiling::{TileParams, Tiling};
use crate::detector::maths::tta::Tta;
use crate::detector::precision::Precision;

/// Identifies a model file by its content: 16 lowercase hex digits of a 64-bit FNV-1a
/// hash of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(pub String);

impl ModelId {
    /// Hashes the file at `path`, streamed in 64 KiB blocks.
    pub fn of_file(path: &Path) -> io::Result<ModelId> {
        let mut file = File::open(path)?;
        let mut hash = Fnv1a::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hash.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(ModelId::from_hash(hash.finish()))
    }

    /// The id of in-memory model bytes (the same as [`ModelId::of_file`] on a file
    /// holding them).
    pub fn of_bytes(bytes: &[u8]) -> ModelId {
        let mut hash = Fnv1a::new();
        hash.update(bytes);
        ModelId::from_hash(hash.finish())
    }

    /// The id of this model's predictions with `tiling` (for a model trained on tiles of
    /// `train_tile` pixels): the model's own id for whole photos, a suffix naming the tile
    /// size and overlap otherwise, so that each setting has its own cache.
    pub fn with_tiling(&self, tiling: &Tiling, train_tile: Option<u32>) -> ModelId {
        let tiles = match tiling {
            Tiling::Off => None,
            Tiling::Auto => train_tile.map(TileParams::new),
            Tiling::Tiles(p) => Some(*p),
        };
        match tiles {
            None => self.clone(),
            Some(p) => ModelId(format!(
                "{}-tile{}-o{}{}",
                self.0,
                p.size,
                (p.overlap * 100.0).round() as u32,
                if p.whole_image { "" } else { "-nowhole" }
            )),
        }
    }

    /// The id of these predictions at `precision`: unchanged in float32, `-bf16` in
    /// bfloat16, whose scores differ in the fifth decimal (each precision its own cache).
    pub fn with_precision(&self, precision: Precision) -> ModelId {
        match precision {
            Precision::Fp32 => self.clone(),
            Precision::Bf16 => ModelId(format!("{}-bf16", self.0)),
        }
    }

    /// The id of these predictions with test-time augmentation `tta`: unchanged when it
    /// is off, a suffix naming the passes otherwise (`-tta-flip`, `-tta-flip-scales`, or
    /// the scales in hundredths: `-tta-flip-s70-140`), so that each setting has its own
    /// cache.
    pub fn with_tta(&self, tta: &Tta) -> ModelId {
        match tta {
            Tta::Off => self.clone(),
            Tta::FlipScales(s) if *s != crate::detector::maths::tta::DEFAULT_TTA_SCALES => {
                let hundredths = |v: f32| (v * 100.0).round() as u32;
                ModelId(format!(
                    "{}-tta-flip-s{}-{}",
                    self.0,
                    hundredths(s[0]),
                    hundredths(s[1])
                ))
            }
            other => ModelId(format!("{}-tta-{}", self.0, other.describe())),
        }
    }

    fn from_hash(h: u64) -> ModelId {
        ModelId(format!("{h:016x}"))
    }

    /// The id as a string (the cache folder's name).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// 64-bit FNV-1a.
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Self(Self::OFFSET)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_id_is_fnv1a_of_the_bytes() {
        // FNV-1a 64 test vectors.
        assert_eq!(ModelId::of_bytes(b"").0, "cbf29ce484222325");
        assert_eq!(ModelId::of_bytes(b"a").0, "af63dc4c8601ec8c");
        assert_eq!(ModelId::of_bytes(b"foobar").0, "85944171f73967e8");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("model.safetensors");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&f, &bytes).unwrap();
        assert_eq!(ModelId::of_file(&f).unwrap(), ModelId::of_bytes(&bytes));
        std::fs::write(&f, &bytes[1..]).unwrap();
        assert_ne!(ModelId::of_file(&f).unwrap(), ModelId::of_bytes(&bytes));
    }

    #[test]
    fn each_tta_and_precision_setting_has_its_own_cache_id() {
        let id = ModelId("00ff".into());
        assert_eq!(id.with_tta(&Tta::Off), id);
        assert_eq!(id.with_tta(&Tta::Flip).0, "00ff-tta-flip");
        assert_eq!(id.with_tta(&Tta::flip_scales()).0, "00ff-tta-flip-scales");
        assert_eq!(
            id.with_tta(&Tta::FlipScales([0.7, 1.4])).0,
            "00ff-tta-flip-s70-140"
        );
        let tiled = id.with_tiling(&Tiling::Tiles(TileParams::new(384)), None);
        assert_eq!(tiled.with_tta(&Tta::Flip).0, "00ff-tile384-o25-tta-flip");
        assert_eq!(id.with_precision(Precision::Fp32), id);
        assert_eq!(
            tiled.with_precision(Precision::Bf16).0,
            "00ff-tile384-o25-bf16"
        );
    }
}
