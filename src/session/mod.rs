//! Session liveness on the server that owns expiry (the leader).
//!
//! Sessions themselves are replicated state (created and closed through the log,
//! see `tree::txn::TxnOp::CreateSession`). Deadlines are not: they live here, in
//! memory, and every packet from a client pushes its session's deadline out. When a
//! deadline passes, the expiry task proposes a `CloseSession` txn, which deletes the
//! session's ephemerals on every replica in one zxid. After a restart every known
//! session gets a fresh full timeout before anything expires, as ZooKeeper's new
//! leaders do.
//!
//! In an ensemble every server keeps a tracker, but only the leader's deadlines count.
//! Each server also records which sessions had client activity (`touched`); followers
//! report those ids to the leader every half tick, and the leader touches them (adding
//! sessions it has not tracked yet, e.g. ones created through a follower).
//!
//! The leader also records which member each session's client is attached to
//! ([`owners`]), so that a write through a stale connection fails with SessionMoved.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// Deadlines follow tokio's clock: the system clock in production, the simulated one under
// the simulator (tests/sim.rs), like the consensus layer's leader-contact times.
use tokio::time::Instant;

use parking_lot::Mutex;

pub mod expiry;
pub mod owners;
#[cfg(feature = "sim")]
pub mod sim_gate;

#[derive(Debug, Clone, Copy)]
struct Deadline {
    timeout: Duration,
    expires: Instant,
}

/// Tracks when each session expires.
#[derive(Debug, Default)]
pub struct SessionTracker {
    sessions: Mutex<HashMap<i64, Deadline>>,
    /// Sessions with client activity on this server since the last `take_touched`.
    touched: Mutex<HashSet<i64>>,
    /// Sessions whose close is being proposed, with the term of the leader that decided
    /// it: reconnects to them are refused while that leader leads.
    expiring: Mutex<HashMap<i64, u64>>,
}

