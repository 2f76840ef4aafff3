//! The raft transport, client side: one persistent TCP connection per peer.
//!
//! [`Peers`] holds one [`PeerConn`] per remote node. A connection is dialed on first use,
//! starts with a [`wire::Hello`], and then multiplexes RPCs: each request carries an id,
//! a reader task routes responses back to the waiting caller, so heartbeats, appends,
//! forwarded writes and read-index calls share the link without waiting for each other.
//! When the link breaks every waiting call fails at once and the next call redials, after
//! a growing pause if dialing failed. openraft sees every failure as `Unreachable`, which
//! makes its replication back off instead of spinning.
//!
//! The same connections carry Roost's own RPCs (forwarding writes to the leader, read
//! index, session touches), so a follower never opens more than one socket per peer.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::{OptionalSend, RaftNetworkFactory, RaftNetworkV2};
use parking_lot::Mutex;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::failover::DeadLeader;
use super::types::{NodeId, RaftPeer, Snapshot, SnapshotData, TypeConfig, Vote};
use super::wire::{self, Hello, RemoteError, Request, RequestFrame, Response, ResponseFrame};

/// How long dialing a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// First and longest pause between failed dials of the same peer.
const MIN_REDIAL: Duration = Duration::from_millis(50);
const MAX_REDIAL: Duration = Duration::from_secs(1);
/// Lower bound of the time a whole snapshot may take to transfer and install.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(120);

/// Why an RPC to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request was not sent: the peer could not be dialed (or is in its redial pause).
    #[error("peer {target} at {addr} is unreachable: {source}")]
    NotSent { target: NodeId, addr: String, source: io::Error },
    /// The connection broke after the request was sent: its effect is unknown.
    #[error("connection to peer {target} lost with the request in flight")]
    Lost { target: NodeId },
    /// No response within the deadline: its effect is unknown.
    #[error("peer {target} did not answer within {timeout:?}")]
    Timeout { target: NodeId, timeout: Duration },
    /// The peer answered with an error.
    #[error("peer {target} failed the request: {error}")]
    Remote { target: NodeId, error: RemoteError },
    /// The peer answered with a response of the wrong kind (a bug or version mismatch).
    #[error("peer {target} sent an unexpected response")]
    Protocol { target: NodeId },
}

impl CallError {
    /// True when the request certainly did not reach the peer.
    pub fn not_sent(&self) -> bool {
        matches!(self, CallError::NotSent { .. })
    }
}

/// All peer connections of this node, by node id.
#[derive(Debug)]
pub struct Peers {
    me: NodeId,
    conns: Mutex<HashMap<NodeId, Arc<PeerConn>>>,
    /// Peer addresses from this node's own configuration (`server.N` lines). Like a
    /// ZooKeeper server with a static configuration, a node dials its peers where its own
    /// configuration says, even if the membership recorded by the initializer differs.
    configured: HashMap<NodeId, String>,
}

impl Peers {
    pub fn new(me: NodeId) -> Arc<Peers> {
        Self::with_addresses(me, HashMap::new())
    }

    /// Peers dialled at `configured` addresses where one is given.
    pub fn with_addresses(me: NodeId, configured: HashMap<NodeId, String>) -> Arc<Peers> {
        Arc::new(Peers { me, conns: Mutex::new(HashMap::new()), configured })
    }

    /// Where this node dials `target`: its configured address, else `fallback` (the
    /// address recorded in the membership).
    pub fn dial_addr(&self, target: NodeId, fallback: &str) -> String {
        self.configured.get(&target).cloned().unwrap_or_else(|| fallback.to_string())
    }

    /// The connection to `target`, created on first use; `addr` updates where it dials
    /// (unless this node's configuration names an address for `target`).
    pub fn conn(&self, target: NodeId, addr: &str) -> Arc<PeerConn> {
        let addr = self.configured.get(&target).map_or(addr, String::as_str);
        let mut conns = self.conns.lock();
        let conn = conns.entry(target).or_insert_with(|| Arc::new(PeerConn::new(self.me, target, addr)));
        if *conn.addr.lock() != addr {
            *conn.addr.lock() = addr.to_string();
        }
        conn.clone()
    }

    /// The connection to `target` if it was registered before.
    pub fn get(&self, target: NodeId) -> Option<Arc<PeerConn>> {
        self.conns.lock().get(&target).cloned()
    }
}

