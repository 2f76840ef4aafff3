//! The get, set, mix and children workloads through an independent ZooKeeper client: the
//! `zookeeper-client` crate, with its own codec, connection handling and pipelining. It shares
//! no code with this load generator or with the server, so a figure it confirms is not an
//! artefact of how our own client speaks the protocol (`--client independent`).
//!
//! The shape is the same as [`crate::load`]'s closed loop: `sessions` sessions spread over the
//! servers, each with `inflight` requests outstanding (one task per slot, pipelined on the
//! session's one connection), the same znodes (`/bench/k<i>`, created by [`crate::load::prepare`]),
//! latency from send to reply, counted only inside the measured window.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use zookeeper_client as zk;

use futures::StreamExt;

use crate::hold::{hold_with, watch_plan, FillShape, HoldSession, Phase, ARM_WINDOW};
use crate::load::{key_path, Kind, LoadResult, LoadSpec, SessionResult};
use crate::report::{self, Counters};
use crate::scenarios::{ScenarioResult, ScenarioSpec};

/// Why an independent run could not start.
#[derive(Debug, thiserror::Error)]
pub enum IndependentError {
    #[error("the independent client runs get, set, mix, children and hold only")]
    Workload,
    #[error("the independent client speaks plain TCP only")]
    Tls,
    #[error("connecting to {addr} with zookeeper-client: {source}")]
    Connect { addr: SocketAddr, source: zk::Error },
    #[error("getChildren of {path} with zookeeper-client: {source}")]
    Children { path: String, source: zk::Error },
}

/// One request slot's part of the workload.
struct Slot {
    /// The key it starts at; it steps through all `keys`.
    first: usize,
    keys: usize,
    read_pct: u32,
    /// Seed of its read/write choices (never 0).
    seed: u64,
    value: Vec<u8>,
    /// Requests start at `start`; those sent from `from` and answered by `until` count.
    start: Instant,
    from: Instant,
    until: Instant,
}

/// Runs `spec` (get, set or mix) through `zookeeper-client` sessions.
pub async fn run(
    spec: &LoadSpec,
    servers: &[SocketAddr],
    counters: Arc<Counters>,
) -> Result<LoadResult, IndependentError> {
    let read_pct = match spec.kind {
        Kind::Get => 100,
        Kind::Set => 0,
        Kind::Mix { read_pct } => read_pct,
        _ => return Err(IndependentError::Workload),
    };
    if spec.transport.is_tls() {
        return Err(IndependentError::Tls);
    }
    let mut clients = Vec::with_capacity(spec.sessions);
    for i in 0..spec.sessions {
        let addr = servers[i % servers.len()];
        let client = zk::Client::connector()
            .with_session_timeout(Duration::from_millis(spec.session_timeout_ms.max(1) as u64))
            .connect(&addr.to_string())
            .await
            .map_err(|source| IndependentError::Connect { addr, source })?;
        clients.push(client);
    }
    let start = Instant::now() + Duration::from_millis(20);
    let (from, until) = (start + spec.warmup, start + spec.warmup + spec.duration);
    let value = vec![b'v'; spec.value_size];
    let mut tasks = Vec::new();
    for (session, client) in clients.iter().enumerate() {
        for slot in 0..spec.inflight.max(1) {
            let (client, counters) = (client.clone(), counters.clone());
            let part = Slot {
                // Slots start at different keys and step through all of them.
                first: (session * spec.inflight.max(1) + slot) % spec.keys.max(1),
                keys: spec.keys.max(1),
                read_pct,
                seed: (session as u64) << 32 | slot as u64 | 1,
                value: value.clone(),
                start,
                from,
                until,
            };
            tasks.push(tokio::spawn(async move { run_slot(client, part, &counters).await }));
        }
    }
    let mut result = LoadResult::merge(tasks, None).await;
    result.elapsed = spec.duration;
    Ok(result)
}

/// One outstanding request, repeated until `until`: a read with probability `read_pct`%.
async fn run_slot(client: zk::Client, part: Slot, counters: &Counters) -> SessionResult {
    let Slot { first: mut key, keys, read_pct, seed: mut rng, value, start, from, until } = part;
    let mut r = SessionResult::new();
    tokio::time::sleep_until(start).await;
    loop {
        let sent = Instant::now();
        if sent >= until {
            return r;
        }
        // xorshift64: a cheap, seeded choice between read and write.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let read = (rng % 100) < u64::from(read_pct);
        let path = key_path(key);
        key = (key + 1) % keys;
        let outcome = if read {
            client.get_data(&path).await.map(|_| ())
        } else {
            client.set_data(&path, &value, None).await.map(|_| ())
        };
        let done = Instant::now();
        counters.done(outcome.is_ok());
        if sent < from || done > until {
            continue;
        }
        match outcome {
            Ok(()) => {
                let took = done - sent;
                report::record(&mut r.all, took);
                report::record(if read { &mut r.reads } else { &mut r.writes }, took);
                r.measured += 1;
            }
            Err(e) => *r.errors.entry(e.to_string()).or_default() += 1,
        }
    }
}

