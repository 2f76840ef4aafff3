//! The event-shaped workloads: watch fan-out, session storm, the readiness probe used for
//! restart recovery, the write-gap writer used for leader failover, and the session
//! (TLS handshake) rate.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

use crate::client::{encode_request, parse_event, ClientError, Conn, Op, ReplyHead, Transport};
use crate::load::ROOT;
use crate::report::{self, Counters, Percentiles};

/// NodeDataChanged.
const DATA_CHANGED: i32 = 3;

/// Parameters shared by the scenarios.
#[derive(Debug, Clone)]
pub struct ScenarioSpec {
    pub count: usize,
    pub rounds: usize,
    pub session_timeout_ms: i32,
    pub connect_concurrency: usize,
    pub duration: Duration,
    pub probe_timeout: Duration,
    /// watch: pause between "all armed" and the setData, so a profiler can be switched on.
    pub fire_pause: Duration,
    /// handshakes: concurrent connectors, and the unmeasured lead-in.
    pub connectors: usize,
    pub warmup: Duration,
    /// Plain TCP or TLS.
    pub transport: Transport,
}

/// What a scenario reports: a latency distribution (if any) and named numbers.
pub struct ScenarioResult {
    pub ops: u64,
    pub elapsed: Duration,
    pub latency: Option<Histogram<u64>>,
    pub errors: report::ErrorCounts,
    pub extra: serde_json::Map<String, Value>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Watch fan-out: `count` sessions each hold a data watch on one znode; per round one
/// setData fires them all, and the time until the last watcher has its event is measured.
pub async fn watch_fanout(
    spec: &ScenarioSpec,
    servers: &[SocketAddr],
    counters: Arc<Counters>,
) -> Result<ScenarioResult, ClientError> {
    let path = format!("{ROOT}/watch/target");
    let mut setter =
        Conn::connect(servers[0], &spec.transport, spec.session_timeout_ms, Duration::from_secs(30)).await?;
    setter.call(1, &Op::Create { path: &path, data: b"0" }).await?;
    let armed = Arc::new(AtomicUsize::new(0));
    // Watchers re-arm for round r only once round r-1 is over, so re-arming does not load
    // the server while it is still delivering the round's events.
    let (rearm_tx, rearm_rx) = tokio::sync::watch::channel(0usize);
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Instant>();
    let gate = Arc::new(Semaphore::new(spec.connect_concurrency.max(1)));
    let t_setup = Instant::now();
    let mut tasks = Vec::with_capacity(spec.count);
    for i in 0..spec.count {
        let (addr, path, armed, ev_tx, gate) =
            (servers[i % servers.len()], path.clone(), armed.clone(), ev_tx.clone(), gate.clone());
        let rearm = rearm_rx.clone();
        let (rounds, timeout, transport) = (spec.rounds, spec.session_timeout_ms, spec.transport.clone());
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let conn = Conn::connect(addr, &transport, timeout, Duration::from_secs(120)).await?;
            drop(permit);
            watcher(conn, &path, rounds, &armed, &ev_tx, rearm).await
        }));
    }
    drop(ev_tx);
    let mut errors = report::ErrorCounts::new();
    let mut lasts = Vec::new();
    let mut all = report::new_histogram();
    let setup_limit = Duration::from_secs(300);
    for round in 0..spec.rounds {
        let want = spec.count * (round + 1);
        while armed.load(Ordering::Acquire) < want {
            if t_setup.elapsed() > setup_limit || tasks.iter().all(|t| t.is_finished()) {
                return Err(ClientError::Timeout(setup_limit));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if round == 0 {
            eprintln!("[watch] {} watchers armed in {:.1}s", spec.count, t_setup.elapsed().as_secs_f64());
        }
        tokio::time::sleep(spec.fire_pause.max(Duration::from_millis(200))).await;
        eprintln!("[watch] firing round {round}");
        let t0 = Instant::now();
        let head = setter.call(round as i32 + 2, &Op::SetData { path: &path, data: b"1" }).await?;
        let ack = t0.elapsed();
        let mut got = 0;
        let mut last = Duration::ZERO;
        while got < spec.count {
            match tokio::time::timeout(Duration::from_secs(60), ev_rx.recv()).await {
                Ok(Some(t)) => {
                    let d = t.saturating_duration_since(t0);
                    report::record(&mut all, d);
                    last = last.max(d);
                    got += 1;
                    counters.done(true);
                }
                _ => break,
            }
        }
        if got < spec.count {
            *errors.entry("missed-events".into()).or_default() += (spec.count - got) as u64;
        }
        eprintln!(
            "[watch] round {round}: {got} events, last after {:.1} ms (setData ack {:.1} ms, err {})",
            ms(last),
            ms(ack),
            head.err
        );
        lasts.push(ms(last));
        let _ = rearm_tx.send(round + 1);
    }
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            _ => *errors.entry("watcher-failed".into()).or_default() += 1,
        }
    }
    setter.close().await;
    let mut extra = serde_json::Map::new();
    extra.insert("watchers".into(), json!(spec.count));
    extra.insert("rounds_last_event_ms".into(), json!(lasts));
    extra.insert("last_event_ms".into(), json!(median(&mut lasts.clone())));
    Ok(ScenarioResult { ops: all.len(), elapsed: t_setup.elapsed(), latency: Some(all), errors, extra })
}

