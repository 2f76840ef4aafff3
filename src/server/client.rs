//! Serving one client connection.
//!
//! Three parts run per connection:
//! - the reader (this task) decodes frames, turns writes into txns and submits
//!   them to consensus at once (so a session's writes enter the log in order and
//!   several can be in flight), and queues every request as a [`Pending`] item;
//! - the responder answers the queue strictly in order: it waits for a write's
//!   outcome, and runs a read only when everything before it has been answered,
//!   so a client never sees a reply before the replies to its earlier requests;
//! - the writer drains the outbound queue, which also carries watch events pushed
//!   by the apply loop, so an event always precedes the replies that reflect it.
//!
//! Every queue is bounded (see [`super::flow`] and [`super::outbound`]): the reader
//! reads only while the connection's outstanding requests are within their bounds, the
//! responder answers only while the replies already queued are within theirs, and a
//! client that leaves too many watch events unread is disconnected. A connection that
//! has not sent its ConnectRequest within `zookeeper.nio.sessionlessCnxnTimeout` is closed.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use parking_lot::RwLock;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::consensus::heard_commits::SettledReads;
use crate::consensus::ConsensusError;
use crate::db::ConnHandle;
use crate::proto::connect::ConnectRequest;
use crate::proto::frame::{four_letter_word, FourLetterWord};
use crate::proto::jute::Reader as JuteReader;
use crate::proto::request::{decode_request, Request};
use crate::proto::response::{encode_reply, encode_sasl_reply, ReplyHeader, Response};
use crate::proto::types::{xid, ErrorCode, Id, OpCode};
use crate::proto::DecodeError;
use crate::security::audit::{Actor, AuditResult, WriteAudit};
use crate::tree::txn::{Txn, TxnOp, TxnOutcome};
use crate::watch::ConnId;

use super::cmd::{self, write::WritePolicy};
use super::connection::{FrameReader, ReadError};
use super::flow::Outstanding;
use super::handshake::{handshake, now_ms, Handshake};
use super::outbound::{write_loop, OutboundQueue};
use super::stats::{ConnStats, LastOp};
use super::{fourlw, ServerContext};

type Proposal = Pin<Box<dyn Future<Output = Result<TxnOutcome, ConsensusError>> + Send>>;

/// Reads queued but not yet executed on one connection. A write that arrives after a
/// read is submitted only once that read has run, so the read sees the tree as of its
/// place in the session's order and never a later write of the same session
/// (ZooKeeper's CommitProcessor gives the same guarantee).
#[derive(Default)]
struct ReadGate {
    pending: std::sync::atomic::AtomicUsize,
    /// Set when the responder stops: nothing will execute the queued reads any more.
    closed: std::sync::atomic::AtomicBool,
    done: tokio::sync::Notify,
}

