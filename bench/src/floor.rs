//! The loopback TCP floor of the watch fan-out: how long this machine's kernel takes to
//! carry one small message to each of N connections, with no server logic at all.
//!
//! A watch event is one short frame on each watcher's own connection, so a server's
//! fan-out time cannot drop below the cost of N sends and N receives over loopback TCP.
//! `floor` measures that cost the way the watch workload sees it: a child process (the
//! "server", `roost-bench floor-serve`) holds N accepted connections and, per round,
//! writes one 40-byte message to each from a task per connection (as a ZooKeeper-style
//! server's per-connection writers do); this process reads them, one task per
//! connection, and reports the time from the trigger to the last message read.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use crate::client::ClientError;
use crate::report;
use crate::scenarios::{ScenarioResult, ScenarioSpec};

/// Size of the message sent to each connection (a short watch event is about this long).
const MESSAGE: usize = 40;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The server half, run in a child process: accepts `count` connections (the first is the
/// control connection) and per trigger byte writes one message to each of the others,
/// then answers the trigger with one byte.
pub async fn serve(count: usize) -> Result<(), ClientError> {
    // A deep accept queue: the client connects many at once.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(([127, 0, 0, 1], 0).into())?;
    let listener: TcpListener = socket.listen(4096)?;
    println!("{}", listener.local_addr()?.port());
    let mut control = listener.accept().await?.0;
    let mut socks = Vec::with_capacity(count);
    for _ in 0..count {
        let (sock, _) = listener.accept().await?;
        sock.set_nodelay(true)?;
        socks.push(sock);
    }
    let mut trigger = [0u8; 1];
    while control.read(&mut trigger).await? == 1 {
        let writers: Vec<_> = socks
            .drain(..)
            .map(|mut sock| {
                tokio::spawn(async move {
                    let sent = sock.write_all(&[7u8; MESSAGE]).await;
                    (sock, sent)
                })
            })
            .collect();
        for w in writers {
            let (sock, sent) = w.await.map_err(|_| ClientError::Closed)?;
            sent?;
            socks.push(sock);
        }
        control.write_all(&trigger).await?;
    }
    Ok(())
}

/// The client half: starts the server child, connects `spec.count` connections, and runs
/// `spec.rounds` deliveries.
pub async fn tcp_floor(spec: &ScenarioSpec) -> Result<ScenarioResult, ClientError> {
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .args(["floor-serve", "--count", &spec.count.to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or(ClientError::Closed)?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await?;
    let port: u16 = line.trim().parse().map_err(|_| ClientError::Closed)?;
    let addr = ("127.0.0.1", port);
    let mut control = TcpStream::connect(addr).await?;
    let gate = std::sync::Arc::new(Semaphore::new(spec.connect_concurrency.max(1)));
    let mut connecting = Vec::with_capacity(spec.count);
    for _ in 0..spec.count {
        let gate = gate.clone();
        connecting.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            TcpStream::connect(addr).await
        }));
    }
    let mut conns = Vec::with_capacity(spec.count);
    for c in connecting {
        conns.push(c.await.map_err(|_| ClientError::Closed)??);
    }
    let mut lasts = Vec::with_capacity(spec.rounds);
    let mut all = report::new_histogram();
    let t_start = Instant::now();
    for round in 0..spec.rounds {
        let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
        let readers: Vec<_> = conns
            .drain(..)
            .map(|mut conn: TcpStream| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; MESSAGE];
                    let read = conn.read_exact(&mut buf).await;
                    let _ = tx.send(Instant::now());
                    (conn, read)
                })
            })
            .collect();
        drop(tx);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t0 = Instant::now();
        control.write_all(&[1]).await?;
        let mut last = Duration::ZERO;
        while let Some(at) = rx.recv().await {
            let d = at.saturating_duration_since(t0);
            report::record(&mut all, d);
            last = last.max(d);
        }
        let mut done = [0u8; 1];
        control.read_exact(&mut done).await?;
        for r in readers {
            let (conn, read) = r.await.map_err(|_| ClientError::Closed)?;
            read?;
            conns.push(conn);
        }
        eprintln!("[floor] round {round}: {} messages, last after {:.1} ms", spec.count, ms(last));
        lasts.push(ms(last));
    }
    drop(control);
    let _ = child.kill().await;
    let mut extra = serde_json::Map::new();
    extra.insert("connections".into(), json!(spec.count));
    extra.insert("rounds_last_event_ms".into(), json!(lasts));
    lasts.sort_by(f64::total_cmp);
    extra.insert("last_event_ms".into(), json!(lasts.get(lasts.len() / 2).copied().unwrap_or(0.0)));
    Ok(ScenarioResult {
        ops: all.len(),
        elapsed: t_start.elapsed(),
        latency: Some(all),
        errors: Default::default(),
        extra,
    })
}
