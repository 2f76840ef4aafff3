//! The scale workloads that hold state rather than push requests: many live sessions, each
//! with many watches, kept alive by pings for a while; and one huge getChildren.
//!
//! `hold` answers "what does a session cost, and a watch" (issue 15's 100,000 sessions and
//! 1,000,000 watches over 10,000 sessions): it opens `--count` sessions, samples the
//! servers' resident memory, has every session arm `--watches` watches of three kinds on
//! the tree an earlier `fill` made, samples again, then keeps every session alive with
//! pings for `--duration` seconds and checks that each is still alive before closing it.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{watch, Semaphore};

use crate::client::{ClientError, Conn, Op};
use crate::load::{write_fill_path, xorshift64star};
use crate::report::{self, Counters};
use crate::scenarios::{ScenarioResult, ScenarioSpec};

/// Watch requests a session has outstanding while it arms (the load workloads' in-flight
/// count): 3,000 sessions arming 64 at a time (192,000 requests at once) cost a 3-member
/// Roost ensemble on 2 cores its leader (heartbeats starved), which is its own finding.
pub const ARM_WINDOW: usize = 16;

/// The tree an earlier `fill` made, so that watches land on znodes that exist.
#[derive(Debug, Clone, Copy)]
pub struct FillShape {
    /// Sessions of that fill (its `--sessions`).
    pub sessions: usize,
    /// znodes per fill session (its `--count` / `--sessions`, over all fills).
    pub per_session: u64,
    /// Its `--fanout`.
    pub fanout: u64,
}

/// What the whole run is doing; every session follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connect,
    Arm,
    Hold,
    Stop,
}

/// The watch requests of one session: out of every ten, six data watches (getData) on
/// znodes, three child watches (getChildren) and one persistent-recursive watch (addWatch)
/// on their directories; no target twice in one session, since a server keeps one watch
/// per (path, kind, session) whatever the number of requests.
pub fn watch_plan(session: usize, watches: usize, shape: &FillShape) -> Vec<(String, u8)> {
    let total = shape.per_session.max(1);
    let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ (session as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = move || xorshift64star(&mut rng);
    let mut seen = HashSet::with_capacity(watches);
    let mut plan = Vec::with_capacity(watches);
    let mut tries = 0;
    while plan.len() < watches && tries < watches * 20 {
        tries += 1;
        let kind = match plan.len() % 10 {
            0..=5 => 0u8,
            6..=8 => 1,
            _ => 2,
        };
        let owner = (next() % shape.sessions.max(1) as u64) as usize;
        let mut index = next() % total;
        if kind != 0 && shape.fanout > 0 {
            index -= index % (shape.fanout + 1); // the directory
        }
        let mut path = String::with_capacity(48);
        write_fill_path(&mut path, owner, index, shape.fanout);
        if seen.insert((path.clone(), kind)) {
            plan.push((path, kind));
        }
    }
    plan
}

fn watch_op(path: &str, kind: u8) -> Op<'_> {
    match kind {
        0 => Op::GetData { path, watch: true },
        1 => Op::GetChildren { path, watch: true },
        _ => Op::AddWatch { path, mode: 1 },
    }
}

/// Counts kept by the sessions.
#[derive(Default)]
pub struct Tally {
    pub connected: AtomicUsize,
    pub armed: AtomicUsize,
    pub watches: AtomicUsize,
    pub watch_errors: AtomicUsize,
    pub ping_failures: AtomicUsize,
    pub alive: AtomicUsize,
}

/// What one session of a hold is given: its place in the run, the run's phase, the counts
/// to keep and the gate that bounds how many connect (and close) at once.
pub struct HoldSession {
    pub index: usize,
    pub addr: SocketAddr,
    pub phase: watch::Receiver<Phase>,
    pub tally: Arc<Tally>,
    pub gate: Arc<Semaphore>,
    pub counters: Arc<Counters>,
}

/// Opens, arms, holds and closes the sessions with this load generator's own client; see
/// the module comment.
pub async fn hold(
    spec: &ScenarioSpec,
    servers: &[SocketAddr],
    shape: FillShape,
    watches: usize,
    pids: &[u32],
    counters: Arc<Counters>,
) -> Result<ScenarioResult, ClientError> {
    let (transport, timeout) = (spec.transport.clone(), spec.session_timeout_ms);
    Ok(hold_with(spec, servers, pids, counters, move |s: HoldSession| {
        let transport = transport.clone();
        async move {
            let permit = s.gate.acquire().await;
            let conn = Conn::connect(s.addr, &transport, timeout, Duration::from_secs(300)).await;
            drop(permit);
            s.counters.done(conn.is_ok());
            let conn = conn.map_err(|e| error_name(&e))?;
            s.tally.connected.fetch_add(1, Ordering::AcqRel);
            session(conn, s.index, watches, shape, s.phase, &s.tally, &s.gate).await.map_err(|e| error_name(&e))
        }
    })
    .await)
}

