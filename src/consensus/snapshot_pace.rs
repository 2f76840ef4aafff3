//! When a member takes its next snapshot.
//!
//! ZooKeeper snapshots after `snapCount` txns whatever the size of the tree, so the cost of
//! snapshots grows with the tree while the writes that pay for them do not: at 10,000,000
//! znodes a 1.2 GB snapshot was due every few seconds of writes, and the members serialized
//! and wrote them back to back (bench/scale, 2026-12-06). Here a snapshot is due after
//! `snapCount` txns *and*, once the last snapshot was [`SHARE_FROM`] or more, once the txns
//! applied since it add up to at least a [`LOG_SHARE`]th of its size. A tree below that size
//! (about half a million small znodes) snapshots exactly as ZooKeeper's does; a larger one as
//! often as its log makes worth it, and the log replayed at a restart stays a bounded
//! fraction of the snapshot loaded before it.

use std::sync::atomic::{AtomicU64, Ordering};

/// The log since the last snapshot must reach 1/`LOG_SHARE` of that snapshot's size...
pub const LOG_SHARE: u64 = 4;
/// ...when that snapshot was at least this large.
pub const SHARE_FROM: u64 = 64 << 20;

/// Counts what was applied since the last snapshot began, and the size of the last one.
#[derive(Debug, Default)]
pub struct SnapshotPace {
    txns: AtomicU64,
    /// Roughly the wire size of those txns (`types::txn_bytes`).
    bytes: AtomicU64,
    last_snapshot_bytes: AtomicU64,
}

impl SnapshotPace {
    /// `txns` txns of about `bytes` bytes were applied.
    pub fn applied(&self, txns: u64, bytes: u64) {
        self.txns.fetch_add(txns, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A snapshot began: counting starts again.
    pub fn started(&self) {
        self.txns.store(0, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
    }

    /// The latest snapshot (built, installed or loaded at startup) is `bytes` long.
    pub fn snapshot_size(&self, bytes: u64) {
        self.last_snapshot_bytes.store(bytes, Ordering::Relaxed);
    }

    /// True once a snapshot is due with `every` as snapCount.
    pub fn due(&self, every: u64) -> bool {
        let (txns, bytes) = (self.txns.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed));
        let last = self.last_snapshot_bytes.load(Ordering::Relaxed);
        txns >= every && (last < SHARE_FROM || bytes.saturating_mul(LOG_SHARE) >= last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small tree's snapshot is due after snapCount txns, as ZooKeeper's is, however small
    /// the txns (a test's snapCount=10 of tiny writes included).
    #[test]
    fn a_small_tree_snapshots_every_snap_count_txns() {
        let pace = SnapshotPace::default();
        assert!(!pace.due(10));
        pace.applied(10, 320);
        assert!(pace.due(10), "no snapshot yet");
        pace.started();
        pace.snapshot_size(SHARE_FROM - 1);
        pace.applied(9, 9 * 32);
        assert!(!pace.due(10));
        pace.applied(1, 32);
        assert!(pace.due(10));
    }

    /// A large tree's snapshot waits until the log since the last one is a quarter of it,
    /// however many txns that takes.
    #[test]
    fn a_large_tree_waits_until_its_log_is_a_share_of_the_last_snapshot() {
        let pace = SnapshotPace::default();
        pace.snapshot_size(1_200_000_000);
        pace.applied(100_000, 100_000 * 150);
        assert!(!pace.due(100_000), "due after snapCount txns of a 1.2 GB tree");
        pace.applied(1_900_000, 1_900_000 * 150);
        assert!(pace.due(100_000), "300 MB of log against a 1.2 GB snapshot");
    }
}
