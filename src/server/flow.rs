//! Flow control on the client port: how much one connection, and all of them together,
//! may hold in the server.
//!
//! A connection's requests are counted from the moment the reader decodes them until the
//! responder has answered them. The reader reads the next request only when
//! - the connection has fewer than [`Limits::requests`] requests and fewer than
//!   [`Limits::request_bytes`] request bytes outstanding, and
//! - the server as a whole is within `globalOutstandingLimit`, or this connection has
//!   nothing outstanding (ZooKeeper's rule: over the global limit, a connection with
//!   requests in flight stops being read, one without may still send one).
//!
//! Together with the reply budget of the outbound queue (see [`super::outbound`]), a client
//! that never reads its replies ends up with its socket unread, as with ZooKeeper, instead
//! of growing the server. The worst case per connection, with the defaults, is in
//! docs/SECURITY.md.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// Requests one connection may have outstanding before its socket is left unread.
pub const MAX_REQUESTS_PER_CONNECTION: usize = 1_000;
/// Request bytes one connection may have outstanding (at least one `jute.maxbuffer` frame
/// always fits: a connection with nothing outstanding is always read).
pub const MAX_REQUEST_BYTES_PER_CONNECTION: usize = 4 << 20;
/// Reply bytes queued for one connection before its next request waits to be answered.
pub const MAX_REPLY_BYTES_PER_CONNECTION: usize = 1 << 20;
/// Unsent watch-event bytes after which a connection is closed as a slow consumer.
pub const MAX_EVENT_BYTES_PER_CONNECTION: usize = 8 << 20;

/// The bounds a connection runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub requests: usize,
    pub request_bytes: usize,
    pub reply_bytes: usize,
    pub event_bytes: usize,
    /// `zookeeper.nio.sessionlessCnxnTimeout`: a connection that has not sent its
    /// ConnectRequest (or four-letter word) by then is closed.
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            requests: MAX_REQUESTS_PER_CONNECTION,
            request_bytes: MAX_REQUEST_BYTES_PER_CONNECTION,
            reply_bytes: MAX_REPLY_BYTES_PER_CONNECTION,
            event_bytes: MAX_EVENT_BYTES_PER_CONNECTION,
            handshake_timeout: Duration::from_millis(crate::config::DEFAULT_HANDSHAKE_TIMEOUT_MS),
        }
    }
}

impl Limits {
    /// The limits a server with `config` runs its connections under.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Limits {
            // One request frame of the largest size always fits.
            request_bytes: MAX_REQUEST_BYTES_PER_CONNECTION.max(2 * config.max_buffer as usize),
            handshake_timeout: Duration::from_millis(config.handshake_timeout_ms),
            ..Limits::default()
        }
    }
}

/// Requests outstanding on the whole server (`globalOutstandingLimit`).
#[derive(Debug)]
pub struct GlobalOutstanding {
    count: AtomicUsize,
    /// 0: no global limit.
    limit: usize,
    /// Signalled when the count falls back to the limit.
    within: Notify,
}

