//! Scale smoke test: a 3-member ensemble holds a million znodes and a hundred thousand
//! watches, fires every watch exactly once, and comes back from a restart of every member
//! with the same tree on each. It asserts correctness only (counts, events, digests); how
//! fast and how big is `bench/`'s business.
//!
//! Sizes: `ROOST_SCALE_ZNODES` (default 1,000,000) and `ROOST_SCALE_WATCHES` (default 100,000).

mod common;

use std::time::Duration;

use common::cluster::{Cluster, Options};
use common::{client, four_letter_word, open};
use futures::future::join_all;
use zookeeper_client as zk;

/// Children per parent; each parent and its children are created by one multi.
const FANOUT: usize = 1000;
/// Multis (or watch sessions) in flight at once.
const IN_FLIGHT: usize = 8;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn parent(p: usize) -> String {
    format!("/scale/p{p:04}")
}

/// The path of the `k`-th leaf.
fn leaf(k: usize) -> String {
    format!("{}/n{:03}", parent(k / FANOUT), k % FANOUT)
}

/// A `mntr` value of the member at `addr`.
fn mntr(addr: std::net::SocketAddr, key: &str) -> u64 {
    let out = four_letter_word(addr, "mntr");
    let prefix = format!("zk_{key}\t");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no zk_{key} in mntr of {addr}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_znodes_and_a_hundred_thousand_watches_survive_a_restart_of_every_member() {
    let parents = env_usize("ROOST_SCALE_ZNODES", 1_000_000).div_ceil(FANOUT).max(1);
    let leaves = parents * FANOUT;
    let watches = env_usize("ROOST_SCALE_WATCHES", 100_000).min(leaves);
    // Snapshots (and with them log purges) happen all through the fill.
    let mut cluster = Cluster::start_opts(3, Options { extra: "snapCount=50", ..Options::default() });
    cluster.wait_leader(Duration::from_secs(30));
    let writer = client(&cluster.connect_string()).await;
    let before = mntr(cluster.members[0].addr(), "znode_count");
    writer.create("/scale", b"", &open()).await.expect("create /scale");

    // Fill: one multi per parent, with its children.
    let value = [b'v'; 100];
    for batch in (0..parents).collect::<Vec<_>>().chunks(IN_FLIGHT) {
        let commits = batch.iter().map(|&p| {
            let writer = &writer;
            async move {
                let mut multi = writer.new_multi_writer();
                multi.add_create(&parent(p), b"", &open()).expect("add parent");
                for k in p * FANOUT..(p + 1) * FANOUT {
                    multi.add_create(&leaf(k), &value, &open()).expect("add leaf");
                }
                multi.commit().await.map(|r| r.len())
            }
        });
        for done in join_all(commits).await {
            assert_eq!(done.expect("fill multi"), FANOUT + 1);
        }
    }
    let created = (1 + parents + leaves) as u64;
    cluster.wait_converged(Duration::from_secs(120));
    for m in &cluster.members {
        assert_eq!(mntr(m.addr(), "znode_count"), before + created, "znodes on member {}", m.id);
    }

    // Watches: sessions of FANOUT data watches each, spread over the members.
    let sessions = watches.div_ceil(FANOUT);
    let mut watchers = Vec::with_capacity(watches);
    let mut clients = Vec::with_capacity(sessions);
    for group in (0..sessions).collect::<Vec<_>>().chunks(IN_FLIGHT) {
        let armed = group.iter().map(|&s| {
            let member = cluster.members[s % cluster.members.len()].connect_string();
            async move {
                let c = client(&member).await;
                let keys = s * FANOUT..((s + 1) * FANOUT).min(watches);
                let got = join_all(keys.map(|k| {
                    let c = &c;
                    async move { (k, c.get_and_watch_data(&leaf(k)).await.expect("get_and_watch_data").2) }
                }))
                .await;
                (c, got)
            }
        });
        for (c, got) in join_all(armed).await {
            clients.push(c);
            watchers.extend(got);
        }
    }
    let held: u64 = cluster.members.iter().map(|m| mntr(m.addr(), "watch_count")).sum();
    assert_eq!(held, watches as u64, "watches held across the members");

    // One setData on every watched leaf; each watch fires once, for its own path.
    for keys in (0..watches).collect::<Vec<_>>().chunks(FANOUT * IN_FLIGHT) {
        let commits = keys.chunks(FANOUT).map(|chunk| {
            let writer = &writer;
            async move {
                let mut multi = writer.new_multi_writer();
                for &k in chunk {
                    multi.add_set_data(&leaf(k), b"changed", None).expect("add setData");
                }
                multi.commit().await.map(|r| r.len())
            }
        });
        for done in join_all(commits).await {
            done.expect("setData multi");
        }
    }
    let fired = tokio::time::timeout(
        Duration::from_secs(120),
        join_all(watchers.into_iter().map(|(k, w)| async move { (k, w.changed().await) })),
    )
    .await
    .expect("every watch fired within 120 s");
    for (k, event) in &fired {
        assert_eq!(event.event_type, zk::EventType::NodeDataChanged, "event for leaf {k}");
        assert_eq!(event.path, leaf(*k), "event path for leaf {k}");
    }
    assert_eq!(fired.len(), watches);
    let held: u64 = cluster.members.iter().map(|m| mntr(m.addr(), "watch_count")).sum();
    assert_eq!(held, 0, "fired watches are gone");
    drop(clients);
    drop(writer);

    // Every member restarts from its snapshot and log, to the same tree.
    let digest = cluster.wait_converged(Duration::from_secs(120));
    for i in 0..cluster.members.len() {
        assert!(cluster.terminate(i, Duration::from_secs(30)), "member {i} did not stop on SIGTERM");
    }
    for i in 0..cluster.members.len() {
        cluster.restart(i);
    }
    cluster.wait_leader(Duration::from_secs(60));
    let after = cluster.wait_converged(Duration::from_secs(120));
    // The zxid moves on after the restart (the closes of the sessions the restart cut),
    // the tree may not.
    let tree_digest = |line: &str| line.split(" zxid:").next().unwrap_or_default().to_string();
    assert_eq!(tree_digest(&after), tree_digest(&digest), "the tree after the restart ({after}) / before ({digest})");
    let reader = client(&cluster.connect_string()).await;
    for m in &cluster.members {
        assert_eq!(mntr(m.addr(), "znode_count"), before + created, "znodes on member {} after restart", m.id);
    }
    for k in [0, watches.saturating_sub(1), watches, leaves - 1] {
        let (data, stat) = reader.get_data(&leaf(k)).await.expect("a leaf after the restart");
        let expected: &[u8] = if k < watches { b"changed" } else { &value };
        assert_eq!(data, expected, "data of leaf {k}");
        assert_eq!(stat.version, i32::from(k < watches), "version of leaf {k}");
    }
}
