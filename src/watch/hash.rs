//! A fast hasher for connection ids.
//!
//! Connection ids are assigned by the server itself, so they cannot be chosen by a
//! client to provoke collisions; SipHash's DoS resistance buys nothing for them and
//! costs a lot when one trigger touches 10,000 connections. Paths, which *are*
//! client-chosen, keep the standard SipHash.
//!
//! The mixing is a single multiply by an odd 64-bit constant (the "Fx" scheme):
//! the high bits, which hashbrown uses for its control bytes, depend on every
//! input bit, and the low bits stay distinct for sequential ids.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::ConnId;

/// Multiplier from the golden ratio; odd, so the multiply is a bijection on u64.
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Hasher for `u64` keys; other inputs are folded in 8 bytes at a time.
#[derive(Default, Clone, Copy)]
pub struct ConnHasher(u64);

impl Hasher for ConnHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(SEED);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub type ConnBuild = BuildHasherDefault<ConnHasher>;
/// A map keyed by connection id.
pub type ConnMap<V> = HashMap<ConnId, V, ConnBuild>;
/// A set of connection ids.
pub type ConnSet = HashSet<ConnId, ConnBuild>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn sequential_ids_spread_over_high_bits() {
        // hashbrown groups by the top 7 bits; sequential ids must not all share them.
        let b = ConnBuild::default();
        let tops: HashSet<u64> = (0..1000u64).map(|i| b.hash_one(i) >> 57).collect();
        assert!(tops.len() > 64, "only {} distinct top-7-bit values", tops.len());
    }

    #[test]
    fn map_works_as_a_map() {
        let mut m: ConnMap<u32> = ConnMap::default();
        for i in 0..10_000u64 {
            m.insert(i, i as u32);
        }
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.get(&4242), Some(&4242));
    }
}
