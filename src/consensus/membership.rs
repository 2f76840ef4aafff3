//! Membership changes: the consensus half of ZooKeeper's `reconfig`.
//!
//! What a reconfig *means* (the server lines, who may run it, what the new configuration
//! text is) is decided by the application's [`ReconfigHandler`], which runs on the leader
//! only. This module carries a client's [`ReconfigCall`] there (directly, or from a
//! follower over the quorum port like forwarded writes), and offers the raft primitives
//! the handler drives: adding learners, replacing the voter set (openraft's joint
//! consensus), removing nodes, and the leader's view of which members are in sync.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, RaftError};
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};

use super::error::ConsensusError;
use super::forward::call_error;
use super::types::{NodeId, RaftPeer, TypeConfig};
use super::wire::{Committed, RemoteError, Request, Response};
use super::{Consensus, Core};
use crate::proto::types::Id;
use crate::tree::txn::{Txn, TxnOutcome};

/// How long a follower waits for the leader to finish a reconfig (it may wait for a
/// joining server to catch up and for two membership entries to commit).
const RECONFIG_RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// A client's reconfig request as it travels to the leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconfigCall {
    pub session_id: i64,
    /// The caller's identities, for the permission check.
    pub auth: Vec<Id>,
    pub joining: Option<String>,
    pub leaving: Option<String>,
    pub new_members: Option<String>,
    /// The configuration version the caller expects (-1: any).
    pub cur_config_id: i64,
}

/// Runs a reconfig on the leader. `Ok` carries the outcome the client gets: a refusal
/// (BadVersion, NoAuth...) is an `Err` code with index 0, meaning nothing was written;
/// otherwise the index of the entry that installed the new configuration.
pub type ReconfigHandler =
    Arc<dyn Fn(ReconfigCall) -> Pin<Box<dyn Future<Output = Result<Committed, ConsensusError>> + Send>> + Send + Sync>;

/// The current raft membership as the application needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MembershipView {
    pub voters: BTreeSet<NodeId>,
    /// Every member (voters and learners) with its raft address.
    pub nodes: BTreeMap<NodeId, String>,
    /// A joint configuration (a change is half done).
    pub joint: bool,
}

impl Core {
    /// Runs `call`, received by member `from`, with the installed handler (this node is
    /// expected to lead). A session that moved to another member gets `SessionMoved`.
    pub(super) async fn reconfig_here(&self, from: NodeId, call: ReconfigCall) -> Result<Committed, ConsensusError> {
        if self.session_moved_from(from, call.session_id) {
            return Ok(super::owners::session_moved());
        }
        let handler = self.reconfig_handler.read().clone();
        match handler {
            Some(handler) => handler(call).await,
            None => Err(ConsensusError::Membership("reconfig is not available on this server".into())),
        }
    }
}

fn membership_error(e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> ConsensusError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ConsensusError::NotLeader { leader: f.leader_id },
        RaftError::APIError(other) => ConsensusError::Membership(other.to_string()),
        RaftError::Fatal(f) => f.into(),
    }
}

impl Consensus {
    /// Installs the application's reconfig handler (called on the leader).
    pub fn set_reconfig_handler(&self, handler: ReconfigHandler) {
        *self.core.reconfig_handler.write() = Some(handler);
    }

    /// Runs a client's reconfig on the leader (here or remote) and, once the new
    /// configuration is applied on this node, returns the outcome for the client.
    pub async fn reconfig(&self, call: ReconfigCall) -> Result<TxnOutcome, ConsensusError> {
        let committed = match self.link.send(Request::Reconfig(call.clone())).await? {
            None => self.core.reconfig_here(self.node_id(), call).await?,
            Some(pending) => match pending.wait(RECONFIG_RPC_TIMEOUT).await.map_err(call_error)? {
                Response::Reconfig(Ok(committed)) => {
                    self.link.wait_applied(committed.index, self.link.rpc_timeout).await?;
                    committed
                }
                Response::Reconfig(Err(e)) => return Err(e.into()),
                _ => return Err(ConsensusError::OutcomeUnknown { leader: None }),
            },
        };
        Ok(committed.outcome)
    }

