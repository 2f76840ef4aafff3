//! Failures of a 3-member ensemble of real processes: kill -9 of the leader under
//! write load, kill -9 of a follower, a frozen (SIGSTOP) leader, and a full-ensemble
//! kill -9 and restart. Every acknowledged write must survive and all members must end
//! with the same tree (compared by the `hash` four-letter word).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{client, open};
use parking_lot::Mutex;
use zookeeper_client as zk;

/// Writers creating `/load/w<writer>-<n>` through the whole ensemble; records every
/// acknowledged path and when each acknowledgement arrived.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(Instant, String)>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    async fn start(cluster: &Cluster, writers: usize) -> Load {
        let setup = client(&cluster.connect_string()).await;
        match setup.create("/load", b"", &open()).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => panic!("{e}"),
        }
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (stop, acked, connect) = (stop.clone(), acked.clone(), cluster.connect_string());
            tasks.push(tokio::spawn(async move {
                let c = client(&connect).await;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let path = format!("/load/w{w}-{n}");
                    match tokio::time::timeout(Duration::from_secs(5), c.create(&path, b"v", &open())).await {
                        Ok(Ok(_)) => acked.lock().push((Instant::now(), path)),
                        // Unknown outcome (connection loss) or retried create: not acknowledged.
                        Ok(Err(_)) | Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            }));
        }
        Load { stop, acked, tasks }
    }

    fn count(&self) -> usize {
        self.acked.lock().len()
    }

    /// Longest pause between consecutive acknowledgements after `since`.
    fn longest_gap_after(&self, since: Instant) -> Duration {
        let acked = self.acked.lock();
        let mut times: Vec<Instant> = acked.iter().map(|(t, _)| *t).filter(|t| *t >= since).collect();
        times.sort();
        let mut gap = times.first().map_or(Duration::ZERO, |t| t.duration_since(since));
        for w in times.windows(2) {
            gap = gap.max(w[1].duration_since(w[0]));
        }
        gap
    }

    async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let acked = self.acked.lock();
        acked.iter().map(|(_, p)| p.clone()).collect()
    }
}

/// Every acknowledged path exists on every member (each read after a sync there).
async fn assert_all_present(cluster: &Cluster, paths: &[String]) {
    for m in cluster.members.iter().filter(|m| m.is_running()) {
        let c = client(&m.connect_string()).await;
        c.sync("/load").await.unwrap();
        let (children, _) = c.get_children("/load").await.unwrap();
        let children: std::collections::HashSet<String> = children.into_iter().collect();
        for p in paths {
            let name = p.trim_start_matches("/load/");
            assert!(children.contains(name), "acknowledged {p} missing on member {}", m.id);
        }
    }
}

async fn wait_until_writable(cluster: &Cluster, timeout: Duration) {
    let c = client(&cluster.connect_string()).await;
    let start = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(2), c.set_data("/", b"", None)).await {
            Ok(Ok(_)) => return,
            _ => {
                assert!(start.elapsed() < timeout, "ensemble not writable within {timeout:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_leader_under_load_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let load = Load::start(&cluster, 4).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = load.count();
    assert!(before > 0, "no writes before the kill");

    let killed_at = Instant::now();
    cluster.kill9(leader);
    let new_leader = cluster.wait_leader(Duration::from_secs(10));
    assert_ne!(new_leader, leader);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let gap = load.longest_gap_after(killed_at);
    let acked = load.finish().await;
    eprintln!("leader kill: {} writes acked ({before} before), longest write gap after kill {gap:?}", acked.len());
    assert!(acked.len() > before, "no writes acknowledged after the failover");

    cluster.restart(leader);
    cluster.wait_converged(Duration::from_secs(20));
    assert_all_present(&cluster, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_follower_keeps_the_ensemble_writable_and_it_catches_up() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let follower = (leader + 1) % 3;
    let load = Load::start(&cluster, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.kill9(follower);
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(cluster.wait_leader(Duration::from_secs(1)), leader, "the leader stays");
    let gap = load.longest_gap_after(killed_at);
    eprintln!("follower kill: longest write gap {gap:?}");
    cluster.restart(follower);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = load.finish().await;
    cluster.wait_converged(Duration::from_secs(20));
    assert_all_present(&cluster, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_is_replaced_and_rejoins_as_a_follower() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let load = Load::start(&cluster, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stopped_at = Instant::now();
    cluster.stop(leader);
    let new_leader = cluster.wait_leader(Duration::from_secs(10));
    assert_ne!(new_leader, leader);
    eprintln!("frozen leader replaced after {:?}", stopped_at.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.resume(leader);
    // The old leader learns of the new term and follows.
    let start = Instant::now();
    while cluster.mode(leader) != "follower" {
        assert!(start.elapsed() < Duration::from_secs(10), "old leader mode {:?}", cluster.mode(leader));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cluster.wait_leader(Duration::from_secs(5)), new_leader, "no disruption by the returning node");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = load.finish().await;
    cluster.wait_converged(Duration::from_secs(20));
    assert_all_present(&cluster, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_ensemble_kill_9_and_restart_keeps_every_acknowledged_write() {
    let mut cluster = Cluster::start(3);
    cluster.wait_leader(Duration::from_secs(20));
    let load = Load::start(&cluster, 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..3 {
        cluster.kill9(i);
    }
    let acked = load.finish().await;
    assert!(!acked.is_empty());
    for i in (0..3).rev() {
        cluster.spawn(i);
    }
    for i in 0..3 {
        common::wait_for_port(cluster.members[i].addr(), Duration::from_secs(30));
    }
    cluster.wait_leader(Duration::from_secs(20));
    wait_until_writable(&cluster, Duration::from_secs(20)).await;
    cluster.wait_converged(Duration::from_secs(20));
    assert_all_present(&cluster, &acked).await;
}
