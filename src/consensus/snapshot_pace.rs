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
//!
//! Members do not all snapshot at the same log index: as ZooKeeper rolls a random share of
//! `snapCount` per snapshot (`SyncRequestProcessor`'s `randRoll`), each member's next snapshot
//! is due somewhere between half of its thresholds and all of them ([`Stagger`]), so that a
//! quorum's members do not all serialize and write back at once, which on the machines of
//! bench/scale slowed every member of a 10,000,000-znode ensemble together.

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

    /// True once a snapshot is due with `every` as snapCount and `roll` (per mille, from
    /// [`Stagger::roll`]) placing this member's threshold: after `every / 2` txns plus `roll`
    /// thousandths of the other half (ZooKeeper's rule), and for a large tree a log of
    /// between 3/4 and 5/4 of the [`LOG_SHARE`] (the same share on average as without it).
    pub fn due(&self, every: u64, roll: u64) -> bool {
        let roll = roll.min(ROLL_SCALE - 1);
        let (txns, bytes) = (self.txns.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed));
        let last = self.last_snapshot_bytes.load(Ordering::Relaxed);
        let txns_needed = every / 2 + (every - every / 2) * (roll + 1) / ROLL_SCALE;
        let share_needed = last / LOG_SHARE / ROLL_SCALE * (ROLL_SCALE * 3 / 4 + roll / 2);
        txns >= txns_needed.max(1) && (last < SHARE_FROM || bytes >= share_needed)
    }
}

/// The resolution of a [`Stagger`] roll: per mille.
const ROLL_SCALE: u64 = 1000;

/// Where between half and all of its thresholds a member's next snapshot falls: a
/// pseudo-random roll per member and per snapshot, derived from the member's id so that
/// replaying a run (the simulator's seeds) takes the same snapshots.
#[derive(Debug, Clone)]
pub struct Stagger {
    member: u64,
    taken: u64,
}

impl Stagger {
    pub fn new(member: u64) -> Stagger {
        Stagger { member, taken: 0 }
    }

    /// This member's roll for its next snapshot, in `0..1000`.
    pub fn roll(&self) -> u64 {
        // splitmix64 of (member, snapshots taken): members and successive snapshots spread.
        let mut z = self.member.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.taken.wrapping_add(0x632B_E59B_D9B4_E019);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % ROLL_SCALE
    }

    /// A snapshot was asked for: roll again for the next one.
    pub fn next(&mut self) {
        self.taken += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The highest roll: a threshold at its full value.
    const FULL: u64 = ROLL_SCALE - 1;

    /// A small tree's snapshot is due after snapCount txns at most, as ZooKeeper's is,
    /// however small the txns (a test's snapCount=10 of tiny writes included).
    #[test]
    fn a_small_tree_snapshots_every_snap_count_txns() {
        let pace = SnapshotPace::default();
        assert!(!pace.due(10, FULL));
        pace.applied(10, 320);
        assert!(pace.due(10, FULL), "no snapshot yet");
        pace.started();
        pace.snapshot_size(SHARE_FROM - 1);
        pace.applied(9, 9 * 32);
        assert!(!pace.due(10, FULL));
        pace.applied(1, 32);
        assert!(pace.due(10, FULL));
    }

    /// With the lowest roll, about half of snapCount txns make a snapshot due (ZooKeeper's
    /// `snapCount / 2 + randRoll`), and never fewer.
    #[test]
    fn the_lowest_roll_halves_the_txns_needed() {
        let pace = SnapshotPace::default();
        pace.applied(49_999, 49_999 * 32);
        assert!(!pace.due(100_000, 0));
        pace.applied(51, 51 * 32);
        assert!(pace.due(100_000, 0));
        assert!(!pace.due(100_000, 500), "a middle roll needs three quarters");
        let one = SnapshotPace::default();
        assert!(!one.due(1, 0), "nothing applied, nothing due");
        one.applied(1, 32);
        assert!(one.due(1, 0));
    }

    /// A large tree's snapshot waits until the log since the last one is a share of it
    /// (3/4 to 5/4 of a quarter by the roll), however many txns that takes.
    #[test]
    fn a_large_tree_waits_until_its_log_is_a_share_of_the_last_snapshot() {
        let pace = SnapshotPace::default();
        pace.snapshot_size(1_200_000_000);
        pace.applied(100_000, 100_000 * 150);
        assert!(!pace.due(100_000, FULL), "due after snapCount txns of a 1.2 GB tree");
        pace.applied(1_900_000, 1_900_000 * 150);
        assert!(pace.due(100_000, 500), "300 MB of log against a 1.2 GB snapshot, middle roll");
        assert!(!pace.due(100_000, FULL), "the highest roll waits for 375 MB");
        pace.applied(500_000, 500_000 * 150);
        assert!(pace.due(100_000, FULL));
        let early = SnapshotPace::default();
        early.snapshot_size(1_200_000_000);
        early.applied(1_499_999, 1_499_999 * 150);
        assert!(!early.due(100_000, 0), "below 225 MB even at the lowest roll");
        early.applied(1, 150);
        assert!(early.due(100_000, 0));
    }

    /// Three members of an ensemble roll differently for the same snapshot, and one member
    /// differently from one snapshot to the next; the same member and count roll the same.
    #[test]
    fn members_and_successive_snapshots_roll_apart() {
        let rolls: Vec<u64> = (1..=3).map(|m| Stagger::new(m).roll()).collect();
        assert!(rolls[0] != rolls[1] && rolls[1] != rolls[2] && rolls[0] != rolls[2], "{rolls:?}");
        let mut one = Stagger::new(2);
        let first = one.roll();
        let mut seen = Vec::new();
        for _ in 0..20 {
            let r = one.roll();
            assert!(r < ROLL_SCALE);
            seen.push(r);
            one.next();
        }
        seen.sort_unstable();
        seen.dedup();
        assert!(seen.len() >= 15, "{seen:?}");
        assert_eq!(Stagger::new(2).roll(), first, "the same member and count roll the same");
        // Spread over the range, not bunched: among 300 rolls of 3 members, each quarter holds some.
        let mut quarters = [0usize; 4];
        for m in 1..=3 {
            let mut st = Stagger::new(m);
            for _ in 0..100 {
                quarters[(st.roll() * 4 / ROLL_SCALE) as usize] += 1;
                st.next();
            }
        }
        assert!(quarters.iter().all(|&q| q >= 40), "{quarters:?}");
    }
}
