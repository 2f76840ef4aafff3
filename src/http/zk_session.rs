//! The ZooKeeper session behind a browser session, which owns the ephemeral nodes that
//! browser session creates.
//!
//! An ephemeral node lives as long as the ZooKeeper session that created it. A navigator or
//! REST user who creates one gets a session held for their browser session (the `roost_sid`
//! cookie; a caller without one is given one with the answer): opened through the
//! replicated log at the first ephemeral create, kept alive by every request of that
//! browser session and by its open live streams (what pings are on the native port), and
//! closed at logout. A browser that goes away stops the signs of life and the leader
//! expires the session [`TIMEOUT_MS`] later, as it does any session whose client vanished;
//! its ephemerals go with it.

use std::collections::HashMap;

use axum::http::{header, HeaderValue};
use axum::response::Response;
use parking_lot::Mutex;

use crate::proto::types::ErrorCode;
use crate::tree::txn::{OpResult, TxnOp};

use super::auth::{session_cookie, Caller, WebSession};
use super::error::ApiError;
use super::ops::run_write_in;
use super::{Backend, State};

/// The timeout asked for (the server clamps it to its session timeout bounds).
pub const TIMEOUT_MS: i32 = 30_000;
/// Sessions held for the browser sessions of one client address, like ZooKeeper's
/// per-address connection limit: a client looping on fresh cookies cannot pile them up.
const MAX_PER_ADDRESS: usize = 16;
/// Sessions this port holds at most.
const MAX_HELD: usize = 1024;

/// The sessions this port opened, with the client address each was opened for. Entries of
/// sessions that ended are dropped at the next open.
#[derive(Default)]
pub struct Held {
    map: Mutex<HashMap<i64, String>>,
}

impl Held {
    /// Refuses a new session for `address` beyond the bounds.
    fn admit(&self, backend: &dyn Backend, address: &str) -> Result<(), ApiError> {
        let mut map = self.map.lock();
        map.retain(|id, _| backend.session_alive(*id));
        if map.len() >= MAX_HELD {
            return Err(ApiError::TooManySessions(format!(
                "this member holds {MAX_HELD} sessions for HTTP clients already"
            )));
        }
        if map.values().filter(|a| *a == address).count() >= MAX_PER_ADDRESS {
            return Err(ApiError::TooManySessions(format!(
                "{address} holds {MAX_PER_ADDRESS} sessions for its browser sessions already; log out of some"
            )));
        }
        Ok(())
    }

    fn insert(&self, session_id: i64, address: &str) {
        self.map.lock().insert(session_id, address.to_owned());
    }

    fn remove(&self, session_id: i64) {
        self.map.lock().remove(&session_id);
    }

    /// The client address a held session was opened for, if this port holds it.
    pub fn client_of(&self, session_id: i64) -> Option<String> {
        self.map.lock().get(&session_id).cloned()
    }
}

/// The backend's sessions for a caller with `auth`, the ones this port holds named as such
/// (they have no client connection of their own).
pub fn sessions(state: &State, auth: &[crate::proto::types::Id]) -> Vec<super::SessionInfo> {
    let mut list = state.backend.sessions(auth);
    for s in list.iter_mut().filter(|s| s.client.is_none()) {
        s.client = state.zk_sessions.client_of(s.id).map(|address| format!("{address} (browser session)"));
    }
    list
}

/// Whether `op` creates an ephemeral node (and so needs a session).
pub fn needs_session(op: &TxnOp) -> bool {
    match op {
        TxnOp::Create { mode, .. } => mode.is_ephemeral(),
        TxnOp::Multi(ops) => ops.iter().any(needs_session),
        _ => false,
    }
}

/// The browser session an ephemeral write made for its caller, to hand back with the
/// answer: its cookie, and the CSRF token later writes with that cookie must carry.
#[derive(Debug, Default)]
pub struct NewBrowserSession {
    cookie: Option<HeaderValue>,
    csrf: Option<String>,
}

