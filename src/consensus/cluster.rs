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
//! * **Restart**: a restarted ensemble has no leader until some member's election
//!   timeout runs out (0.25-0.5 s after its start). Instead, each restarted voter polls
//!   the others' last log index; once a quorum answers, the one with the longest log
//!   (lowest id on a tie) campaigns at once. Pre-vote keeps this harmless when a leader
//!   is alive: the voters still hold its lease and refuse. The election timeout stays
//!   the fallback.
//! * **Readiness**: a node is ready to serve clients once it knows a leader and has
//!   applied everything the leader had committed when asked (a read index round trip).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{InitializeError, RaftError};
use openraft::ServerState;
use tokio::sync::watch;

use super::network::Peers;
use super::types::{NodeId, RaftPeer};
use super::wire::{Request, Response};
use super::{ConsensusError, Core, Member, RaftHandle};

/// Pause between bootstrap attempts and between readiness attempts.
const RETRY: Duration = Duration::from_millis(100);
/// How long a bootstrap probe may take at first (it doubles after each miss, up to
/// `STARTUP_WAIT_MAX`, so that a slow network still forms the ensemble).
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
    let mut probe_timeout = PROBE_TIMEOUT;
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
            if let Ok(Response::Probe { initialized }) = conn.call(Request::Probe, probe_timeout).await {
                reachable += 1;
                someone_initialized |= initialized;
            }
        }
        if someone_initialized {
            tracing::info!("a peer already holds cluster state; waiting to be contacted by its leader");
            return;
        }
        if reachable < quorum {
            probe_timeout = doubled(probe_timeout);
        } else {
            tracing::info!(voters = voters.len(), reachable, "initializing the ensemble");
            match raft.initialize(peer_map(voters.iter().copied())).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => return,
                Err(e) => tracing::warn!(error = %e, "initialization failed; retrying"),
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// How often a restarted voter looks for a quorum to campaign with, and how long one
/// `LastLog` poll may take at first.
const STARTUP_POLL: Duration = Duration::from_millis(20);
const LAST_LOG_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a startup campaign may take before the node tries again, at first.
const CAMPAIGN_RETRY: Duration = Duration::from_millis(300);
/// The longest either wait grows to. Both double after each miss: on a loaded machine
/// (fsyncs of votes queued behind other disks' work) a campaign retried every 300 ms
/// restarted itself in a new term before any vote of the last one came back, for ever.
const STARTUP_WAIT_MAX: Duration = Duration::from_secs(5);

/// The next wait after a miss: twice `wait`, at most `STARTUP_WAIT_MAX`.
fn doubled(wait: Duration) -> Duration {
    (wait * 2).min(STARTUP_WAIT_MAX)
}
/// How long after its start a voter keeps looking for a quorum to campaign with (peers
/// holding large snapshots take a while to load them).
pub const STARTUP_CAMPAIGN_WINDOW: Duration = Duration::from_secs(60);

/// What one round of the startup campaign does, from this node's state.
#[derive(Debug, PartialEq, Eq)]
enum StartupRound {
    /// A leader reached this node, or it leads, or raft stopped: nothing left to do.
    Stop,
    /// Nothing to campaign for yet; look again shortly.
    Wait,
    /// A voter without a leader: poll the others' logs and campaign if this one is best.
    Poll,
}

fn startup_round(state: ServerState, voter: bool, heard_from_leader: bool) -> StartupRound {
    if heard_from_leader || matches!(state, ServerState::Leader | ServerState::Shutdown) {
        return StartupRound::Stop;
    }
    // openraft starts every node as a learner with an empty membership and makes a voter a
    // follower only once its core has loaded the log, a moment after `Raft::new` returned:
    // a restarted voter seen that early must wait, not give up (it then waited for its
    // election timeout, a minute in the test that caught it). An observer also waits, and
    // stops at the window's end.
    if state == ServerState::Learner || !voter {
        return StartupRound::Wait;
    }
    StartupRound::Poll
}

/// Campaigns right away once a quorum of voters is up, if this node's log is the most
/// up to date of those that answered (see the module docs), and again while no election
/// succeeds. Gives up after `give_up`, or once a leader has reached this node or this node
/// leads (see [`startup_round`]).
pub async fn campaign_at_startup(core: Arc<Core>, give_up: Duration) {
    let (raft, peers) = (&core.raft, &core.peers);
    // The vote restored from disk may name a leader; only contact from one counts.
    let heard_from_leader = || core.leader_contact.lock().is_some();
    let deadline = tokio::time::Instant::now() + give_up;
    // Answered by raft's core once it has loaded its state. A fresh node has nothing to
    // campaign for: the initializer's bootstrap elects the first leader.
    if !matches!(raft.is_initialized().await, Ok(true)) {
        return;
    }
    let (mut poll_timeout, mut campaign_wait) = (LAST_LOG_TIMEOUT, CAMPAIGN_RETRY);
    while tokio::time::Instant::now() < deadline {
        let round = {
            let metrics = raft.metrics();
            let m = metrics.borrow_watched();
            let membership = m.membership_config.membership();
            let voter = membership.voter_ids().any(|id| id == m.id);
            match startup_round(m.state, voter, heard_from_leader()) {
                StartupRound::Stop => return,
                StartupRound::Wait => None,
                StartupRound::Poll => {
                    let others: Vec<(NodeId, String)> = membership
                        .voter_ids()
                        .filter(|id| *id != m.id)
                        .filter_map(|id| membership.get_node(&id).map(|n| (id, n.raft_addr.clone())))
                        .collect();
                    Some((m.id, m.last_log_index, others))
                }
            }
        };
        let Some((me, my_log, others)) = round else {
            tokio::time::sleep(STARTUP_POLL).await;
            continue;
        };
        let voters = others.len() + 1;
        let quorum = voters / 2 + 1;
        let polls = others.iter().map(|(id, addr)| {
            let conn = peers.conn(*id, addr);
            async move { (*id, conn.call(Request::LastLog, poll_timeout).await) }
        });
        let mut reachable = 1; // this node
        let mut best = true;
        for (id, answer) in futures::future::join_all(polls).await {
            if let Ok(Response::LastLog(theirs)) = answer {
                reachable += 1;
                if (theirs, std::cmp::Reverse(id)) > (my_log, std::cmp::Reverse(me)) {
                    best = false;
                }
            }
        }
        if reachable < quorum {
            poll_timeout = doubled(poll_timeout);
        }
        if reachable >= quorum && best && !heard_from_leader() {
            tracing::info!(
                reachable,
                wait_ms = campaign_wait.as_millis() as u64,
                "a quorum is up after restart; campaigning"
            );
            if raft.trigger().elect(true).await.is_err() {
                return; // raft stopped
            }
            // Give the election time to finish before judging it failed.
            let settled = tokio::time::Instant::now() + campaign_wait;
            while tokio::time::Instant::now() < settled
                && !heard_from_leader()
                && !raft.metrics().borrow_watched().state.is_leader()
            {
                tokio::time::sleep(STARTUP_POLL).await;
            }
            campaign_wait = doubled(campaign_wait);
            continue;
        }
        tokio::time::sleep(STARTUP_POLL).await;
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
    fn a_voter_still_loading_its_state_waits_for_the_startup_campaign() {
        use ServerState::*;
        // Seen before openraft's core finished its startup: a learner, maybe with no membership.
        assert_eq!(startup_round(Learner, false, false), StartupRound::Wait);
        assert_eq!(startup_round(Learner, true, false), StartupRound::Wait);
        assert_eq!(startup_round(Follower, false, false), StartupRound::Wait);
        assert_eq!(startup_round(Follower, true, false), StartupRound::Poll);
        assert_eq!(startup_round(Candidate, true, false), StartupRound::Poll);
        assert_eq!(startup_round(Follower, true, true), StartupRound::Stop);
        assert_eq!(startup_round(Learner, false, true), StartupRound::Stop);
        assert_eq!(startup_round(Leader, true, false), StartupRound::Stop);
        assert_eq!(startup_round(Shutdown, true, false), StartupRound::Stop);
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