/// The (re)dialing connection to one peer.
#[derive(Debug)]
pub struct PeerConn {
    me: NodeId,
    target: NodeId,
    addr: Mutex<String>,
    link: tokio::sync::Mutex<Option<Link>>,
    next_id: AtomicU64,
    redial: Mutex<Redial>,
}

#[derive(Debug)]
struct Redial {
    not_before: Option<Instant>,
    pause: Duration,
}

/// One established TCP connection; dropping it ends its tasks and fails its pending calls.
#[derive(Debug)]
struct Link {
    shared: Arc<LinkShared>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct LinkShared {
    closed: AtomicBool,
    pending: Mutex<HashMap<u64, oneshot::Sender<Response>>>,
}

impl LinkShared {
    /// Marks the link dead and fails every waiting call (their receivers see a drop).
    fn close(&self) {
        let mut pending = self.pending.lock();
        self.closed.store(true, Ordering::Release);
        pending.clear();
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
        self.shared.close();
    }
}

/// A sent request waiting for its response.
pub struct PendingCall {
    target: NodeId,
    id: u64,
    shared: Arc<LinkShared>,
    rx: oneshot::Receiver<Response>,
}

impl PendingCall {
    /// Waits for the response; a `Failed` answer becomes [`CallError::Remote`].
    pub async fn wait(self, timeout: Duration) -> Result<Response, CallError> {
        let target = self.target;
        match tokio::time::timeout(timeout, self.rx).await {
            Ok(Ok(Response::Failed(error))) => Err(CallError::Remote { target, error }),
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(CallError::Lost { target }),
            Err(_) => {
                self.shared.pending.lock().remove(&self.id);
                Err(CallError::Timeout { target, timeout })
            }
        }
    }
}

impl PeerConn {
    fn new(me: NodeId, target: NodeId, addr: &str) -> PeerConn {
        PeerConn {
            me,
            target,
            addr: Mutex::new(addr.to_string()),
            link: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
            redial: Mutex::new(Redial { not_before: None, pause: MIN_REDIAL }),
        }
    }

    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Queues `body` on the link (dialing first if needed). When this returns `Ok`, the
    /// request is ordered after every request sent before on this connection.
    pub async fn send(&self, body: Request) -> Result<PendingCall, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = wire::encode_frame(&RequestFrame { id, body }).map_err(|e| self.not_sent(e))?;
        let mut link = self.link.lock().await;
        if link.as_ref().is_none_or(|l| l.shared.closed.load(Ordering::Acquire)) {
            *link = None;
            *link = Some(self.dial().await?);
        }
        let Some(l) = link.as_ref() else { return Err(self.not_sent(io::Error::other("no link"))) };
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = l.shared.pending.lock();
            if l.shared.closed.load(Ordering::Acquire) {
                return Err(self.not_sent(io::Error::from(io::ErrorKind::ConnectionReset)));
            }
            pending.insert(id, tx);
        }
        if l.out.send(frame).is_err() {
            l.shared.pending.lock().remove(&id);
            return Err(self.not_sent(io::Error::from(io::ErrorKind::BrokenPipe)));
        }
        Ok(PendingCall { target: self.target, id, shared: l.shared.clone(), rx })
    }

    /// Sends `body` and waits up to `timeout` for the answer.
    pub async fn call(&self, body: Request, timeout: Duration) -> Result<Response, CallError> {
        let pending = tokio::time::timeout(timeout, self.send(body))
            .await
            .map_err(|_| self.not_sent(io::Error::from(io::ErrorKind::TimedOut)))??;
        pending.wait(timeout).await
    }

    fn not_sent(&self, source: io::Error) -> CallError {
        CallError::NotSent { target: self.target, addr: self.addr.lock().clone(), source }
    }

    async fn dial(&self) -> Result<Link, CallError> {
        if let Some(at) = self.redial.lock().not_before {
            if Instant::now() < at {
                return Err(self.not_sent(io::Error::new(io::ErrorKind::WouldBlock, "waiting to redial")));
            }
        }
        let addr = self.addr.lock().clone();
        match self.try_dial(&addr).await {
            Ok(link) => {
                let mut r = self.redial.lock();
                r.not_before = None;
                r.pause = MIN_REDIAL;
                tracing::debug!(peer = self.target, %addr, "raft connection established");
                Ok(link)
            }
            Err(e) => {
                let mut r = self.redial.lock();
                r.not_before = Some(Instant::now() + r.pause);
                r.pause = (r.pause * 2).min(MAX_REDIAL);
                Err(self.not_sent(e))
            }
        }
    }

    async fn try_dial(&self, addr: &str) -> io::Result<Link> {
        let sock = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        sock.set_nodelay(true)?;
        let (mut rd, wr) = sock.into_split();
        let mut wr = BufWriter::new(wr);
        wire::write_value(&mut wr, &Hello { magic: wire::MAGIC, from: self.me }).await?;

        let shared = Arc::new(LinkShared::default());
        let (out, mut frames) = mpsc::unbounded_channel::<Vec<u8>>();
        let writer_shared = shared.clone();
        let writer = tokio::spawn(async move {
            while let Some(frame) = frames.recv().await {
                if wr.write_all(&frame).await.is_err() {
                    break;
                }
                // Flush only when nothing else is queued: frames sent together share a syscall.
                if frames.is_empty() && wr.flush().await.is_err() {
                    break;
                }
            }
            writer_shared.close();
        });
        let reader_shared = shared.clone();
        let target = self.target;
        let reader = tokio::spawn(async move {
            loop {
                match wire::read_value::<_, ResponseFrame>(&mut rd).await {
                    Ok(frame) => {
                        let waiter = reader_shared.pending.lock().remove(&frame.id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(frame.body);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(peer = target, error = %e, "raft connection closed");
                        break;
                    }
                }
            }
            reader_shared.close();
        });
        Ok(Link { shared, out, reader, writer })
    }
}

