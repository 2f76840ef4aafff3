//! Not a test of behaviour: serves the navigator over the in-memory test backend with
//! sample data, for screenshots and browser tests. Run with
//! `ROOST_HTTP_DEMO_PORT=8099 cargo test --test http_serve -- --ignored --nocapture`.

mod http_support;

use roost::http::HttpOptions;
use roost::proto::types::{perms, Acl, CreateMode};
use roost::tree::txn::TxnOp;

#[tokio::test]
#[ignore]
async fn serve_demo() {
    let port: u16 = std::env::var("ROOST_HTTP_DEMO_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8099);
    let secs: u64 = std::env::var("ROOST_HTTP_DEMO_SECS").ok().and_then(|p| p.parse().ok()).unwrap_or(600);
    let b = http_support::TestBackend::new();
    b.put("/gunwu", "");
    b.put("/gunwu/test1", "{\"enabled\":true,\"replicas\":3,\"name\":\"alpha\"}");
    b.put("/gunwu/test2", "plain text value");
    b.put("/config", "");
    b.put("/config/app.yaml", "server:\n  port: 8080\n  host: 0.0.0.0\n");
    b.put("/config/settings.xml", "<settings><a>1</a></settings>");
    b.apply_as_super(TxnOp::Create {
        path: "/config/blob".into(),
        data: Some(vec![0x1f, 0x8b, 0x08, 0x00, 0xff, 0x10, 0x00, 0x41]),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: None,
    })
    .unwrap();
    b.apply_as_super(TxnOp::Create {
        path: "/secret".into(),
        data: Some(b"top secret".to_vec()),
        acl: vec![Acl { perms: perms::ALL, id: http_support::digest("alice:secret") }],
        mode: CreateMode::Persistent,
        ttl_ms: None,
    })
    .unwrap();
    b.put("/big", "");
    b.bulk_children("/big", 100_000);
    b.sessions.lock().push(roost::http::SessionInfo {
        id: 0x1000_0000_0000_0042,
        timeout_ms: 30000,
        client: Some("10.0.0.7:51234".into()),
        ephemerals: vec!["/gunwu/test1".into()],
    });
    let router = roost::http::router(b.clone(), HttpOptions::default());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    println!("serving on http://127.0.0.1:{port}/ui/");
    let ticker = b.clone();
    tokio::spawn(async move {
        let mut i = 0;
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            i += 1;
            let _ = ticker.apply_as_super(TxnOp::SetData {
                path: "/gunwu/test2".into(),
                data: Some(format!("tick {i}").into_bytes()),
                version: -1,
            });
        }
    });
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(secs),
        roost::http::serve(listener, router, roost::http::ConnLimits::default()),
    )
    .await;
}
