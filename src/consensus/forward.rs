//! The follower side of writes, `sync` and session touches: talking to the leader.
//!
//! A follower's batch of txns is sent to the leader as one `Forward` request on the
//! raft connection; the leader orders it through its own batcher and answers with each
//! txn's outcome and the log index of the entry that carried it. Before resolving a
//! proposal the follower waits until its *own* state machine has applied that index, so
//! a client's next read on this server sees its write and the watch events the write
//! triggered here were queued before the reply.
//!
//! Requests that could not be sent at all (no leader yet, leader not reachable) are
//! retried until `leader_wait` runs out. A batch is forwarded stamped with the term it is
//! sent in, and the leader appends it in that term or not at all. So a batch whose answer
//! was lost because another member became leader, or the same one in a later term, is
//! settled from this member's own log (see
//! [`super::in_flight`]): each txn the new leader committed is answered with its outcome,
//! the others fail with `NotCommitted`. Any other lost answer leaves the outcome unknown
//! (`OutcomeUnknown`).

use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::batcher::{fail_all, Reply};
use super::error::ConsensusError;
use super::in_flight::{Fate, InFlight, Registered};
use super::network::{CallError, PeerConn, Peers};
use super::types::NodeId;
use super::wire::{RemoteError, Request, Response};
use super::{types, RaftHandle};
use crate::tree::txn::Txn;

/// Pause between attempts to find or reach the leader.
const RETRY_PAUSE: Duration = Duration::from_millis(25);

/// Finds the leader's connection and waits for local apply progress.
#[derive(Clone)]
pub struct LeaderLink {
    raft: RaftHandle,
    peers: Arc<Peers>,
    applied: watch::Receiver<u64>,
    /// How long to wait for a leader to be known and reachable.
    pub leader_wait: Duration,
    /// How long a forwarded request may take once sent.
    pub rpc_timeout: Duration,
}

/// Where a request for the leader should go.
pub enum Route {
    /// This node is the leader.
    Local,
    Remote(Arc<PeerConn>),
}

impl LeaderLink {
    pub fn new(raft: RaftHandle, peers: Arc<Peers>, applied: watch::Receiver<u64>) -> Self {
        LeaderLink { raft, peers, applied, leader_wait: Duration::from_secs(5), rpc_timeout: Duration::from_secs(10) }
    }