/// Creates the openraft clients; all share the [`Peers`] connections.
#[derive(Debug, Clone)]
pub struct NetworkFactory {
    peers: Arc<Peers>,
    dead_leader: Arc<DeadLeader>,
}

impl NetworkFactory {
    pub fn new(peers: Arc<Peers>, dead_leader: Arc<DeadLeader>) -> Self {
        NetworkFactory { peers, dead_leader }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &RaftPeer) -> PeerClient {
        PeerClient { conn: self.peers.conn(target, &node.raft_addr), dead_leader: self.dead_leader.clone() }
    }
}

/// openraft's view of one peer.
#[derive(Debug, Clone)]
pub struct PeerClient {
    conn: Arc<PeerConn>,
    dead_leader: Arc<DeadLeader>,
}

fn unreachable(e: &CallError) -> Unreachable<TypeConfig> {
    Unreachable::new(e)
}

impl PeerClient {
    async fn rpc(&self, body: Request, timeout: Duration) -> Result<Response, RPCError<TypeConfig>> {
        self.conn.call(body, timeout).await.map_err(|e| RPCError::Unreachable(unreachable(&e)))
    }

    fn protocol_error(&self) -> RPCError<TypeConfig> {
        RPCError::Unreachable(unreachable(&CallError::Protocol { target: self.conn.target }))
    }

    async fn vote_rpc(&self, body: Request, option: &RPCOption) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.rpc(body, option.hard_ttl()).await? {
            Response::Vote(v) => Ok(v),
            _ => Err(self.protocol_error()),
        }
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.rpc(Request::Append(rpc), option.hard_ttl()).await? {
            Response::Append(r) => Ok(r),
            _ => Err(self.protocol_error()),
        }
    }

    async fn vote(
        &mut self,
        mut rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        // A candidate that saw the old leader's process die asks voters to skip the lease
        // they still hold for that leader (see `failover`).
        if self.dead_leader.vouches_for(rpc.vote.leader_id().term) {
            rpc.leadership_transfer = true;
        }
        self.vote_rpc(Request::Vote(rpc), &option).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.vote_rpc(Request::PreVote(rpc), &option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let timeout = option.hard_ttl().max(SNAPSHOT_TIMEOUT);
        let body = Request::Snapshot { vote, meta: snapshot.meta, data: snapshot.snapshot };
        let conn = self.conn.clone();
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            resp = conn.call(body, timeout) => match resp {
                Ok(Response::Snapshot(r)) => Ok(r),
                Ok(_) => Err(StreamingError::Unreachable(unreachable(&CallError::Protocol { target: conn.target }))),
                Err(e) => Err(StreamingError::Unreachable(unreachable(&e))),
            },
        }
    }
}
