//! The `(parent, name) -> node` index, split into shards that grow one at a time.
//!
//! A single hash table over ten million znodes doubles in one go: hashbrown moves every
//! entry and asks for its hash again, which for this index means reading the node and its
//! name (two cache misses per entry). At 1.8 million znodes that took half a second inside
//! one create; at 7.3 million it is seconds, spent on the consensus thread of every member
//! at once (they apply the same entry), and the followers, hearing nothing from their
//! leader, call an election (bench/scale at 10M, 2026-12-06). Split into [`SHARDS`] tables,
//! each growth moves about 1/256 of the entries: a few milliseconds at 10M.
//!
//! The shard is chosen from hash bits that hashbrown uses for neither the bucket (low
//! bits) nor the tag (top 7 bits), so every shard still sees well-spread hashes.

use hashbrown::HashTable;

const SHARD_BITS: u32 = 8;
/// Tables in one index. An empty table allocates nothing, so a small tree pays 8 KiB.
pub(crate) const SHARDS: usize = 1 << SHARD_BITS;
/// Bits 40..48 of the hash pick the shard: below 2^40 buckets per table, hashbrown's bucket
/// index never reaches them, and its tag uses bits 57..64.
const SHARD_SHIFT: u32 = 40;

/// A set of `u32` ids found by a caller-supplied hash and equality, as hashbrown's
/// [`HashTable`], in [`SHARDS`] tables.
#[derive(Debug, Clone)]
pub(crate) struct ShardedIndex {
    shards: Box<[HashTable<u32>]>,
    len: usize,
}

impl Default for ShardedIndex {
    fn default() -> Self {
        ShardedIndex { shards: (0..SHARDS).map(|_| HashTable::new()).collect(), len: 0 }
    }
}

fn shard_of(hash: u64) -> usize {
    (hash >> SHARD_SHIFT) as usize & (SHARDS - 1)
}

impl ShardedIndex {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn find(&self, hash: u64, eq: impl FnMut(&u32) -> bool) -> Option<u32> {
        self.shards.get(shard_of(hash))?.find(hash, eq).copied()
    }

    /// Adds `id`, which must not be present. `rehash` gives the hash of an id already in
    /// the index, for when its shard grows.
    pub(crate) fn insert_unique(&mut self, hash: u64, id: u32, rehash: impl Fn(&u32) -> u64) {
        if let Some(shard) = self.shards.get_mut(shard_of(hash)) {
            shard.insert_unique(hash, id, rehash);
            self.len += 1;
        }
    }

    /// Removes the id that `eq` picks among those with `hash`; false if there is none.
    pub(crate) fn remove(&mut self, hash: u64, eq: impl FnMut(&u32) -> bool) -> bool {
        let Some(shard) = self.shards.get_mut(shard_of(hash)) else { return false };
        match shard.find_entry(hash, eq) {
            Ok(entry) => {
                entry.remove();
                self.len -= 1;
                true
            }
            Err(_) => false,
        }
    }

    /// Room for about `additional` more ids without growing (loading a snapshot): each
    /// shard gets its share and an eighth more, for the luck of the draw.
    pub(crate) fn reserve(&mut self, additional: usize, rehash: impl Fn(&u32) -> u64) {
        let share = additional / SHARDS;
        for shard in self.shards.iter_mut() {
            shard.reserve(share + share / 8, &rehash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::hash::BuildHasher;

    fn hash(id: u32) -> u64 {
        hashbrown::DefaultHashBuilder::default().hash_one(id)
    }

    #[test]
    fn finds_what_was_inserted_and_forgets_what_was_removed() {
        let hasher = hashbrown::DefaultHashBuilder::default();
        let h = |id: &u32| hasher.hash_one(*id);
        let mut index = ShardedIndex::default();
        for id in 0..10_000u32 {
            index.insert_unique(h(&id), id, h);
        }
        assert_eq!(index.len(), 10_000);
        assert!((0..10_000u32).all(|id| index.find(h(&id), |&x| x == id) == Some(id)));
        assert_eq!(index.find(h(&10_000), |&x| x == 10_000), None);
        for id in (0..10_000u32).step_by(2) {
            assert!(index.remove(h(&id), |&x| x == id));
        }
        assert!(!index.remove(h(&0), |&x| x == 0), "removed twice");
        assert_eq!(index.len(), 5_000);
        assert!((0..10_000u32).all(|id| index.find(h(&id), |&x| x == id).is_some() == (id % 2 == 1)));
    }

    /// The point of the shards: no single insert re-hashes more than a small share of the
    /// index. A single table re-hashes all 200,000 entries (less one growth) at once.
    #[test]
    fn no_insert_rehashes_more_than_a_shard() {
        const N: u32 = 200_000;
        let calls = Cell::new(0usize);
        let counting = |id: &u32| {
            calls.set(calls.get() + 1);
            hash(*id)
        };
        let mut index = ShardedIndex::default();
        let mut worst = 0;
        for id in 0..N {
            calls.set(0);
            index.insert_unique(hash(id), id, counting);
            worst = worst.max(calls.get());
        }
        // A shard holds about N / SHARDS = 781; 1% of N allows for an unlucky one.
        assert!(worst > 0 && worst < N as usize / 100, "one insert re-hashed {worst} entries");
    }

    #[test]
    fn reserve_makes_room_in_every_shard() {
        let mut index = ShardedIndex::default();
        index.reserve(100_000, |&id| hash(id));
        let calls = Cell::new(0usize);
        for id in 0..90_000u32 {
            index.insert_unique(hash(id), id, |&x| {
                calls.set(calls.get() + 1);
                hash(x)
            });
        }
        assert_eq!(calls.get(), 0, "a shard grew although room was reserved");
    }
}