    /// Like [`Consensus::propose`], also returning the index of the entry that carried
    /// the txn. Only for the leader: a follower's forwarded txn reports the leader's index.
    pub async fn propose_committed(&self, txn: Txn) -> Result<Committed, ConsensusError> {
        self.enqueue(txn).await?.await.map_err(|_| ConsensusError::Stopped)?
    }

    /// The raft membership as this node knows it.
    pub fn membership(&self) -> MembershipView {
        let metrics = self.core.raft.metrics();
        let m = metrics.borrow_watched();
        let membership = m.membership_config.membership();
        MembershipView {
            voters: membership.voter_ids().collect(),
            nodes: membership.nodes().map(|(id, n)| (*id, n.raft_addr.clone())).collect(),
            joint: membership.get_joint_config().len() > 1,
        }
    }

    /// Members that are in sync with this leader: itself and every member that
    /// acknowledged it within an election timeout.
    pub fn synced_members(&self) -> BTreeSet<NodeId> {
        let status = self.metrics();
        let mut synced: BTreeSet<NodeId> = status.followers.iter().filter(|f| f.synced).map(|f| f.id).collect();
        if self.is_leader() {
            synced.insert(self.node_id());
        }
        synced
    }

    /// Waits until each of `ids` has replicated the leader's log as it is now (or
    /// `timeout` passes); returns those that did.
    pub async fn wait_caught_up(&self, ids: &BTreeSet<NodeId>, timeout: Duration) -> BTreeSet<NodeId> {
        let target = self.metrics().last_log_index;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let done: BTreeSet<NodeId> = self
                .metrics()
                .followers
                .iter()
                .filter(|f| ids.contains(&f.id) && f.matched >= target)
                .map(|f| f.id)
                .collect();
            if done.len() == ids.len() || tokio::time::Instant::now() >= deadline {
                return done;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Adds (or re-adds with a new address) a non-voting member. With `catch_up` it
    /// returns once the learner has replicated the log, or fails after `timeout`.
    pub async fn add_learner(
        &self,
        id: NodeId,
        raft_addr: String,
        catch_up: bool,
        timeout: Duration,
    ) -> Result<(), ConsensusError> {
        let add = self.core.raft.add_learner(id, RaftPeer { raft_addr }, catch_up);
        match tokio::time::timeout(timeout, add).await {
            Ok(result) => result.map(|_| ()).map_err(membership_error),
            Err(_) => Err(ConsensusError::Membership(format!("learner {id} did not catch up within {timeout:?}"))),
        }
    }

    /// Makes `voters` the voter set (through a joint configuration); voters not in it
    /// stay on as learners (ZooKeeper's removed servers keep following without a vote).
    /// Every new voter must already be a learner.
    pub async fn set_voters(&self, voters: BTreeSet<NodeId>, timeout: Duration) -> Result<(), ConsensusError> {
        self.change(ChangeMembers::ReplaceAllVoters(voters), true, timeout).await
    }

    /// Records new raft addresses of existing members (a reconfig moved their quorum port).
    pub async fn set_addresses(
        &self,
        addrs: BTreeMap<NodeId, String>,
        timeout: Duration,
    ) -> Result<(), ConsensusError> {
        let nodes = addrs.into_iter().map(|(id, raft_addr)| (id, RaftPeer { raft_addr })).collect();
        self.change(ChangeMembers::SetNodes(nodes), false, timeout).await
    }

    /// A leader that is no longer a voter (a reconfig removed it, and openraft lets a leader
    /// that stayed on as a learner keep leading) hands leadership to the most up-to-date
    /// voter, as ZooKeeper's removed leader does; it then follows as a learner. Returns
    /// the voter it asked to take over, if it had to.
    pub async fn hand_over_if_not_voter(&self) -> Result<Option<NodeId>, ConsensusError> {
        let me = self.node_id();
        let view = self.membership();
        if !self.is_leader() || view.joint || view.voters.contains(&me) {
            return Ok(None);
        }
        let status = self.metrics();
        let Some(to) = status.followers.iter().filter(|f| f.voter).max_by_key(|f| f.matched).map(|f| f.id) else {
            return Ok(None);
        };
        self.core.raft.trigger().transfer_leader(to).await?;
        Ok(Some(to))
    }

    /// Removes learners from the group.
    pub async fn remove_learners(&self, ids: BTreeSet<NodeId>, timeout: Duration) -> Result<(), ConsensusError> {
        self.change(ChangeMembers::RemoveNodes(ids), false, timeout).await
    }

    /// Ends a joint configuration that nobody is finishing (its change was begun by a
    /// leader that has since lost office, or by a caller that gave up before the second
    /// step): the voters become the joint configuration's new set. Nothing to do when the
    /// configuration is uniform.
    pub async fn finish_joint(&self, timeout: Duration) -> Result<(), ConsensusError> {
        if !self.membership().joint {
            return Ok(());
        }
        // Adding no voters to a joint configuration is openraft's own second step: it
        // flattens the configuration to its newest half.
        self.change(ChangeMembers::AddVoterIds(BTreeSet::new()), true, timeout).await
    }

    /// Runs a membership change to its end on a task of its own: openraft's change is two
    /// entries (joint, then uniform) proposed one after the other by the caller's future,
    /// so a caller that stops waiting between them would leave the group in the joint
    /// configuration for good. `timeout` only bounds the wait.
    async fn change(
        &self,
        change: ChangeMembers<NodeId, RaftPeer>,
        retain: bool,
        timeout: Duration,
    ) -> Result<(), ConsensusError> {
        let raft = self.core.raft.clone();
        let task = tokio::spawn(async move { raft.change_membership(change, retain).await });
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(result)) => result.map(|_| ()).map_err(membership_error),
            Ok(Err(_)) => Err(ConsensusError::Stopped),
            Err(_) => Err(ConsensusError::Membership(format!("membership change did not commit within {timeout:?}"))),
        }
    }
}

