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
//! Frames stay small: a snapshot goes out in 1 MiB chunks (a few in flight, with
//! heartbeats slipping in between) and is installed by a final request, and an append
//! request carrying more than about 8 MiB of txns is cut, reporting `PartialSuccess` so
//! openraft sends the rest next.
//!
//! The same connections carry Roost's own RPCs (forwarding writes to the leader, read
//! index, session touches), so a follower never opens more than one socket per peer.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::net::TcpStream;
use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable};
use openraft::network::RPCOption;
use openraft::network::RPCTypes;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::{OptionalSend, RaftNetworkFactory, RaftNetworkV2};
use parking_lot::Mutex;
use tokio::io::{AsyncWriteExt, BufWriter};

use super::transport::PeerTransport;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::failover::DeadLeader;
use super::types::{self, LogId, NodeId, RaftPeer, Snapshot, SnapshotData, TypeConfig, Vote};
use super::wire::{self, Hello, RemoteError, Request, Response, ResponseFrame};

/// How long dialing a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// First and longest pause between failed dials of the same peer.
const MIN_REDIAL: Duration = Duration::from_millis(50);
/// A link that has brought no frame for this long when one of its calls times out is taken
/// for dead and redialled. A peer that vanished without a reset (a host that lost power, a
/// middlebox that forgot the connection) would otherwise keep it "open" until the kernel
/// gives up retransmitting, about 15 minutes, with every call timing out (found by the
/// simulator, tests/sim.rs: a restarted follower was never caught up).
const SILENT_LINK: Duration = Duration::from_secs(5);
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
    /// Peer addresses of the installed configuration once a reconfig has changed it; they
    /// win over `configured`, as ZooKeeper then dials the members of its dynamic
    /// configuration (which reconfig rewrote) instead of its static lines.
    reconfigured: Mutex<HashMap<NodeId, String>>,
    /// How connections are opened and authenticated, both ways.
    transport: Arc<PeerTransport>,
    /// The runtime consensus runs on: see [`PeerConn::runtime`].
    runtime: tokio::runtime::Handle,
}

impl Peers {
    /// Must be called on the runtime consensus runs on.
    pub fn new(me: NodeId) -> Arc<Peers> {
        Self::with_addresses(me, HashMap::new(), PeerTransport::plain())
    }

