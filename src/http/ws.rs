//! `/api/v1/watch`: the WebSocket watch stream.
//!
//! Client -> server (JSON text frames):
//! - `{"type":"subscribe","id":1,"path":"/a","mode":"node"|"children"|"subtree","data":false,"since_zxid":123}`
//! - `{"type":"unsubscribe","id":1}`
//! - `{"type":"ping"}`
//!
//! Server -> client:
//! - `{"type":"subscribed","id":1,"path":"/a","mode":"node","zxid":<cursor>}`
//! - events: `{"sub":1,"type":"NodeDataChanged","path":"/a","zxid":..,"stat":{..},"data":"..","encoding":"utf8"}`
//! - `{"type":"resync","sub":1,"reason":..}` when `since_zxid` is older than the ring buffer
//!   (or the server lost events): reload the state, then carry on with live events
//! - `{"type":"unsubscribed","id":1}`, `{"type":"pong"}`, `{"type":"error","id":..,"message":..}`
//!
//! Modes: `node` = every event whose path is the node (created, deleted, data, and its
//! children changing); `children` = the node's `NodeChildrenChanged` plus every event of
//! its direct children; `subtree` = the node and everything below it. Events arrive in
//! zxid order and only for nodes whose ACL grants the caller READ. A client more than
//! `ws_queue` events behind is closed with code 1008 and reason "slow consumer".

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State as AxState;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::proto::types::{perms, Id};
use crate::tree::txn::ChangeKind;

use super::auth::Caller;
use super::backend::ChangeEvent;
use super::codec::{self, encode_data, StatJson};
use super::error::ApiError;
use super::State;
use crate::state::feed::Replay;

/// Most subscriptions one socket may hold.
const MAX_SUBS: usize = 256;
/// A socket that cannot take a frame for this long is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Close code for policy violations (slow consumer, too many subscriptions).
const CLOSE_POLICY: u16 = 1008;
/// At most this many queued events are sent in one write.
const COALESCE_EVENTS: usize = 1024;
/// How long a subscriber's first event waits for others to share its write.
const FEED_LINGER: Duration = Duration::from_millis(5);

/// What a subscription covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Node,
    Children,
    Subtree,
}

/// One subscription of a socket.
#[derive(Debug, Clone)]
pub struct Sub {
    pub path: String,
    pub mode: Mode,
    pub data: bool,
}

impl Sub {
    /// Whether `ev` falls under this subscription (before the ACL check).
    pub fn matches(&self, ev: &ChangeEvent) -> bool {
        match self.mode {
            Mode::Node => ev.path == self.path,
            Mode::Children => {
                (ev.path == self.path && ev.kind == ChangeKind::ChildrenChanged)
                    || (ev.path != "/" && codec::parent_of(&ev.path) == self.path)
            }
            Mode::Subtree => {
                self.path == "/"
                    || ev.path == self.path
                    || ev.path.strip_prefix(&self.path).is_some_and(|r| r.starts_with('/'))
            }
        }
    }
}

/// The name of an event type, as in ZooKeeper's `Watcher.Event.EventType`.
pub fn kind_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Created => "NodeCreated",
        ChangeKind::Deleted => "NodeDeleted",
        ChangeKind::DataChanged => "NodeDataChanged",
        ChangeKind::ChildrenChanged => "NodeChildrenChanged",
    }
}

/// The JSON frame of one event for one subscription.
pub fn event_json(sub_id: &Value, sub: &Sub, ev: &ChangeEvent) -> String {
    let with_data = sub.data && ev.data.is_some();
    let fields = ev.encodings.get_or_encode(with_data, || event_fields(ev, with_data));
    format!("{{\"sub\":{sub_id},{fields}}}")
}

