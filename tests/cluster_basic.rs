//! A 3-member ensemble of real processes: it forms, every member serves reads and
//! writes, and the four-letter words report each member's role.

mod common;

use std::time::Duration;

use common::cluster::{four_letter_word_timeout, Cluster};
use common::{client, open};
use zookeeper_client as zk;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_form_and_serve_writes_through_any_member() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let clients = [
        client(&cluster.members[0].connect_string()).await,
        client(&cluster.members[1].connect_string()).await,
        client(&cluster.members[2].connect_string()).await,
    ];
    // A write through each member is visible to that member's next read at once
    // (read-your-writes on followers), and on every member after a sync.
    for (i, c) in clients.iter().enumerate() {
        let path = format!("/from{}", i + 1);
        let (stat, _) = c.create(&path, format!("m{}", i + 1).as_bytes(), &open()).await.unwrap();
        assert_eq!(c.get_data(&path).await.unwrap().1, stat, "member {} reads its own write", i + 1);
    }
    for c in &clients {
        c.sync("/").await.unwrap();
        for i in 0..3 {
            let (data, _) = c.get_data(&format!("/from{}", i + 1)).await.unwrap();
            assert_eq!(data, format!("m{}", i + 1).as_bytes());
        }
    }
    // zxids are decided once: the same stat on every member.
    let stats: Vec<_> = futures_stats(&clients, "/from2").await;
    assert!(stats.windows(2).all(|w| w[0] == w[1]), "{stats:?}");

    // A watch set on one follower fires for a write through another member.
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let other = (0..3).find(|&i| i != leader && i != follower).unwrap();
    let (_, _, watcher) = clients[follower].get_and_watch_data("/from1").await.unwrap();
    clients[other].set_data("/from1", b"changed", None).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watcher.changed()).await.unwrap();
    assert_eq!(event.event_type, zk::EventType::NodeDataChanged);

    // Ephemerals of a session created on a follower are seen everywhere.
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    clients[follower].create("/eph", b"", &eph).await.unwrap();
    clients[leader].sync("/").await.unwrap();
    let stat = clients[leader].check_stat("/eph").await.unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, clients[follower].session_id().0);

    let digest = cluster.wait_converged(Duration::from_secs(10));
    assert!(digest.contains("zxid: 0x"), "{digest}");
}

async fn futures_stats(clients: &[zk::Client], path: &str) -> Vec<zk::Stat> {
    let mut out = Vec::new();
    for c in clients {
        c.sync(path).await.unwrap();
        out.push(c.check_stat(path).await.unwrap().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_words_report_roles_and_leader_metrics() {
    let cluster = Cluster::start_with(3, 1);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    assert_ne!(leader, 2, "an observer never leads");
    // The observer is added as a learner shortly after the leader is elected.
    let start = std::time::Instant::now();
    while cluster.mode(2) != "observer" {
        assert!(start.elapsed() < Duration::from_secs(10), "member 3 mode {:?}", cluster.mode(2));
        std::thread::sleep(Duration::from_millis(100));
    }
    let follower = 1 - leader.min(1);
    assert_eq!(cluster.mode(follower), "follower");

    let mntr = four_letter_word_timeout(cluster.members[leader].addr(), "mntr");
    assert!(mntr.contains("zk_server_state\tleader"), "{mntr}");
    assert!(mntr.contains("zk_quorum_size\t2"), "{mntr}");
    assert!(mntr.contains("zk_followers\t1"), "{mntr}");
    let start = std::time::Instant::now();
    loop {
        let mntr = four_letter_word_timeout(cluster.members[leader].addr(), "mntr");
        if mntr.contains("zk_learners\t2")
            && mntr.contains("zk_synced_followers\t1")
            && mntr.contains("zk_synced_observers\t1")
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{mntr}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mntr = four_letter_word_timeout(cluster.members[follower].addr(), "mntr");
    assert!(mntr.contains("zk_server_state\tfollower"), "{mntr}");
    assert!(!mntr.contains("zk_synced_followers"), "leader-only keys on a follower: {mntr}");

    // The observer serves clients and replicates writes.
    let c = client(&cluster.members[2].connect_string()).await;
    c.create("/via-observer", b"o", &open()).await.unwrap();
    assert_eq!(c.get_data("/via-observer").await.unwrap().0, b"o");
    cluster.wait_converged(Duration::from_secs(10));
}
