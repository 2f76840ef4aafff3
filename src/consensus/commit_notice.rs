//! Commit notices: the leader tells its followers about a commit the moment it happens.
//!
//! openraft tells a follower the new commit index in the next message of its replication
//! stream to it, and that stream waits for the answer to the previous append, which the
//! follower sends only after its fsync; otherwise the commit rides on the next heartbeat.
//! ZooKeeper's leader instead queues a COMMIT to every follower before it applies the txn
//! and answers the writer. A client that writes through the leader and then reads through
//! a follower without `sync` is allowed to see the old state, but with ZooKeeper it rarely
//! does, and clients (and their tests) lean on that.
//!
//! So the leader sends, on each commit, an AppendEntries to each member on the already
//! open connection, without waiting for an answer (the reader drops it), whose commit index
//! is the committed entry. It also carries the entries after the last one that member
//! acknowledged, up to the committed one (a few at most: openraft's stream to a member has
//! one append in flight, and the next waits for its fsync's acknowledgement; ZooKeeper
//! pipelines its proposals). That is an ordinary AppendEntries of the current leader, as
//! Raft allows any number of: entries the member already has are left alone, and the
//! member then has every entry up to the commit, marks them committed and applies them at
//! once (flushed to its own disk or not: a quorum has them). A member whose log does not
//! reach the previous entry answers Conflict, which changes nothing. Notices never dial and
//! never wait long, so a slow or dead member cannot hold up the writers.

use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::raft::AppendEntriesRequest;
use openraft::storage::RaftLogReader;
use openraft::EntryPayload;

use super::log_store::LogReader;
use super::network::Peers;
use super::types::{txn_bytes, Entry, LogId, NodeId};
use super::wire::Request;
use super::RaftHandle;

/// How long a notice may wait for a connection that another sender holds.
const QUEUE_WAIT: Duration = Duration::from_millis(2);
/// How long the writers' answers wait for the notices to reach the sockets.
const WRITE_WAIT: Duration = Duration::from_millis(2);
/// Most entries a notice carries; a member further behind is left to its replication stream.
const MAX_ENTRIES: u64 = 8;
/// Most txn bytes (estimated) a notice carries: large writes are not sent twice.
const MAX_BYTES: usize = 256 << 10;

/// Sends commit notices of this node, while it leads.
pub struct CommitNotices {
    raft: RaftHandle,
    peers: Arc<Peers>,
    log: LogReader,
}

impl CommitNotices {
    pub fn new(raft: RaftHandle, peers: Arc<Peers>, log: LogReader) -> CommitNotices {
        CommitNotices { raft, peers, log }
    }

    /// Sends a notice of `committed` to every other member (voters and observers) and waits
    /// (at most [`WRITE_WAIT`]) until they are on the sockets: the writers are answered after
    /// that, as ZooKeeper's leader sends its COMMITs before it answers.
    pub async fn send(&self, committed: LogId) {
        let (vote, targets) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            // Only an established leader speaks for the cluster, with the vote it leads in.
            if !m.vote.is_committed() || m.vote.leader_id().voted_for != m.id {
                return;
            }
            let Some(replication) = &m.replication else { return };
            let targets: Vec<(NodeId, Option<LogId>)> =
                replication.iter().filter(|(id, _)| **id != m.id).map(|(id, matched)| (*id, *matched)).collect();
            (m.vote, targets)
        };
        let mut written = Vec::with_capacity(targets.len());
        for (target, matched) in targets {
            let Some(conn) = self.peers.get(target) else { continue };
            let (prev_log_id, entries) = self.missing(matched, committed).await;
            let notice =
                AppendEntriesRequest { vote, prev_log_id: Some(prev_log_id), leader_commit: Some(committed), entries };
            written.extend(conn.notify(Request::Append(notice), QUEUE_WAIT).await);
        }
        let _ = tokio::time::timeout(WRITE_WAIT, async {
            for on_socket in written {
                let _ = on_socket.await;
            }
        })
        .await;
    }

    /// The entries after `matched` (the member's last acknowledged entry) up to `committed`
    /// with the log id before them, or none (and `committed` itself as the previous log
    /// id) when they are too many, too large or no longer in the log.
    async fn missing(&self, matched: Option<LogId>, committed: LogId) -> (LogId, Vec<Entry>) {
        let nothing = (committed, Vec::new());
        let Some(matched) = matched else { return nothing };
        if matched.index >= committed.index || committed.index - matched.index > MAX_ENTRIES {
            return nothing;
        }
        let mut log = self.log.clone();
        let Ok(entries) = log.try_get_log_entries(matched.index + 1..committed.index + 1).await else { return nothing };
        let complete = entries.len() as u64 == committed.index - matched.index
            && entries.last().is_some_and(|e| e.log_id == committed);
        let bytes: usize = entries
            .iter()
            .map(|e| match &e.payload {
                EntryPayload::Normal(batch) => batch.txns.iter().map(txn_bytes).sum(),
                _ => 0,
            })
            .sum();
        if !complete || bytes > MAX_BYTES {
            return nothing;
        }
        (matched, entries)
    }
}