/// The fields of an event's frame other than `sub`, as JSON object members (no braces):
/// the same for every subscriber, so encoded once per event (see `EncodingCache`).
fn event_fields(ev: &ChangeEvent, with_data: bool) -> std::sync::Arc<str> {
    let mut v = json!({
        "type": kind_name(ev.kind),
        "path": ev.path,
        "zxid": ev.zxid,
        "stat": ev.stat.as_ref().map(StatJson::from),
    });
    if let (true, Some(d)) = (with_data, &ev.data) {
        let (text, enc) = encode_data(d, None);
        v["data"] = json!(text);
        v["encoding"] = json!(enc);
    }
    let object = v.to_string();
    object.strip_prefix('{').and_then(|o| o.strip_suffix('}')).unwrap_or_default().into()
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientMsg {
    Subscribe {
        id: Value,
        path: String,
        #[serde(default = "default_mode")]
        mode: Mode,
        #[serde(default)]
        data: bool,
        #[serde(default)]
        since_zxid: Option<i64>,
    },
    Unsubscribe {
        id: Value,
    },
    Ping,
}

fn default_mode() -> Mode {
    Mode::Node
}

/// `GET /api/v1/watch` (WebSocket upgrade).
pub async fn upgrade(
    AxState(state): AxState<State>,
    caller: Caller,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if !super::auth::same_origin(&headers) {
        return ApiError::Forbidden("cross-origin WebSocket refused".into()).into_response();
    }
    match ws {
        Ok(ws) => {
            let browser_session = caller.session.map(|(sid, _)| sid);
            ws.on_upgrade(move |socket| run(state, caller.ids, browser_session, socket)).into_response()
        }
        Err(e) => ApiError::bad_request(e.body_text()).into_response(),
    }
}

/// Per-socket state.
struct Conn {
    state: State,
    ids: Vec<Id>,
    subs: HashMap<String, (Value, Sub)>,
    /// The zxid of the last feed event this socket has processed.
    cursor: i64,
}

fn key(id: &Value) -> String {
    id.to_string()
}

impl Conn {
    fn readable(&self, ev: &ChangeEvent) -> bool {
        self.state.backend.check_perm(&ev.acl, &self.ids, perms::READ)
    }

    /// A past event as it may be replayed to this caller now: history is checked again
    /// against the ACL that holds now, so locking a node down also locks down its past.
    /// A node that no longer exists has no ACL now: its events are replayed without data.
    fn replayable(&self, ev: &ChangeEvent) -> Option<ChangeEvent> {
        match self.state.backend.get_acl(&ev.path, &[Id::new("super", "")]) {
            Ok((acl, _)) if self.state.backend.check_perm(&acl, &self.ids, perms::READ) => Some(ev.clone()),
            Ok(_) => None,
            Err(_) => Some(ChangeEvent { data: None, ..ev.clone() }),
        }
    }

    /// Frames for one event across all subscriptions.
    fn frames_for(&self, ev: &ChangeEvent) -> Vec<String> {
        if !self.subs.values().any(|(_, s)| s.matches(ev)) || !self.readable(ev) {
            return Vec::new();
        }
        self.subs.values().filter(|(_, s)| s.matches(ev)).map(|(id, s)| event_json(id, s, ev)).collect()
    }

    /// Handles one client frame; returns the frames to send, or a close reason.
    fn on_client(&mut self, text: &str) -> Result<Vec<String>, String> {
        let msg: ClientMsg = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => return Ok(vec![frame(json!({"type": "error", "message": format!("invalid message: {e}")}))]),
        };
        match msg {
            ClientMsg::Ping => Ok(vec![frame(json!({"type": "pong", "zxid": self.cursor}))]),
            ClientMsg::Unsubscribe { id } => {
                self.subs.remove(&key(&id));
                Ok(vec![frame(json!({"type": "unsubscribed", "id": id}))])
            }
            ClientMsg::Subscribe { id, path, mode, data, since_zxid } => {
                if let Err(e) = codec::validate_path(&path, false) {
                    return Ok(vec![frame(json!({"type": "error", "id": id, "message": e.to_string()}))]);
                }
                if self.subs.len() >= MAX_SUBS && !self.subs.contains_key(&key(&id)) {
                    return Err(format!("more than {MAX_SUBS} subscriptions"));
                }
                let sub = Sub { path: path.clone(), mode, data };
                let mut out = vec![frame(
                    json!({"type": "subscribed", "id": id, "path": path, "mode": mode_name(mode), "zxid": self.cursor}),
                )];
                if let Some(since) = since_zxid {
                    match self.state.feed.replay(since, self.cursor) {
                        Replay::TooOld => out.push(frame(
                            json!({"type": "resync", "sub": id, "reason": "since_zxid is older than the event buffer"}),
                        )),
                        Replay::Events(evs) => {
                            for ev in evs.iter().filter(|e| sub.matches(e) && self.readable(e)) {
                                if let Some(ev) = self.replayable(ev) {
                                    out.push(event_json(&id, &sub, &ev));
                                }
                            }
                        }
                    }
                }
                self.subs.insert(key(&id), (id, sub));
                Ok(out)
            }
        }
    }
}