/// [`crate::hold::children`] through `zookeeper-client`: one getChildren of `path`, `rounds`
/// times on one session, timed from the call to the decoded list (so the client's decoding
/// of every name is in the figure, the same for every server).
pub async fn children(
    spec: &ScenarioSpec,
    servers: &[SocketAddr],
    path: &str,
) -> Result<ScenarioResult, IndependentError> {
    if spec.transport.is_tls() {
        return Err(IndependentError::Tls);
    }
    let addr = servers[0];
    let client = zk::Client::connector()
        .with_session_timeout(Duration::from_millis(spec.session_timeout_ms.max(1) as u64))
        .connect(&addr.to_string())
        .await
        .map_err(|source| IndependentError::Connect { addr, source })?;
    let mut hist = report::new_histogram();
    let (mut names, mut bytes) = (0usize, 0usize);
    let t0 = Instant::now();
    for _ in 0..spec.rounds.max(1) {
        let start = Instant::now();
        let (children, _) = client
            .get_children(path)
            .await
            .map_err(|source| IndependentError::Children { path: path.to_string(), source })?;
        report::record(&mut hist, start.elapsed());
        names = children.len();
        // The reply body as the wire carries it: the count, then each name with its length.
        bytes = 4 + children.iter().map(|n| 4 + n.len()).sum::<usize>();
    }
    let elapsed = t0.elapsed();
    let mut extra = serde_json::Map::new();
    extra.insert("names".into(), serde_json::json!(names));
    extra.insert("reply_bytes".into(), serde_json::json!(bytes));
    extra.insert("client".into(), serde_json::json!("zookeeper-client"));
    Ok(ScenarioResult { ops: hist.len(), elapsed, latency: Some(hist), errors: report::ErrorCounts::new(), extra })
}

/// A watch the independent client holds: dropping it would ask the client to remove it.
#[expect(dead_code, reason = "held, never read: the watch lives as long as its watcher")]
enum HeldWatch {
    Oneshot(zk::OneshotWatcher),
    Persistent(zk::PersistentWatcher),
}

/// [`crate::hold::hold`] through `zookeeper-client`: the same sessions, phases and watch plan
/// (getData, getChildren2 and addWatch persistent-recursive), with the crate's own pings
/// keeping the sessions alive, so that bytes per session and per watch are measured with a
/// client that shares nothing with ours.
pub async fn hold(
    spec: &ScenarioSpec,
    servers: &[SocketAddr],
    shape: FillShape,
    watches: usize,
    pids: &[u32],
    counters: Arc<Counters>,
) -> Result<ScenarioResult, IndependentError> {
    if spec.transport.is_tls() {
        return Err(IndependentError::Tls);
    }
    let timeout = Duration::from_millis(spec.session_timeout_ms.max(1) as u64);
    let mut r =
        hold_with(spec, servers, pids, counters, move |s: HoldSession| hold_session(s, timeout, watches, shape)).await;
    r.extra.insert("client".into(), serde_json::json!("zookeeper-client"));
    Ok(r)
}

async fn hold_session(s: HoldSession, timeout: Duration, watches: usize, shape: FillShape) -> Result<(), &'static str> {
    let HoldSession { index, addr, mut phase, tally, gate, counters } = s;
    let permit = gate.acquire().await;
    let client = zk::Client::connector().with_session_timeout(timeout).connect(&addr.to_string()).await;
    drop(permit);
    counters.done(client.is_ok());
    let client = client.map_err(|_| "connect")?;
    tally.connected.fetch_add(1, Ordering::AcqRel);
    while *phase.borrow_and_update() == Phase::Connect {
        phase.changed().await.map_err(|_| "stopped")?;
    }
    let plan = watch_plan(index, watches, &shape);
    let planned = plan.len();
    // Owned per request (a clone of the client is a handle): borrowed futures in a spawned
    // stream trip the compiler's higher-ranked lifetime check.
    let arms = futures::stream::iter(plan.into_iter().map(|(path, kind)| arm(client.clone(), path, kind)))
        .buffer_unordered(ARM_WINDOW)
        .collect::<Vec<_>>()
        .await;
    let held: Vec<HeldWatch> = arms.into_iter().flatten().collect();
    tally.watches.fetch_add(held.len(), Ordering::AcqRel);
    tally.watch_errors.fetch_add(planned - held.len(), Ordering::AcqRel);
    tally.armed.fetch_add(1, Ordering::AcqRel);
    while *phase.borrow_and_update() != Phase::Stop {
        if phase.changed().await.is_err() {
            break;
        }
    }
    let _permit = gate.acquire().await;
    match tokio::time::timeout(Duration::from_secs(30), client.check_stat("/")).await {
        Ok(Ok(Some(_))) => {
            tally.alive.fetch_add(1, Ordering::AcqRel);
        }
        Ok(_) => return Err("not-alive"),
        Err(_) => return Err("timeout"),
    }
    drop(held);
    // Dropping the last handle closes the session.
    drop(client);
    Ok(())
}

/// One watch of the plan: 0 data (getData), 1 child (getChildren2), 2 persistent-recursive.
async fn arm(client: zk::Client, path: String, kind: u8) -> Option<HeldWatch> {
    match kind {
        0 => client.get_and_watch_data(&path).await.ok().map(|(_, _, w)| HeldWatch::Oneshot(w)),
        1 => client.get_and_watch_children(&path).await.ok().map(|(_, _, w)| HeldWatch::Oneshot(w)),
        _ => client.watch(&path, zk::AddWatchMode::PersistentRecursive).await.ok().map(HeldWatch::Persistent),
    }
}
