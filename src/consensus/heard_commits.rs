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
//!
//! The notice can also still be *on the socket*: the leader wrote it before it answered the
//! writer, but this member's reader task has not run yet when the client's read arrives on
//! another connection (two ready sockets, and the runtime picks an order). So a read first
//! lets the connections from the current leader hand over what they hold ([`InboundLink`]):
//! bytes in the kernel's receive queue (`FIONREAD`) or a frame half taken off it. That wait is
//! bounded too ([`INBOUND_WAIT`]); with quorum TLS, a second frame decrypted together with a
//! first one sits in the TLS layer where it cannot be seen, and is only covered by the above.

use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::{watch, Notify};

use super::types::{NodeId, TypeConfig};

/// Longest a read waits for a commit it heard of to be applied.
pub const MAX_WAIT: Duration = Duration::from_millis(10);
/// A member further behind than this many entries does not make reads wait.
pub const MAX_GAP: u64 = 64;
/// Longest a read waits for the leader's connections to hand over what is on their sockets.
pub const INBOUND_WAIT: Duration = Duration::from_millis(2);

/// A connection a peer opened to this member, as far as reads care: whether everything it
/// delivered has been read and handled (a leader's commit notices announced).
pub struct InboundLink {
    from: NodeId,
    /// A duplicate of the socket's descriptor, to ask the kernel what is queued unread.
    socket: Option<OwnedFd>,
    /// Bytes the reader took off the connection.
    taken: AtomicU64,
    /// Bytes of the frames the reader has handled.
    handled: AtomicU64,
    progress: Notify,
}

impl InboundLink {
    /// Something this connection delivered is not handled yet.
    fn unread(&self) -> bool {
        if self.taken.load(Ordering::Acquire) > self.handled.load(Ordering::Acquire) {
            return true;
        }
        self.socket.as_ref().is_some_and(|fd| rustix::io::ioctl_fionread(fd).is_ok_and(|queued| queued > 0))
    }

    /// The reader handled every frame it took off the connection so far.
    pub fn frame_handled(&self) {
        self.handled.store(self.taken.load(Ordering::Acquire), Ordering::Release);
        self.progress.notify_waiters();
    }

    /// Waits until this connection has nothing unhandled, or `deadline`. False on timeout.
    async fn drained(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let notified = self.progress.notified();
            tokio::pin!(notified);
            // Registered before the check, so a frame handled in between still wakes us.
            notified.as_mut().enable();
            if !self.unread() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }
}

/// An inbound connection's reader, counting what it takes for its [`InboundLink`].
pub struct CountedReader<R> {
    inner: R,
    link: Arc<InboundLink>,
}

impl<R: AsyncRead + Unpin> AsyncRead for CountedReader<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let took = buf.filled().len().saturating_sub(before) as u64;
        if took > 0 {
            self.link.taken.fetch_add(took, Ordering::AcqRel);
        }
        polled
    }
}

/// Keeps an [`InboundLink`] registered while its connection lives.
pub struct LinkRegistration {
    link: Arc<InboundLink>,
    links: Arc<Mutex<Vec<Arc<InboundLink>>>>,
}

impl LinkRegistration {
    pub fn link(&self) -> &Arc<InboundLink> {
        &self.link
    }
}

impl Drop for LinkRegistration {
    fn drop(&mut self) {
        self.links.lock().retain(|l| !Arc::ptr_eq(l, &self.link));
    }
}

/// The commit index announced to this member next to its applied index.
pub struct HeardCommits {
    heard: AtomicU64,
    applied: Arc<AtomicU64>,
    applied_watch: watch::Receiver<u64>,
    /// The peers' connections to this member.
    links: Arc<Mutex<Vec<Arc<InboundLink>>>>,
}

impl HeardCommits {
    /// `applied` and `applied_watch` are the state machine's (see `StateMachine::applied_index`).
    pub fn new(applied: Arc<AtomicU64>, applied_watch: watch::Receiver<u64>) -> HeardCommits {
        HeardCommits { heard: AtomicU64::new(0), applied, applied_watch, links: Arc::default() }
    }

    /// Registers a connection `from` a peer, wrapping its reader; `socket` is a duplicate of
    /// its descriptor (`None`: only what the reader took is seen).
    pub fn register<R>(
        &self,
        from: NodeId,
        socket: Option<OwnedFd>,
        reader: R,
    ) -> (CountedReader<R>, LinkRegistration) {
        let link = Arc::new(InboundLink {
            from,
            socket,
            taken: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            progress: Notify::new(),
        });
        self.links.lock().push(link.clone());
        let registration = LinkRegistration { link: link.clone(), links: self.links.clone() };
        (CountedReader { inner: reader, link }, registration)
    }

    /// Waits (at most [`INBOUND_WAIT`]) until the connections from `leader` have handed over
    /// everything already delivered to this member. False if the wait ran out.
    async fn drain_from(&self, leader: NodeId) -> bool {
        let from_leader: Vec<Arc<InboundLink>> = {
            let links = self.links.lock();
            links.iter().filter(|l| l.from == leader).cloned().collect()
        };
        let deadline = tokio::time::Instant::now() + INBOUND_WAIT;
        for link in from_leader {
            if !link.drained(deadline).await {
                return false;
            }
        }
        true
    }

