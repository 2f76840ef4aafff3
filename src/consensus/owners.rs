//! Session ownership on the leader (ZooKeeper's session *owner*).
//!
//! A session is owned by the member its client is connected to. The leader keeps the
//! owners in memory only, through the [`SessionOwnership`] the session layer installs:
//! - a client attaching a session on a member makes that member the owner; a follower
//!   asks the leader ([`Request::Revalidate`]) before it answers the client;
//! - a write (see [`owner_checked`]) that reaches the leader's batcher through a member
//!   other than the owner is not ordered: its outcome is `SessionMoved`;
//! - a session without a known owner (after a leader change) becomes the member's whose
//!   write reaches the leader first.
//!
//! Reads, session create and close, and server-internal txns are never checked. A
//! standalone server installs no ownership, so nothing here runs there.

use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use parking_lot::RwLock;

use super::error::ConsensusError;
use super::types::{term_of, NodeId};
use super::wire::{Committed, RemoteError, Request, Response};
use super::{Consensus, Core, RaftHandle};
use crate::proto::types::ErrorCode;
use crate::tree::txn::{Txn, TxnOp, TxnOutcome};

/// How long a follower's handshake waits for the leader to revalidate a session.
const REVALIDATE_WAIT: Duration = Duration::from_secs(3);

/// The leader's table of session owners, with the session checks it needs. `term` is
/// the leader's term: owners recorded in an earlier term are stale and must be dropped.
pub trait SessionOwnership: Send + Sync + 'static {
    /// A client attached `session_id` on `member`. False if the session is gone or its
    /// expiry is being proposed; otherwise renews it with `timeout_ms` and makes
    /// `member` its owner.
    fn attach(&self, term: u64, session_id: i64, timeout_ms: i32, member: NodeId) -> bool;
    /// May a write of `session_id` that reached the leader through `member` be
    /// ordered? A session without a known owner becomes `member`'s.
    fn admit(&self, term: u64, session_id: i64, member: NodeId) -> bool;
    /// The session is being closed.
    fn forget(&self, session_id: i64);
}

/// Where the installed ownership lives (none on a standalone server).
pub type OwnershipSlot = RwLock<Option<Arc<dyn SessionOwnership>>>;

/// Whether the leader checks the owner of `txn`'s session: a client session's writes
/// (multi and its checks included). Session create/close and the leader's own txns
/// (reaping, `SetConfig`) are not; a reconfig is checked when the call reaches the leader.
pub fn owner_checked(txn: &Txn) -> bool {
    txn.session_id != 0
        && matches!(
            txn.op,
            TxnOp::Create { .. }
                | TxnOp::Delete { .. }
                | TxnOp::SetData { .. }
                | TxnOp::SetAcl { .. }
                | TxnOp::Check { .. }
                | TxnOp::Multi(_)
        )
}

/// The answer to a txn refused because its session moved: nothing was written (index 0).
/// The zxid is never shown to a client: the stale connection is closed instead.
pub fn session_moved() -> Committed {
    Committed { index: 0, outcome: TxnOutcome { zxid: 0, result: Err(ErrorCode::SessionMoved) } }
}

/// The ownership check of one batch on the leader (taken once per batch).
pub(super) struct OwnerGate {
    owners: Arc<dyn SessionOwnership>,
    term: u64,
    me: NodeId,
}

impl OwnerGate {
    /// `None` when no ownership is installed (standalone).
    pub(super) fn current(slot: &OwnershipSlot, raft: &RaftHandle) -> Option<OwnerGate> {
        let owners = slot.read().clone()?;
        let term = raft.metrics().borrow_watched().current_term;
        Some(OwnerGate { owners, term, me: *raft.node_id() })
    }

    /// True if `txn`, received by member `from` (`None`: by this node), must be refused
    /// with `SessionMoved`. A close makes the leader forget the session's owner.
    pub(super) fn moved(&self, txn: &Txn, from: Option<NodeId>) -> bool {
        if let Some(session_id) = txn.op.ended_session() {
            self.owners.forget(session_id);
            return false;
        }
        owner_checked(txn) && !self.owners.admit(self.term, txn.session_id, from.unwrap_or(self.me))
    }
}

impl Core {
    fn current_term(&self) -> u64 {
        self.raft.metrics().borrow_watched().current_term
    }

