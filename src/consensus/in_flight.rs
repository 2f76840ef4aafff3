//! Forwarded txns still waiting for the leader's answer, and what this member's own log
//! says became of them.
//!
//! A follower forwards its clients' writes to the leader and waits for the answer. When
//! the leader freezes or is cut off before it answers, the answer never comes, but the
//! txns' fate is not lost: if the old leader replicated them far enough, the new leader
//! commits them and this member applies them; if not, no leader ever will. So every
//! forwarded txn is registered here before it is sent, the state machine reports each
//! applied txn that matches one ([`InFlight::observe`]), and once this member has applied
//! an entry of a term after the one the txns were forwarded in (the leader appends them in
//! that term or never) the registry tells, txn by txn, which committed and with what
//! outcome. Without this the writers' connections had to close at every leader
//! change (the outcome was unknown), and a client that then dialled the frozen leader
//! waited out its whole connect timeout (the fault suite's "writes resume within 1 s").
//!
//! A txn is recognised by its session, its proposer's timestamp and then full equality:
//! two equal txns of one session in one millisecond are told apart by their order, which
//! the log keeps (a session's txns are forwarded and committed in order).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::wire::Committed;
use crate::tree::txn::{Txn, TxnOutcome};

/// The registry of txns forwarded and not answered yet.
#[derive(Default)]
pub struct InFlight {
    inner: Mutex<Inner>,
    /// How many txns are registered: applying checks this before taking the lock.
    open: AtomicUsize,
    /// Txns settled from the log after their answer was lost: committed, not committed.
    settled: [AtomicU64; 2],
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    by_key: HashMap<Key, Vec<Slot>>,
}

/// (session, proposer's time): narrows the search before txns are compared.
type Key = (i64, i64);

struct Slot {
    id: u64,
    txn: Txn,
    /// Set when this member applied it.
    committed: Option<Committed>,
    /// A snapshot was installed while it waited: it may be inside, unseen (see
    /// [`InFlight::snapshot_installed`]).
    unknowable: bool,
}

/// A registered batch: ids in batch order.
#[derive(Debug, Clone)]
pub struct Registered {
    ids: Vec<(u64, Key)>,
}

/// What became of one forwarded txn, read from this member's log.
#[derive(Debug)]
pub enum Fate {
    /// Applied here, with this outcome.
    Committed(Committed),
    /// Not in the log up to the point where no older leader can commit anything any more.
    NotCommitted,
    /// Not seen applied, but a snapshot installed meanwhile may hold it.
    Unknown,
}

fn key_of(txn: &Txn) -> Key {
    (txn.session_id, txn.time_ms)
}

impl InFlight {
    /// Registers a batch about to be forwarded (the registry keeps the txns).
    pub fn register(&self, txns: Vec<Txn>) -> Registered {
        let mut inner = self.inner.lock();
        let mut ids = Vec::with_capacity(txns.len());
        for txn in txns {
            inner.next_id += 1;
            let id = inner.next_id;
            let key = key_of(&txn);
            inner.by_key.entry(key).or_default().push(Slot { id, txn, committed: None, unknowable: false });
            ids.push((id, key));
        }
        self.open.fetch_add(ids.len(), Ordering::AcqRel);
        Registered { ids }
    }

    /// Notes txns applied at log `index` with their outcomes (called by the state machine
    /// for every applied batch; free while nothing is registered).
    pub fn observe(&self, index: u64, txns: &[Txn], outcomes: &[TxnOutcome]) {
        if self.open.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut inner = self.inner.lock();
        for (txn, outcome) in txns.iter().zip(outcomes) {
            let Some(slots) = inner.by_key.get_mut(&key_of(txn)) else { continue };
            if let Some(slot) = slots.iter_mut().find(|s| s.committed.is_none() && s.txn == *txn) {
                slot.committed = Some(Committed { index, outcome: outcome.clone() });
            }
        }
    }

    /// A snapshot replaced the state: txns it holds were never applied here one by one, so a
    /// registered txn not seen applied yet may be in it, and cannot be called not committed.
    pub fn snapshot_installed(&self) {
        if self.open.load(Ordering::Acquire) == 0 {
            return;
        }
        for slot in self.inner.lock().by_key.values_mut().flatten() {
            slot.unknowable = true;
        }
    }

