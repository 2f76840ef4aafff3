//! Proposal batching: concurrent `propose` calls become one log entry.
//!
//! Every entry costs an fsync (on the leader and on each follower), so the batcher task
//! collects the proposals that queued up into one [`TxnBatch`] (at most `max_batch`
//! txns and about [`MAX_BATCH_BYTES`]) and submits it. Batches are *submitted* strictly
//! in queue order — a connection's pipelined writes keep their order in the log — but at most [`MAX_INFLIGHT_BATCHES`] wait for
//! their commit at a time; while they do, new proposals accumulate into the next batch.
//! Each caller gets the outcome at its own position in the batch, once the entry is
//! committed and applied locally.
//!
//! On a node that is not the leader, the batch is handed to the [`Forwarder`] instead,
//! which sends it to the leader over the raft connection (in queue order as well).
//! Proposals that arrived *from* a follower are never forwarded again: if this node is no
//! longer the leader they fail with `NotLeader`.
//!
//! On the leader, a client write whose session is owned by another member than the one
//! that received it is answered `SessionMoved` here and left out of the entry (see
//! [`super::owners`]); every other proposal keeps its place.

use std::sync::Arc;

use openraft::async_runtime::WatchReceiver;
use openraft::impls::ProgressResponder;
use openraft::raft::ClientWriteResult;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::commit_notice::CommitNotices;
use super::error::ConsensusError;
use super::forward::Forwarder;
use super::owners::{session_moved, OwnerGate, OwnershipSlot};
use super::types::{txn_bytes, LogBatch, NodeId, TypeConfig};
use super::wire::Committed;
use super::RaftHandle;
use crate::tree::txn::{Txn, TxnBatch, TxnOp};

/// Batches that may wait for commit concurrently. More overlaps disk and network
/// latency; fewer makes batches larger.
pub const MAX_INFLIGHT_BATCHES: usize = 4;

/// Most txn bytes (estimated, see [`txn_bytes`]) in one batch; a single larger txn
/// still gets an entry of its own. Keeps entries, forwarded batches and append
/// requests of large znodes well within a frame.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

pub type Reply = oneshot::Sender<Result<Committed, ConsensusError>>;

/// One queued `propose` call.
pub struct Proposal {
    pub txn: Txn,
    pub reply: Reply,
    /// The member that received it from its client, when that is another member (a
    /// forwarded txn: order it here or fail, never forward it on); `None`: this node.
    pub from: Option<NodeId>,
    /// For a forwarded txn, the term the follower sent it in: it is appended in that term
    /// or refused (`TermPassed`), never carried into a later one (see
    /// `wire::Request::ForwardInTerm`). `None`: no such promise (local, or an older peer).
    pub sent_term: Option<u64>,
}

