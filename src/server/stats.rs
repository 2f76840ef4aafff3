//! Counters that the four-letter words (`srvr`, `stat`, `cons`, `mntr`) report.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

/// Request latency figures, in milliseconds like ZooKeeper's.
#[derive(Debug, Default)]
pub struct Latency {
    min: AtomicU64,
    max: AtomicU64,
    total: AtomicU64,
    count: AtomicU64,
}

impl Latency {
    pub fn record(&self, d: Duration) {
        let ms = d.as_millis() as u64;
        if self.count.fetch_add(1, Ordering::Relaxed) == 0 {
            self.min.store(ms, Ordering::Relaxed);
        } else {
            self.min.fetch_min(ms, Ordering::Relaxed);
        }
        self.max.fetch_max(ms, Ordering::Relaxed);
        self.total.fetch_add(ms, Ordering::Relaxed);
    }

    /// (min, avg, max) in ms.
    pub fn summary(&self) -> (u64, f64, u64) {
        let n = self.count.load(Ordering::Relaxed);
        if n == 0 {
            return (0, 0.0, 0);
        }
        let avg = self.total.load(Ordering::Relaxed) as f64 / n as f64;
        (self.min.load(Ordering::Relaxed), avg, self.max.load(Ordering::Relaxed))
    }

    pub fn reset(&self) {
        for a in [&self.min, &self.max, &self.total, &self.count] {
            a.store(0, Ordering::Relaxed);
        }
    }
}

/// Server-wide counters.
#[derive(Debug)]
pub struct ServerStats {
    pub started: Instant,
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub outstanding: AtomicI64,
    pub latency: Latency,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            started: Instant::now(),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            outstanding: AtomicI64::new(0),
            latency: Latency::default(),
        }
    }
}

impl ServerStats {
    pub fn reset(&self) {
        self.packets_received.store(0, Ordering::Relaxed);
        self.packets_sent.store(0, Ordering::Relaxed);
        self.latency.reset();
    }
}

/// Per-connection counters for `cons`.
#[derive(Debug)]
pub struct ConnStats {
    pub remote: SocketAddr,
    pub established: SystemTime,
    pub received: AtomicU64,
    pub sent: AtomicU64,
    pub session_id: AtomicI64,
    pub timeout_ms: AtomicI64,
    pub last: Mutex<LastOp>,
    pub latency: Latency,
}

/// The last request a connection completed.
#[derive(Debug, Clone, Copy)]
pub struct LastOp {
    pub op: &'static str,
    pub cxid: i32,
    pub zxid: i64,
    pub at: SystemTime,
    pub latency_ms: u64,
}

impl ConnStats {
    pub fn new(remote: SocketAddr) -> Self {
        ConnStats {
            remote,
            established: SystemTime::now(),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            session_id: AtomicI64::new(0),
            timeout_ms: AtomicI64::new(0),
            last: Mutex::new(LastOp { op: "NA", cxid: -1, zxid: -1, at: SystemTime::now(), latency_ms: 0 }),
            latency: Latency::default(),
        }
    }

    pub fn reset(&self) {
        self.received.store(0, Ordering::Relaxed);
        self.sent.store(0, Ordering::Relaxed);
        self.latency.reset();
    }
}
