//! The request-stream workloads (get, set, mix, churn, fill): many sessions, each with a
//! writer task and a reader task over one TCP connection.
//!
//! The writer keeps up to `inflight` requests outstanding (closed loop) or sends at a fixed
//! total rate (open loop, paced by [`crate::pace`]). The reader matches replies to requests
//! by FIFO order, which ZooKeeper guarantees within a session, so no xid map is needed. In open-loop mode
//! latency is measured from the *intended* send time, so a stalled server is charged for
//! the requests it prevented from being sent (no coordinated omission).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, Notify, Semaphore, TryAcquireError};

use crate::client::{encode_request, ClientError, Conn, FrameReader, Op, ReplyHead, Transport, WriteHalf};
use crate::pace::{self, Schedule};
use crate::report::{self, Counters, ErrorCounts};

/// Root of everything the benchmark creates.
pub const ROOT: &str = "/bench";
/// ZooKeeper's NodeExists error code, ignored during setup.
const NODE_EXISTS: i32 = -110;
/// A reader gives up when no reply arrives for this long while requests are outstanding.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Flush the write buffer once it holds this much, even if more permits are available.
const FLUSH_BYTES: usize = 32 * 1024;

/// What each session sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// getData of a random key.
    Get,
    /// setData of a random key.
    Set,
    /// getData `read_pct`% of the time, setData otherwise.
    Mix { read_pct: u32 },
    /// create then delete of a fresh znode, alternating.
    Churn,
    /// create of fresh znodes, never deleted.
    Fill,
}

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub kind: Kind,
    pub sessions: usize,
    pub inflight: usize,
    /// Measured time (after warmup). Ignored when `limit_per_session` is set.
    pub duration: Duration,
    pub warmup: Duration,
    /// Requests per session, instead of a duration (the fill workload).
    pub limit_per_session: Option<u64>,
    /// fill: where each session's znodes go (see [`write_fill_path`]).
    pub fill: FillLayout,
    /// Total requests per second across all sessions (open loop); `None` is closed loop.
    pub rate: Option<f64>,
    pub value_size: usize,
    pub keys: usize,
    pub session_timeout_ms: i32,
    pub connect_concurrency: usize,
    /// Plain TCP or TLS.
    pub transport: Transport,
}

/// Merged result of all sessions.
pub struct LoadResult {
    pub elapsed: Duration,
    pub measured_ops: u64,
    pub all: Histogram<u64>,
    pub reads: Histogram<u64>,
    pub writes: Histogram<u64>,
    pub errors: ErrorCounts,
    /// Negotiated TLS version and cipher suite of the first session (`None`: plain TCP).
    pub tls: Option<String>,
}

/// Creates the benchmark's parent znodes and, for key-based workloads, `keys` znodes of
/// `value_size` bytes. Existing znodes are kept.
pub async fn prepare(addr: SocketAddr, spec: &LoadSpec) -> Result<(), ClientError> {
    let mut conn = Conn::connect(addr, &spec.transport, spec.session_timeout_ms, Duration::from_secs(30)).await?;
    let parents: Vec<String> = ["", "/churn", "/fill", "/watch"].iter().map(|s| format!("{ROOT}{s}")).collect();
    let data = vec![b'x'; spec.value_size];
    let keys: Vec<String> = match spec.kind {
        Kind::Get | Kind::Set | Kind::Mix { .. } => (0..spec.keys).map(key_path).collect(),
        _ => Vec::new(),
    };
    let ops = parents
        .iter()
        .map(|p| Op::Create { path: p, data: b"" })
        .chain(keys.iter().map(|p| Op::Create { path: p, data: &data }));
    let codes = conn.pipeline(ops, 256).await?;
    let bad = codes.iter().filter(|&&c| c != 0 && c != NODE_EXISTS).count();
    conn.close().await;
    if bad > 0 {
        eprintln!("setup: {bad} creates failed");
    }
    Ok(())
}

/// How the fill workload lays out its znodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct FillLayout {
    /// 0: every znode is a child of `/bench/fill` (a flat fill of N znodes is also a parent
    /// with N children). F > 0: each session makes directories holding F children each.
    pub fanout: u64,
    /// The index each session starts at, so that a second fill grows the same tree.
    pub first: u64,
}

