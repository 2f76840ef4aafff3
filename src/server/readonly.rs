//! What a member does while it is cut off from the quorum: ZooKeeper's read-only mode
//! (`readonlymode.enabled=true`), or else no service at all.
//!
//! Without read-only mode, a member that has lost its quorum (a leader without a majority,
//! a follower without a leader) for [`REFUSE_GRACE`] closes every client connection and
//! refuses new ones until the quorum is back, as ZooKeeper does when it shuts its server
//! down to look for a leader. Clients then move to a member that still has a quorum, and
//! no session is kept alive (or looks alive) on a member that cannot reach the leader.
//!
//! A member that has been cut off from the quorum for a grace period (ZooKeeper waits
//! `max(2 s, tickTime)` in LOOKING before it starts its `ReadOnlyZooKeeperServer`)
//! switches to read-only: it serves clients that set the `readOnly` flag of the
//! ConnectRequest from its local (possibly stale) tree, answers every write with
//! NotReadOnly (-119), and closes clients that did not set the flag. When the quorum is
//! back it switches to read-write again. Every switch closes the connections that were
//! established in the other mode, as ZooKeeper does when it replaces its server object,
//! so clients reconnect and learn the new mode from the handshake.
//!
//! Sessions created in read-only mode are *local*: they get an id and a password from
//! this server but are never proposed to the log, so no other member knows them and they
//! vanish when the server leaves read-only mode (a client that reconnects with such a
//! session to a read-write server is told it expired and starts a new one). ZooKeeper 3.8
//! makes them local sessions of the `LearnerSessionTracker` when `localSessionsEnabled`
//! is set and refuses the createSession otherwise; Roost always makes them local. A
//! client may not resume a replicated (global) session on a read-only server: ZooKeeper
//! closes such a connection (ZOOKEEPER-3863), and so does Roost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
// tokio's clock: the system clock in production, the simulated one under tests/sim.rs.
use tokio::time::Instant;
use tracing::{info, warn};

use super::handshake::Handshake;
use super::ServerContext;
use crate::db::Db;
use crate::proto::connect::{ConnectRequest, ConnectResponse};
use crate::session::{new_password, SessionIdGenerator};

/// How often the quorum is checked.
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// ZooKeeper's lower bound on the grace period before going read-only.
const MIN_GRACE: Duration = Duration::from_secs(2);
/// Without read-only mode: how long a member stays without quorum before it drops its
/// clients. `has_quorum` already allows two election timeouts without contact, so the
/// clients are dropped about 2 s after the quorum went away (ZooKeeper: about 2 s too).
const REFUSE_GRACE: Duration = Duration::from_secs(1);

/// A session that exists only on this server, while it is read-only.
struct LocalSession {
    password: [u8; 16],
    timeout: Duration,
    /// Open connections using the session.
    connections: usize,
    /// When the last connection closed (the session expires `timeout` later).
    idle_since: Option<Instant>,
}

/// The outcome of looking up a local session on reconnect.
#[derive(Debug, PartialEq, Eq)]
pub enum LocalLookup {
    /// Known, with a matching password (returned for the handshake reply): attached to
    /// the new connection.
    Attached([u8; 16]),
    /// Known, but the password does not match.
    BadPassword,
    /// Not a local session of this server.
    Unknown,
}

/// Read-only mode state of one server.
pub struct ReadOnlyMode {
    enabled: bool,
    /// True while the server is cut off from the quorum (read-only, or refusing clients
    /// when read-only mode is disabled). Connections watch it and close on a change.
    cut_off: watch::Sender<bool>,
    local: Mutex<HashMap<i64, LocalSession>>,
}

impl ReadOnlyMode {
    pub fn new(enabled: bool) -> ReadOnlyMode {
        ReadOnlyMode { enabled, cut_off: watch::Sender::new(false), local: Mutex::new(HashMap::new()) }
    }

    /// Whether `readonlymode.enabled` is set.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// True while the server serves read-only clients only.
    pub fn is_active(&self) -> bool {
        self.enabled && self.is_cut_off()
    }

    /// True while the server is cut off from the quorum: read-only when enabled, else
    /// refusing every client.
    pub fn is_cut_off(&self) -> bool {
        *self.cut_off.borrow()
    }