    /// Removes a batch and gives its txns back in order, with what this member applied of
    /// them so far (a caller that asks must know that nothing older can commit any more).
    pub fn take(&self, batch: &Registered) -> Vec<(Txn, Fate)> {
        let mut inner = self.inner.lock();
        let mut out = Vec::with_capacity(batch.ids.len());
        for (id, key) in &batch.ids {
            let Some(slots) = inner.by_key.get_mut(key) else { continue };
            let Some(at) = slots.iter().position(|s| s.id == *id) else { continue };
            let slot = slots.remove(at);
            if slots.is_empty() {
                inner.by_key.remove(key);
            }
            let fate = match (slot.committed, slot.unknowable) {
                (Some(c), _) => Fate::Committed(c),
                (None, false) => Fate::NotCommitted,
                (None, true) => Fate::Unknown,
            };
            out.push((slot.txn, fate));
        }
        self.open.fetch_sub(out.len(), Ordering::AcqRel);
        out
    }

    /// Counts the fates of a batch settled from the log.
    pub fn count_settled(&self, fates: &[(Txn, Fate)]) {
        let count = |want: fn(&Fate) -> bool| fates.iter().filter(|(_, f)| want(f)).count() as u64;
        self.settled[0].fetch_add(count(|f| matches!(f, Fate::Committed(_))), Ordering::Relaxed);
        self.settled[1].fetch_add(count(|f| matches!(f, Fate::NotCommitted)), Ordering::Relaxed);
    }

    /// Forwarded txns settled from the log since start: (committed, not committed).
    pub fn settled(&self) -> (u64, u64) {
        (self.settled[0].load(Ordering::Relaxed), self.settled[1].load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::txn::TxnOp;

    fn set(session_id: i64, time_ms: i64, data: &[u8]) -> Txn {
        Txn {
            session_id,
            time_ms,
            auth: Vec::new(),
            op: TxnOp::SetData { path: "/r".into(), data: Some(data.to_vec()), version: -1 },
        }
    }

    fn outcome(zxid: i64) -> TxnOutcome {
        TxnOutcome { zxid, result: Err(crate::proto::types::ErrorCode::BadVersion) }
    }

    #[test]
    fn applied_txns_are_matched_in_order_and_the_rest_are_not_committed() {
        let reg = InFlight::default();
        // Two equal txns of one session in one millisecond, and a third.
        let batch = reg.register(vec![set(1, 5, b"a"), set(1, 5, b"a"), set(1, 5, b"b")]);
        assert_eq!(reg.open.load(Ordering::Acquire), 3);
        // Another session's equal-looking txn and an unregistered one change nothing.
        reg.observe(7, &[set(2, 5, b"a"), set(1, 6, b"a")], &[outcome(1), outcome(2)]);
        // The leader committed the first of the twins only.
        reg.observe(8, &[set(1, 5, b"a")], &[outcome(3)]);
        let fates = reg.take(&batch);
        assert_eq!(reg.open.load(Ordering::Acquire), 0);
        assert_eq!(fates.len(), 3);
        match &fates[0].1 {
            Fate::Committed(c) => assert_eq!((c.index, c.outcome.zxid), (8, 3)),
            other => panic!("first twin: {other:?}"),
        }
        assert!(matches!(fates[1].1, Fate::NotCommitted), "second twin: {:?}", fates[1].1);
        assert!(matches!(fates[2].1, Fate::NotCommitted));
        assert_eq!(fates[2].0, set(1, 5, b"b"), "the txn comes back");
        // Taken batches are gone: applying them again matches nothing.
        reg.observe(9, &[set(1, 5, b"a")], &[outcome(4)]);
        assert!(reg.take(&batch).is_empty());
    }

    #[test]
    fn after_a_snapshot_install_an_unseen_txn_is_unknown_not_uncommitted() {
        let reg = InFlight::default();
        let batch = reg.register(vec![set(1, 5, b"a"), set(1, 5, b"b")]);
        reg.observe(3, &[set(1, 5, b"a")], &[outcome(1)]);
        // The second may be inside the snapshot: submitting it again could apply it twice.
        reg.snapshot_installed();
        let fates = reg.take(&batch);
        assert!(matches!(fates[0].1, Fate::Committed(_)));
        assert!(matches!(fates[1].1, Fate::Unknown), "{:?}", fates[1].1);
        // Registered after the install: settled from the log as usual.
        let later = reg.register(vec![set(1, 6, b"c")]);
        reg.snapshot_installed();
        assert!(matches!(reg.take(&later)[0].1, Fate::Unknown));
        let last = reg.register(vec![set(1, 7, b"d")]);
        assert!(matches!(reg.take(&last)[0].1, Fate::NotCommitted));
    }
}
