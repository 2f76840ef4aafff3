//! The HTTP port's connection bounds: silent, slow and greedy clients are closed instead
//! of holding file descriptors and tasks forever, and a WebSocket client that stops
//! answering pings is dropped. Each test fails without the bound it checks.

mod http_support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use http_support::TestBackend;
use roost::http::{ConnLimits, HttpOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(opts: HttpOptions, limits: ConnLimits) -> std::net::SocketAddr {
    let router = roost::http::router(TestBackend::new(), opts);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(roost::http::serve(listener, router, limits));
    addr
}

fn short() -> ConnLimits {
    ConnLimits { header_timeout: Duration::from_millis(500), body_timeout: Duration::from_millis(500), per_address: 8 }
}

/// Reads until the server closes; returns what it sent, or `None` if it kept the
/// connection open for `within`.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let r = tokio::time::timeout(within, s.read_to_end(&mut got)).await;
    r.ok().map(|_| String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn silent_and_slow_header_connections_are_closed() {
    let addr = start(HttpOptions::default(), short()).await;
    let start = Instant::now();
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut slowloris = TcpStream::connect(addr).await.expect("connect");
    slowloris.write_all(b"GET /api/v1/znodes/ HTTP/1.1\r\nHost: x\r\n").await.expect("part of a head");
    assert!(read_until_closed(&mut silent, Duration::from_secs(5)).await.is_some(), "a silent connection stays open");
    assert!(read_until_closed(&mut slowloris, Duration::from_secs(5)).await.is_some(), "a half-sent head stays open");
    assert!(start.elapsed() >= Duration::from_millis(400), "closed before the header timeout");
}

#[tokio::test]
async fn keep_alive_connections_are_closed_once_idle() {
    let addr = start(HttpOptions::default(), short()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /api/v1/znodes/ HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("request");
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.expect("response");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    // Then nothing: the idle connection is closed.
    assert!(
        read_until_closed(&mut s, Duration::from_secs(5)).await.is_some(),
        "an idle keep-alive connection stays open"
    );
}

#[tokio::test]
async fn a_body_that_never_arrives_times_out() {
    let addr = start(HttpOptions::default(), short()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = "POST /api/v1/znodes/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"data\":";
    s.write_all(head.as_bytes()).await.expect("head and part of a body");
    let answer = read_until_closed(&mut s, Duration::from_secs(5)).await.expect("the server gives up on the body");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408") || answer.starts_with("HTTP/1.1 400"), "{answer}");
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let addr = start(HttpOptions::default(), ConnLimits { per_address: 4, ..ConnLimits::default() }).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // Let the server count them, then the fifth is closed at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fifth = TcpStream::connect(addr).await.expect("connect");
    let _ = fifth.write_all(b"GET /api/v1/znodes/ HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = read_until_closed(&mut fifth, Duration::from_secs(2)).await.expect("the fifth connection is closed");
    assert!(answer.is_empty(), "the fifth connection was served: {answer}");
    // Once one closes, the address may connect again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = TcpStream::connect(addr).await.expect("connect");
    again.write_all(b"GET /api/v1/znodes/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("request");
    let answer = read_until_closed(&mut again, Duration::from_secs(5)).await.expect("served");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_websocket_client_that_stops_answering_pings_is_dropped() {
    let opts = HttpOptions { ws_ping_interval: Duration::from_millis(200), ..HttpOptions::default() };
    let addr = start(opts, ConnLimits::default()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/watch")).await.expect("ws");
    // A client that reads answers pings (tungstenite does so while reading): it stays.
    let first = tokio::time::timeout(Duration::from_secs(2), ws.next()).await.expect("a ping arrives");
    assert!(matches!(first, Some(Ok(tokio_tungstenite::tungstenite::Message::Ping(_)))), "{first:?}");
    let stays =
        tokio::time::timeout(Duration::from_millis(900), async { while let Some(Ok(_)) = ws.next().await {} }).await;
    assert!(stays.is_err(), "a client answering pings was dropped");
    // Now it stops reading (so it never answers): within two intervals and a bit, it is closed.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut closed = false;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame)))) => {
                let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                assert!(reason.contains("no answer to pings"), "{reason}");
                closed = true;
                break;
            }
            Ok(None) | Ok(Some(Err(_))) => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(closed, "a client that stopped answering pings stays connected");
}

#[tokio::test]
async fn only_allowed_host_names_are_served_when_configured() {
    let opts =
        HttpOptions { allowed_hosts: vec!["zk.example".into(), "localhost:9999".into()], ..HttpOptions::default() };
    let addr = start(opts, ConnLimits::default()).await;
    for (host, served) in [
        ("zk.example", true),
        ("ZK.example:8080", true),
        ("localhost:9999", true),
        ("localhost:1234", false),
        ("evil.example", false),
        ("zk.example.evil.example", false),
    ] {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = format!("GET /api/v1/znodes/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("request");
        let answer = read_until_closed(&mut s, Duration::from_secs(5)).await.expect("answered");
        let ok = answer.starts_with("HTTP/1.1 200");
        assert_eq!(ok, served, "Host {host}: {answer}");
    }
}
