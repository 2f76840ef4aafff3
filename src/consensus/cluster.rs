//! Forming the ensemble from the configuration, and knowing when this node is ready.
//!
//! * **Bootstrap**: a fresh cluster must be initialized by exactly one node. Roost picks
//!   the participant with the lowest id; it waits until it can reach a quorum of the
//!   configured voters, checks that none of them is initialized already (a node that lost
//!   its disk must not found a second cluster), and then initializes the membership with
//!   every participant as a voter. Every other node just waits to be contacted by a
//!   leader. A node with any raft state on disk never initializes again.
//! * **Observers** become non-voting learners: the leader adds the members of the
//!   current configuration that the membership lacks (the application's reconciler,
//!   `crate::reconfig`, drives this through `Consensus::add_learner`).
//! * **Readiness**: a node is ready to serve clients once it knows a leader and has
//!   applied everything the leader had committed when asked (a read index round trip).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::errors::{InitializeError, RaftError};
use tokio::sync::watch;

use super::network::Peers;
use super::types::{NodeId, RaftPeer};
use super::wire::{Request, Response};
use super::{ConsensusError, Member, RaftHandle};

/// Pause between bootstrap attempts and between readiness attempts.
const RETRY: Duration = Duration::from_millis(100);
/// How long a bootstrap probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

fn peer_map<'a>(members: impl Iterator<Item = &'a Member>) -> BTreeMap<NodeId, RaftPeer> {
    members.map(|m| (m.id, RaftPeer { raft_addr: m.raft_addr.clone() })).collect()
}

/// The node that initializes a fresh cluster: the lowest voter id.
pub fn initializer(members: &[Member]) -> Option<NodeId> {
    members.iter().filter(|m| m.voter).map(|m| m.id).min()
}

/// Initializes a fresh cluster if this node is the designated initializer; returns
/// once initialization happened here or is known not to be this node's job.
pub async fn bootstrap(raft: RaftHandle, peers: Arc<Peers>, me: NodeId, members: Vec<Member>) {
    if initializer(&members) != Some(me) {
        return;
    }
    let voters: Vec<&Member> = members.iter().filter(|m| m.voter).collect();
    let quorum = voters.len() / 2 + 1;
    loop {
        match raft.is_initialized().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(_) => return, // raft stopped
        }
        let mut reachable = 1; // this node
        let mut someone_initialized = false;
        for m in voters.iter().filter(|m| m.id != me) {
            let conn = peers.conn(m.id, &m.raft_addr);
            if let Ok(Response::Probe { initialized }) = conn.call(Request::Probe, PROBE_TIMEOUT).await {
                reachable += 1;
                someone_initialized |= initialized;
            }
        }
        if someone_initialized {
            tracing::info!("a peer already holds cluster state; waiting to be contacted by its leader");
            return;
        }
        if reachable >= quorum {
            tracing::info!(voters = voters.len(), reachable, "initializing the ensemble");
            match raft.initialize(peer_map(voters.iter().copied())).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => return,
                Err(e) => tracing::warn!(error = %e, "initialization failed; retrying"),
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Marks `ready` once `barrier` succeeds (retrying until it does).
pub async fn become_ready<F, Fut>(ready: watch::Sender<bool>, barrier: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), ConsensusError>>,
{
    loop {
        match barrier().await {
            Ok(()) => {
                let _ = ready.send(true);
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "not ready yet");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u64, voter: bool) -> Member {
        Member { id, raft_addr: format!("127.0.0.1:{}", 3000 + id), voter }
    }

    #[test]
    fn the_lowest_participant_initializes() {
        assert_eq!(initializer(&[m(3, true), m(1, false), m(2, true)]), Some(2));
        assert_eq!(initializer(&[m(1, false)]), None);
        let map = peer_map([m(1, true), m(2, true)].iter());
        assert_eq!(map.len(), 2);
        assert_eq!(map[&2].raft_addr, "127.0.0.1:3002");
    }
}