    fn current_leader(&self) -> Option<(NodeId, Option<String>)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let leader = m.current_leader?;
        let addr =
            m.membership_config.membership().nodes().find(|(id, _)| **id == leader).map(|(_, n)| n.raft_addr.clone());
        Some((leader, addr))
    }

    /// The route to the current leader, waiting until `deadline` for one to be known.
    pub async fn route(&self, deadline: Instant) -> Result<Route, ConsensusError> {
        loop {
            if self.raft.is_leader() {
                return Ok(Route::Local);
            }
            match self.current_leader() {
                Some((leader, _)) if leader == *self.raft.node_id() => {}
                Some((leader, Some(addr))) => return Ok(Route::Remote(self.peers.conn(leader, &addr))),
                Some((leader, None)) => {
                    if let Some(conn) = self.peers.get(leader) {
                        return Ok(Route::Remote(conn));
                    }
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(ConsensusError::NotLeader { leader: None });
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Sends `body` to the leader, retrying while it could not be sent, until the
    /// leader wait runs out. `Ok(None)` means this node is the leader.
    pub async fn send(&self, body: Request) -> Result<Option<super::network::PendingCall>, ConsensusError> {
        Ok(self.send_in_term(|_| body.clone()).await?.map(|(pending, _)| pending))
    }

    /// Like [`send`](Self::send), with the request made for the term this member is in
    /// at each attempt; returns that term with the call.
    async fn send_in_term(
        &self,
        body: impl Fn(u64) -> Request,
    ) -> Result<Option<(super::network::PendingCall, u64)>, ConsensusError> {
        let deadline = Instant::now() + self.leader_wait;
        loop {
            let conn = match self.route(deadline).await? {
                Route::Local => return Ok(None),
                Route::Remote(conn) => conn,
            };
            let target = conn.target();
            let term = self.current_term();
            let sent = tokio::select! {
                biased;
                sent = conn.send(body(term)) => sent,
                // Still dialling a leader another member has replaced: a frozen leader's held
                // link takes the whole connect timeout (1 s), and the simulator saw writes
                // through a follower wait that long after a new leader (seed 14987). Dropping
                // the send is safe: `Conn::send` queues nothing before its dial completes, and
                // `biased` polls it first, so a send that completed is never dropped.
                () = self.leader_moved_from(target) => continue,
            };
            match sent {
                Ok(pending) => return Ok(Some((pending, term))),
                Err(e) if e.not_sent() && Instant::now() < deadline => {
                    tracing::debug!(error = %e, "leader not reachable yet; retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(_) => return Err(ConsensusError::LeaderUnreachable { leader: conn.target() }),
            }
        }
    }

    /// Sends a request that may safely be carried out twice (a read index, a session
    /// revalidation) to the leader and waits up to `timeout` for the answer. When the call
    /// is lost, because the connection failed or another member became leader meanwhile,
    /// it goes again to whoever leads then: a frozen or cut-off leader held `sync` for the
    /// whole timeout (and every request queued behind it on the client's connection).
    /// `Ok(None)`: this node is the leader.
    pub async fn call_retrying(&self, body: Request, timeout: Duration) -> Result<Option<Response>, ConsensusError> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(pending) = self.send(body.clone()).await? else { return Ok(None) };
            let target = pending.target();
            let left = deadline.saturating_duration_since(Instant::now());
            match pending.wait_or(left, self.leader_moved_from(target)).await {
                Ok(response) => return Ok(Some(response)),
                Err(CallError::Lost { .. }) if Instant::now() + RETRY_PAUSE < deadline => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => return Err(call_error(e)),
            }
        }
    }

    /// Resolves once another member than `target` is known as the leader: a request sent
    /// to `target` will then not be answered in time (a frozen or deposed leader), so
    /// waiting for it only holds a batcher slot (writes through this member stalled until
    /// the 10 s timeout while a new leader was elected in about one second).
    pub async fn leader_moved_from(&self, target: NodeId) {
        self.leader_moved_on(target, u64::MAX).await
    }

    /// Like [`leader_moved_from`](Self::leader_moved_from), and also resolves once
    /// `target` leads again in a term after `term` (it crashed or was cut off and won the
    /// next election): a forward stamped with `term` will not be appended any more.
    async fn leader_moved_on(&self, target: NodeId, term: u64) {
        let mut metrics = self.raft.metrics();
        loop {
            let moved = {
                let m = metrics.borrow_watched();
                m.current_leader.is_some_and(|leader| leader != target || m.current_term > term)
            };
            if moved {
                return;
            }
            if metrics.changed().await.is_err() {
                // Raft stopped: the request's own timeout decides.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The current term as this member knows it.
    fn current_term(&self) -> u64 {
        self.raft.metrics().borrow_watched().current_term
    }

    /// Waits up to `timeout` until this member has applied an entry of a term after
    /// `sent_term`. A txn forwarded with `sent_term` is appended in that term or never
    /// (`Request::ForwardInTerm`), and once an entry of a later term is committed, every
    /// entry of `sent_term` that will ever commit lies before it in the log. So a txn this
    /// member has not applied by then never will be, whoever leads now (the same leader
    /// in a new term too).
    async fn newer_term_applied(&self, sent_term: u64, timeout: Duration) -> bool {
        let mut metrics = self.raft.metrics();
        let deadline = Instant::now() + timeout;
        loop {
            let settled = {
                let m = metrics.borrow_watched();
                m.last_applied.as_ref().is_some_and(|applied| types::term_of(applied) > sent_term)
            };
            if settled {
                return true;
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return false,
            }
        }
    }

    /// Waits until the local state machine applied `index` (or `timeout` passes).
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), ConsensusError> {
        let mut rx = self.applied.clone();
        let waited =
            tokio::time::timeout(timeout, rx.wait_for(|&applied| applied >= index)).await.map(|r| r.map(|_| ()));
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ConsensusError::Stopped),
            Err(_) => Err(ConsensusError::ApplyTimeout { index }),
        }
    }
}

/// A lost or timed-out request may have been carried out: its outcome is unknown.
pub fn call_error(e: CallError) -> ConsensusError {
    match e {
        CallError::NotSent { target, .. } => ConsensusError::LeaderUnreachable { leader: target },
        CallError::Remote { error, .. } => error.into(),
        CallError::Lost { target } | CallError::Timeout { target, .. } | CallError::Protocol { target } => {
            ConsensusError::OutcomeUnknown { leader: Some(target) }
        }
    }
}

/// Forwards follower batches to the leader.
#[derive(Clone)]
pub struct Forwarder {
    pub link: LeaderLink,
    /// Forwarded txns not answered yet, which the state machine reports applied.
    pub in_flight: Arc<InFlight>,
}

impl Forwarder {
    /// Sends the batch to the leader (returning once it is queued on the connection, so
    /// later batches stay behind it) and resolves the replies in the background. Returns
    /// the batch back when this node turned out to be the leader itself.
    pub async fn forward(
        &self,
        txns: Vec<Txn>,
        replies: Vec<Reply>,
        permit: OwnedSemaphorePermit,
    ) -> Option<(Vec<Txn>, Vec<Reply>)> {
        let count = txns.len();
        // Registered before it is sent: this member may apply it before the answer comes.
        let registered = self.in_flight.register(txns.clone());
        let sent = self.link.send_in_term(|term| Request::ForwardInTerm { term, txns: txns.clone() }).await;
        let (pending, sent_term) = match sent {
            Ok(Some(p)) => p,
            Ok(None) => {
                return Some((self.in_flight.take(&registered).into_iter().map(|(txn, _)| txn).collect(), replies))
            }
            Err(e) => {
                self.in_flight.take(&registered);
                fail_all(replies, || e.duplicate());
                return None;
            }
        };
        let (link, in_flight) = (self.link.clone(), self.in_flight.clone());
        tokio::spawn(async move {
            let target = pending.target();
            let result = pending.wait_or(link.rpc_timeout, link.leader_moved_on(target, sent_term)).await;
            drop(permit);
            let (results, txns) = match result {
                Ok(Response::Forward(results)) if results.len() == count => {
                    let txns: Vec<Txn> = in_flight.take(&registered).into_iter().map(|(txn, _)| txn).collect();
                    (results, txns)
                }
                Ok(Response::Forward(results)) => {
                    in_flight.take(&registered);
                    let got = results.len();
                    fail_all(replies, || ConsensusError::OutcomeCountMismatch { expected: count, got });
                    return;
                }
                Ok(_) => {
                    in_flight.take(&registered);
                    fail_all(replies, || ConsensusError::OutcomeUnknown { leader: None });
                    return;
                }
                Err(e @ (CallError::Lost { .. } | CallError::Timeout { .. })) => {
                    // No answer is coming (a new leader elsewhere, or the connection broke):
                    // what the new leader committed is in this member's log.
                    settle_from_log(&link, &in_flight, registered, replies, target, sent_term, e).await;
                    return;
                }
                Err(e) => {
                    in_flight.take(&registered);
                    let e = call_error(e);
                    fail_all(replies, || e.duplicate());
                    return;
                }
            };
            let top = results.iter().filter_map(|r| r.as_ref().ok().map(|c| c.index)).max().unwrap_or(0);
            let waited = link.wait_applied(top, link.rpc_timeout).await;
            // The registered txns, in order; `None` past them, so that no reply is dropped.
            let txns = txns.into_iter().map(Some).chain(std::iter::repeat_with(|| None));
            for ((reply, result), txn) in replies.into_iter().zip(results).zip(txns) {
                let outcome = match (&waited, result) {
                    (Ok(()), Ok(committed)) => Ok(committed),
                    (Err(_), Ok(committed)) => Err(ConsensusError::ApplyTimeout { index: committed.index }),
                    (_, Err(remote)) => match (remote, txn) {
                        // Refused before it was appended: its connection may submit it again.
                        (RemoteError::TermPassed { .. }, Some(txn)) => {
                            Err(ConsensusError::NotCommitted { leader: target, txn: Box::new(txn) })
                        }
                        (remote, _) => Err(remote.into()),
                    },
                };
                let _ = reply.send(outcome);
            }
        });
        None
    }
}

/// Answers a forwarded batch whose leader `target` will not answer, from this member's own
/// log: once an entry of a newer leader's term is applied here, each txn is either applied
/// already (its outcome is known) or will never be (`NotCommitted`, with the txn, which its
/// connection may submit again). If no newer leader
/// shows up within the leader wait, the outcome stays unknown (`cause`). Before this, every
/// writer on a follower lost its connection at each leader change, and a client that
/// reconnected to the frozen leader waited out its connect timeout.
async fn settle_from_log(
    link: &LeaderLink,
    in_flight: &InFlight,
    registered: Registered,
    replies: Vec<Reply>,
    target: NodeId,
    sent_term: u64,
    cause: CallError,
) {
    let settled = link.newer_term_applied(sent_term, link.leader_wait).await;
    let fates = in_flight.take(&registered);
    if !settled {
        let e = call_error(cause);
        fail_all(replies, || e.duplicate());
        return;
    }
    in_flight.count_settled(&fates);
    for (reply, (txn, fate)) in replies.into_iter().zip(fates) {
        let outcome = match fate {
            Fate::Committed(committed) => Ok(committed),
            Fate::NotCommitted => Err(ConsensusError::NotCommitted { leader: target, txn: Box::new(txn) }),
            Fate::Unknown => Err(ConsensusError::OutcomeUnknown { leader: Some(target) }),
        };
        let _ = reply.send(outcome);
    }
}