    /// A receiver whose current value is [`Self::is_cut_off`]; it sees a change when that flips.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.cut_off.subscribe()
    }

    /// Registers a new local session for a connection that uses it.
    pub fn create_local(&self, session_id: i64, password: [u8; 16], timeout_ms: i32) {
        let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
        self.local.lock().insert(session_id, LocalSession { password, timeout, connections: 1, idle_since: None });
    }

    /// Attaches a reconnecting client to its local session if the password matches.
    pub fn attach_local(&self, session_id: i64, password: &[u8]) -> LocalLookup {
        let mut local = self.local.lock();
        match local.get_mut(&session_id) {
            Some(s) if password.len() >= 16 && password[..16] == s.password[..] => {
                s.connections += 1;
                s.idle_since = None;
                LocalLookup::Attached(s.password)
            }
            Some(_) => LocalLookup::BadPassword,
            None => LocalLookup::Unknown,
        }
    }

    /// A connection using the local session closed.
    pub fn detach_local(&self, session_id: i64) {
        if let Some(s) = self.local.lock().get_mut(&session_id) {
            s.connections = s.connections.saturating_sub(1);
            if s.connections == 0 {
                s.idle_since = Some(Instant::now());
            }
        }
    }

    /// The client closed its local session.
    pub fn close_local(&self, session_id: i64) {
        self.local.lock().remove(&session_id);
    }

    /// Number of local sessions (`zk_local_sessions`).
    pub fn local_count(&self) -> usize {
        self.local.lock().len()
    }

    /// The handshake of a server in read-only mode (ZooKeeper's `ReadOnlyZooKeeperServer`):
    /// `db` is this server's (possibly stale) tree, `ids` its session id generator, and
    /// `timeout_ms` the client's requested timeout, already clamped to the server's bounds.
    pub fn handshake(&self, db: &Db, ids: &SessionIdGenerator, timeout_ms: i32, req: &ConnectRequest) -> Handshake {
        if req.read_only != Some(true) {
            return Handshake::Refuse { reason: "this server is read-only and the client did not ask for read-only" };
        }
        if req.last_zxid_seen > db.last_zxid() {
            return Handshake::Refuse { reason: "client has seen a zxid this server has not applied" };
        }
        let established = |session_id: i64, password: [u8; 16]| Handshake::Established {
            response: ConnectResponse { protocol_version: 0, timeout_ms, session_id, password, read_only: Some(true) },
            session_id,
            timeout_ms,
            read_only: true,
        };
        if req.session_id == 0 {
            let session_id = ids.next_id();
            let password = new_password();
            self.create_local(session_id, password, timeout_ms);
            return established(session_id, password);
        }
        match self.attach_local(req.session_id, &req.password) {
            LocalLookup::Attached(password) => established(req.session_id, password),
            LocalLookup::BadPassword => Handshake::Expired { response: ConnectResponse::expired(req) },
            LocalLookup::Unknown => {
                if db.read(|tree| tree.session(req.session_id).is_some()) {
                    // A replicated session cannot be validated or kept alive without the quorum.
                    Handshake::Refuse { reason: "refusing global session reconnection in read-only mode" }
                } else {
                    Handshake::Expired { response: ConnectResponse::expired(req) }
                }
            }
        }
    }

    /// Drops local sessions idle for longer than their timeout.
    fn expire_idle(&self, now: Instant) {
        self.local.lock().retain(|_, s| s.idle_since.is_none_or(|t| now.duration_since(t) < s.timeout));
    }

    fn set_cut_off(&self, cut_off: bool) {
        if !cut_off {
            self.local.lock().clear();
        }
        self.cut_off.send_replace(cut_off);
    }
}

/// The grace period before a server without quorum turns read-only.
pub fn grace_period(tick_time_ms: u32) -> Duration {
    MIN_GRACE.max(Duration::from_millis(u64::from(tick_time_ms)))
}

/// Follows the quorum and flips the cut-off state: read-only mode when it is enabled,
/// no service otherwise. Runs on every ensemble member.
pub async fn run_monitor(ctx: Arc<ServerContext>) {
    let grace = if ctx.read_only.enabled { grace_period(ctx.config.tick_time_ms) } else { REFUSE_GRACE };
    follow_quorum(&ctx.read_only, grace, || ctx.consensus.has_quorum()).await
}

/// The loop of [`run_monitor`]: `mode` is cut off once `has_quorum` has been false for
/// `grace`, and back as soon as it is true. The simulator (tests/sim.rs) runs it over
/// simulated members, on tokio's clock as here.
pub async fn follow_quorum(mode: &ReadOnlyMode, grace: Duration, has_quorum: impl Fn() -> bool) {
    let mut lost_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(CHECK_EVERY);
    loop {
        tick.tick().await;
        let now = Instant::now();
        if has_quorum() {
            lost_since = None;
            if mode.is_cut_off() {
                if mode.enabled {
                    info!("quorum regained; leaving read-only mode and closing read-only connections");
                } else {
                    info!("quorum regained; serving clients again");
                }
                mode.set_cut_off(false);
            }
        } else {
            let since = *lost_since.get_or_insert(now);
            if !mode.is_cut_off() && now.duration_since(since) >= grace {
                if mode.enabled {
                    info!(after = ?grace, "no quorum; entering read-only mode (serving read-only clients only)");
                } else {
                    warn!(after = ?grace, "no quorum; closing every client connection and refusing new ones until it is back");
                }
                mode.set_cut_off(true);
            }
        }
        mode.expire_idle(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_sessions_attach_detach_and_expire() {
        let ro = ReadOnlyMode::new(true);
        ro.create_local(7, [1; 16], 1000);
        assert_eq!(ro.attach_local(7, &[2; 16]), LocalLookup::BadPassword);
        assert_eq!(ro.attach_local(8, &[1; 16]), LocalLookup::Unknown);
        assert_eq!(ro.attach_local(7, &[1; 16]), LocalLookup::Attached([1; 16]));
        ro.detach_local(7);
        ro.detach_local(7);
        let later = Instant::now() + Duration::from_millis(1500);
        ro.expire_idle(Instant::now());
        assert_eq!(ro.local_count(), 1, "idle for less than its timeout");
        ro.expire_idle(later);
        assert_eq!(ro.local_count(), 0, "idle for longer than its timeout");
    }

    #[test]
    fn leaving_read_only_forgets_local_sessions_and_notifies() {
        let ro = ReadOnlyMode::new(true);
        let mut rx = ro.subscribe();
        assert!(!*rx.borrow_and_update());
        ro.set_cut_off(true);
        assert!(rx.has_changed().unwrap());
        assert!(*rx.borrow_and_update());
        ro.create_local(1, [0; 16], 1000);
        ro.set_cut_off(false);
        assert_eq!(ro.local_count(), 0);
        assert!(rx.has_changed().unwrap());
        assert_eq!(grace_period(500), Duration::from_secs(2));
        assert_eq!(grace_period(3000), Duration::from_secs(3));
    }
}