impl ReadGate {
    fn queued(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    fn executed(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
        self.done.notify_waiters();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.done.notify_waiters();
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.done.notified();
            if self.pending.load(Ordering::Acquire) == 0 || self.closed.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// A request waiting for its turn to be answered.
enum Pending {
    Ping,
    /// Answered with the request's own xid (-4 from most clients), as ZooKeeper does.
    Auth {
        xid: i32,
        scheme: String,
        auth: Vec<u8>,
    },
    /// One step of a SASL exchange (opcode 102, an ordinary xid).
    Sasl {
        xid: i32,
        token: Vec<u8>,
    },
    Read {
        xid: i32,
        op: OpCode,
        req: Request,
        at: Instant,
    },
    Watch {
        xid: i32,
        op: OpCode,
        req: Request,
        at: Instant,
    },
    Write {
        xid: i32,
        op: OpCode,
        multi_kinds: Vec<OpCode>,
        proposal: Proposal,
        /// Its place among the connection's submitted writes (see [`WriteOrder`]); `None`
        /// for a write that cannot be submitted again (reconfig).
        seq: Option<u64>,
        at: Instant,
        /// What the audit log says about it (`audit.enable`).
        audit: Option<Box<WriteAudit>>,
    },
    Sync {
        xid: i32,
        path: String,
        at: Instant,
    },
    /// An answer decided by the reader (errors): sent as is.
    Reply {
        xid: i32,
        op: OpCode,
        err: ErrorCode,
        body: Option<Response<'static>>,
        at: Instant,
    },
    /// Answer the client's closeSession, then close.
    CloseAfter {
        xid: i32,
        proposal: Proposal,
    },
    Close,
}

/// An item of the connection's request queue, with the request bytes it counts against
/// the connection's bounds (`None`: not a request, not counted).
struct Queued {
    /// Boxed: a channel allocates its slots 32 at a time, and 32 inline `Pending`s were a
    /// quarter of what an idle connection cost.
    item: Box<Pending>,
    cost: Option<usize>,
}

/// The reader's end of the request queue: counts what it queues in [`Outstanding`].
struct RequestQueue {
    tx: mpsc::UnboundedSender<Queued>,
    outstanding: Arc<Outstanding>,
    writes: Arc<WriteOrder>,
}

/// The order in which a connection submitted its writes. A write that its leader never
/// committed (`ConsensusError::NotCommitted`: the leader froze or was cut off before it
/// replicated the write) is submitted again, but only while it is still the connection's
/// latest write: one submitted after it is already on its way and would overtake it.
#[derive(Default)]
struct WriteOrder {
    /// Writes submitted so far; locked while one is being submitted.
    submitted: tokio::sync::Mutex<u64>,
}

/// How often one write is submitted again after leader changes before its connection closes.
const RESUBMITS: usize = 3;

impl RequestQueue {
    /// Queues the answer to a request of `bytes`; false once the responder is gone.
    fn push(&self, item: Pending, bytes: usize) -> bool {
        self.outstanding.read(bytes);
        if self.tx.send(Queued { item: Box::new(item), cost: Some(bytes) }).is_err() {
            self.outstanding.answered(bytes);
            return false;
        }
        true
    }

    /// Tells the responder to close after what is queued.
    fn close(&self) {
        let _ = self.tx.send(Queued { item: Box::new(Pending::Close), cost: None });
    }
}

/// The responder's end of the request queue.
struct RequestReceiver {
    rx: mpsc::UnboundedReceiver<Queued>,
    outstanding: Arc<Outstanding>,
    writes: Arc<WriteOrder>,
}

impl RequestReceiver {
    /// Drops what is still queued when the responder stops: it will never be answered,
    /// so it no longer counts as outstanding.
    fn discard_rest(&mut self) {
        self.rx.close();
        while let Ok(Queued { cost, .. }) = self.rx.try_recv() {
            if let Some(bytes) = cost {
                self.outstanding.answered(bytes);
            }
        }
    }
}

/// What a new connection opens with.
enum Opening {
    FourLetterWord(FourLetterWord),
    Connect(Vec<u8>),
    /// The client closed the connection first.
    Closed,
}

async fn read_opening<R: AsyncRead + Unpin>(reader: &mut FrameReader<R>) -> Result<Opening, ReadError> {
    // A four-letter word is recognised only as the very first bytes of a connection.
    if !reader.fill_at_least(4).await? {
        return Ok(Opening::Closed);
    }
    let first: [u8; 4] = [reader.buffered()[0], reader.buffered()[1], reader.buffered()[2], reader.buffered()[3]];
    if let Some(word) = four_letter_word(first) {
        reader.consume(4);
        return Ok(Opening::FourLetterWord(word));
    }
    Ok(Opening::Connect(reader.next_frame().await?))
}

/// Serves one accepted connection (its two halves, plain or TLS) until it closes.
/// `identities` are what the connection is before any auth packet: its address, and the
/// subject of a verified client certificate.
pub async fn serve<R, W>(
    ctx: Arc<ServerContext>,
    conn: ConnId,
    rd: R,
    wr: W,
    remote: SocketAddr,
    stats: Arc<ConnStats>,
    identities: Vec<Id>,
) -> Result<(), ReadError>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut reader = FrameReader::new(rd, ctx.config.max_buffer as usize);

    let payload = match tokio::time::timeout(ctx.limits.handshake_timeout, read_opening(&mut reader)).await {
        Err(_) => {
            debug!(conn, %remote, timeout = ?ctx.limits.handshake_timeout, "no ConnectRequest in time; closing");
            return Ok(());
        }
        Ok(opening) => match opening? {
            Opening::Closed => return Ok(()),
            Opening::Connect(payload) => payload,
            Opening::FourLetterWord(word) => {
                let text = fourlw::run(&ctx, word);
                let mut wr = wr;
                use tokio::io::AsyncWriteExt;
                // A client that does not read the answer does not hold the connection open.
                let _ = tokio::time::timeout(ctx.limits.handshake_timeout, async {
                    let _ = wr.write_all(text.as_bytes()).await;
                    let _ = wr.shutdown().await;
                })
                .await;
                return Ok(());
            }
        },
    };
    let connect = match ConnectRequest::decode(&payload) {
        Ok(c) => c,
        Err(e) => {
            debug!(conn, %remote, error = %e, "bad connect request");
            return Ok(());
        }
    };

    let (out, out_rx) = OutboundQueue::new(ctx.limits.event_bytes);
    let handle = Arc::new(ConnHandle {
        session_id: std::sync::atomic::AtomicI64::new(0),
        auth: RwLock::new({
            let mut auth = Vec::with_capacity(identities.len());
            cmd::auth::add_identities(&mut auth, identities);
            auth
        }),
        out,
        closing: std::sync::atomic::AtomicBool::new(false),
    });
    let writer_stats = stats.clone();
    let writer_ctx = ctx.clone();
    let writer = tokio::spawn(write_loop(wr, out_rx, move |n| {
        writer_stats.sent.fetch_add(n, Ordering::Relaxed);
        writer_ctx.stats.packets_sent.fetch_add(n, Ordering::Relaxed);
    }));

    // The mode is sampled before the handshake: if it flips afterwards, the reader sees
    // the change and closes the connection.
    let mut mode = ctx.read_only.subscribe();
    let cut_off = *mode.borrow_and_update();
    // A server that loses its quorum while the handshake waits (for a leader, say) refuses
    // the client at once, as ZooKeeper's does when it stops serving.
    // Boxed for the same reason as the TLS handshake in `server::serve_one`: a large state
    // that the connection's long-lived task would otherwise carry for the session's life.
    let decided = tokio::select! {
        decided = Box::pin(handshake(&ctx, &connect, cut_off)) => decided,
        Ok(()) = mode.changed(), if !cut_off => Handshake::Refuse { reason: "this server lost its quorum" },
    };
    let (session_id, read_only) = match decided {
        Handshake::Established { response, session_id, timeout_ms, read_only } => {
            handle.session_id.store(session_id, Ordering::Relaxed);
            stats.session_id.store(session_id, Ordering::Relaxed);
            stats.timeout_ms.store(timeout_ms as i64, Ordering::Relaxed);
            ctx.db.register_conn(conn, handle.clone());
            ctx.db.claim_session(session_id, conn);
            let mut frame = Vec::with_capacity(48);
            response.encode_frame(&mut frame);
            handle.out.reply(frame.into());
            (session_id, read_only)
        }
        Handshake::Expired { response } => {
            let mut frame = Vec::with_capacity(48);
            response.encode_frame(&mut frame);
            handle.out.reply(frame.into());
            handle.out.close();
            drop(handle);
            let _ = writer.await;
            return Ok(());
        }
        Handshake::Refuse { reason } => {
            debug!(conn, %remote, reason, "connection refused");
            handle.out.close();
            drop(handle);
            let _ = writer.await;
            return Ok(());
        }
    };

    let (pending_tx, pending_rx) = mpsc::unbounded_channel();
    let outstanding = Arc::new(Outstanding::new(ctx.outstanding.clone(), ctx.limits));
    let writes = Arc::new(WriteOrder::default());
    let pending = RequestQueue { tx: pending_tx, outstanding: outstanding.clone(), writes: writes.clone() };
    let gate = Arc::new(ReadGate::default());
    let responder = tokio::spawn(respond(
        ctx.clone(),
        conn,
        session_id,
        handle.clone(),
        stats.clone(),
        gate.clone(),
        RequestReceiver { rx: pending_rx, outstanding, writes },
    ));
    let conn_mode = ConnMode { read_only, changes: mode };
    let result = read_requests(&ctx, session_id, &handle, &stats, &gate, &mut reader, &pending, conn_mode).await;
    if let Some(reason) = handle.out.kill_reason() {
        warn!(conn, %remote, session = format_args!("0x{session_id:x}"), reason, "closing the connection");
    }
    if read_only {
        ctx.read_only.detach_local(session_id);
    }
    pending.close();
    drop(pending);
    let _ = responder.await;
    drop(handle);
    ctx.db.unregister_conn(conn);
    let _ = writer.await;
    match result {
        Err(ReadError::Closed) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The server mode a connection was established in.
struct ConnMode {
    /// Served in read-only mode: writes get NotReadOnly, the session is local.
    read_only: bool,
    /// Changes when the server enters or leaves read-only mode; the connection then closes.
    changes: tokio::sync::watch::Receiver<bool>,
}

/// Decodes requests and queues them; returns when the client closes or misbehaves, or
/// when the server's read-only mode changes.
#[allow(clippy::too_many_arguments)]
async fn read_requests(
    ctx: &ServerContext,
    session_id: i64,
    handle: &ConnHandle,
    stats: &ConnStats,
    gate: &ReadGate,
    reader: &mut FrameReader<impl AsyncRead + Unpin>,
    pending: &RequestQueue,
    mut mode: ConnMode,
) -> Result<(), ReadError> {
    let policy = WritePolicy { ttl_enabled: ctx.config.ttl_enabled };
    let mut mode_may_change = true;
    loop {
        // Read only while the connection's outstanding requests are within their bounds.
        // `next_frame` only reads into its buffer, so it is safe to abandon here.
        let next = async {
            pending.outstanding.wait_turn().await;
            reader.next_frame().await
        };
        let frame = tokio::select! {
            frame = next => frame?,
            changed = mode.changes.changed(), if mode_may_change => {
                if changed.is_ok() {
                    debug!(session = format_args!("0x{session_id:x}"), "read-only mode changed; closing the connection");
                    return Ok(());
                }
                // The mode can no longer change: keep serving.
                mode_may_change = false;
                continue;
            }
            () = handle.out.killed() => return Ok(()),
        };
        let cost = frame.len();
        let at = Instant::now();
        if mode.read_only {
            if let Some((item, closing)) = refuse_in_read_only(ctx, session_id, &frame, at) {
                stats.received.fetch_add(1, Ordering::Relaxed);
                ctx.stats.packets_received.fetch_add(1, Ordering::Relaxed);
                if !pending.push(item, cost) || closing {
                    pending.close();
                    return Ok(());
                }
                continue;
            }
        } else {
            ctx.sessions.touch(session_id);
        }
        stats.received.fetch_add(1, Ordering::Relaxed);
        ctx.stats.packets_received.fetch_add(1, Ordering::Relaxed);

        let mut r = JuteReader::new(&frame);
        let (Ok(req_xid), Ok(op_raw)) = (r.read_i32(), r.read_i32()) else {
            return Ok(()); // not even a header: drop the connection
        };
        let body = &frame[8..];
        let op = OpCode::from_i32(op_raw);
        let decoded = decode_request(op_raw, body);
        let (op, req) = match (op, decoded) {
            // Unknown opcodes and a top-level check get Unimplemented, then the connection closes.
            (None, _) | (Some(OpCode::Check), _) | (_, Err(DecodeError::UnknownOpcode(_))) => {
                let reply =
                    Pending::Reply { xid: req_xid, op: OpCode::Error, err: ErrorCode::Unimplemented, body: None, at };
                pending.push(reply, cost);
                pending.close();
                return Ok(());
            }
            (Some(op), Err(_)) => {
                pending
                    .push(Pending::Reply { xid: req_xid, op, err: ErrorCode::MarshallingError, body: None, at }, cost);
                continue;
            }
            (Some(op), Ok(req)) => (op, req),
        };

        if ctx.security.sasl_required && !matches!(req, Request::Auth { .. } | Request::Sasl { .. }) {
            let authenticated = handle.auth.read().iter().any(|id| id.scheme == "sasl");
            if !authenticated {
                // `AuthenticationHelper.enforceAuthentication`: answer, then close.
                let err = ErrorCode::SessionClosedRequireSaslAuth;
                pending.push(Pending::Reply { xid: req_xid, op, err, body: None, at }, cost);
                pending.close();
                return Ok(());
            }
        }
        let item = match req {
            Request::Ping => Pending::Ping,
            Request::Auth { scheme, auth, .. } => Pending::Auth { xid: req_xid, scheme, auth },
            Request::Sync { path } => Pending::Sync { xid: req_xid, path, at },
            Request::CloseSession => {
                handle.closing.store(true, Ordering::Release);
                gate.wait_idle().await;
                let txn = TxnOp::CloseSession { session_id };
                let (proposal, _) = propose(ctx, session_id, handle, &pending.writes, txn).await;
                pending.push(Pending::CloseAfter { xid: req_xid, proposal }, cost);
                return Ok(());
            }
            req @ Request::Reconfig { .. } => {
                match cmd::reconfig::precheck(ctx.config.reconfig_enabled, ctx.config.is_standalone()) {
                    Err(err) => Pending::Reply { xid: req_xid, op, err, body: None, at },
                    Ok(()) => {
                        gate.wait_idle().await;
                        // Not submitted again itself, but an earlier write must not be
                        // submitted again behind it.
                        *pending.writes.submitted.lock().await += 1;
                        let auth = handle.auth.read().clone();
                        let audit = audit_write(ctx, session_id, &auth, &TxnOp::SetConfig { members: String::new() });
                        let proposal = Box::pin(cmd::reconfig::start(ctx.consensus.clone(), session_id, auth, req));
                        Pending::Write { xid: req_xid, op, multi_kinds: Vec::new(), proposal, seq: None, at, audit }
                    }
                }
            }
            Request::Sasl { token } => Pending::Sasl { xid: req_xid, token },
            Request::AddWatch { .. }
            | Request::CheckWatches { .. }
            | Request::RemoveWatches { .. }
            | Request::SetWatches { .. } => {
                gate.queued();
                Pending::Watch { xid: req_xid, op, req, at }
            }
            Request::Create { .. }
            | Request::CreateTtl { .. }
            | Request::Delete { .. }
            | Request::DeleteContainer { .. }
            | Request::SetData { .. }
            | Request::SetAcl { .. }
            | Request::Multi(_) => {
                gate.wait_idle().await;
                write_item(ctx, session_id, handle, &pending.writes, req_xid, op, req, policy, at).await
            }
            other => {
                gate.queued();
                Pending::Read { xid: req_xid, op, req: other, at }
            }
        };
        if !pending.push(item, cost) {
            return Ok(());
        }
    }
}

/// In read-only mode, writes, `sync` and `reconfig` are answered NotReadOnly (as
/// ZooKeeper's ReadOnlyRequestProcessor does) and closeSession ends the local session.
/// Returns the answer and whether the connection closes after it, or `None` for requests
/// served as usual (reads, watches, ping, auth, ...).
fn refuse_in_read_only(ctx: &ServerContext, session_id: i64, frame: &[u8], at: Instant) -> Option<(Pending, bool)> {
    let mut r = JuteReader::new(frame);
    let (Ok(xid), Ok(op_raw)) = (r.read_i32(), r.read_i32()) else {
        return None;
    };
    let op = OpCode::from_i32(op_raw)?;
    match op {
        OpCode::Create
        | OpCode::Create2
        | OpCode::CreateContainer
        | OpCode::CreateTtl
        | OpCode::Delete
        | OpCode::DeleteContainer
        | OpCode::SetData
        | OpCode::SetAcl
        | OpCode::Multi
        | OpCode::Sync
        | OpCode::Reconfig => Some((Pending::Reply { xid, op, err: ErrorCode::NotReadOnly, body: None, at }, false)),
        OpCode::CloseSession => {
            ctx.read_only.close_local(session_id);
            Some((Pending::Reply { xid, op, err: ErrorCode::Ok, body: None, at }, true))
        }
        _ => None,
    }
}

/// Validates a write locally and submits it to consensus.
#[allow(clippy::too_many_arguments)]
async fn write_item(
    ctx: &ServerContext,
    session_id: i64,
    handle: &ConnHandle,
    writes: &WriteOrder,
    req_xid: i32,
    op: OpCode,
    req: Request,
    policy: WritePolicy,
    at: Instant,
) -> Pending {
    let multi_kinds = cmd::write::multi_kinds(&req);
    if let Some((count, failed_at, code)) = cmd::write::precheck_multi(&req, policy) {
        let body = Response::Multi(cmd::write::refused_multi(count, failed_at, code));
        return Pending::Reply { xid: req_xid, op, err: ErrorCode::Ok, body: Some(body), at };
    }
    match cmd::write::to_txn_op(op, req, policy) {
        Ok(txn_op) => {
            let audit = audit_write(ctx, session_id, &handle.auth.read(), &txn_op);
            let (proposal, seq) = propose(ctx, session_id, handle, writes, txn_op).await;
            Pending::Write { xid: req_xid, op, multi_kinds, proposal, seq: Some(seq), at, audit }
        }
        Err(err) => Pending::Reply { xid: req_xid, op, err, body: None, at },
    }
}

/// Audits an authentication attempt (a Roost addition: ZooKeeper audits writes only), with the
/// connection's identities after it (a rejected name is not logged: it was never verified).
fn audit_auth(ctx: &ServerContext, session_id: i64, ids: &[Id], result: AuditResult) {
    if let Some(log) = &ctx.security.audit {
        log.log(&Actor::new(Some(session_id), ids).event("auth"), result);
    }
}

/// The audit lines of a write, when the audit log is on.
fn audit_write(ctx: &ServerContext, session_id: i64, auth: &[Id], op: &TxnOp) -> Option<Box<WriteAudit>> {
    ctx.security.audit.as_ref()?;
    WriteAudit::describe(Actor::new(Some(session_id), auth), op).map(Box::new)
}

/// Submits a txn now (fixing its place in the log) and returns its outcome's future and
/// its place among the connection's writes.
async fn propose(
    ctx: &ServerContext,
    session_id: i64,
    handle: &ConnHandle,
    writes: &WriteOrder,
    op: TxnOp,
) -> (Proposal, u64) {
    let txn = Txn { session_id, time_ms: now_ms(), auth: handle.auth.read().clone(), op };
    let mut submitted = writes.submitted.lock().await;
    *submitted += 1;
    (submit(ctx, txn).await, *submitted)
}

async fn submit(ctx: &ServerContext, txn: Txn) -> Proposal {
    match ctx.consensus.submit(txn).await {
        Ok(outcome) => Box::pin(outcome),
        Err(e) => Box::pin(std::future::ready(Err(e))),
    }
}

/// Awaits a write's outcome. A write that its leader never committed is submitted again
/// while it is still the connection's latest write (see [`WriteOrder`]), so that its client
/// sees neither an error nor a closed connection because a leader froze.
async fn write_outcome(
    ctx: &ServerContext,
    writes: &WriteOrder,
    seq: Option<u64>,
    proposal: Proposal,
) -> Result<TxnOutcome, ConsensusError> {
    let mut outcome = proposal.await;
    for _ in 0..RESUBMITS {
        let (txn, leader) = match (seq, outcome) {
            (Some(_), Err(ConsensusError::NotCommitted { txn, leader })) => (txn, leader),
            (_, other) => return other,
        };
        let submitted = writes.submitted.lock().await;
        if Some(*submitted) != seq {
            return Err(ConsensusError::NotCommitted { txn, leader });
        }
        debug!(
            session = format_args!("0x{:x}", txn.session_id),
            leader, "write not committed by a replaced leader; submitting it again"
        );
        let again = submit(ctx, *txn).await;
        drop(submitted);
        outcome = again.await;
    }
    outcome
}

/// Answers one SASL request (`ZooKeeperServer.processSasl`); returns whether the connection closes.
fn answer_sasl(
    ctx: &ServerContext,
    handle: &ConnHandle,
    session_id: i64,
    exchange: &mut Option<crate::security::sasl::SaslExchange>,
    xid: i32,
    token: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    use crate::security::sasl::SaslOutcome;
    let ok = ReplyHeader { xid, zxid: 0, err: 0 };
    let Some(setup) = &ctx.security.sasl else {
        // No JAAS Server section: ZooKeeper answers success with a null token.
        encode_sasl_reply(out, &ok, None);
        return false;
    };
    let outcome = exchange.get_or_insert_with(|| setup.exchange()).step(setup, token);
    match outcome {
        SaslOutcome::Continue(token) => {
            encode_sasl_reply(out, &ok, Some(&token));
            false
        }
        SaslOutcome::Done { token, identities } => {
            cmd::auth::add_identities(&mut handle.auth.write(), identities);
            audit_auth(ctx, session_id, &handle.auth.read(), AuditResult::Success);
            encode_sasl_reply(out, &ok, token.as_deref());
            false
        }
        SaslOutcome::Failed => {
            audit_auth(ctx, session_id, &handle.auth.read(), AuditResult::Failure);
            let security = &ctx.security;
            if security.allow_sasl_failed_clients && !security.sasl_required {
                // `allowSaslFailedClients`: ZooKeeper answers success with no token and keeps
                // the connection, unauthenticated.
                encode_sasl_reply(out, &ok, None);
                return false;
            }
            let err =
                if security.sasl_required { ErrorCode::SessionClosedRequireSaslAuth } else { ErrorCode::AuthFailed };
            encode_sasl_reply(out, &ReplyHeader { xid, zxid: 0, err: err.as_i32() }, None);
            true
        }
    }
}

/// A connection's reply buffer grows to what its replies need (an idle session's pings
/// need a few bytes) and is let go above this.
const REPLY_BUFFER_KEPT: usize = 64 * 1024;

/// Answers queued requests in order.
async fn respond(
    ctx: Arc<ServerContext>,
    conn: ConnId,
    session_id: i64,
    handle: Arc<ConnHandle>,
    stats: Arc<ConnStats>,
    gate: Arc<ReadGate>,
    mut requests: RequestReceiver,
) {
    let super_digest = ctx.config.super_digest.clone();
    // This connection's SASL exchange, begun by its first SASL request.
    let mut sasl: Option<crate::security::sasl::SaslExchange> = None;
    // Replies are encoded into this one buffer and sent as exact-size copies, instead of
    // a fresh vector per reply growing by doubling.
    let mut out = Vec::new();
    let mut settled = SettledReads::default();
    while let Some(Queued { item, cost }) = requests.rx.recv().await {
        // A client that does not read its replies is not answered further: its requests
        // stay outstanding, and the reader stops reading its socket.
        handle.out.wait_room(ctx.limits.reply_bytes).await;
        if handle.out.is_killed() {
            if let Some(bytes) = cost {
                requests.outstanding.answered(bytes);
            }
            break;
        }
        out.clear();
        if out.capacity() > REPLY_BUFFER_KEPT {
            out = Vec::new(); // let a huge reply's buffer go
        }
        let mut close = false;
        let mut done: Option<(i32, OpCode, i64, Instant)> = None;
        match *item {
            Pending::Ping => {
                let header = ReplyHeader { xid: xid::PING, zxid: ctx.db.last_zxid(), err: 0 };
                encode_reply(&mut out, &header, None);
            }
            Pending::Auth { xid, scheme, auth } => {
                match cmd::auth::authenticate(&scheme, &auth, super_digest.as_deref()) {
                    Ok(ids) => {
                        cmd::auth::add_identities(&mut handle.auth.write(), ids);
                        audit_auth(&ctx, session_id, &handle.auth.read(), AuditResult::Success);
                        encode_reply(&mut out, &ReplyHeader { xid, zxid: 0, err: 0 }, None);
                    }
                    Err(code) => {
                        audit_auth(&ctx, session_id, &handle.auth.read(), AuditResult::Failure);
                        encode_reply(&mut out, &ReplyHeader { xid, zxid: 0, err: code.as_i32() }, None);
                        close = true;
                    }
                }
            }
            Pending::Sasl { xid, token } => {
                close = answer_sasl(&ctx, &handle, session_id, &mut sasl, xid, &token, &mut out);
            }
            Pending::Read { xid, op, req, at } => {
                ctx.consensus.settle_heard_commits(at, &mut settled).await;
                let auth = handle.auth.read();
                let reader = cmd::read::Reader { db: &ctx.db, conn, session_id, auth: &auth, replies: &handle.out };
                cmd::read::execute(&reader, xid, op, req, &mut out);
                drop(auth);
                gate.executed();
                done = Some((xid, op, ctx.db.last_zxid(), at));
            }
            Pending::Watch { xid, op, req, at } => {
                cmd::watch::execute(&ctx.db, conn, xid, req, &handle.out, &mut out);
                gate.executed();
                done = Some((xid, op, ctx.db.last_zxid(), at));
            }
            Pending::Write { xid, op, multi_kinds, proposal, seq, at, audit } => {
                let outcome = write_outcome(&ctx, &requests.writes, seq, proposal).await;
                if let (Some(audit), Some(log), Ok(outcome)) = (&audit, &ctx.security.audit, &outcome) {
                    audit.log(log, &outcome.result);
                }
                match outcome {
                    Ok(outcome) if outcome.result == Err(ErrorCode::SessionMoved) => {
                        // The client attached its session to another server since: this
                        // connection is stale. ZooKeeper closes it without an answer, so the
                        // client does not keep writing here (ZOOKEEPER-710).
                        debug!(
                            conn,
                            session = format_args!("0x{session_id:x}"),
                            "session moved; closing the stale connection"
                        );
                        close = true;
                    }
                    Ok(outcome) => {
                        let (zxid, _) = cmd::write::encode_outcome(&mut out, xid, op, &multi_kinds, &outcome);
                        done = Some((xid, op, zxid, at));
                    }
                    Err(e) => {
                        // No valid reply exists for a write whose fate is unknown: drop the connection.
                        debug!(conn, error = %e, "write failed in consensus");
                        close = true;
                    }
                }
            }
            Pending::Sync { xid, path, at } => {
                let barrier = ctx.consensus.read_barrier().await;
                let zxid = ctx.db.last_zxid();
                match barrier {
                    Ok(()) => {
                        let header = ReplyHeader { xid, zxid, err: 0 };
                        encode_reply(&mut out, &header, Some(&Response::Sync { path: &path }));
                    }
                    Err(e) => {
                        // The barrier failed (no leader, or it timed out): this server cannot
                        // promise the client an up-to-date view, so sync must not succeed.
                        // The client gets an error and the connection closes, so it moves on.
                        debug!(conn, error = %e, "sync barrier failed");
                        let header = ReplyHeader { xid, zxid, err: ErrorCode::ConnectionLoss.as_i32() };
                        encode_reply(&mut out, &header, None);
                        close = true;
                    }
                }
                done = Some((xid, OpCode::Sync, zxid, at));
            }
            Pending::Reply { xid, op, err, body, at } => {
                let zxid = ctx.db.last_zxid();
                encode_reply(&mut out, &ReplyHeader { xid, zxid, err: err.as_i32() }, body.as_ref());
                done = Some((xid, op, zxid, at));
            }
            Pending::CloseAfter { xid, proposal } => {
                let zxid = match proposal.await {
                    Ok(outcome) => outcome.zxid,
                    Err(_) => ctx.db.last_zxid(),
                };
                ctx.sessions.remove(session_id);
                encode_reply(&mut out, &ReplyHeader { xid, zxid, err: 0 }, None);
                close = true;
            }
            Pending::Close => close = true,
        }
        if !out.is_empty() {
            cmd::queue_reply(&handle.out, &mut out);
        }
        if let Some(bytes) = cost {
            requests.outstanding.answered(bytes);
        }
        if let Some((cxid, op, zxid, at)) = done {
            let latency = at.elapsed();
            ctx.stats.latency.record(latency);
            stats.latency.record(latency);
            *stats.last.lock() = LastOp {
                op: op.short_name(),
                cxid,
                zxid,
                at: SystemTime::now(),
                latency_ms: latency.as_millis() as u64,
            };
        }
        if close {
            handle.out.close();
            break;
        }
    }
    gate.close();
    requests.discard_rest();
}