/// Serves a reconfig forwarded by member `from`.
pub(super) async fn serve_forwarded(core: &Core, from: NodeId, call: ReconfigCall) -> Response {
    if !core.raft.is_leader() {
        let leader = core.raft.metrics().borrow_watched().current_leader;
        return Response::Reconfig(Err(RemoteError::NotLeader { leader }));
    }
    Response::Reconfig(core.reconfig_here(from, call).await.map_err(|e| RemoteError::from(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::wire::{encode_frame, read_value, RequestFrame, ResponseFrame};
    use crate::tree::txn::OpResult;

    #[tokio::test]
    async fn reconfig_frames_round_trip() {
        let call = ReconfigCall {
            session_id: 5,
            auth: vec![Id::new("super", "")],
            joining: Some("server.4=h:1:2;3".into()),
            leaving: None,
            new_members: None,
            cur_config_id: -1,
        };
        let bytes = encode_frame(&RequestFrame { id: 3, body: Request::Reconfig(call.clone()) }).unwrap();
        let back: RequestFrame = read_value(&mut bytes.as_slice()).await.unwrap();
        assert!(matches!(back.body, Request::Reconfig(c) if c == call));

        let outcome = TxnOutcome {
            zxid: 9,
            result: Ok(OpResult::Config { data: b"version=9".to_vec(), stat: Default::default() }),
        };
        let resp = Response::Reconfig(Ok(Committed { index: 12, outcome: outcome.clone() }));
        let bytes = encode_frame(&ResponseFrame { id: 3, body: resp }).unwrap();
        let back: ResponseFrame = read_value(&mut bytes.as_slice()).await.unwrap();
        assert!(matches!(back.body, Response::Reconfig(Ok(c)) if c.index == 12 && c.outcome == outcome));
    }
}