/// Writes the path of session `session`'s znode number `i` under `layout.fanout`: flat,
/// `/bench/fill/s{session}-{i}`; with fanout F, index i is directory `s{session}-{i/(F+1)}`
/// when `i % (F+1) == 0` and otherwise child `i % (F+1)` of that directory, so the sequence
/// creates every directory before its children and every index is one znode.
pub fn write_fill_path(out: &mut String, session: usize, i: u64, fanout: u64) {
    use std::fmt::Write;
    if fanout == 0 {
        let _ = write!(out, "{ROOT}/fill/s{session}-{i}");
    } else {
        let (dir, child) = (i / (fanout + 1), i % (fanout + 1));
        let _ = write!(out, "{ROOT}/fill/s{session}-{dir}");
        if child != 0 {
            let _ = write!(out, "/{child}");
        }
    }
}

/// xorshift64*: cheap and good enough to spread keys and watch targets.
pub fn xorshift64star(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// The path of key `i` of the key-based workloads.
pub fn key_path(i: usize) -> String {
    format!("{ROOT}/k{i}")
}

/// Produces each session's requests straight into the output buffer.
struct Generator {
    kind: Kind,
    session: usize,
    keys: usize,
    data: Vec<u8>,
    path: String,
    rng: u64,
    fill: FillLayout,
}

impl Generator {
    fn new(kind: Kind, session: usize, spec: &LoadSpec) -> Generator {
        Generator {
            kind,
            session,
            keys: spec.keys.max(1),
            data: vec![b'v'; spec.value_size],
            path: String::with_capacity(64),
            rng: 0x9E37_79B9_7F4A_7C15 ^ (session as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            fill: spec.fill,
        }
    }

    fn next_rand(&mut self) -> u64 {
        xorshift64star(&mut self.rng)
    }

    /// Encodes request number `i` and returns whether it is a read.
    fn encode(&mut self, i: u64, xid: i32, out: &mut Vec<u8>) -> bool {
        use std::fmt::Write;
        self.path.clear();
        let read = match self.kind {
            Kind::Get => true,
            Kind::Set => false,
            Kind::Mix { read_pct } => self.next_rand() % 100 < u64::from(read_pct),
            Kind::Churn | Kind::Fill => false,
        };
        let op = match self.kind {
            Kind::Get | Kind::Set | Kind::Mix { .. } => {
                let k = self.next_rand() % self.keys as u64;
                let _ = write!(self.path, "{ROOT}/k{k}");
                if read {
                    Op::GetData { path: &self.path, watch: false }
                } else {
                    Op::SetData { path: &self.path, data: &self.data }
                }
            }
            Kind::Churn => {
                let _ = write!(self.path, "{ROOT}/churn/s{}-{}", self.session, i / 2);
                if i % 2 == 0 {
                    Op::Create { path: &self.path, data: &self.data }
                } else {
                    Op::Delete { path: &self.path }
                }
            }
            Kind::Fill => {
                write_fill_path(&mut self.path, self.session, self.fill.first + i, self.fill.fanout);
                Op::Create { path: &self.path, data: &self.data }
            }
        };
        encode_request(out, xid, &op);
        read
    }
}

/// A request waiting for its reply.
struct Pending {
    xid: i32,
    /// Intended send time (open loop) or actual send time (closed loop).
    t0: Instant,
    read: bool,
}

/// The measured window: requests intended within it are recorded.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Option<Instant>,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.start && self.end.is_none_or(|e| t < e)
    }
}

/// What one session (or one request slot of the independent client) measured.
pub struct SessionResult {
    pub all: Histogram<u64>,
    pub reads: Histogram<u64>,
    pub writes: Histogram<u64>,
    pub measured: u64,
    pub errors: ErrorCounts,
}

impl SessionResult {
    pub fn new() -> SessionResult {
        SessionResult {
            all: report::new_histogram(),
            reads: report::new_histogram(),
            writes: report::new_histogram(),
            measured: 0,
            errors: ErrorCounts::new(),
        }
    }
}