/// The run of a hold, whatever client its sessions speak through: starts `spec.count`
/// sessions (`run` connects one, counts it connected, arms when the phase says so, holds,
/// and checks it is alive at `Phase::Stop`), steps the phases, samples the servers' memory
/// between them, and reports; a session's error is counted under the name it returns.
pub async fn hold_with<F, Fut>(
    spec: &ScenarioSpec,
    servers: &[SocketAddr],
    pids: &[u32],
    counters: Arc<Counters>,
    run: F,
) -> ScenarioResult
where
    F: Fn(HoldSession) -> Fut,
    Fut: Future<Output = Result<(), &'static str>> + Send + 'static,
{
    let rss = || report::rss_kib(pids).values().sum::<u64>();
    let rss_before = rss();
    let tally = Arc::new(Tally::default());
    let (phase_tx, phase_rx) = watch::channel(Phase::Connect);
    let gate = Arc::new(Semaphore::new(spec.connect_concurrency.max(1)));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(spec.count);
    for index in 0..spec.count {
        tasks.push(tokio::spawn(run(HoldSession {
            index,
            addr: servers[index % servers.len()],
            phase: phase_rx.clone(),
            tally: tally.clone(),
            gate: gate.clone(),
            counters: counters.clone(),
        })));
    }
    let wait_for = |what: &'static str, counter: fn(&Tally) -> usize, limit: Duration| {
        let (tally, tasks) = (tally.clone(), &tasks);
        async move {
            let start = Instant::now();
            loop {
                // A session's task ends early only when it failed (the others wait for
                // `Phase::Stop`): waiting for those would cost the whole limit.
                let failed = tasks.iter().filter(|t| t.is_finished()).count();
                if counter(&tally) + failed >= spec.count {
                    break;
                }
                if start.elapsed() > limit {
                    eprintln!(
                        "[hold] {what}: {} of {} after {:.0}s",
                        counter(&tally),
                        spec.count,
                        start.elapsed().as_secs_f64()
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            start.elapsed()
        }
    };
    let connect_time = wait_for("connected", |t| t.connected.load(Ordering::Acquire), Duration::from_secs(600)).await;
    eprintln!(
        "[hold] {} sessions connected in {:.1}s",
        tally.connected.load(Ordering::Acquire),
        connect_time.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_connected = rss();
    let _ = phase_tx.send(Phase::Arm);
    let arm_time = wait_for("armed", |t| t.armed.load(Ordering::Acquire), Duration::from_secs(900)).await;
    let armed_watches = tally.watches.load(Ordering::Acquire);
    eprintln!("[hold] {armed_watches} watches armed in {:.1}s", arm_time.as_secs_f64());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_armed = rss();
    let _ = phase_tx.send(Phase::Hold);
    tokio::time::sleep(spec.duration).await;
    let rss_held = rss();
    let _ = phase_tx.send(Phase::Stop);
    let mut errors = report::ErrorCounts::new();
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(name)) => *errors.entry(name.into()).or_default() += 1,
            Err(_) => *errors.entry("panic".into()).or_default() += 1,
        }
    }
    let sessions = tally.connected.load(Ordering::Acquire);
    let per = |delta: u64, n: usize| if n == 0 { 0.0 } else { delta as f64 * 1024.0 / n as f64 };
    let mut extra = serde_json::Map::new();
    extra.insert("sessions".into(), json!(sessions));
    extra.insert("connect_s".into(), json!(connect_time.as_secs_f64()));
    extra.insert("sessions_per_s".into(), json!(sessions as f64 / connect_time.as_secs_f64().max(1e-9)));
    extra.insert("watches".into(), json!(armed_watches));
    extra.insert("watch_errors".into(), json!(tally.watch_errors.load(Ordering::Acquire)));
    extra.insert("arm_s".into(), json!(arm_time.as_secs_f64()));
    extra.insert("watches_per_s".into(), json!(armed_watches as f64 / arm_time.as_secs_f64().max(1e-9)));
    extra.insert("held_s".into(), json!(spec.duration.as_secs_f64()));
    extra.insert("ping_failures".into(), json!(tally.ping_failures.load(Ordering::Acquire)));
    extra.insert("alive_after_hold".into(), json!(tally.alive.load(Ordering::Acquire)));
    extra.insert(
        "rss_total_kib".into(),
        json!({"before": rss_before, "connected": rss_connected, "armed": rss_armed, "held": rss_held}),
    );
    extra.insert("bytes_per_session".into(), json!(per(rss_connected.saturating_sub(rss_before), sessions)));
    extra.insert("bytes_per_watch".into(), json!(per(rss_armed.saturating_sub(rss_connected), armed_watches)));
    ScenarioResult { ops: sessions as u64, elapsed: t0.elapsed(), latency: None, errors, extra }
}

fn error_name(e: &ClientError) -> &'static str {
    match e {
        ClientError::Timeout(_) => "timeout",
        ClientError::Closed => "closed",
        ClientError::Refused(_) => "refused",
        _ => "conn",
    }
}