    /// Whether any peer connection is registered (none on a standalone server).
    pub fn has_links(&self) -> bool {
        !self.links.lock().is_empty()
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
    /// none pending or this member is more than [`MAX_GAP`] entries behind. With `leader`
    /// (another member that leads), first lets its connections hand over what they hold.
    ///
    /// True when the wait is complete: every commit the leader had announced to this member
    /// before the call is applied (or this member is too far behind to wait for). A read
    /// that reached this member before such a call began needs no wait of its own (see
    /// [`SettledReads`]).
    pub async fn settle(&self, leader: Option<NodeId>) -> bool {
        if let Some(leader) = leader {
            if !self.drain_from(leader).await {
                return false;
            }
        }
        let heard = self.heard.load(Ordering::Acquire);
        let applied = self.applied.load(Ordering::Acquire);
        if heard <= applied || heard - applied > MAX_GAP {
            return true;
        }
        let mut rx = self.applied_watch.clone();
        if tokio::time::timeout(MAX_WAIT, rx.wait_for(|&a| a >= heard)).await.is_err() {
            // Not applied in time (a stalled apply): later reads do not wait for it again,
            // or a pipeline of reads would pay the bound once each.
            let applied = self.applied.load(Ordering::Acquire);
            let _ = self.heard.compare_exchange(heard, applied, Ordering::AcqRel, Ordering::Acquire);
            return false;
        }
        true
    }
}

/// One connection's record of its last complete [`HeardCommits::settle`]: the reads of a
/// pipeline that had all arrived when it began are covered by it, so only the first pays
/// for the wait.
///
/// A commit a read must see was announced (its notice on this member's socket) before its
/// writer was answered, so before the read was sent: before the read arrived. A settle that
/// began after the read arrived drained that notice and waited for its apply. Without this,
/// a pipelined session's reads behind each write waited one after another, each for the
/// commits of other sessions' writes announced in the meantime.
#[derive(Debug, Default)]
pub struct SettledReads {
    began: Option<std::time::Instant>,
}

impl SettledReads {
    /// Whether a read that arrived at `arrived` still needs a settle of its own.
    pub fn needed(&self, arrived: std::time::Instant) -> bool {
        self.began.is_none_or(|began| arrived > began)
    }

    /// A settle that began at `began` completed.
    pub fn completed(&mut self, began: std::time::Instant) {
        self.began = Some(self.began.map_or(began, |b| b.max(began)));
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
        assert!(h.settle(None).await, "a wait that saw the apply is complete");
        assert_eq!(start.elapsed(), Duration::from_millis(3), "the read waits for the apply, and no longer");
        let _tx = apply.await.unwrap();
        // Nothing pending now: no wait at all.
        let start = tokio::time::Instant::now();
        h.settle(None).await;
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
        h.settle(None).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "waited after a refused append");
        // A member far behind serves its reads at once.
        let (h, _tx, _index) = heard(1);
        h.announced(&append(1, 1 + MAX_GAP + 1, 1 + MAX_GAP + 1));
        let start = tokio::time::Instant::now();
        h.settle(None).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "a lagging member made a read wait");
        // ... and a commit not applied in time stalls one read for the bound, not the next.
        let (h, _tx, _index) = heard(4);
        h.announced(&append(4, 6, 6));
        let start = tokio::time::Instant::now();
        assert!(!h.settle(None).await, "a wait cut short is not complete");
        assert_eq!(start.elapsed(), MAX_WAIT);
        assert!(h.settle(None).await);
        assert_eq!(start.elapsed(), MAX_WAIT, "a second read waited again for the same commit");
    }

    #[test]
    fn reads_that_arrived_before_a_complete_settle_began_need_none_of_their_own() {
        let arrived = std::time::Instant::now();
        let mut settled = SettledReads::default();
        assert!(settled.needed(arrived), "a connection's first read settles");
        let began = arrived + Duration::from_millis(5);
        settled.completed(began);
        assert!(!settled.needed(arrived), "a read queued behind the settle is covered by it");
        assert!(!settled.needed(began));
        assert!(settled.needed(began + Duration::from_micros(1)), "a read that arrived later settles again");
        // A settle that began earlier but completed later does not move the mark back.
        settled.completed(arrived);
        assert!(!settled.needed(began));
    }

    /// What a peer delivered to this member and its reader has not handled makes a read
    /// wait; once handled, or once the connection is gone, nothing does.
    #[tokio::test]
    async fn a_read_waits_for_what_the_leaders_connection_holds() {
        use std::os::fd::AsFd;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut leader = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let socket = accepted.as_fd().try_clone_to_owned().ok();
        let (h, _tx, _index) = heard(4);
        let (mut reader, registration) = h.register(7, socket, accepted);
        let link = registration.link().clone();
        assert!(h.has_links());
        assert!(!link.unread(), "nothing was sent yet");

        leader.write_all(b"notice").await.unwrap();
        let start = std::time::Instant::now();
        while !link.unread() {
            assert!(start.elapsed() < Duration::from_secs(5), "the kernel never showed the bytes");
            tokio::task::yield_now().await;
        }
        // Queued in the kernel, nobody reading: the read waits its bound for it.
        let start = tokio::time::Instant::now();
        assert!(!h.settle(Some(7)).await, "a wait that ran out is not complete");
        assert!(start.elapsed() >= INBOUND_WAIT, "the read did not wait for the queued notice");

        // Taken off the socket but not handled yet: still unread.
        let mut buf = [0u8; 6];
        reader.read_exact(&mut buf).await.unwrap();
        assert!(link.unread(), "a frame taken and not handled counts as unread");
        link.frame_handled();
        assert!(!link.unread());
        assert!(h.settle(Some(7)).await, "everything handled, nothing announced: complete at once");

        drop(registration);
        assert!(!h.has_links(), "a closed connection stays registered");
    }
}
