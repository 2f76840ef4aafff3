//! Fast failover after the leader's process dies.
//!
//! Raft alone makes a follower wait for its election timeout, and openraft's leader
//! lease then makes the other voters refuse any candidate until `election_timeout_max`
//! has passed since the leader's last heartbeat: with our timings that is 0.5-1 s of
//! write unavailability, where ZooKeeper (whose followers notice the leader's socket
//! closing) needs about 0.5 s.
//!
//! A process that dies leaves evidence a lease cannot: its connections close and its
//! quorum port refuses new ones. When the leader's connection to this follower closes,
//! we dial the leader's quorum port; if the dial is *refused*, nothing listens there
//! any more, so the leader is gone for good (a restarted process comes back as a
//! follower in a new term). The followers compare their logs (a `LastLog` call), the
//! most up-to-date one starts an election at once, and it marks its vote requests as if
//! the leader had handed over leadership: voters then grant them despite their lease
//! (openraft's `leadership_transfer` flag). Only one follower campaigning avoids split
//! votes, which would cost a full election timeout. Only a dial that is refused (or
//! accepted and at once reset, see [`refuses_connections`]) counts: a leader that is
//! slow, frozen or cut off by the network times out or stays connected instead, and for
//! it the ordinary election timeout and lease rules apply unchanged, so a partitioned
//! but live leader is never bypassed.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::net::TcpStream;
use openraft::async_runtime::WatchReceiver;
use openraft::ServerState;
use parking_lot::Mutex;
use tokio::io::AsyncReadExt;

use super::types::NodeId;
use super::wire::{Request, Response};
use super::Core;

/// How long the dial that tests the leader may take. A refusal is immediate; anything
/// slower is not the proof we are after.
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// Dials of the leader's port before it is taken to be alive, and the pause between them
/// (also how long a connected dial is watched for a reset).
const PROBE_ATTEMPTS: usize = 5;
const PROBE_GAP: Duration = Duration::from_millis(20);
/// How long a dead-leader mark stays valid if no new leader shows up.
const MARK_TTL: Duration = Duration::from_secs(5);

/// A leader this node has seen die, shared by the detector and the vote sender.
#[derive(Debug, Default)]
pub struct DeadLeader {
    mark: Mutex<Option<Mark>>,
}

#[derive(Debug, Clone, Copy)]
struct Mark {
    leader: NodeId,
    term: u64,
    at: tokio::time::Instant,
}

impl DeadLeader {
    /// True when a vote request of `term` may claim a leadership hand-over: the leader of
    /// an earlier term was seen dead moments ago.
    pub fn vouches_for(&self, term: u64) -> bool {
        self.mark.lock().is_some_and(|m| m.term < term && m.at.elapsed() < MARK_TTL)
    }

    fn set(&self, leader: NodeId, term: u64) {
        *self.mark.lock() = Some(Mark { leader, term, at: tokio::time::Instant::now() });
    }

    fn clear(&self, leader: NodeId) {
        let mut mark = self.mark.lock();
        if mark.is_some_and(|m| m.leader == leader) {
            *mark = None;
        }
    }
}

/// Called when the raft connection from `peer` to this node has closed. If `peer` is
/// our leader and its quorum port now refuses connections, the most up-to-date follower
/// campaigns at once.
pub async fn peer_disconnected(core: Arc<Core>, peer: NodeId) {
    let raft = &core.raft;
    let (me, term, my_log, addr, others) = {
        let metrics = raft.metrics();
        let m = metrics.borrow_watched();
        if m.state != ServerState::Follower || m.current_leader != Some(peer) {
            tracing::debug!(peer, state = ?m.state, leader = ?m.current_leader, "peer connection closed; not our leader");
            return;
        }
        let membership = m.membership_config.membership();
        let Some(addr) = membership.get_node(&peer).map(|n| n.raft_addr.clone()) else {
            return;
        };
        let others: Vec<(NodeId, String)> = membership
            .voter_ids()
            .filter(|id| *id != peer && *id != m.id)
            .filter_map(|id| membership.get_node(&id).map(|n| (id, n.raft_addr.clone())))
            .collect();
        (m.id, m.current_term, m.last_log_index, addr, others)
    };
    if !refuses_connections(&core.peers.dial_addr(peer, &addr)).await {
        tracing::debug!(leader = peer, "leader's connection closed but its quorum port still answers");
        return;
    }
    core.dead_leader.set(peer, term);
    // A candidate with a shorter log cannot win, and by voting for itself it would also
    // block the better one in that term: only the follower with the longest log (lowest
    // id on a tie) campaigns. Peers that do not answer in time do not count.
    let mut best = true;
    for (id, other_addr) in others {
        let conn = core.peers.conn(id, &other_addr);
        if let Ok(Response::LastLog(theirs)) = conn.call(Request::LastLog, PROBE_TIMEOUT).await {
            if (theirs, std::cmp::Reverse(id)) > (my_log, std::cmp::Reverse(me)) {
                best = false;
            }
        }
    }
    tracing::info!(leader = peer, term, campaign = best, "leader's quorum port refuses connections");
    let still_waiting = {
        let metrics = raft.metrics();
        let m = metrics.borrow_watched();
        m.current_term == term && m.current_leader == Some(peer) && m.state == ServerState::Follower
    };
    if best && still_waiting && raft.trigger().elect(false).await.is_err() {
        return; // raft stopped
    }
    // Keep the mark until another leader is known (or it expires), then drop it so that
    // later elections follow the ordinary lease rules.
    let mut metrics = raft.metrics();
    let new_leader = async {
        while metrics.borrow_watched().current_leader.is_none_or(|l| l == peer) {
            if metrics.changed().await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(MARK_TTL, new_leader).await;
    core.dead_leader.clear(peer);
}

/// True when nothing serves `addr` any more. A refused dial is the proof; but a process
/// being killed closes its connections before its listening socket, so a dial in that
/// moment can still be accepted by the kernel and is then reset. So a dial that
/// connects is watched briefly (a live roost peer waits silently for our hello; a dying
/// one resets or closes), and the probe is repeated a few times.
async fn refuses_connections(addr: &str) -> bool {
    for _ in 0..PROBE_ATTEMPTS {
        match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => return true,
            Ok(Ok(mut sock)) => {
                let mut byte = [0u8; 1];
                match tokio::time::timeout(PROBE_GAP, sock.read(&mut byte)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    _ => {}
                }
            }
            // Timed out or another error: not a proof either way.
            _ => {}
        }
        tokio::time::sleep(PROBE_GAP).await;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_vouches_only_for_later_terms_and_is_cleared_by_its_leader() {
        let dead = DeadLeader::default();
        assert!(!dead.vouches_for(5));
        dead.set(2, 4);
        assert!(dead.vouches_for(5));
        assert!(!dead.vouches_for(4), "the dead leader's own term is not vouched for");
        dead.clear(3);
        assert!(dead.vouches_for(5), "another node's leadership does not clear the mark");
        dead.clear(2);
        assert!(!dead.vouches_for(5));
    }

    #[tokio::test]
    async fn only_a_refused_dial_counts_as_death() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live = listener.local_addr().unwrap().to_string();
        assert!(!refuses_connections(&live).await);
        drop(listener);
        assert!(refuses_connections(&live).await);
    }
}