impl LoadResult {
    /// Merges the results of the tasks that ran the sessions; `elapsed` is set by the caller.
    pub async fn merge(tasks: Vec<tokio::task::JoinHandle<SessionResult>>, tls: Option<String>) -> LoadResult {
        let mut result = LoadResult {
            elapsed: Duration::ZERO,
            measured_ops: 0,
            all: report::new_histogram(),
            reads: report::new_histogram(),
            writes: report::new_histogram(),
            errors: ErrorCounts::new(),
            tls,
        };
        for task in tasks {
            let Ok(s) = task.await else {
                *result.errors.entry("task-panic".into()).or_default() += 1;
                continue;
            };
            // Histograms share bounds, so adding cannot fail.
            let _ = result.all.add(&s.all);
            let _ = result.reads.add(&s.reads);
            let _ = result.writes.add(&s.writes);
            result.measured_ops += s.measured;
            report::add_errors(&mut result.errors, &s.errors);
        }
        result
    }
}

/// Connects `spec.sessions` sessions (round-robin over `servers`), runs the workload on all
/// at once, and merges the results.
pub async fn run(spec: &LoadSpec, servers: &[SocketAddr], counters: Arc<Counters>) -> Result<LoadResult, ClientError> {
    let conns = connect_all(spec, servers).await?;
    let tls = conns.first().and_then(|c| c.tls.clone());
    let start = Instant::now() + Duration::from_millis(20);
    let window = match spec.limit_per_session {
        Some(_) => Window { start, end: None },
        None => Window { start: start + spec.warmup, end: Some(start + spec.warmup + spec.duration) },
    };
    let send_end = window.end;
    // Open loop: one receiver of send times per session; closed loop: none.
    let mut paces = match spec.rate {
        Some(rate) => {
            let schedule =
                Schedule { start, end: send_end, rate, sessions: conns.len(), per_session: spec.limit_per_session };
            pace::start(schedule).map_err(ClientError::Io)?
        }
        None => Vec::new(),
    }
    .into_iter();
    let mut tasks = Vec::with_capacity(conns.len());
    for (session, conn) in conns.into_iter().enumerate() {
        let spec = spec.clone();
        let counters = counters.clone();
        let shape = WriteShape { start, end: send_end, pace: paces.next(), limit: spec.limit_per_session };
        tasks.push(tokio::spawn(async move { run_session(conn, session, &spec, shape, window, &counters).await }));
    }
    let mut result = LoadResult::merge(tasks, tls).await;
    result.elapsed = match window.end {
        Some(_) => spec.duration,
        None => start.elapsed(),
    };
    Ok(result)
}

/// Opens all sessions, at most `connect_concurrency` handshakes at a time.
async fn connect_all(spec: &LoadSpec, servers: &[SocketAddr]) -> Result<Vec<Conn>, ClientError> {
    let gate = Arc::new(Semaphore::new(spec.connect_concurrency.max(1)));
    let mut tasks = Vec::with_capacity(spec.sessions);
    for i in 0..spec.sessions {
        let addr = servers[i % servers.len()];
        let (gate, timeout, transport) = (gate.clone(), spec.session_timeout_ms, spec.transport.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            Conn::connect(addr, &transport, timeout, Duration::from_secs(60)).await
        }));
    }
    let mut conns = Vec::with_capacity(spec.sessions);
    for t in tasks {
        match t.await {
            Ok(conn) => conns.push(conn?),
            Err(_) => return Err(ClientError::Closed),
        }
    }
    Ok(conns)
}

async fn run_session(
    conn: Conn,
    session: usize,
    spec: &LoadSpec,
    shape: WriteShape,
    window: Window,
    counters: &Counters,
) -> SessionResult {
    let Conn { reader, writer, session_id, timeout_ms, tls } = conn;
    let sem = Arc::new(Semaphore::new(spec.inflight.max(1)));
    let writer_done = Arc::new(Notify::new());
    let (tx, rx) = mpsc::unbounded_channel();
    let gen = Generator::new(spec.kind, session, spec);
    let w = tokio::spawn(write_loop(writer, gen, shape, sem.clone(), tx, writer_done.clone()));
    let (reader, mut result) = read_loop(reader, rx, &sem, &writer_done, window, counters).await;
    sem.close();
    if let Ok(writer) = w.await {
        Conn { reader, writer, session_id, timeout_ms, tls }.close().await;
    }
    result.errors.retain(|_, v| *v > 0);
    result
}

