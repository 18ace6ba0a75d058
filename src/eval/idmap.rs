//! A small id → index hash map with a cheap multiplicative hasher for `i64` keys.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Fibonacci-hashing `Hasher` for integer keys: ids are not attacker-controlled here and
/// the default SipHash costs more than the lookups it guards.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.0 = (i as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
}

/// Maps ids to positions. Re-inserting an id keeps the last position (like a Python dict).
#[derive(Clone, Debug, Default)]
pub(crate) struct IdMap(HashMap<i64, u32, BuildHasherDefault<IdHasher>>);

impl IdMap {
    pub(crate) fn with_capacity(n: usize) -> Self {
        IdMap(HashMap::with_capacity_and_hasher(n, Default::default()))
    }

    /// Inserts and returns the previous position of `id`, if any.
    pub(crate) fn insert(&mut self, id: i64, pos: u32) -> Option<u32> {
        self.0.insert(id, pos)
    }

    #[inline]
    pub(crate) fn get(&self, id: i64) -> Option<u32> {
        self.0.get(&id).copied()
    }

    #[inline]
    pub(crate) fn contains(&self, id: i64) -> bool {
        self.0.contains_key(&id)
    }
}
