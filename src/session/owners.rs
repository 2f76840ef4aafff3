//! The leader's session owners: which member each session's client is attached to
//! (ZooKeeper's session owner). In memory only; the consensus layer consults it through
//! [`SessionOwnership`] (see `consensus::owners` for the rules).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::consensus::SessionOwnership;
use crate::db::Db;

use super::SessionTracker;

/// Session id -> owning member, for one leader term.
#[derive(Debug, Default)]
pub struct OwnerTable {
    term: u64,
    owners: HashMap<i64, u64>,
}

impl OwnerTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// The owners of `term`. Owners recorded under another term were decided by another
    /// leadership and may be stale: a new term starts without any.
    fn of_term(&mut self, term: u64) -> &mut HashMap<i64, u64> {
        if self.term != term {
            self.owners.clear();
            self.term = term;
        }
        &mut self.owners
    }

    /// Makes `member` the owner of `session_id`.
    pub fn claim(&mut self, term: u64, session_id: i64, member: u64) {
        self.of_term(term).insert(session_id, member);
    }

    /// True if `member` owns `session_id`; a session without an owner becomes `member`'s.
    pub fn admit(&mut self, term: u64, session_id: i64, member: u64) -> bool {
        *self.of_term(term).entry(session_id).or_insert(member) == member
    }

    pub fn forget(&mut self, session_id: i64) {
        self.owners.remove(&session_id);
    }

    /// The owner of `session_id` in `term`, if known.
    pub fn owner(&self, term: u64, session_id: i64) -> Option<u64> {
        (self.term == term).then(|| self.owners.get(&session_id).copied()).flatten()
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

/// What the leader knows about sessions: the tree, the expiry tracker and the owners.
pub struct LeaderSessions {
    db: Arc<Db>,
    tracker: Arc<SessionTracker>,
    owners: Mutex<OwnerTable>,
}

impl LeaderSessions {
    pub fn new(db: Arc<Db>, tracker: Arc<SessionTracker>) -> Self {
        LeaderSessions { db, tracker, owners: Mutex::new(OwnerTable::new()) }
    }
}

impl SessionOwnership for LeaderSessions {
    fn attach(&self, term: u64, session_id: i64, timeout_ms: i32, member: u64) -> bool {
        if self.tracker.is_expiring_in(session_id, term) || self.db.read(|t| t.session(session_id).is_none()) {
            return false;
        }
        self.tracker.add(session_id, timeout_ms);
        self.owners.lock().claim(term, session_id, member);
        true
    }

    fn admit(&self, term: u64, session_id: i64, member: u64) -> bool {
        self.owners.lock().admit(term, session_id, member)
    }

    fn forget(&self, session_id: i64) {
        self.owners.lock().forget(session_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Apply;
    use crate::tree::txn::{Txn, TxnBatch, TxnOp};

    #[test]
    fn the_owner_admits_others_are_refused_and_a_claim_moves_the_session() {
        let mut t = OwnerTable::new();
        t.claim(3, 7, 1);
        assert!(t.admit(3, 7, 1));
        assert!(!t.admit(3, 7, 2), "a write through another member than the owner");
        t.claim(3, 7, 2);
        assert!(t.admit(3, 7, 2));
        assert!(!t.admit(3, 7, 1), "the old member's connection is now stale");
        t.claim(3, 7, 1);
        assert!(t.admit(3, 7, 1), "reconnecting back makes the old member the owner again");
    }

    #[test]
    fn an_unknown_session_is_owned_by_its_first_writer() {
        let mut t = OwnerTable::new();
        assert_eq!(t.owner(1, 9), None);
        assert!(t.admit(1, 9, 3));
        assert_eq!(t.owner(1, 9), Some(3));
        assert!(!t.admit(1, 9, 2));
        t.forget(9);
        assert!(t.is_empty());
        assert!(t.admit(1, 9, 2), "a forgotten (closed) session has no owner left");
    }

    #[test]
    fn a_new_term_forgets_the_owners_of_the_old_one() {
        let mut t = OwnerTable::new();
        t.claim(4, 1, 1);
        t.claim(4, 2, 2);
        assert_eq!(t.len(), 2);
        assert_eq!(t.owner(5, 1), None, "nothing is known yet in term 5");
        assert!(t.admit(5, 1, 3), "after a leader change the first writer owns the session");
        assert_eq!(t.len(), 1);
        assert_eq!(t.owner(5, 2), None);
    }

    fn db_with_session(id: i64) -> Arc<Db> {
        let db = Arc::new(Db::new());
        let op = TxnOp::CreateSession { session_id: id, timeout_ms: 10_000, password: [0; 16] };
        db.apply(1, 1, &TxnBatch { txns: vec![Txn { session_id: 0, time_ms: 0, auth: vec![], op }] });
        db
    }

    #[test]
    fn attach_claims_live_sessions_only() {
        let tracker = Arc::new(SessionTracker::new());
        let leader = LeaderSessions::new(db_with_session(5), tracker.clone());
        assert!(!leader.attach(1, 6, 1000, 2), "a session the tree does not have");
        assert!(leader.attach(1, 5, 1000, 2));
        assert!(tracker.contains(5), "attaching renews the session on the leader");
        assert!(!leader.admit(1, 5, 1));
        assert!(leader.admit(1, 5, 2));

        tracker.add(5, 0);
        assert_eq!(tracker.take_expired(tokio::time::Instant::now(), 1), vec![(5, 0)]);
        assert!(!leader.attach(1, 5, 1000, 1), "a session whose close is being proposed");
        assert!(leader.attach(2, 5, 1000, 1), "a close decided in an earlier term is refused at apply");
        assert!(leader.admit(1, 5, 2), "a refused attach changes no owner");
    }
}
