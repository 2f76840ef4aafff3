//! ZooKeeper's read-only mode (`readonlymode.enabled=true`).
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
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;
use tracing::info;

use super::ServerContext;

/// How often the quorum is checked.
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// ZooKeeper's lower bound on the grace period before going read-only.
const MIN_GRACE: Duration = Duration::from_secs(2);

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
    /// True while the server is read-only. Connections watch it and close on a change.
    active: watch::Sender<bool>,
    local: Mutex<HashMap<i64, LocalSession>>,
}

impl ReadOnlyMode {
    pub fn new(enabled: bool) -> ReadOnlyMode {
        ReadOnlyMode { enabled, active: watch::Sender::new(false), local: Mutex::new(HashMap::new()) }
    }

    /// Whether `readonlymode.enabled` is set.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// True while the server serves read-only clients only.
    pub fn is_active(&self) -> bool {
        *self.active.borrow()
    }

    /// A receiver whose current value is the mode; it sees a change when the mode flips.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.active.subscribe()
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

    /// Drops local sessions idle for longer than their timeout.
    fn expire_idle(&self, now: Instant) {
        self.local.lock().retain(|_, s| s.idle_since.is_none_or(|t| now.duration_since(t) < s.timeout));
    }

    fn set_active(&self, active: bool) {
        if !active {
            self.local.lock().clear();
        }
        self.active.send_replace(active);
    }
}

/// The grace period before a server without quorum turns read-only.
pub fn grace_period(tick_time_ms: u32) -> Duration {
    MIN_GRACE.max(Duration::from_millis(u64::from(tick_time_ms)))
}

/// Follows the quorum and flips read-only mode. Runs only when read-only mode is
/// enabled on an ensemble member.
pub async fn run_monitor(ctx: Arc<ServerContext>) {
    let grace = grace_period(ctx.config.tick_time_ms);
    let mut lost_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(CHECK_EVERY);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let mode = &ctx.read_only;
        if ctx.consensus.has_quorum() {
            lost_since = None;
            if mode.is_active() {
                info!("quorum regained; leaving read-only mode and closing read-only connections");
                mode.set_active(false);
            }
        } else {
            let since = *lost_since.get_or_insert(now);
            if !mode.is_active() && now.duration_since(since) >= grace {
                info!(after = ?grace, "no quorum; entering read-only mode (serving read-only clients only)");
                mode.set_active(true);
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
        ro.set_active(true);
        assert!(rx.has_changed().unwrap());
        assert!(*rx.borrow_and_update());
        ro.create_local(1, [0; 16], 1000);
        ro.set_active(false);
        assert_eq!(ro.local_count(), 0);
        assert!(rx.has_changed().unwrap());
        assert_eq!(grace_period(500), Duration::from_secs(2));
        assert_eq!(grace_period(3000), Duration::from_secs(3));
    }
}