struct WriteShape {
    start: Instant,
    end: Option<Instant>,
    /// Intended send times (open loop); `None` sends whenever a permit is free.
    pace: Option<mpsc::UnboundedReceiver<Instant>>,
    limit: Option<u64>,
}

async fn write_loop(
    mut wr: WriteHalf,
    mut gen: Generator,
    mut shape: WriteShape,
    sem: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Pending>,
    done: Arc<Notify>,
) -> WriteHalf {
    let mut out = Vec::with_capacity(FLUSH_BYTES * 2);
    tokio::time::sleep_until(shape.start.into()).await;
    let mut i = 0u64;
    let ok = 'send: loop {
        if shape.limit.is_some_and(|l| i >= l) {
            break true;
        }
        let intended = match &mut shape.pace {
            None => None,
            Some(pace) => match pace.try_recv() {
                Ok(t) => Some(t),
                Err(TryRecvError::Disconnected) => break true,
                Err(TryRecvError::Empty) => {
                    // Nothing due yet: what is buffered goes out before the wait.
                    if flush(&mut wr, &mut out).await.is_err() {
                        break false;
                    }
                    match pace.recv().await {
                        Some(t) => Some(t),
                        None => break true,
                    }
                }
            },
        };
        if shape.end.is_some_and(|e| intended.unwrap_or_else(Instant::now) >= e) {
            break true;
        }
        match sem.try_acquire() {
            Ok(p) => p.forget(),
            Err(TryAcquireError::NoPermits) => {
                if flush(&mut wr, &mut out).await.is_err() {
                    break 'send false;
                }
                match sem.acquire().await {
                    Ok(p) => p.forget(),
                    Err(_) => break 'send false,
                }
            }
            Err(TryAcquireError::Closed) => break false,
        }
        let xid = (i as i32).wrapping_add(1);
        let read = gen.encode(i, xid, &mut out);
        let t0 = intended.unwrap_or_else(Instant::now);
        if tx.send(Pending { xid, t0, read }).is_err() {
            break false;
        }
        i += 1;
        if out.len() >= FLUSH_BYTES && flush(&mut wr, &mut out).await.is_err() {
            break false;
        }
    };
    if ok {
        let _ = flush(&mut wr, &mut out).await;
    }
    drop(tx);
    done.notify_one();
    wr
}

async fn flush(wr: &mut WriteHalf, out: &mut Vec<u8>) -> std::io::Result<()> {
    if !out.is_empty() {
        wr.send(out).await?;
        out.clear();
    }
    Ok(())
}