/// One watcher session: per round, wait until the previous round is over, arm a data watch
/// with exists(), count itself armed, and report the instant its event arrives; close once
/// every round is over. Pings keep the session alive while it waits.
async fn watcher(
    mut conn: Conn,
    path: &str,
    rounds: usize,
    armed: &AtomicUsize,
    events: &mpsc::UnboundedSender<Instant>,
    mut rearm: tokio::sync::watch::Receiver<usize>,
) -> Result<(), ClientError> {
    let ping_every = Duration::from_millis((conn.timeout_ms / 3).max(100) as u64);
    let mut out = Vec::with_capacity(64);
    for round in 0..rounds {
        loop {
            tokio::select! {
                r = async { rearm.wait_for(|r| *r >= round).await.map(|_| ()) } => {
                    if r.is_err() {
                        return Err(ClientError::Closed);
                    }
                    break;
                }
                _ = tokio::time::sleep(ping_every) => {
                    out.clear();
                    encode_request(&mut out, 0, &Op::Ping);
                    conn.writer.send(&out).await?;
                }
            }
        }
        conn.call(round as i32 + 1, &Op::Exists { path, watch: true }).await?;
        armed.fetch_add(1, Ordering::Release);
        loop {
            let frame = tokio::time::timeout(ping_every, conn.reader.next_frame()).await;
            match frame {
                Err(_) => {
                    out.clear();
                    encode_request(&mut out, 0, &Op::Ping);
                    conn.writer.send(&out).await?;
                }
                Ok(payload) => {
                    let payload = payload?;
                    if ReplyHead::parse(payload)?.is_notification() && parse_event(payload)?.0 == DATA_CHANGED {
                        let _ = events.send(Instant::now());
                        break;
                    }
                }
            }
        }
    }
    // Closed only once the last round is measured: 10,000 sessions closing while the
    // round's later events were still on their way made every run's last round take twice
    // as long as the others, on either server (closes are writes the server commits).
    let _ = rearm.wait_for(|r| *r >= rounds).await;
    conn.close().await;
    Ok(())
}

/// Session storm: `count` sessions connect at the same instant; reports the time until all
/// have completed the handshake and the distribution of individual connect times.
pub async fn session_storm(
    spec: &ScenarioSpec,
    servers: &[SocketAddr],
    counters: Arc<Counters>,
) -> Result<ScenarioResult, ClientError> {
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(spec.count);
    for i in 0..spec.count {
        let (addr, timeout, counters) = (servers[i % servers.len()], spec.session_timeout_ms, counters.clone());
        let transport = spec.transport.clone();
        tasks.push(tokio::spawn(async move {
            let r = Conn::connect(addr, &transport, timeout, Duration::from_secs(120)).await;
            counters.done(r.is_ok());
            r.map(|c| (c, t0.elapsed()))
        }));
    }
    let mut hist = report::new_histogram();
    let mut errors = report::ErrorCounts::new();
    let mut conns = Vec::with_capacity(spec.count);
    for t in tasks {
        match t.await {
            Ok(Ok((c, d))) => {
                report::record(&mut hist, d);
                conns.push(c);
            }
            _ => *errors.entry("connect-failed".into()).or_default() += 1,
        }
    }
    let all_connected = t0.elapsed();
    let closing: Vec<_> = conns.into_iter().map(|c| tokio::spawn(c.close())).collect();
    for c in closing {
        let _ = c.await;
    }
    let mut extra = serde_json::Map::new();
    extra.insert("all_connected_ms".into(), json!(ms(all_connected)));
    extra.insert("sessions_per_s".into(), json!(hist.len() as f64 / all_connected.as_secs_f64().max(1e-9)));
    Ok(ScenarioResult { ops: hist.len(), elapsed: all_connected, latency: Some(hist), errors, extra })
}