/// Runs until the proposal channel closes (all `Consensus` handles dropped) or the task
/// is aborted by `Consensus::shutdown`.
pub async fn run(
    raft: RaftHandle,
    mut proposals: mpsc::Receiver<Proposal>,
    max_batch: usize,
    forwarder: Forwarder,
    ownership: Arc<OwnershipSlot>,
    notices: Arc<CommitNotices>,
) {
    let inflight = Arc::new(Semaphore::new(MAX_INFLIGHT_BATCHES));
    let max_batch = max_batch.max(1);
    // A proposal that did not fit into the previous batch; it starts the next one.
    let mut carry: Option<Proposal> = None;
    loop {
        // Wait for a free slot *before* taking proposals, so they queue up meanwhile.
        let Ok(permit) = inflight.clone().acquire_owned().await else { return };
        let first = match carry.take() {
            Some(p) => p,
            None => match proposals.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut bytes = txn_bytes(&first.txn);
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match proposals.try_recv() {
                Ok(p) => {
                    let more = txn_bytes(&p.txn);
                    if bytes.saturating_add(more) > MAX_BATCH_BYTES {
                        carry = Some(p);
                        break;
                    }
                    bytes += more;
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        if raft.is_leader() {
            write_locally(&raft, batch, permit, &ownership, &notices).await;
            continue;
        }
        let leader = raft.metrics().borrow_watched().current_leader;
        // A forwarded txn is never forwarded again, and a session expiry is decided by the
        // leader that proposed it or not at all: a leader that stepped down while expiring
        // must not have its stale decisions carried out by its successor.
        let (refused, local): (Vec<_>, Vec<_>) = batch.into_iter().partition(|p| p.from.is_some() || is_expiry(&p.txn));
        fail_all(refused.into_iter().map(|p| p.reply).collect(), || ConsensusError::NotLeader { leader });
        if local.is_empty() {
            continue;
        }
        let (txns, replies): (Vec<Txn>, Vec<Reply>) = local.into_iter().map(|p| (p.txn, p.reply)).unzip();
        if let Some((txns, replies)) = forwarder.forward(txns, replies, permit).await {
            // This node became the leader while waiting: order the batch here.
            let permit = match inflight.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => return,
            };
            let batch =
                txns.into_iter().zip(replies).map(|(txn, reply)| Proposal { txn, reply, from: None, sent_term: None });
            write_locally(&raft, batch.collect(), permit, &ownership, &notices).await;
        }
    }
}

/// Longest a leader's batch waits for the leader's quorum lease.
const LEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Waits (at most [`LEASE_WAIT`]) while this node leads without a valid quorum lease.
/// openraft refuses writes then (`ForwardToLeader`, reason `LeaseExpired`), and it does so
/// for a new leader until a quorum has acknowledged it: a client that re-attached to the
/// new leader at once had its first write refused and its connection closed. A leader
/// whose lease ran out because it is cut off gets no further here: its writes still fail
/// after the wait, and it steps down.
async fn lease_established(raft: &RaftHandle) {
    let lease = std::time::Duration::from_millis(raft.config().election_timeout_max);
    let mut metrics = raft.metrics();
    let wait = async {
        loop {
            {
                let m = metrics.borrow_watched();
                let alone = m.membership_config.membership().voter_ids().count() <= 1;
                let acked = m.last_quorum_acked.as_ref().is_some_and(|t| openraft::Instant::elapsed(&**t) < lease);
                if alone || acked || m.state != openraft::ServerState::Leader {
                    return;
                }
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(LEASE_WAIT, wait).await;
}

/// A session expiry (or, as logs before `ExpireSession` have it, a close issued by the
/// server itself, session 0), not a client's close.
fn is_expiry(txn: &Txn) -> bool {
    matches!(txn.op, TxnOp::ExpireSession { .. })
        || (txn.session_id == 0 && matches!(txn.op, TxnOp::CloseSession { .. }))
}

/// Appends the batch as one entry of this (leader) node's log, after answering the
/// writes of moved sessions.
async fn write_locally(
    raft: &RaftHandle,
    batch: Vec<Proposal>,
    permit: OwnedSemaphorePermit,
    ownership: &OwnershipSlot,
    notices: &Arc<CommitNotices>,
) {
    lease_established(raft).await;
    let gate = OwnerGate::current(ownership, raft);
    // Read last, just before the append: the lease wait above can outlast an election
    // that this node loses and wins again, and a forwarded txn must not be carried into
    // a later term than the one its follower sent it in.
    let term = raft.metrics().borrow_watched().current_term;
    let mut txns = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    for p in batch {
        if let Some(sent_term) = p.sent_term.filter(|&t| t != term) {
            let _ = p.reply.send(Err(ConsensusError::TermPassed { sent_term, term }));
            continue;
        }
        if gate.as_ref().is_some_and(|g| g.moved(&p.txn, p.from)) {
            let _ = p.reply.send(Ok(session_moved()));
            continue;
        }
        txns.push(p.txn);
        replies.push(p.reply);
    }
    if txns.is_empty() {
        return;
    }
    let (responder, committed, done) = ProgressResponder::<TypeConfig, ClientWriteResult<TypeConfig>>::new();
    let entry = LogBatch::from(TxnBatch { txns });
    // Encoded here, in the batcher's task, once: the consensus task then only copies the
    // bytes into the WAL record and the followers' append requests. (A batch that cannot
    // be encoded fails its append below, where the error is reported.)
    let _ = entry.encoded();
    if let Err(fatal) = raft.client_write_ff(entry, Some(responder)).await {
        let err = ConsensusError::from(fatal);
        fail_all(replies, || err.duplicate());
        return;
    }
    let notices = notices.clone();
    tokio::spawn(async move {
        // Followers hear of the commit before the writers do (see `commit_notice`).
        if let Ok(log_id) = committed.await {
            notices.send(log_id).await;
        }
        let result = done.await;
        drop(permit);
        match result {
            Ok(result) => deliver(result, replies),
            // The responder was dropped: raft stopped before applying the entry.
            Err(_) => fail_all(replies, || ConsensusError::Stopped),
        }
    });
}

/// Hands each caller the outcome at its position.
fn deliver(result: ClientWriteResult<TypeConfig>, replies: Vec<Reply>) {
    match result {
        Ok(response) => {
            let index = response.log_id.index;
            let outcomes = response.data.outcomes;
            if outcomes.len() != replies.len() {
                let (expected, got) = (replies.len(), outcomes.len());
                fail_all(replies, || ConsensusError::OutcomeCountMismatch { expected, got });
                return;
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(Committed { index, outcome }));
            }
        }
        Err(e) => fail_all(replies, || ConsensusError::from(&e)),
    }
}

pub(crate) fn fail_all(replies: Vec<Reply>, make: impl Fn() -> ConsensusError) {
    for reply in replies {
        let _ = reply.send(Err(make()));
    }
}
