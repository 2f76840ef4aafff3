//! An acknowledged write survives `kill -9` at any moment.
//!
//! A writer streams creates at the server; each acknowledged path is recorded.
//! The server is killed with SIGKILL at a moment that varies per round, restarted
//! on the same data directory, and every acknowledged node must be there.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Server;
use zookeeper_client as zk;

#[tokio::test]
async fn acknowledged_creates_survive_kill_9_under_load() {
    let mut server = Server::start(&[]);
    let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    {
        let c = zk::Client::connect(&server.connect_string()).await.unwrap();
        c.create("/d", b"", &open).await.unwrap();
    }
    for round in 0..4u64 {
        let acked: Arc<Mutex<Vec<String>>> = Arc::default();
        let c = zk::Client::connect(&server.connect_string()).await.unwrap();
        let writer = {
            let acked = acked.clone();
            let c = c.clone();
            tokio::spawn(async move {
                let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
                for i in 0.. {
                    let path = format!("/d/r{round}-{i}");
                    // Several requests in flight, like a busy client.
                    let paths: Vec<String> = (0..8).map(|j| format!("{path}-{j}")).collect();
                    let pending: Vec<_> = paths.iter().map(|p| c.create(p, b"", &open)).collect();
                    for (p, fut) in paths.iter().zip(pending) {
                        match fut.await {
                            Ok(_) => acked.lock().unwrap().push(p.clone()),
                            Err(_) => return,
                        }
                    }
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(300 + round * 170)).await;
        server.kill9();
        let _ = tokio::time::timeout(Duration::from_secs(20), writer).await;
        drop(c);
        server.spawn();

        let acked = acked.lock().unwrap().clone();
        assert!(!acked.is_empty(), "round {round}: the writer got no acknowledgement before the kill");
        let check = zk::Client::connect(&server.connect_string()).await.unwrap();
        for p in &acked {
            assert!(check.check_stat(p).await.unwrap().is_some(), "round {round}: acknowledged {p} was lost");
        }
    }
}

/// A damaged record in the middle of the log (not a torn tail) must stop the server
/// with a message naming the file, instead of serving a tree with a hole in it.
#[tokio::test]
async fn corrupt_log_record_in_the_middle_refuses_to_start() {
    let mut server = Server::start(&[]);
    {
        let c = zk::Client::connect(&server.connect_string()).await.unwrap();
        let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        for i in 0..200 {
            c.create(&format!("/n{i}"), &[7u8; 64], &open).await.unwrap();
        }
    }
    server.kill9();

    let wal_dir = server.data_dir().join("raft").join("wal");
    let segment = std::fs::read_dir(&wal_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .expect("a WAL segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    // The segment ends in preallocated zeros: damage the middle of its records.
    let records_end = bytes.iter().rposition(|b| *b != 0).expect("records in the segment") + 1;
    let middle = records_end / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();

    assert!(server.start_expecting_failure(Duration::from_secs(30)), "the server started on a corrupt log");
    let log = server.log();
    assert!(log.to_lowercase().contains("corrupt"), "no clear message in the log:\n{log}");
}

/// Snapshots come every `snapCount` txns (not log entries, which carry batches), the
/// log behind them is purged, and a restart restores the snapshot plus the log tail.
#[tokio::test]
async fn snapshots_follow_snap_count_and_restart_restores_them() {
    let mut server = Server::start(&["-D", "snapCount=500"]);
    let c = zk::Client::connect(&server.connect_string()).await.unwrap();
    let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    c.create("/s", b"", &open).await.unwrap();
    // Pipelined creates so that many txns share one log entry.
    let paths: Vec<String> = (0..3000).map(|i| format!("/s/n{i}")).collect();
    for chunk in paths.chunks(500) {
        let pending: Vec<_> = chunk.iter().map(|p| c.create(p, b"payload", &open)).collect();
        for fut in pending {
            fut.await.unwrap();
        }
    }
    let snap_dir = server.data_dir().join("raft").join("snap");
    let mut snapshots = 0;
    for _ in 0..50 {
        snapshots = std::fs::read_dir(&snap_dir).map(|d| d.flatten().count()).unwrap_or(0);
        if snapshots > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(snapshots > 0, "no snapshot after 3000 txns with snapCount=500");
    drop(c);

    server.kill9();
    server.spawn();
    let c = zk::Client::connect(&server.connect_string()).await.unwrap();
    let (children, _) = c.get_children("/s").await.unwrap();
    assert_eq!(children.len(), 3000);
}