impl SessionTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts (or restarts) tracking a session with a full timeout from now.
    pub fn add(&self, session_id: i64, timeout_ms: i32) {
        let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
        self.expiring.lock().remove(&session_id);
        self.sessions.lock().insert(session_id, Deadline { timeout, expires: Instant::now() + timeout });
        self.touched.lock().insert(session_id);
    }

    /// Pushes the session's deadline out by its timeout and records the activity for
    /// the leader. Untracked ids only get recorded.
    pub fn touch(&self, session_id: i64) {
        if let Some(d) = self.sessions.lock().get_mut(&session_id) {
            d.expires = Instant::now() + d.timeout;
        }
        self.touched.lock().insert(session_id);
    }

    /// Touches `session_id` if tracked; returns false if it is not tracked.
    pub fn touch_tracked(&self, session_id: i64) -> bool {
        match self.sessions.lock().get_mut(&session_id) {
            Some(d) => {
                d.expires = Instant::now() + d.timeout;
                true
            }
            None => false,
        }
    }

    pub fn remove(&self, session_id: i64) {
        self.sessions.lock().remove(&session_id);
        self.expiring.lock().remove(&session_id);
        self.touched.lock().remove(&session_id);
    }

    /// Sessions with activity since the previous call.
    pub fn take_touched(&self) -> Vec<i64> {
        self.touched.lock().drain().collect()
    }

    /// True while the session's expiry is being proposed.
    pub fn is_expiring(&self, session_id: i64) -> bool {
        self.expiring.lock().contains_key(&session_id)
    }

    /// True while the session's expiry, decided as leader of `term`, is being proposed. A
    /// decision of an earlier term (this member was deposed and elected again meanwhile)
    /// will be refused when it applies, so it does not count.
    pub fn is_expiring_in(&self, session_id: i64, term: u64) -> bool {
        self.expiring.lock().get(&session_id) == Some(&term)
    }

    /// The expiry of `session_id` was decided (applied or abandoned).
    pub fn expired(&self, session_id: i64) {
        self.expiring.lock().remove(&session_id);
    }

    /// Replaces everything tracked by `sessions`, each with a full timeout from now.
    pub fn reset(&self, sessions: impl IntoIterator<Item = (i64, i32)>) {
        let now = Instant::now();
        let fresh: HashMap<i64, Deadline> = sessions
            .into_iter()
            .map(|(id, ms)| {
                let timeout = Duration::from_millis(ms.max(0) as u64);
                (id, Deadline { timeout, expires: now + timeout })
            })
            .collect();
        *self.sessions.lock() = fresh;
        self.expiring.lock().clear();
    }

    pub fn contains(&self, session_id: i64) -> bool {
        self.sessions.lock().contains_key(&session_id)
    }

    /// Sessions whose deadline has passed. They are removed from tracking and marked as
    /// expiring in `term` (the caller's, as leader): the caller proposes their close (and
    /// re-adds them if that fails).
    pub fn take_expired(&self, now: Instant, term: u64) -> Vec<(i64, i32)> {
        let mut sessions = self.sessions.lock();
        let mut expired: Vec<(i64, i32)> = sessions
            .iter()
            .filter(|(_, d)| d.expires <= now)
            .map(|(id, d)| (*id, d.timeout.as_millis() as i32))
            .collect();
        // In id order, not the map's (random per process): the closes are proposed in this
        // order, and a seed of tests/sim.rs must replay the same log.
        expired.sort_unstable();
        let mut expiring = self.expiring.lock();
        for (id, _) in &expired {
            sessions.remove(id);
            expiring.insert(*id, term);
        }
        expired
    }

    /// The expiry queue as `dump` prints it: (session id, timeout ms, time left).
    pub fn dump(&self) -> Vec<(i64, u64, Duration)> {
        let now = Instant::now();
        let mut v: Vec<_> = self
            .sessions
            .lock()
            .iter()
            .map(|(id, d)| (*id, d.timeout.as_millis() as u64, d.expires.saturating_duration_since(now)))
            .collect();
        v.sort();
        v
    }

    pub fn len(&self) -> usize {
        self.sessions.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Hands out session ids the way ZooKeeper does: the server id in the top byte,
/// a time-based start below it, then +1 per session, so ids stay unique across
/// servers and restarts. 0 and the container marker `i64::MIN` are never used.
#[derive(Debug)]
pub struct SessionIdGenerator {
    next: AtomicI64,
}

impl SessionIdGenerator {
    pub fn new(server_id: u64) -> Self {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let base = ((server_id & 0xff) << 56) | ((now_ms << 24) >> 8);
        SessionIdGenerator { next: AtomicI64::new(base as i64) }
    }

    pub fn next_id(&self) -> i64 {
        loop {
            let id = self.next.fetch_add(1, Ordering::Relaxed);
            if id != 0 && id != i64::MIN {
                return id;
            }
        }
    }
}

/// 16 random bytes: the session password clients must present to reconnect.
pub fn new_password() -> [u8; 16] {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_server_id_in_the_top_byte_and_are_unique() {
        let g = SessionIdGenerator::new(7);
        let a = g.next_id();
        let b = g.next_id();
        assert_eq!((a as u64) >> 56, 7);
        assert_ne!(a, b);
        assert_eq!(b, a + 1);
    }

    #[test]
    fn server_ids_above_127_give_negative_ids_like_zookeeper() {
        let g = SessionIdGenerator::new(200);
        assert!(g.next_id() < 0);
    }

    #[test]
    fn touch_postpones_expiry_and_take_expired_removes() {
        let t = SessionTracker::new();
        t.add(1, 0);
        t.add(2, 60_000);
        let expired = t.take_expired(Instant::now(), 1);
        assert_eq!(expired, vec![(1, 0)]);
        assert!(!t.contains(1));
        assert!(t.contains(2));
        t.touch(2);
        assert!(t.take_expired(Instant::now(), 1).is_empty());
    }

    #[test]
    fn expiring_sessions_are_marked_until_decided_and_touches_are_recorded() {
        let t = SessionTracker::new();
        t.add(1, 0);
        let _ = t.take_touched();
        assert_eq!(t.take_expired(Instant::now(), 1), vec![(1, 0)]);
        assert!(t.is_expiring(1), "a reconnect must be refused while the close is proposed");
        assert!(t.is_expiring_in(1, 1));
        assert!(!t.is_expiring_in(1, 2), "a decision of an earlier term does not count");
        t.expired(1);
        assert!(!t.is_expiring(1));

        t.touch(42); // untracked (e.g. on a follower): still reported to the leader
        assert!(!t.contains(42));
        assert_eq!(t.take_touched(), vec![42]);
        assert!(t.take_touched().is_empty());
        assert!(!t.touch_tracked(42));

        t.add(5, 60_000);
        t.reset([(7, 1000)]);
        assert!(!t.contains(5));
        assert!(t.contains(7));
    }
}
