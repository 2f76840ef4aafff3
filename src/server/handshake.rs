//! The connection handshake: ConnectRequest in, ConnectResponse out.
//!
//! A new session (id 0) is created through the log, so it exists on every replica
//! before the client hears of it. A reconnect must name a live session with its
//! password; otherwise the client gets `timeOut = 0` (its cue for "expired") and
//! the connection is closed; never a silently new session.
//!
//! In an ensemble the session table of the tree is the truth on every server: a
//! session exists iff the tree has it, unless the leader is proposing its expiry right
//! now. A server that has not caught up with the leader yet (just started) makes the
//! client wait briefly and then refuses it, so a stale tree never declares a live
//! session expired.
//!
//! A reconnect also makes this server the session's owner on the leader (ZooKeeper's
//! revalidation) before the client hears back, so writes through a connection the
//! client left behind on another server fail (see `consensus::owners`).
//!
//! A server in read-only mode runs [`super::readonly::ReadOnlyMode::handshake`]
//! instead: only clients that set the readOnly flag are served, and their new
//! sessions are local to this server.

use crate::proto::connect::{ConnectRequest, ConnectResponse};
use crate::session::new_password;
use crate::tree::txn::{OpResult, Txn, TxnOp};

use super::ServerContext;

/// What the handshake decided.
pub enum Handshake {
    /// The session is established: send `response`, then serve requests. `read_only`:
    /// the connection is served in read-only mode (and the session is local).
    Established { response: ConnectResponse, session_id: i64, timeout_ms: i32, read_only: bool },
    /// Send `response` (timeOut 0), then close.
    Expired { response: ConnectResponse },
    /// Close without a response (client ahead of this server, or the log failed).
    Refuse { reason: &'static str },
}

/// How long a connecting client waits for a starting server to join the ensemble.
const READY_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Runs the handshake for a decoded ConnectRequest; `cut_off`: whether the server was cut
/// off from the quorum when the connection started (see [`super::readonly`]).
pub async fn handshake(ctx: &ServerContext, req: &ConnectRequest, cut_off: bool) -> Handshake {
    if cut_off {
        if ctx.read_only.enabled() {
            let timeout_ms = ctx.config.clamp_session_timeout(req.timeout_ms);
            return ctx.read_only.handshake(&ctx.db, &ctx.ids, timeout_ms, req);
        }
        return Handshake::Refuse { reason: "this server has no quorum" };
    }
    if ctx.consensus.wait_ready(READY_WAIT).await.is_err() {
        return Handshake::Refuse { reason: "this server has not caught up with the leader yet" };
    }
    // Lost the quorum, not yet cut off (that waits a grace period, for the connections it
    // already serves): a new connection could neither revalidate its session nor keep it
    // alive here. A leader in that state is the isolated one; a new leader is (or soon
    // will be) serving elsewhere, so the client is sent on at once (it used to be held
    // until the cut-off). A follower without a leader is most often in an election that
    // ends within a second; the client waits for it, as it waits for a starting server,
    // rather than being bounced: clients that find every member refusing give up the
    // request (go-zookeeper fails it with ErrNoServer after one round).
    if !ctx.consensus.has_quorum() && (ctx.consensus.is_leader() || !ctx.consensus.wait_quorum(READY_WAIT).await) {
        return Handshake::Refuse { reason: "this server has no quorum" };
    }
    // A client that has seen a later zxid than ours must move to a more up-to-date server.
    if req.last_zxid_seen > ctx.db.last_zxid() {
        return Handshake::Refuse { reason: "client has seen a zxid this server has not applied" };
    }
    let timeout_ms = ctx.config.clamp_session_timeout(req.timeout_ms);
    // Answer with the readOnly byte only if the client sent one (old clients read 36 bytes).
    let read_only = req.read_only.map(|_| false);

    if req.session_id == 0 {
        return match create_session(ctx, timeout_ms).await {
            Some((session_id, password)) => Handshake::Established {
                response: ConnectResponse { protocol_version: 0, timeout_ms, session_id, password, read_only },
                session_id,
                timeout_ms,
                read_only: false,
            },
            None => Handshake::Refuse { reason: "could not create a session" },
        };
    }

    let mut known = ctx.db.read(|tree| tree.session(req.session_id).map(|s| s.password));
    if known.is_none() {
        // This member may not have applied the session's creation yet: a quorum without it
        // committed the entry, or the leader died before this member heard of the commit (a
        // new leader learns it only with its first entry). Catch up with the leader before
        // declaring the session expired; if that is not possible now, the client tries again.
        if ctx.consensus.read_barrier().await.is_err() {
            return Handshake::Refuse { reason: "could not catch up with the leader to look the session up" };
        }
        known = ctx.db.read(|tree| tree.session(req.session_id).map(|s| s.password));
    }
    match known {
        Some(password) if req.password.len() >= 16 && req.password[..16] == password[..] => {
            // A session whose close the leader is proposing right now is gone.
            if crate::session::expiry::closing_here(&ctx.consensus, &ctx.sessions, req.session_id) {
                return Handshake::Expired { response: ConnectResponse::expired(req) };
            }
            match ctx.consensus.attach_session(req.session_id, timeout_ms).await {
                Ok(true) => {}
                Ok(false) => return Handshake::Expired { response: ConnectResponse::expired(req) },
                Err(_) => return Handshake::Refuse { reason: "the leader could not revalidate the session" },
            }
            ctx.sessions.add(req.session_id, timeout_ms);
            Handshake::Established {
                response: ConnectResponse {
                    protocol_version: 0,
                    timeout_ms,
                    session_id: req.session_id,
                    password,
                    read_only,
                },
                session_id: req.session_id,
                timeout_ms,
                read_only: false,
            }
        }
        _ => Handshake::Expired { response: ConnectResponse::expired(req) },
    }
}

/// Creates a session with `timeout_ms` (already clamped) through the replicated log and
/// starts tracking its expiry here; `None` if the log refused it. Its id and password.
pub async fn create_session(ctx: &ServerContext, timeout_ms: i32) -> Option<(i64, [u8; 16])> {
    let session_id = ctx.ids.next_id();
    let password = new_password();
    let txn = Txn {
        session_id: 0,
        time_ms: now_ms(),
        auth: Vec::new(),
        op: TxnOp::CreateSession { session_id, timeout_ms, password },
    };
    match ctx.consensus.propose(txn).await {
        Ok(outcome) if matches!(outcome.result, Ok(OpResult::SessionCreated)) => {
            ctx.sessions.add(session_id, timeout_ms);
            Some((session_id, password))
        }
        _ => None,
    }
}
