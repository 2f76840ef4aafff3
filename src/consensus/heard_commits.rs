//! Reads on a follower that wait for the commits it has already heard of.
//!
//! ZooKeeper does not promise a client that a read through one member sees a write just
//! acknowledged through another, but its followers rarely miss one: the leader queues the
//! COMMIT to every follower before it answers the writer, and a follower applies it in two
//! thread hops. A Roost follower hears of the commit as early (see `commit_notice`), but
//! the AppendEntries then goes through openraft's core and the state-machine task before the
//! tree changes, and a fast client's read could overtake it (go-zookeeper's
//! TestBasicCluster). So a member records the highest commit index a leader announced to it
//! for entries it holds, and a client read waits, briefly and only when that index is ahead
//! of the applied one, until it is applied.
//!
//! The wait is bounded ([`MAX_WAIT`]) and skipped when the member is far behind
//! ([`MAX_GAP`]): a lagging member serves reads as before rather than stalling them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use tokio::sync::watch;

use super::types::TypeConfig;

/// Longest a read waits for a commit it heard of to be applied.
pub const MAX_WAIT: Duration = Duration::from_millis(10);
/// A member further behind than this many entries does not make reads wait.
pub const MAX_GAP: u64 = 64;

/// The commit index announced to this member next to its applied index.
pub struct HeardCommits {
    heard: AtomicU64,
    applied: Arc<AtomicU64>,
    applied_watch: watch::Receiver<u64>,
}

impl HeardCommits {
    /// `applied` and `applied_watch` are the state machine's (see `StateMachine::applied_index`).
    pub fn new(applied: Arc<AtomicU64>, applied_watch: watch::Receiver<u64>) -> HeardCommits {
        HeardCommits { heard: AtomicU64::new(0), applied, applied_watch }
    }

    /// The commit index an append announces, as far as the entries it carries or follows
    /// reach (0: none).
    pub fn announcement(rpc: &AppendEntriesRequest<TypeConfig>) -> u64 {
        let Some(commit) = rpc.leader_commit.map(|c| c.index) else { return 0 };
        let reach = rpc.entries.last().map(|e| e.log_id.index).or(rpc.prev_log_id.map(|p| p.index)).unwrap_or(0);
        commit.min(reach)
    }

    /// An append from a leader is about to be handed to raft: its announced commit will be
    /// applied here soon.
    pub fn announced(&self, rpc: &AppendEntriesRequest<TypeConfig>) {
        self.heard.fetch_max(Self::announcement(rpc), Ordering::AcqRel);
    }

    /// What raft answered to an append that announced `announcement`: unless it took it, the
    /// entries may never come from this leader, so that commit is no longer waited for (a
    /// later announcement, from another append, stays).
    pub fn answered(&self, resp: &AppendEntriesResponse<TypeConfig>, announcement: u64) {
        if !matches!(resp, AppendEntriesResponse::Success | AppendEntriesResponse::PartialSuccess(_)) {
            let applied = self.applied.load(Ordering::Acquire);
            let _ = self.heard.compare_exchange(announcement, applied, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Waits (at most [`MAX_WAIT`]) until every commit heard of is applied, unless there is
    /// none pending or this member is more than [`MAX_GAP`] entries behind.
    pub async fn settle(&self) {
        let heard = self.heard.load(Ordering::Acquire);
        let applied = self.applied.load(Ordering::Acquire);
        if heard <= applied || heard - applied > MAX_GAP {
            return;
        }
        let mut rx = self.applied_watch.clone();
        if tokio::time::timeout(MAX_WAIT, rx.wait_for(|&a| a >= heard)).await.is_err() {
            // Not applied in time (a stalled apply): later reads do not wait for it again,
            // or a pipeline of reads would pay the bound once each.
            let applied = self.applied.load(Ordering::Acquire);
            let _ = self.heard.compare_exchange(heard, applied, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

#[cfg(test)]
mod tests {
    use openraft::entry::RaftEntry;

    use super::*;
    use crate::consensus::types::{log_id, Entry, Vote};

    fn append(prev: u64, last: u64, commit: u64) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: Some(log_id(1, prev)),
            leader_commit: Some(log_id(1, commit)),
            entries: (prev + 1..=last).map(|i| Entry::new_blank(log_id(1, i))).collect(),
        }
    }

    fn heard(applied: u64) -> (HeardCommits, watch::Sender<u64>, Arc<AtomicU64>) {
        let index = Arc::new(AtomicU64::new(applied));
        let (tx, rx) = watch::channel(applied);
        (HeardCommits::new(index.clone(), rx), tx, index)
    }

    // Paused time: the runtime jumps to the next timer when idle, so the waits below are
    // exact (in virtual time) however loaded the machine is.
    #[tokio::test(start_paused = true)]
    async fn a_read_waits_for_an_announced_commit_and_no_longer() {
        let (h, tx, index) = heard(4);
        h.announced(&append(4, 6, 6));
        h.answered(&AppendEntriesResponse::Success, 6);
        let apply = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(3)).await;
            index.store(6, Ordering::Release);
            let _ = tx.send(6);
            tx
        });
        let start = tokio::time::Instant::now();
        h.settle().await;
        assert_eq!(start.elapsed(), Duration::from_millis(3), "the read waits for the apply, and no longer");
        let _tx = apply.await.unwrap();
        // Nothing pending now: no wait at all.
        let start = tokio::time::Instant::now();
        h.settle().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn commits_beyond_the_entries_held_refused_appends_and_far_behind_members_do_not_wait() {
        // The commit is announced past the entries this append carries: only those count.
        let (h, _tx, _index) = heard(4);
        h.announced(&append(4, 5, 9));
        assert_eq!(h.heard.load(Ordering::Acquire), 5);
        // An append raft refused: its entries may never come, forget it.
        h.answered(&AppendEntriesResponse::Conflict, 5);
        let start = tokio::time::Instant::now();
        h.settle().await;
        assert_eq!(start.elapsed(), Duration::ZERO, "waited after a refused append");
        // A member far behind serves its reads at once.
        let (h, _tx, _index) = heard(1);
        h.announced(&append(1, 1 + MAX_GAP + 1, 1 + MAX_GAP + 1));
        let start = tokio::time::Instant::now();
        h.settle().await;
        assert_eq!(start.elapsed(), Duration::ZERO, "a lagging member made a read wait");
        // ... and a commit not applied in time stalls one read for the bound, not the next.
        let (h, _tx, _index) = heard(4);
        h.announced(&append(4, 6, 6));
        let start = tokio::time::Instant::now();
        h.settle().await;
        assert_eq!(start.elapsed(), MAX_WAIT);
        h.settle().await;
        assert_eq!(start.elapsed(), MAX_WAIT, "a second read waited again for the same commit");
    }
}