    /// Leader side of a session attach on `member` (true when no ownership is installed).
    pub(super) fn attach_session(&self, member: NodeId, session_id: i64, timeout_ms: i32) -> bool {
        let owners = self.ownership.read().clone();
        owners.is_none_or(|o| o.attach(self.current_term(), session_id, timeout_ms, member))
    }

    /// Waits (at most `limit`) until this leader has applied an entry of its own term. A new
    /// leader commits what it inherited (session closes its predecessor decided, among them)
    /// only with its first entry, so before that a session may look alive here that an
    /// inherited close is about to end; a revalidation answered then told a reconnecting
    /// client its session was valid and the close applied a few ms later (found by the
    /// simulator, seed 219 with crashes). ZooKeeper's leader syncs its history before it
    /// serves, to the same effect.
    async fn own_term_applied(&self, limit: Duration) -> Result<(), RemoteError> {
        let mut metrics = self.raft.metrics();
        let caught_up = async {
            loop {
                {
                    let m = metrics.borrow_watched();
                    if m.last_applied.is_some_and(|l| term_of(&l) == m.current_term) {
                        return Ok(());
                    }
                    if m.state != openraft::ServerState::Leader {
                        return Err(RemoteError::NotLeader { leader: m.current_leader });
                    }
                }
                if metrics.changed().await.is_err() {
                    return Err(RemoteError::NotLeader { leader: None });
                }
            }
        };
        match tokio::time::timeout(limit, caught_up).await {
            Ok(outcome) => outcome,
            Err(_) => Err(RemoteError::Failed("no entry of this leader's term applied in time".into())),
        }
    }

    /// True if a write of `session_id` arriving from `member` must get `SessionMoved`.
    pub(super) fn session_moved_from(&self, member: NodeId, session_id: i64) -> bool {
        if session_id == 0 {
            return false;
        }
        let owners = self.ownership.read().clone();
        owners.is_some_and(|o| !o.admit(self.current_term(), session_id, member))
    }
}

/// Serves a follower's [`Request::Revalidate`]: once this leader has applied what the
/// follower had (a session the follower just created is then known here too), attaches
/// the session to the follower.
pub(super) async fn serve_revalidate(
    core: &Core,
    from: NodeId,
    session_id: i64,
    timeout_ms: i32,
    applied: u64,
) -> Response {
    if !core.raft.is_leader() {
        let leader = core.raft.metrics().borrow_watched().current_leader;
        return Response::Revalidate(Err(RemoteError::NotLeader { leader }));
    }
    let mut rx = core.applied.clone();
    if tokio::time::timeout(REVALIDATE_WAIT, rx.wait_for(|&a| a >= applied)).await.is_err() {
        return Response::Revalidate(Err(RemoteError::Failed(format!("log index {applied} not applied in time"))));
    }
    if let Err(e) = core.own_term_applied(REVALIDATE_WAIT).await {
        return Response::Revalidate(Err(e));
    }
    Response::Revalidate(Ok(core.attach_session(from, session_id, timeout_ms)))
}

impl Consensus {
    /// Installs the leader's session ownership (ensemble members only).
    pub fn set_session_ownership(&self, owners: Arc<dyn SessionOwnership>) {
        *self.core.ownership.write() = Some(owners);
    }

    /// A client re-attached `session_id` to this member: asks the leader (here or
    /// remote) to make this member the session's owner, renewing it with `timeout_ms`.
    /// `Ok(false)`: the leader knows the session as expired or expiring.
    pub async fn attach_session(&self, session_id: i64, timeout_ms: i32) -> Result<bool, ConsensusError> {
        let applied = *self.core.applied.borrow();
        let request = Request::Revalidate { session_id, timeout_ms, applied };
        match self.link.call_retrying(request, REVALIDATE_WAIT).await? {
            None => {
                self.core.own_term_applied(REVALIDATE_WAIT).await?;
                Ok(self.core.attach_session(self.node_id(), session_id, timeout_ms))
            }
            Some(Response::Revalidate(Ok(valid))) => Ok(valid),
            Some(Response::Revalidate(Err(e))) => Err(e.into()),
            Some(_) => Err(ConsensusError::OutcomeUnknown { leader: None }),
        }
    }
}