    /// Peers dialled at `configured` addresses where one is given. Must be called on the
    /// runtime consensus runs on.
    pub fn with_addresses(
        me: NodeId,
        configured: HashMap<NodeId, String>,
        transport: Arc<PeerTransport>,
    ) -> Arc<Peers> {
        Arc::new(Peers {
            me,
            conns: Mutex::new(HashMap::new()),
            configured,
            reconfigured: Mutex::new(HashMap::new()),
            transport,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    pub fn transport(&self) -> &Arc<PeerTransport> {
        &self.transport
    }

    /// The address of `member` in this node's configuration (reconfigured or static), if any.
    pub fn address_of(&self, member: NodeId) -> Option<String> {
        let addr = self.dial_addr(member, "");
        (!addr.is_empty()).then_some(addr)
    }

    /// Where this node dials `target`: its reconfigured address, else its configured one,
    /// else `fallback` (the address recorded in the membership).
    pub fn dial_addr(&self, target: NodeId, fallback: &str) -> String {
        if let Some(addr) = self.reconfigured.lock().get(&target) {
            return addr.clone();
        }
        self.configured.get(&target).cloned().unwrap_or_else(|| fallback.to_string())
    }

    /// The connection to `target`, created on first use; `addr` updates where it dials
    /// (unless an address for `target` is configured or reconfigured).
    pub fn conn(&self, target: NodeId, addr: &str) -> Arc<PeerConn> {
        let addr = self.dial_addr(target, addr);
        let mut conns = self.conns.lock();
        let conn = conns.entry(target).or_insert_with(|| {
            Arc::new(PeerConn::new(self.me, target, &addr, self.transport.clone(), self.runtime.clone()))
        });
        conn.set_addr(&addr);
        conn.clone()
    }

    /// Installs the addresses of a reconfigured ensemble; connections to a peer whose
    /// address changed are redialled at the new one.
    pub fn set_reconfigured(&self, addrs: HashMap<NodeId, String>) {
        let changed: Vec<(NodeId, String)> = {
            let mut current = self.reconfigured.lock();
            if *current == addrs {
                return;
            }
            *current = addrs;
            current.iter().map(|(id, a)| (*id, a.clone())).collect()
        };
        let conns = self.conns.lock();
        for (id, addr) in changed {
            if let Some(conn) = conns.get(&id) {
                conn.set_addr(&addr);
            }
        }
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
    transport: Arc<PeerTransport>,
    target: NodeId,
    addr: Mutex<String>,
    link: tokio::sync::Mutex<Option<Link>>,
    next_id: AtomicU64,
    /// Numbers this peer's snapshot transfers, so a receiver never mixes chunks of two of
    /// them (it stages per connection). Per peer rather than process-wide, so that what a
    /// member sends does not depend on what other members in the process (the simulator's,
    /// or an earlier run's) did before.
    next_transfer: AtomicU64,
    redial: Mutex<Redial>,
    /// See [`SILENT_LINK`].
    silent_limit: Duration,
    /// Where the link's socket and its reader and writer tasks live: consensus's own
    /// runtime, even when a client's forwarded write is what dials. A link dialled from
    /// the client runtime would carry the leader's heartbeats through tasks that a flood
    /// of client requests can hold up for longer than an election timeout.
    runtime: tokio::runtime::Handle,
}

#[derive(Debug)]
struct Redial {
    not_before: Option<Instant>,
    pause: Duration,
}

/// A frame for the connection's writer; `written` (if any) fires once it has been handed to
/// the socket (flushed).
#[derive(Debug)]
struct Outgoing {
    frame: Vec<u8>,
    written: Option<oneshot::Sender<()>>,
}

/// One established TCP connection; dropping it ends its tasks and fails its pending calls.
#[derive(Debug)]
struct Link {
    /// Where it was dialled (a link to an address the peer no longer has is redialled).
    addr: String,
    shared: Arc<LinkShared>,
    out: mpsc::UnboundedSender<Outgoing>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

#[derive(Debug)]
struct LinkShared {
    closed: AtomicBool,
    pending: Mutex<HashMap<u64, oneshot::Sender<Response>>>,
    /// When the link was dialled or last brought a frame.
    heard: Mutex<Instant>,
    silent_limit: Duration,
}

impl LinkShared {
    fn new(silent_limit: Duration) -> LinkShared {
        LinkShared {
            closed: AtomicBool::new(false),
            pending: Mutex::default(),
            heard: Mutex::new(Instant::now()),
            silent_limit,
        }
    }

    /// A call on this link timed out: if nothing came back for too long, the peer is gone
    /// without having closed the connection, so the next call dials again.
    fn call_timed_out(&self, target: NodeId) {
        let silent = self.heard.lock().elapsed();
        if silent >= self.silent_limit && !self.closed.load(Ordering::Acquire) {
            tracing::info!(peer = target, silent_ms = silent.as_millis() as u64, "raft connection silent; redialling");
            self.close();
        }
    }

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
    /// The member the request went to.
    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Like [`wait`](Self::wait), but gives up (as [`CallError::Lost`]) when `abandon`
    /// resolves first; the call is forgotten on the connection either way.
    pub async fn wait_or(
        self,
        timeout: Duration,
        abandon: impl std::future::Future<Output = ()>,
    ) -> Result<Response, CallError> {
        let (target, id, shared) = (self.target, self.id, self.shared.clone());
        tokio::select! {
            result = self.wait(timeout) => result,
            () = abandon => {
                shared.pending.lock().remove(&id);
                Err(CallError::Lost { target })
            }
        }
    }

    pub async fn wait(self, timeout: Duration) -> Result<Response, CallError> {
        let target = self.target;
        match tokio::time::timeout(timeout, self.rx).await {
            Ok(Ok(Response::Failed(error))) => Err(CallError::Remote { target, error }),
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(CallError::Lost { target }),
            Err(_) => {
                self.shared.pending.lock().remove(&self.id);
                self.shared.call_timed_out(target);
                Err(CallError::Timeout { target, timeout })
            }
        }
    }
}

impl PeerConn {
    fn new(
        me: NodeId,
        target: NodeId,
        addr: &str,
        transport: Arc<PeerTransport>,
        runtime: tokio::runtime::Handle,
    ) -> PeerConn {
        PeerConn {
            me,
            transport,
            target,
            addr: Mutex::new(addr.to_string()),
            link: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
            next_transfer: AtomicU64::new(1),
            redial: Mutex::new(Redial { not_before: None, pause: MIN_REDIAL }),
            silent_limit: SILENT_LINK,
            runtime,
        }
    }

    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Makes the next request dial `addr` if the peer moved there.
    fn set_addr(&self, addr: &str) {
        let mut current = self.addr.lock();
        if *current != addr {
            tracing::info!(peer = self.target, from = %current, to = %addr, "peer address changed");
            *current = addr.to_string();
            self.redial.lock().not_before = None;
        }
    }

    /// Queues `body` on the link (dialing first if needed). When this returns `Ok`, the
    /// request is ordered after every request sent before on this connection.
    pub async fn send(&self, body: Request) -> Result<PendingCall, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = wire::encode_request_frame(id, body).map_err(|e| self.not_sent(e))?;
        let mut link = self.link.lock().await;
        let moved = |l: &Link| l.addr != *self.addr.lock();
        if link.as_ref().is_none_or(|l| l.shared.closed.load(Ordering::Acquire) || moved(l)) {
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
        if l.out.send(Outgoing { frame, written: None }).is_err() {
            l.shared.pending.lock().remove(&id);
            return Err(self.not_sent(io::Error::from(io::ErrorKind::BrokenPipe)));
        }
        Ok(PendingCall { target: self.target, id, shared: l.shared.clone(), rx })
    }

    /// Queues `body` on the connection if one is up, without wanting an answer (the reader
    /// drops it). Never dials, and gives up after `wait` if another sender holds the
    /// connection: for best-effort notices that must not hold up their sender. The receiver
    /// resolves once the frame is on the socket (`None`: not queued).
    pub async fn notify(&self, body: Request, wait: Duration) -> Option<oneshot::Receiver<()>> {
        let Ok(link) = tokio::time::timeout(wait, self.link.lock()).await else { return None };
        let l = link.as_ref().filter(|l| !l.shared.closed.load(Ordering::Acquire))?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = wire::encode_request_frame(id, body).ok()?;
        let (written, on_socket) = oneshot::channel();
        l.out.send(Outgoing { frame, written: Some(written) }).ok()?;
        Some(on_socket)
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
        let dialing = LinkDial {
            me: self.me,
            target: self.target,
            transport: self.transport.clone(),
            silent_limit: self.silent_limit,
            addr: addr.clone(),
        };
        let opened = match self.runtime.spawn(dialing.open()).await {
            Ok(result) => result,
            Err(e) => Err(io::Error::other(e)),
        };
        match opened {
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
}

/// What opening a link needs, owned so that it can run on consensus's runtime.
struct LinkDial {
    me: NodeId,
    target: NodeId,
    transport: Arc<PeerTransport>,
    silent_limit: Duration,
    addr: String,
}

impl LinkDial {
    /// Connects, says hello and starts the link's reader and writer (on the runtime this
    /// runs on).
    async fn open(self) -> io::Result<Link> {
        let addr = self.addr.as_str();
        let sock = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        // Dialing a port in the ephemeral range of this host while nothing listens on it
        // can connect the socket to itself (TCP simultaneous open when the kernel picks
        // that very port as the source). Such a link would hold the peer's port, so the
        // peer could not bind it when it starts.
        if sock.local_addr()? == sock.peer_addr()? {
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "connected to itself (peer not listening)"));
        }
        sock.set_nodelay(true)?;
        let (mut rd, wr) = self.transport.connect(sock, addr).await?;
        let mut wr = BufWriter::new(wr);
        wire::write_value(&mut wr, &Hello { magic: wire::MAGIC, from: self.me }).await?;

        let shared = Arc::new(LinkShared::new(self.silent_limit));
        let (out, mut frames) = mpsc::unbounded_channel::<Outgoing>();
        let writer_shared = shared.clone();
        let writer = tokio::spawn(async move {
            let mut written = Vec::new();
            while let Some(Outgoing { frame, written: signal }) = frames.recv().await {
                if wr.write_all(&frame).await.is_err() {
                    break;
                }
                written.extend(signal);
                // Flush only when nothing else is queued: frames sent together share a syscall.
                if frames.is_empty() {
                    if wr.flush().await.is_err() {
                        break;
                    }
                    for signal in written.drain(..) {
                        let _ = signal.send(());
                    }
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
                        *reader_shared.heard.lock() = Instant::now();
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
        Ok(Link { addr: addr.to_string(), shared, out, reader, writer })
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
        PeerClient {
            me: self.peers.me,
            conn: self.peers.conn(target, &node.raft_addr),
            dead_leader: self.dead_leader.clone(),
        }
    }
}

/// openraft's view of one peer.
#[derive(Debug, Clone)]
pub struct PeerClient {
    me: NodeId,
    conn: Arc<PeerConn>,
    dead_leader: Arc<DeadLeader>,
}

/// The least an append may take before it counts as timed out. openraft offers its
/// heartbeat interval (50 ms) as the deadline, but under load a follower's fsync of a
/// large batch can take longer, and each miss made openraft pause replication to that
/// follower for its backoff (200 ms): with both followers slow, commits stalled (the
/// 200+ ms p99.9 of the write workloads). A dead follower's connection fails at once
/// anyway; only a frozen one is waited for, while the other voters keep committing.
const APPEND_TIMEOUT: Duration = Duration::from_secs(2);

fn unreachable(e: &CallError) -> Unreachable<TypeConfig> {
    Unreachable::new(e)
}

impl PeerClient {
    /// A call to the peer. A timeout is reported as such (openraft retries it without
    /// backing off, unlike an unreachable peer).
    async fn rpc(&self, body: Request, timeout: Duration, action: RPCTypes) -> Result<Response, RPCError<TypeConfig>> {
        self.conn.call(body, timeout).await.map_err(|e| match e {
            CallError::Timeout { target, timeout } => {
                RPCError::Timeout(Timeout { action, id: self.me, target, timeout })
            }
            e => RPCError::Unreachable(unreachable(&e)),
        })
    }

    fn protocol_error(&self) -> RPCError<TypeConfig> {
        RPCError::Unreachable(unreachable(&CallError::Protocol { target: self.conn.target }))
    }

    async fn vote_rpc(
        &self,
        body: Request,
        option: &RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.rpc(body, option.hard_ttl(), RPCTypes::Vote).await? {
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
        let (rpc, cut) = limit_append(rpc, wire::APPEND_BYTES);
        match self.rpc(Request::Append(rpc), option.hard_ttl().max(APPEND_TIMEOUT), RPCTypes::AppendEntries).await? {
            // Only a prefix was sent: tell openraft how far it got so it sends the rest.
            Response::Append(AppendEntriesResponse::Success) if cut.is_some() => {
                Ok(AppendEntriesResponse::PartialSuccess(cut))
            }
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
        let conn = self.conn.clone();
        let target = conn.target;
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            resp = send_snapshot(&conn, vote, snapshot, timeout) => match resp {
                Ok(r) => Ok(r),
                Err(e) => {
                    tracing::warn!(peer = target, error = %e, "snapshot transfer failed");
                    Err(StreamingError::Unreachable(unreachable(&e)))
                }
            },
        }
    }
}

/// Cuts `rpc` to the longest prefix of its entries within about `max_bytes` (at least
/// one entry). Returns the id of the last entry kept when entries were cut off: openraft
/// gives every request up to `max_payload_entries` entries whatever their size, and a
/// few hundred batches of large znodes would not fit in a frame.
pub(crate) fn limit_append(
    mut rpc: AppendEntriesRequest<TypeConfig>,
    max_bytes: usize,
) -> (AppendEntriesRequest<TypeConfig>, Option<LogId>) {
    let mut bytes = 0usize;
    let over = rpc.entries.iter().position(|e| {
        bytes = bytes.saturating_add(types::entry_bytes(e));
        bytes > max_bytes
    });
    // Entries before the first one that crosses the limit fit; the first always goes.
    let keep = over.map_or(rpc.entries.len(), |over| over.max(1));
    if keep >= rpc.entries.len() {
        return (rpc, None);
    }
    rpc.entries.truncate(keep);
    let last = rpc.entries.last().map(|e| e.log_id);
    (rpc, last)
}

/// Snapshot chunks sent ahead of their acknowledgement.
const CHUNK_WINDOW: usize = 4;
/// How long one chunk may wait for its acknowledgement.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends the snapshot data in [`wire::SNAPSHOT_CHUNK`] pieces, a few in flight at a
/// time, then asks the peer to install it. The pieces share the connection with
/// heartbeats and appends, which slip in between them. If the connection breaks part
/// way, the receiver refuses the rest (its staged data belonged to the old connection)
/// and openraft starts the transfer again.
async fn send_snapshot(
    conn: &PeerConn,
    vote: Vote,
    snapshot: Snapshot,
    install_timeout: Duration,
) -> Result<SnapshotResponse<TypeConfig>, CallError> {
    let target = conn.target;
    let data = snapshot.snapshot;
    let total = data.len() as u64;
    let transfer = conn.next_transfer.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let mut inflight = std::collections::VecDeque::with_capacity(CHUNK_WINDOW);
    let mut offset = 0u64;
    for bytes in data.chunks(wire::SNAPSHOT_CHUNK) {
        if inflight.len() >= CHUNK_WINDOW {
            expect_staged(inflight.pop_front(), target).await?;
        }
        let body = Request::SnapshotChunk { transfer, offset, total, bytes: bytes.to_vec() };
        inflight.push_back(
            tokio::time::timeout(CHUNK_TIMEOUT, conn.send(body))
                .await
                .map_err(|_| CallError::Timeout { target, timeout: CHUNK_TIMEOUT })??,
        );
        offset += bytes.len() as u64;
    }
    while let Some(pending) = inflight.pop_front() {
        expect_staged(Some(pending), target).await?;
    }
    drop(data);
    let install = Request::SnapshotInstall { transfer, len: total, vote, meta: snapshot.meta };
    match conn.call(install, install_timeout).await? {
        Response::Snapshot(r) => {
            tracing::info!(
                peer = target,
                bytes = total,
                took_ms = started.elapsed().as_millis() as u64,
                "snapshot sent"
            );
            Ok(r)
        }
        _ => Err(CallError::Protocol { target }),
    }
}

async fn expect_staged(pending: Option<PendingCall>, target: NodeId) -> Result<(), CallError> {
    let Some(pending) = pending else { return Ok(()) };
    match pending.wait(CHUNK_TIMEOUT).await? {
        Response::ChunkStaged { .. } => Ok(()),
        _ => Err(CallError::Protocol { target }),
    }
}

#[cfg(test)]
mod tests {
    use openraft::entry::RaftEntry;

    use super::*;
    use crate::consensus::types::{log_id, Entry, LogBatch};
    use crate::tree::txn::{Txn, TxnBatch, TxnOp};

    fn entry(index: u64, data_len: usize) -> Entry {
        let op = TxnOp::SetData { path: "/n".into(), data: Some(vec![0; data_len]), version: -1 };
        let txn = Txn { session_id: 1, time_ms: 0, auth: vec![], op };
        Entry::new_normal(log_id(1, index), LogBatch::from(TxnBatch { txns: vec![txn] }))
    }

    fn request(entries: Vec<Entry>) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest { vote: Vote::new_committed(1, 1), prev_log_id: None, leader_commit: None, entries }
    }

    #[test]
    fn large_appends_are_cut_to_a_prefix() {
        let (rpc, cut) = limit_append(request((1..=5).map(|i| entry(i, 100)).collect()), 10_000);
        assert_eq!((rpc.entries.len(), cut), (5, None), "small requests stay whole");

        let (rpc, cut) = limit_append(request((1..=5).map(|i| entry(i, 4000)).collect()), 10_000);
        assert_eq!(rpc.entries.len(), 2);
        assert_eq!(cut, Some(log_id(1, 2)));

        // One entry larger than the limit still goes, alone.
        let (rpc, cut) = limit_append(request(vec![entry(1, 50_000), entry(2, 10)]), 10_000);
        assert_eq!(rpc.entries.len(), 1);
        assert_eq!(cut, Some(log_id(1, 1)));
        let (rpc, cut) = limit_append(request(vec![entry(1, 50_000)]), 10_000);
        assert_eq!((rpc.entries.len(), cut), (1, None));

        let (rpc, cut) = limit_append(request(Vec::new()), 10_000);
        assert_eq!((rpc.entries.len(), cut), (0, None), "heartbeats");
    }

    /// A peer that stops answering without closing the connection (here: one that reads
    /// and never replies) is redialled once a call times out on a link silent for longer
    /// than the limit, instead of every call timing out on it for good.
    #[tokio::test]
    async fn a_silent_link_is_redialled_after_a_call_times_out() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (accepted_tx, mut accepted) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut sock, _)) = listener.accept().await {
                let _ = accepted_tx.send(());
                // Take the hello, answer nothing, keep the connection open.
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(50), sock.read(&mut buf)).await;
                held.push(sock);
            }
        });
        let mut conn = PeerConn::new(1, 2, &addr, PeerTransport::plain(), tokio::runtime::Handle::current());
        conn.silent_limit = Duration::from_millis(200);
        let call = conn.call(Request::ReadIndex, Duration::from_millis(50)).await;
        assert!(matches!(call, Err(CallError::Timeout { .. })), "{call:?}");
        accepted.recv().await.unwrap();
        // Silent, but not for long yet: the link stays.
        let call = conn.call(Request::ReadIndex, Duration::from_millis(50)).await;
        assert!(matches!(call, Err(CallError::Timeout { .. })), "{call:?}");
        assert!(accepted.try_recv().is_err(), "redialled a link that was silent only briefly");
        // Silent past the limit when a call times out: the next call dials a new link.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let _ = conn.call(Request::ReadIndex, Duration::from_millis(50)).await;
        let _ = conn.call(Request::ReadIndex, Duration::from_millis(50)).await;
        tokio::time::timeout(Duration::from_secs(5), accepted.recv()).await.expect("no redial").unwrap();
    }
}
