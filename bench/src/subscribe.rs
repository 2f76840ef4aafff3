//! `subscribe`: the navigator's audience as load. `--count` WebSocket clients hold a
//! subtree subscription to `/` (no data) on Roost's HTTP port (`--servers` are HTTP
//! addresses here) for `--warmup` + `--duration` seconds, or until SIGTERM, and read every
//! event; run it next to a load workload to measure what the change feed costs while
//! people watch.
//!
//! Subscribe to `/` as a subtree without data. A subscriber the server closes (a slow
//! consumer under a heavy write load, close code 1008) connects again after 500 ms, as the
//! navigator does. Reports the events received (ops), connections made, and closes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::report::{Counters, ErrorCounts};
use crate::scenarios::{ScenarioResult, ScenarioSpec};

/// How one subscriber ended.
#[derive(Debug, Default)]
struct Tally {
    connected: AtomicU64,
    slow_consumer: AtomicU64,
    failed: AtomicU64,
}

pub async fn subscribers(
    spec: &ScenarioSpec,
    servers: &[SocketAddr],
    counters: Arc<Counters>,
) -> Result<ScenarioResult, std::io::Error> {
    let tally = Arc::new(Tally::default());
    let start = Instant::now();
    let until = start + spec.warmup + spec.duration;
    // SIGTERM ends the run early (the caller stops it when its load is done).
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        term.recv().await;
        let _ = stop_tx.send(true);
    });
    let tasks: Vec<_> = (0..spec.count.max(1))
        .map(|i| {
            let url = format!("ws://{}/api/v1/watch", servers[i % servers.len()]);
            tokio::spawn(subscriber(url, until, stop.clone(), counters.clone(), tally.clone()))
        })
        .collect();
    let mut per_subscriber = Vec::with_capacity(tasks.len());
    for t in tasks {
        per_subscriber.push(t.await.unwrap_or(0));
    }
    let mut extra = serde_json::Map::new();
    extra.insert("subscribers".into(), json!(spec.count));
    extra.insert("connections".into(), json!(tally.connected.load(Ordering::Relaxed)));
    extra.insert("slow_consumer_closes".into(), json!(tally.slow_consumer.load(Ordering::Relaxed)));
    extra.insert("failed".into(), json!(tally.failed.load(Ordering::Relaxed)));
    extra.insert("events_min".into(), json!(per_subscriber.iter().min().copied().unwrap_or(0)));
    extra.insert("events_max".into(), json!(per_subscriber.iter().max().copied().unwrap_or(0)));
    let mut errors = ErrorCounts::default();
    let failed = tally.failed.load(Ordering::Relaxed);
    if failed > 0 {
        errors.insert("conn".into(), failed);
    }
    Ok(ScenarioResult { ops: per_subscriber.iter().sum(), elapsed: start.elapsed(), latency: None, errors, extra })
}

/// One WebSocket client until `until` or `stop`, reconnecting 500 ms after the server
/// closed it (as the navigator does); returns the events it read.
async fn subscriber(
    url: String,
    until: Instant,
    mut stop: tokio::sync::watch::Receiver<bool>,
    counters: Arc<Counters>,
    tally: Arc<Tally>,
) -> u64 {
    let deadline = tokio::time::Instant::from_std(until);
    let mut events = 0;
    loop {
        match session(&url, deadline, &mut stop, &counters, &tally).await {
            Ended::Closed(n) => events += n,
            Ended::Done(n) => return events + n,
        }
        let pause = tokio::time::sleep(Duration::from_millis(500));
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return events,
            _ = tokio::time::timeout_at(deadline, pause) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return events;
        }
    }
}

/// How one connection ended, with the events it read.
enum Ended {
    /// The server closed it (or it failed): connect again.
    Closed(u64),
    /// The run is over.
    Done(u64),
}

async fn session(
    url: &str,
    deadline: tokio::time::Instant,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    counters: &Counters,
    tally: &Tally,
) -> Ended {
    let connected = tokio::time::timeout_at(deadline, tokio_tungstenite::connect_async(url)).await;
    let Ok(Ok((mut ws, _))) = connected else {
        tally.failed.fetch_add(1, Ordering::Relaxed);
        return Ended::Closed(0);
    };
    let subscribe = json!({"type": "subscribe", "id": 1, "path": "/", "mode": "subtree", "data": false});
    if ws.send(Message::text(subscribe.to_string())).await.is_err() {
        tally.failed.fetch_add(1, Ordering::Relaxed);
        return Ended::Closed(0);
    }
    tally.connected.fetch_add(1, Ordering::Relaxed);
    let mut events = 0;
    let ended = loop {
        let next = tokio::select! {
            _ = stop.wait_for(|s| *s) => break Ended::Done(events),
            next = tokio::time::timeout_at(deadline, ws.next()) => match next {
                Err(_) => break Ended::Done(events),
                Ok(None) => break Ended::Closed(events),
                Ok(Some(m)) => m,
            },
        };
        match next {
            Ok(Message::Text(text)) => {
                // Events are the frames with a `sub` member; no parse, so that the
                // subscribers' own CPU stays small next to the server's.
                if text.contains("\"sub\":") && !text.contains("\"type\":\"resync\"") {
                    events += 1;
                    counters.done(true);
                }
            }
            Ok(Message::Close(frame)) => {
                if frame.is_some_and(|f| u16::from(f.code) == 1008) {
                    tally.slow_consumer.fetch_add(1, Ordering::Relaxed);
                }
                break Ended::Closed(events);
            }
            Ok(_) => {}
            Err(_) => {
                tally.failed.fetch_add(1, Ordering::Relaxed);
                break Ended::Closed(events);
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    ended
}