/// Readiness probe: starts a connect + getData(`path`) attempt every 20 ms (attempts
/// overlap, so one that a starting server accepts but never answers does not delay the
/// result) until one succeeds, and reports the wall-clock time (Unix ms) of that success so
/// the caller can subtract the time it started the server.
pub async fn probe(spec: &ScenarioSpec, servers: &[SocketAddr], path: &str) -> Result<ScenarioResult, ClientError> {
    let t0 = Instant::now();
    let mut attempts = 0u64;
    let mut running = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if t0.elapsed() > spec.probe_timeout {
                    return Err(ClientError::Timeout(spec.probe_timeout));
                }
                attempts += 1;
                let (addr, timeout, path) = (servers[0], spec.session_timeout_ms, path.to_string());
                let transport = spec.transport.clone();
                running.spawn(async move { probe_once(addr, &transport, timeout, &path).await });
            }
            Some(done) = running.join_next() => {
                if let Ok(Some(unix_ms)) = done {
                    running.abort_all();
                    let mut extra = serde_json::Map::new();
                    extra.insert("ready_unix_ms".into(), json!(unix_ms));
                    extra.insert("attempts".into(), json!(attempts));
                    return Ok(ScenarioResult { ops: 1, elapsed: t0.elapsed(), latency: None, errors: Default::default(), extra });
                }
            }
        }
    }
}

/// One probe attempt: the Unix ms at which getData(`path`) succeeded, or `None`.
async fn probe_once(addr: SocketAddr, transport: &Transport, timeout_ms: i32, path: &str) -> Option<u64> {
    let mut conn = Conn::connect(addr, transport, timeout_ms, Duration::from_secs(10)).await.ok()?;
    let head = tokio::time::timeout(Duration::from_secs(10), conn.call(1, &Op::GetData { path, watch: false }))
        .await
        .ok()?
        .ok()?;
    if head.err != 0 {
        return None;
    }
    let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    conn.close().await;
    Some(unix_ms)
}

/// Failover writer: one setData at a time for `duration`, moving to the next server (with a
/// new session) whenever a request fails. Reports the longest gap between two successful
/// writes, which spans the leader's kill when the caller kills it mid-run.
pub async fn failover(
    spec: &ScenarioSpec,
    servers: &[SocketAddr],
    counters: Arc<Counters>,
) -> Result<ScenarioResult, ClientError> {
    let path = format!("{ROOT}/failover");
    let t0 = Instant::now();
    let mut idx = 0usize;
    let mut last_ok = Instant::now();
    let (mut gap, mut gap_at) = (Duration::ZERO, Duration::ZERO);
    let mut hist = report::new_histogram();
    let mut errors = report::ErrorCounts::new();
    let mut conn: Option<Conn> = None;
    let mut xid = 0i32;
    while t0.elapsed() < spec.duration {
        if conn.is_none() {
            let addr = servers[idx % servers.len()];
            match Conn::connect(addr, &spec.transport, spec.session_timeout_ms, Duration::from_secs(2)).await {
                Ok(mut c) => {
                    let _ = c.call(1, &Op::Create { path: &path, data: b"" }).await;
                    conn = Some(c);
                }
                Err(_) => {
                    idx += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        xid = xid.wrapping_add(1).max(2);
        let start = Instant::now();
        let r =
            tokio::time::timeout(Duration::from_secs(2), c.call(xid, &Op::SetData { path: &path, data: b"x" })).await;
        match r {
            Ok(Ok(head)) if head.err == 0 => {
                let now = Instant::now();
                report::record(&mut hist, now - start);
                if now - last_ok > gap {
                    gap = now - last_ok;
                    gap_at = last_ok - t0;
                }
                last_ok = now;
                counters.done(true);
            }
            _ => {
                *errors.entry("write-failed".into()).or_default() += 1;
                counters.done(false);
                conn = None;
                idx += 1;
            }
        }
    }
    let mut extra = serde_json::Map::new();
    extra.insert("max_write_gap_ms".into(), json!(ms(gap)));
    extra.insert("gap_started_at_s".into(), json!(gap_at.as_secs_f64()));
    Ok(ScenarioResult { ops: hist.len(), elapsed: t0.elapsed(), latency: Some(hist), errors, extra })
}

/// Session rate: `connectors` tasks each repeat, for `warmup` + `duration`, one full session
/// cycle: TCP connect, the TLS handshake (a full one: the bench's TLS config keeps no session
/// cache unless `--tls-resume`), ConnectRequest/ConnectResponse, then closeSession (waiting for
/// its reply, so the server is not left with sessions to expire later) and close. Over plain
/// TCP the same code runs without the TLS step, so the TLS cost is the difference.
///
/// Cycles started inside the measured window count; `latency` is connect start until the
/// ConnectResponse, `extra.connect_us` connect start until the TLS handshake is done (TCP
/// connect alone for plain TCP).
pub async fn handshakes(
    spec: &ScenarioSpec,
    servers: &[SocketAddr],
    counters: Arc<Counters>,
) -> Result<ScenarioResult, ClientError> {
    let start = Instant::now() + Duration::from_millis(20);
    let (from, until) = (start + spec.warmup, start + spec.warmup + spec.duration);
    let mut tasks = Vec::with_capacity(spec.connectors.max(1));
    for i in 0..spec.connectors.max(1) {
        let (addr, timeout_ms, counters) = (servers[i % servers.len()], spec.session_timeout_ms, counters.clone());
        let transport = spec.transport.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            connector(addr, &transport, timeout_ms, from, until, &counters).await
        }));
    }
    let (mut session, mut connect) = (report::new_histogram(), report::new_histogram());
    let mut errors = report::ErrorCounts::new();
    let mut tls = None;
    for t in tasks {
        let Ok(c) = t.await else {
            *errors.entry("task-panic".into()).or_default() += 1;
            continue;
        };
        // Histograms share bounds, so adding cannot fail.
        let _ = session.add(&c.session);
        let _ = connect.add(&c.connect);
        report::add_errors(&mut errors, &c.errors);
        tls = tls.or(c.tls);
    }
    errors.retain(|_, v| *v > 0);
    let mut extra = serde_json::Map::new();
    extra.insert("connectors".into(), json!(spec.connectors.max(1)));
    extra.insert("transport".into(), json!(if spec.transport.is_tls() { "tls" } else { "tcp" }));
    extra.insert("tls".into(), json!(tls));
    extra.insert("sessions_per_s".into(), json!(session.len() as f64 / spec.duration.as_secs_f64().max(1e-9)));
    extra.insert("connect_us".into(), json!(percentiles(&Some(connect))));
    Ok(ScenarioResult { ops: session.len(), elapsed: spec.duration, latency: Some(session), errors, extra })
}