/// One session: pings every third of its timeout from the moment it is connected, arms its
/// watches when the run says so, and at the end checks it is alive (an `exists` answered
/// without error) and closes it.
async fn session(
    mut conn: Conn,
    index: usize,
    watches: usize,
    shape: FillShape,
    mut phase: watch::Receiver<Phase>,
    tally: &Tally,
    gate: &Semaphore,
) -> Result<(), ClientError> {
    let ping_every = Duration::from_millis((conn.timeout_ms / 3).max(100) as u64);
    let mut armed = false;
    let mut next_ping = tokio::time::Instant::now() + ping_every;
    loop {
        let now = *phase.borrow_and_update();
        if now == Phase::Stop {
            break;
        }
        if now != Phase::Connect && !armed {
            armed = true;
            let plan = watch_plan(index, watches, &shape);
            let ops: Vec<Op<'_>> = plan.iter().map(|(path, kind)| watch_op(path, *kind)).collect();
            let codes = conn.pipeline(ops, ARM_WINDOW).await?;
            let ok = codes.iter().filter(|&&c| c == 0).count();
            tally.watches.fetch_add(ok, Ordering::AcqRel);
            tally.watch_errors.fetch_add(codes.len() - ok, Ordering::AcqRel);
            tally.armed.fetch_add(1, Ordering::AcqRel);
            next_ping = tokio::time::Instant::now() + ping_every;
            continue;
        }
        tokio::select! {
            changed = phase.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep_until(next_ping) => {
                if conn.ping(Duration::from_secs(10)).await.is_err() {
                    tally.ping_failures.fetch_add(1, Ordering::AcqRel);
                    return Err(ClientError::Closed);
                }
                next_ping = tokio::time::Instant::now() + ping_every;
            }
        }
    }
    // Closing 100,000 sessions is 100,000 writes: as many at once as were connecting.
    let _permit = gate.acquire().await;
    let head =
        tokio::time::timeout(Duration::from_secs(30), conn.call(1_000_000, &Op::Exists { path: "/", watch: false }))
            .await
            .map_err(|_| ClientError::Timeout(Duration::from_secs(30)))??;
    if head.err == 0 {
        tally.alive.fetch_add(1, Ordering::AcqRel);
    }
    conn.close().await;
    Ok(())
}

/// One getChildren of `path` with a reply limit of `limit` bytes, repeated `rounds` times
/// on one session: the latency of each, the number of names and the reply's size.
pub async fn children(
    spec: &ScenarioSpec,
    servers: &[SocketAddr],
    path: &str,
    limit: usize,
) -> Result<ScenarioResult, ClientError> {
    let mut conn = Conn::connect(servers[0], &spec.transport, spec.session_timeout_ms, Duration::from_secs(30)).await?;
    conn.reader.set_limit(limit);
    let mut hist = report::new_histogram();
    let (mut names, mut bytes, mut err) = (0i64, 0usize, 0i32);
    let t0 = Instant::now();
    for round in 0..spec.rounds.max(1) {
        let start = Instant::now();
        let (head, body) = conn.call_raw(round as i32 + 1, &Op::GetChildren { path, watch: false }).await?;
        report::record(&mut hist, start.elapsed());
        err = head.err;
        bytes = body.len();
        names = if head.err == 0 && body.len() >= 4 {
            i64::from(i32::from_be_bytes([body[0], body[1], body[2], body[3]]))
        } else {
            0
        };
    }
    let elapsed = t0.elapsed();
    conn.close().await;
    let mut extra = serde_json::Map::new();
    extra.insert("names".into(), json!(names));
    extra.insert("reply_bytes".into(), json!(bytes));
    extra.insert("error_code".into(), json!(err));
    let mut errors = report::ErrorCounts::new();
    if err != 0 {
        errors.insert(err.to_string(), 1);
    }
    Ok(ScenarioResult { ops: hist.len(), elapsed, latency: Some(hist), errors, extra })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_plan_has_the_three_kinds_in_proportion_and_no_target_twice() {
        let shape = FillShape { sessions: 4, per_session: 100_100, fanout: 1000 };
        let plan = watch_plan(7, 100, &shape);
        assert_eq!(plan.len(), 100);
        let count = |k: u8| plan.iter().filter(|(_, kind)| *kind == k).count();
        assert_eq!((count(0), count(1), count(2)), (60, 30, 10));
        let distinct: HashSet<_> = plan.iter().collect();
        assert_eq!(distinct.len(), plan.len());
        // Child and recursive watches are on directories (s{owner}-{dir}).
        for (path, kind) in plan.iter().filter(|(_, kind)| *kind != 0) {
            assert!(!path.trim_start_matches("/bench/fill/").contains('/'), "{path} {kind}");
        }
        assert_eq!(watch_plan(7, 100, &shape), plan, "a session's plan is the same every run");
    }
}