impl NewBrowserSession {
    /// Adds the cookie and an `X-CSRF-Token` header to `resp`, if a session was made.
    pub fn add_to(self, resp: &mut Response) {
        if let Some(cookie) = self.cookie {
            resp.headers_mut().append(header::SET_COOKIE, cookie);
        }
        if let Some(token) = self.csrf.and_then(|t| HeaderValue::from_str(&t).ok()) {
            resp.headers_mut().insert("x-csrf-token", token);
        }
    }
}

/// Runs `op` (which creates ephemeral nodes) as the ZooKeeper session of the caller's
/// browser session, making either when missing.
pub async fn write(state: &State, caller: &Caller, op: TxnOp) -> Result<(OpResult, NewBrowserSession), ApiError> {
    let (sid, made) = match &caller.session {
        Some((sid, _)) => (sid.clone(), NewBrowserSession::default()),
        None => {
            // Keeps the page's token (the `roost_csrf` cookie), so an open page goes on working.
            let (sid, s) = state.sessions.create_with_csrf(caller.address(), caller.csrf_cookie.clone());
            let cookie = session_cookie(&state.base, &sid);
            (sid, NewBrowserSession { cookie: Some(cookie), csrf: Some(s.csrf) })
        }
    };
    let zk = ensure(state, &sid, caller.address()).await?;
    match run_write_in(state, op.clone(), &caller.ids, Some(zk)).await {
        // Expired since the browser's last sign of life (it was away longer than the
        // timeout): a new session for this browser session, once.
        Err(ApiError::Zk { code: ErrorCode::SessionExpired, .. }) => {
            state.sessions.update(&sid, |s| {
                if s.zk_session == Some(zk) {
                    s.zk_session = None;
                }
            });
            let zk = ensure(state, &sid, caller.address()).await?;
            Ok((run_write_in(state, op, &caller.ids, Some(zk)).await?, made))
        }
        result => Ok((result?, made)),
    }
}

/// The live ZooKeeper session of browser session `sid`, opened if it has none.
async fn ensure(state: &State, sid: &str, address: &str) -> Result<i64, ApiError> {
    let gone = || ApiError::bad_request("the browser session ended; reload the page");
    let current = state.sessions.get(sid).ok_or_else(gone)?.zk_session;
    if let Some(id) = current.filter(|id| state.backend.session_alive(*id)) {
        return Ok(id);
    }
    state.zk_sessions.admit(&*state.backend, address)?;
    let opened =
        state.backend.open_session(TIMEOUT_MS).await.map_err(|code| ApiError::Zk { code, path: None, index: None })?;
    state.zk_sessions.insert(opened.id, address);
    // Two requests of one browser session may each open one at once: the first stored
    // stays, the other is closed again.
    let other = state.sessions.get(sid).and_then(|s| s.zk_session).filter(|id| state.backend.session_alive(*id));
    let kept = other.unwrap_or(opened.id);
    let stored = state.sessions.update(sid, |s| s.zk_session = Some(kept));
    if kept != opened.id || !stored {
        close(state, opened.id).await;
    }
    if !stored {
        return Err(gone());
    }
    Ok(kept)
}

/// A sign of life of browser session `web`: keeps its ZooKeeper session, if any, alive.
pub fn keep_alive(state: &State, web: &WebSession) {
    if let Some(id) = web.zk_session {
        state.backend.touch_session(id);
    }
}

/// Closes the ZooKeeper session of browser session `sid` (at logout): its ephemeral nodes
/// are deleted.
pub async fn end(state: &State, sid: &str) {
    let mut taken = None;
    state.sessions.update(sid, |s| taken = s.zk_session.take());
    if let Some(id) = taken {
        close(state, id).await;
    }
}

async fn close(state: &State, session_id: i64) {
    state.zk_sessions.remove(session_id);
    if let Err(code) = state.backend.close_session(session_id).await {
        // Not closed now: it expires after its timeout, as nothing keeps it alive any more.
        tracing::warn!(session = format_args!("{session_id:#x}"), ?code, "closing an HTTP client's session failed");
    }
}
