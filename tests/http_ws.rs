//! WebSocket watch stream tests: a real listener, tokio-tungstenite as the client.

mod http_support;

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http_support::{digest, TestBackend};
use roost::http::HttpOptions;
use roost::proto::types::{perms, Acl, CreateMode};
use roost::tree::txn::TxnOp;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn start(opts: HttpOptions) -> (Arc<TestBackend>, String) {
    let b = TestBackend::new();
    let router = roost::http::router(b.clone(), opts);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(roost::http::serve(listener, router, roost::http::ConnLimits::default()));
    (b, format!("127.0.0.1:{}", addr.port()))
}

async fn connect(addr: &str, headers: &[(&'static str, &str)]) -> Ws {
    let mut req = format!("ws://{addr}/api/v1/watch").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("timed out").unwrap().unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

async fn expect_silence(ws: &mut Ws) {
    let r = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(r.is_err(), "unexpected frame: {r:?}");
}

async fn subscribe(ws: &mut Ws, v: Value) -> Value {
    send(ws, v).await;
    let ack = recv(ws).await;
    assert_eq!(ack["type"], "subscribed", "{ack}");
    ack
}

#[tokio::test]
async fn node_subscription_gets_events_in_zxid_order_with_data() {
    let (b, addr) = start(HttpOptions::default()).await;
    b.put("/cfg", "v0");
    let mut ws = connect(&addr, &[]).await;
    subscribe(&mut ws, json!({"type": "subscribe", "id": 1, "path": "/cfg", "mode": "node", "data": true})).await;
    for i in 1..=5 {
        b.apply_as_super(TxnOp::SetData { path: "/cfg".into(), data: Some(format!("v{i}").into_bytes()), version: -1 })
            .unwrap();
    }
    let mut last = 0;
    for i in 1..=5 {
        let ev = recv(&mut ws).await;
        assert_eq!(ev["sub"], 1);
        assert_eq!(ev["type"], "NodeDataChanged");
        assert_eq!(ev["path"], "/cfg");
        assert_eq!(ev["data"], format!("v{i}"));
        assert_eq!(ev["stat"]["version"], i);
        let z = ev["zxid"].as_i64().unwrap();
        assert!(z > last, "zxid order");
        last = z;
    }
    // Other nodes do not leak in.
    b.put("/other", "");
    expect_silence(&mut ws).await;
}

#[tokio::test]
async fn children_and_subtree_modes_and_unsubscribe() {
    let (b, addr) = start(HttpOptions::default()).await;
    b.put("/a", "");
    let mut ws = connect(&addr, &[]).await;
    subscribe(&mut ws, json!({"type": "subscribe", "id": "kids", "path": "/a", "mode": "children"})).await;
    subscribe(&mut ws, json!({"type": "subscribe", "id": "all", "path": "/a", "mode": "subtree"})).await;
    b.put("/a/b", "");
    let mut got = Vec::new();
    for _ in 0..4 {
        let ev = recv(&mut ws).await;
        got.push((
            ev["sub"].as_str().unwrap().to_owned(),
            ev["type"].as_str().unwrap().to_owned(),
            ev["path"].as_str().unwrap().to_owned(),
        ));
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            ("all".into(), "NodeChildrenChanged".into(), "/a".into()),
            ("all".into(), "NodeCreated".into(), "/a/b".into()),
            ("kids".into(), "NodeChildrenChanged".into(), "/a".into()),
            ("kids".into(), "NodeCreated".into(), "/a/b".into()),
        ]
    );
    // Grandchildren reach the subtree subscription only.
    send(&mut ws, json!({"type": "unsubscribe", "id": "kids"})).await;
    assert_eq!(recv(&mut ws).await["type"], "unsubscribed");
    b.put("/a/b/c", "");
    let ev = recv(&mut ws).await;
    assert_eq!(
        (ev["sub"].as_str(), ev["type"].as_str(), ev["path"].as_str()),
        (Some("all"), Some("NodeCreated"), Some("/a/b/c"))
    );
    let ev = recv(&mut ws).await;
    assert_eq!((ev["sub"].as_str(), ev["type"].as_str()), (Some("all"), Some("NodeChildrenChanged")));
    send(&mut ws, json!({"type": "unsubscribe", "id": "all"})).await;
    assert_eq!(recv(&mut ws).await["type"], "unsubscribed");
    b.put("/a/d", "");
    expect_silence(&mut ws).await;
}

#[tokio::test]
async fn events_only_for_readable_nodes() {
    let (b, addr) = start(HttpOptions::default()).await;
    let secret = vec![Acl { perms: perms::ALL, id: digest("alice:pw") }];
    b.apply_as_super(TxnOp::Create {
        path: "/s".into(),
        data: None,
        acl: secret,
        mode: CreateMode::Persistent,
        ttl_ms: None,
    })
    .unwrap();
    let mut anon = connect(&addr, &[]).await;
    let mut alice = connect(&addr, &[("zk-auth", "digest alice:pw")]).await;
    for ws in [&mut anon, &mut alice] {
        subscribe(ws, json!({"type": "subscribe", "id": 1, "path": "/s", "data": true})).await;
    }
    b.apply_as_super(TxnOp::SetData { path: "/s".into(), data: Some(b"hidden".to_vec()), version: -1 }).unwrap();
    let ev = recv(&mut alice).await;
    assert_eq!(ev["data"], "hidden");
    expect_silence(&mut anon).await;
}

#[tokio::test]
async fn since_zxid_replays_or_asks_for_resync() {
    let (b, addr) = start(HttpOptions { ring_capacity: 4, ..HttpOptions::default() }).await;
    b.put("/r", "");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen = b.apply_as_super(TxnOp::SetData { path: "/r".into(), data: Some(b"1".to_vec()), version: -1 }).unwrap();
    let _ = seen;
    let since = roost::http::Backend::last_zxid(&*b);
    b.apply_as_super(TxnOp::SetData { path: "/r".into(), data: Some(b"2".to_vec()), version: -1 }).unwrap();
    b.apply_as_super(TxnOp::SetData { path: "/r".into(), data: Some(b"3".to_vec()), version: -1 }).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ws = connect(&addr, &[]).await;
    subscribe(&mut ws, json!({"type": "subscribe", "id": 1, "path": "/r", "data": true, "since_zxid": since})).await;
    assert_eq!(recv(&mut ws).await["data"], "2");
    assert_eq!(recv(&mut ws).await["data"], "3");
    // Live events continue after the replay.
    b.apply_as_super(TxnOp::SetData { path: "/r".into(), data: Some(b"4".to_vec()), version: -1 }).unwrap();
    assert_eq!(recv(&mut ws).await["data"], "4");
    // Too old for a ring of 4 events.
    subscribe(&mut ws, json!({"type": "subscribe", "id": 2, "path": "/r", "since_zxid": 0})).await;
    let r = recv(&mut ws).await;
    assert_eq!(r["type"], "resync");
    assert_eq!(r["sub"], 2);
}

#[tokio::test]
async fn slow_consumer_is_closed_with_a_reason() {
    let (b, addr) = start(HttpOptions { ws_queue: 8, ..HttpOptions::default() }).await;
    b.put("/fast", "");
    let mut ws = connect(&addr, &[]).await;
    subscribe(&mut ws, json!({"type": "subscribe", "id": 1, "path": "/fast", "data": true})).await;
    // Big events, many of them, while the client does not read: the server's writes
    // block on TCP backpressure and the socket falls behind its queue.
    let blob = vec![b'x'; 512 * 1024];
    for _ in 0..200 {
        b.apply_as_super(TxnOp::SetData { path: "/fast".into(), data: Some(blob.clone()), version: -1 }).unwrap();
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut reason = None;
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        match msg {
            Ok(Message::Close(Some(frame))) => {
                reason = Some(frame.reason.to_string());
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    let reason = reason.expect("closed with a reason");
    assert!(reason.contains("slow consumer"), "{reason}");
}

#[tokio::test]
async fn bad_messages_get_errors_not_disconnects() {
    let (_, addr) = start(HttpOptions::default()).await;
    let mut ws = connect(&addr, &[]).await;
    send(&mut ws, json!({"type": "nope"})).await;
    assert_eq!(recv(&mut ws).await["type"], "error");
    send(&mut ws, json!({"type": "subscribe", "id": 1, "path": "bad"})).await;
    assert_eq!(recv(&mut ws).await["type"], "error");
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
}

#[tokio::test]
async fn cross_origin_websocket_is_refused() {
    let (_, addr) = start(HttpOptions::default()).await;
    let mut req = format!("ws://{addr}/api/v1/watch").into_client_request().unwrap();
    req.headers_mut().insert("origin", "http://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}