fn frame(v: Value) -> String {
    v.to_string()
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Node => "node",
        Mode::Children => "children",
        Mode::Subtree => "subtree",
    }
}

/// Sends frames in order, in as few writes as the socket takes (one flush for the lot);
/// false when the socket is gone or stuck. A socket that cannot take the frames within
/// [`SEND_TIMEOUT`] is a slow consumer: it is told so (if it ever reads again) and
/// dropped, so that it never holds up the rest of the server.
async fn send_all(sink: &mut futures::stream::SplitSink<WebSocket, Message>, frames: Vec<String>) -> bool {
    if frames.is_empty() {
        return true;
    }
    let sent = tokio::time::timeout(SEND_TIMEOUT, async {
        for f in frames {
            sink.feed(Message::Text(f.into())).await?;
        }
        sink.flush().await
    });
    match sent.await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            close(sink, format!("slow consumer: frames could not be sent for {}s", SEND_TIMEOUT.as_secs())).await;
            false
        }
    }
}

async fn close(sink: &mut futures::stream::SplitSink<WebSocket, Message>, reason: String) {
    let frame = CloseFrame { code: CLOSE_POLICY, reason: reason.into() };
    let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
}

/// How often an open stream renews its browser session's ZooKeeper session. The server
/// may grant less than the timeout asked for (its maxSessionTimeout), so this is well
/// below any practical timeout rather than a third of the asked one; a renewal is a map
/// lookup and a set insert.
const KEEP_ALIVE: Duration = Duration::from_secs(1);

async fn run(state: State, ids: Vec<Id>, browser_session: Option<String>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (mut rx, cursor) = state.feed.join();
    let queue = state.opts.ws_queue;
    // A ping every interval; a client silent for two intervals (no pong, nothing) is gone.
    let ping_every = state.opts.ws_ping_interval;
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut last_heard = tokio::time::Instant::now();
    // An open page is a sign of life of its browser session (and of the ZooKeeper session
    // holding its ephemeral nodes), whether or not it sends anything.
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    let mut conn = Conn { state, ids, subs: HashMap::new(), cursor };
    loop {
        tokio::select! {
            _ = keep_alive.tick(), if browser_session.is_some() => {
                let web = browser_session.as_deref().and_then(|sid| conn.state.sessions.get(sid));
                if let Some(web) = web {
                    super::zk_session::keep_alive(&conn.state, &web);
                }
            }
            _ = pings.tick() => {
                if last_heard.elapsed() >= 2 * ping_every {
                    close(&mut sink, format!("no answer to pings for {}s", (2 * ping_every).as_secs())).await;
                    break;
                }
                let ping = sink.send(Message::Ping(Default::default()));
                if !matches!(tokio::time::timeout(SEND_TIMEOUT, ping).await, Ok(Ok(()))) {
                    break;
                }
            }
            incoming = stream.next() => {
                last_heard = tokio::time::Instant::now();
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                match conn.on_client(text.as_str()) {
                    Ok(frames) => if !send_all(&mut sink, frames).await { break },
                    Err(reason) => { close(&mut sink, reason).await; break; }
                }
            }
            msg = rx.recv() => {
                let lagged = || format!("slow consumer: more than {queue} events behind");
                match msg {
                    Ok(ev) => {
                        conn.cursor = conn.cursor.max(ev.zxid);
                        let mut frames = conn.frames_for(&ev);
                        // The events that follow within FEED_LINGER go out in the same write:
                        // under a write load a wake-up and a syscall per event and subscriber
                        // cost more than the writes themselves (20 subscribers took set
                        // throughput from 60k to 6k/s); a person watching does not see 5 ms.
                        if !frames.is_empty() {
                            tokio::time::sleep(FEED_LINGER).await;
                        }
                        let mut behind = false;
                        for _ in 1..COALESCE_EVENTS {
                            match rx.try_recv() {
                                Ok(ev) => {
                                    conn.cursor = conn.cursor.max(ev.zxid);
                                    frames.extend(conn.frames_for(&ev));
                                }
                                Err(broadcast::error::TryRecvError::Lagged(_)) => { behind = true; break; }
                                Err(_) => break,
                            }
                        }
                        if !send_all(&mut sink, frames).await { break }
                        if behind {
                            close(&mut sink, lagged()).await;
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        close(&mut sink, lagged()).await;
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        }
    }
}