/// What one handshake connector measured.
struct ConnectorResult {
    session: Histogram<u64>,
    connect: Histogram<u64>,
    errors: report::ErrorCounts,
    tls: Option<String>,
}

async fn connector(
    addr: SocketAddr,
    transport: &Transport,
    timeout_ms: i32,
    from: Instant,
    until: Instant,
    counters: &Counters,
) -> ConnectorResult {
    const LIMIT: Duration = Duration::from_secs(10);
    let mut res = ConnectorResult {
        session: report::new_histogram(),
        connect: report::new_histogram(),
        errors: report::ErrorCounts::new(),
        tls: None,
    };
    loop {
        let t0 = Instant::now();
        if t0 >= until {
            break;
        }
        let measured = t0 >= from;
        let attempt = tokio::time::timeout(LIMIT, async {
            let stream = transport.open(addr).await?;
            let connected = t0.elapsed();
            let conn = Conn::handshake(stream, timeout_ms).await?;
            Ok::<_, ClientError>((conn, connected, t0.elapsed()))
        })
        .await;
        let failure = match attempt {
            Ok(Ok((conn, connected, established))) => {
                if measured {
                    report::record(&mut res.connect, connected);
                    report::record(&mut res.session, established);
                }
                if res.tls.is_none() {
                    res.tls = conn.tls.clone();
                }
                conn.close().await;
                None
            }
            Ok(Err(ClientError::Tls(_))) => Some("tls"),
            Ok(Err(ClientError::Refused(_))) => Some("refused"),
            Ok(Err(ClientError::Io(_))) => Some("conn"),
            Ok(Err(_)) => Some("handshake"),
            Err(_) => Some("timeout"),
        };
        counters.done(failure.is_none());
        if let Some(what) = failure {
            if measured {
                *res.errors.entry(what.into()).or_default() += 1;
            }
            // A refused connect fails in microseconds: do not spin on it.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    res
}

/// Percentiles of an optional histogram, for the JSON record.
pub fn percentiles(h: &Option<Histogram<u64>>) -> Option<Percentiles> {
    h.as_ref().filter(|h| !h.is_empty()).map(Percentiles::of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_picks_the_middle_value() {
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&mut []), 0.0);
    }
}