async fn read_loop(
    mut rd: FrameReader,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    sem: &Semaphore,
    writer_done: &Notify,
    window: Window,
    counters: &Counters,
) -> (FrameReader, SessionResult) {
    let mut res = SessionResult::new();
    let fail = |res: &mut SessionResult, what: &str| *res.errors.entry(what.to_string()).or_default() += 1;
    loop {
        if rx.is_closed() && rx.is_empty() {
            break;
        }
        let frame = tokio::select! {
            f = tokio::time::timeout(REPLY_TIMEOUT, rd.next_frame()) => f,
            _ = writer_done.notified() => continue,
        };
        let head = match frame {
            Err(_) if rx.is_empty() => continue,
            Err(_) => {
                fail(&mut res, "timeout");
                break;
            }
            Ok(Err(_)) => {
                fail(&mut res, "conn");
                break;
            }
            Ok(Ok(payload)) => match ReplyHead::parse(payload) {
                Ok(h) => h,
                Err(_) => {
                    fail(&mut res, "bad-reply");
                    break;
                }
            },
        };
        if head.is_notification() || head.is_ping() {
            continue;
        }
        let Ok(p) = rx.try_recv() else {
            fail(&mut res, "unexpected-reply");
            break;
        };
        if p.xid != head.xid {
            fail(&mut res, "out-of-order");
            break;
        }
        if window.contains(p.t0) {
            let lat = p.t0.elapsed();
            report::record(&mut res.all, lat);
            report::record(if p.read { &mut res.reads } else { &mut res.writes }, lat);
            res.measured += 1;
        }
        if head.err != 0 {
            fail(&mut res, &head.err.to_string());
        }
        counters.done(head.err == 0);
        sem.add_permits(1);
    }
    // Whatever is still outstanding after a failure will never be answered.
    rx.close();
    let lost = std::iter::from_fn(|| rx.try_recv().ok()).count() as u64;
    if lost > 0 {
        *res.errors.entry("lost".into()).or_default() += lost;
    }
    (rd, res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: Kind) -> LoadSpec {
        LoadSpec {
            kind,
            sessions: 1,
            inflight: 1,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            limit_per_session: None,
            fill: FillLayout::default(),
            rate: None,
            value_size: 4,
            keys: 10,
            session_timeout_ms: 10_000,
            connect_concurrency: 1,
            transport: Transport::plain(),
        }
    }

    fn decoded(gen: &mut Generator, i: u64) -> roost::proto::Request {
        let mut out = Vec::new();
        gen.encode(i, 1, &mut out);
        let (head, body) = roost::proto::RequestHeader::parse(&out[4..]).unwrap();
        roost::proto::decode_request(head.op, body).unwrap()
    }

    #[test]
    fn churn_creates_then_deletes_the_same_path() {
        use roost::proto::Request;
        let mut g = Generator::new(Kind::Churn, 3, &spec(Kind::Churn));
        let (Request::Create { path: a, .. }, Request::Delete { path: b, .. }) =
            (decoded(&mut g, 4), decoded(&mut g, 5))
        else {
            panic!("expected create then delete")
        };
        assert_eq!(a, "/bench/churn/s3-2");
        assert_eq!(a, b);
    }

    #[test]
    fn mix_reads_about_the_requested_share_of_keys_in_range() {
        use roost::proto::Request;
        let mut g = Generator::new(Kind::Mix { read_pct: 90 }, 0, &spec(Kind::Get));
        let mut reads = 0;
        for i in 0..10_000 {
            match decoded(&mut g, i) {
                Request::GetData { path, .. } => {
                    reads += 1;
                    let k: usize = path.trim_start_matches("/bench/k").parse().unwrap();
                    assert!(k < 10);
                }
                Request::SetData { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!((8_700..9_300).contains(&reads), "{reads}");
    }

    #[test]
    fn fill_paths_are_unique_per_session() {
        use roost::proto::Request;
        let mut a = Generator::new(Kind::Fill, 0, &spec(Kind::Fill));
        let mut b = Generator::new(Kind::Fill, 1, &spec(Kind::Fill));
        let path = |r| match r {
            Request::Create { path, .. } => path,
            other => panic!("unexpected {other:?}"),
        };
        assert_ne!(path(decoded(&mut a, 7)), path(decoded(&mut b, 7)));
    }

    #[test]
    fn a_fill_with_fanout_creates_each_directory_before_its_children_and_continues_from_first() {
        let paths = |first: u64, n: u64| -> Vec<String> {
            (first..first + n)
                .map(|i| {
                    let mut p = String::new();
                    write_fill_path(&mut p, 2, i, 3);
                    p
                })
                .collect()
        };
        let all = paths(0, 9);
        assert_eq!(all[0], "/bench/fill/s2-0");
        assert_eq!(all[1..4], ["/bench/fill/s2-0/1", "/bench/fill/s2-0/2", "/bench/fill/s2-0/3"]);
        assert_eq!(all[4], "/bench/fill/s2-1");
        assert_eq!(paths(5, 4), all[5..9]);
        let unique: std::collections::BTreeSet<_> = paths(0, 1000).into_iter().collect();
        assert_eq!(unique.len(), 1000);
        let mut p = String::new();
        write_fill_path(&mut p, 2, 7, 0);
        assert_eq!(p, "/bench/fill/s2-7");
    }
}