impl GlobalOutstanding {
    pub fn new(limit: usize) -> Self {
        GlobalOutstanding { count: AtomicUsize::new(0), limit, within: Notify::new() }
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    fn over(&self) -> bool {
        self.limit > 0 && self.count() > self.limit
    }

    fn add(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    fn remove(&self) {
        let before = self.count.fetch_sub(1, Ordering::AcqRel);
        if self.limit > 0 && before == self.limit + 1 {
            self.within.notify_waiters();
        }
    }
}

/// One connection's outstanding requests.
#[derive(Debug)]
pub struct Outstanding {
    global: Arc<GlobalOutstanding>,
    limits: Limits,
    requests: AtomicUsize,
    bytes: AtomicUsize,
    answered: Notify,
    /// Set while the reader waits for a turn: only then does an answer need to wake it
    /// (waking costs a lock per request on the hot path otherwise).
    reader_waiting: AtomicBool,
}

impl Outstanding {
    pub fn new(global: Arc<GlobalOutstanding>, limits: Limits) -> Self {
        Outstanding {
            global,
            limits,
            requests: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            answered: Notify::new(),
            reader_waiting: AtomicBool::new(false),
        }
    }

    // The counts and `reader_waiting` use SeqCst: the reader stores the flag then reads
    // the counts, an answer changes the counts then reads the flag, and one of the two
    // must see the other's write, or the reader could sleep through the answer it awaits.
    fn may_read(&self) -> bool {
        let requests = self.requests.load(Ordering::SeqCst);
        if requests == 0 {
            return true;
        }
        requests < self.limits.requests
            && self.bytes.load(Ordering::SeqCst) < self.limits.request_bytes
            && !self.global.over()
    }

    /// Waits until the next request may be read.
    pub async fn wait_turn(&self) {
        if self.may_read() {
            return;
        }
        loop {
            let answered = self.answered.notified();
            let within = self.global.within.notified();
            self.reader_waiting.store(true, Ordering::SeqCst);
            if self.may_read() {
                self.reader_waiting.store(false, Ordering::SeqCst);
                return;
            }
            tokio::select! {
                () = answered => {}
                () = within => {}
            }
        }
    }

    /// Counts a request of `bytes` read from the socket; it stays counted until [`answered`](Self::answered).
    pub fn read(&self, bytes: usize) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.bytes.fetch_add(bytes, Ordering::SeqCst);
        self.global.add();
    }

    /// A request of `bytes` was answered (or dropped with its connection).
    pub fn answered(&self, bytes: usize) {
        self.requests.fetch_sub(1, Ordering::SeqCst);
        self.bytes.fetch_sub(bytes, Ordering::SeqCst);
        self.global.remove();
        if self.reader_waiting.load(Ordering::SeqCst) {
            self.answered.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(requests: usize, request_bytes: usize) -> Limits {
        Limits { requests, request_bytes, ..Limits::default() }
    }

    #[test]
    fn a_connection_stops_being_read_at_its_request_and_byte_bounds() {
        let global = Arc::new(GlobalOutstanding::new(0));
        let conn = Outstanding::new(global.clone(), limits(2, 100));
        conn.read(10);
        assert!(conn.may_read());
        conn.read(10);
        assert!(!conn.may_read(), "two requests outstanding is the bound");
        conn.answered(10);
        assert!(conn.may_read());
        conn.read(200);
        assert!(!conn.may_read(), "over the byte bound");
        conn.answered(200);
        conn.answered(10);
        // One request always fits, however large.
        assert!(conn.may_read());
    }

    #[test]
    fn over_the_global_limit_only_connections_with_nothing_outstanding_are_read() {
        let global = Arc::new(GlobalOutstanding::new(2));
        let busy = Outstanding::new(global.clone(), Limits::default());
        let idle = Outstanding::new(global.clone(), Limits::default());
        busy.read(1);
        busy.read(1);
        busy.read(1);
        assert!(!busy.may_read());
        assert!(idle.may_read());
        busy.answered(1);
        assert!(busy.may_read());
        busy.answered(1);
        busy.answered(1);
        assert_eq!(global.count(), 0);
    }

    #[tokio::test]
    async fn a_reader_at_its_bound_wakes_when_one_of_its_requests_is_answered() {
        let global = Arc::new(GlobalOutstanding::new(0));
        let conn = Outstanding::new(global.clone(), limits(2, 1 << 20));
        conn.read(1);
        conn.read(1);
        let wait = conn.wait_turn();
        tokio::pin!(wait);
        assert!(futures::poll!(&mut wait).is_pending());
        conn.answered(1);
        tokio::time::timeout(Duration::from_secs(1), wait).await.expect("woken by the answer");
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_when_the_server_falls_back_within_the_limit() {
        let global = Arc::new(GlobalOutstanding::new(1));
        let other = Outstanding::new(global.clone(), Limits::default());
        let conn = Outstanding::new(global.clone(), Limits::default());
        other.read(1);
        conn.read(1);
        let wait = conn.wait_turn();
        tokio::pin!(wait);
        assert!(futures::poll!(&mut wait).is_pending());
        other.answered(1);
        tokio::time::timeout(Duration::from_secs(1), wait).await.expect("woken");
    }
}
