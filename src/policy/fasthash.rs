//! A fast non-cryptographic hasher for the engine's lookup tables (FxHash's
//! rotate-xor-multiply, as rustc uses).
//!
//! `std`'s SipHash resists hash flooding, which matters only when an attacker chooses the
//! keys a table is *built* from. Every table here is built from configuration and policy
//! state (trusted sources); requests only look keys up, and a lookup cannot degrade a
//! table. SipHash costs ~30-40 ns per 36-byte id; this costs a few, and a request does
//! half a dozen lookups.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_work_and_keys_differ() {
        let mut m: FastMap<Box<str>, u32> = FastMap::default();
        for i in 0..10_000u32 {
            m.insert(format!("{i:08x}-1111-4111-8111-111111111111").into(), i);
        }
        assert_eq!(m.get("00000fff-1111-4111-8111-111111111111"), Some(&0xfff));
        assert_eq!(m.get("00000fff-1111-4111-8111-11111111111"), None);
        let mut t: FastMap<(u32, u32, u32), u8> = FastMap::default();
        t.insert((1, 2, 3), 1);
        t.insert((3, 2, 1), 2);
        assert_eq!(
            (t.get(&(1, 2, 3)), t.get(&(3, 2, 1)), t.get(&(2, 1, 3))),
            (Some(&1), Some(&2), None)
        );
    }
}
