//! Maintenance-style failures of a 3-member ensemble of real processes:
//!
//! * a rolling restart (SIGTERM, SIGTERM of the leader, kill -9) while writers keep
//!   creating znodes through every member: no acknowledged write is lost, the trees end
//!   identical and the clients' sessions survive;
//! * a follower that was down while the leader snapshotted and purged its log past the
//!   follower's position: it catches up by installing the leader's snapshot (tens of
//!   MB, transferred in chunks) and then serves the same tree.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, Options};
use common::{client, open};
use parking_lot::Mutex;
use zookeeper_client as zk;

/// A writer per client, each creating `/load/w<writer>-<n>` in a loop and holding the
/// ephemeral `/eph/w<writer>` of its session.
struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    clients: Vec<zk::Client>,
    sessions: Vec<zk::SessionId>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    async fn start(cluster: &Cluster, writers: usize) -> Writers {
        let setup = client(&cluster.connect_string()).await;
        for p in ["/load", "/eph"] {
            match setup.create(p, b"", &open()).await {
                Ok(_) | Err(zk::Error::NodeExists) => {}
                Err(e) => panic!("{e}"),
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        let (mut clients, mut sessions, mut tasks) = (Vec::new(), Vec::new(), Vec::new());
        for w in 0..writers {
            // Start each writer on a different member; the others are its fallbacks.
            let n = cluster.members.len();
            let order: Vec<String> = (0..n).map(|k| cluster.members[(w + k) % n].connect_string()).collect();
            let c = client(&order.join(",")).await;
            c.create(&format!("/eph/w{w}"), b"", &eph).await.unwrap();
            sessions.push(c.session_id());
            clients.push(c.clone());
            let (stop, acked) = (stop.clone(), acked.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let path = format!("/load/w{w}-{n}");
                    match tokio::time::timeout(Duration::from_secs(5), c.create(&path, b"v", &open())).await {
                        Ok(Ok(_)) => acked.lock().push(path),
                        // Unknown outcome (connection loss) or retried create: not acknowledged.
                        Ok(Err(_)) | Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            }));
        }
        Writers { stop, acked, clients, sessions, tasks }
    }

    fn count(&self) -> usize {
        self.acked.lock().len()
    }

    /// Waits until `more` further writes have been acknowledged.
    async fn wait_progress(&self, more: usize, timeout: Duration) {
        let target = self.count() + more;
        let start = Instant::now();
        while self.count() < target {
            assert!(start.elapsed() < timeout, "writes stalled at {} (wanted {target})", self.count());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> (Vec<String>, Vec<zk::Client>, Vec<zk::SessionId>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let acked = self.acked.lock().clone();
        (acked, self.clients, self.sessions)
    }
}

/// Waits until member `i` answers as a follower or leader and has applied at least
/// `zxid`.
async fn wait_caught_up(cluster: &Cluster, i: usize, zxid: u64, timeout: Duration) {
    let start = Instant::now();
    loop {
        let mode = cluster.mode(i);
        let at = cluster.zxid(i);
        if (mode == "follower" || mode == "leader") && at.is_some_and(|z| z >= zxid) {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "member {} not caught up within {timeout:?}: mode {mode:?}, zxid {at:x?} < {zxid:x}",
            i + 1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The highest zxid any running member other than `except` has applied.
fn max_zxid(cluster: &Cluster, except: usize) -> u64 {
    (0..cluster.members.len()).filter(|&i| i != except).filter_map(|i| cluster.zxid(i)).max().unwrap_or(0)
}

/// Every path in `paths` (children of `/load`) exists on every member, read after a
/// sync through that member.
async fn assert_all_present(cluster: &Cluster, paths: &[String]) {
    for m in &cluster.members {
        let c = client(&m.connect_string()).await;
        c.sync("/load").await.unwrap();
        let (children, _) = c.get_children("/load").await.unwrap();
        let children: HashSet<String> = children.into_iter().collect();
        let missing: Vec<&String> =
            paths.iter().filter(|p| !children.contains(p.trim_start_matches("/load/"))).collect();
        assert!(
            missing.is_empty(),
            "member {}: {} acknowledged creates missing, e.g. {:?}",
            m.id,
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_under_load_keeps_every_write_and_every_session() {
    let mut cluster = Cluster::start(3);
    let first_leader = cluster.wait_leader(Duration::from_secs(20));
    let writers = Writers::start(&cluster, 6).await;
    writers.wait_progress(200, Duration::from_secs(20)).await;

    // A follower (SIGTERM), then the leader (SIGTERM), then the last one (kill -9).
    let follower = (first_leader + 1) % 3;
    let last = (first_leader + 2) % 3;
    let plan = [(follower, false), (first_leader, false), (last, true)];
    for (i, kill9) in plan {
        let mode = cluster.mode(i);
        let down_at = Instant::now();
        if kill9 {
            cluster.kill9(i);
        } else {
            assert!(cluster.terminate(i, Duration::from_secs(10)), "member {} did not exit on SIGTERM", i + 1);
        }
        eprintln!(
            "member {} ({mode}) {} after {:?}",
            i + 1,
            if kill9 { "killed" } else { "stopped" },
            down_at.elapsed()
        );
        // The rest of the ensemble keeps taking writes while it is down.
        writers.wait_progress(1, Duration::from_secs(20)).await;
        let resumed = down_at.elapsed();
        writers.wait_progress(100, Duration::from_secs(20)).await;
        let up_at = Instant::now();
        cluster.restart(i);
        let target = max_zxid(&cluster, i);
        wait_caught_up(&cluster, i, target, Duration::from_secs(30)).await;
        eprintln!(
            "member {}: writes resumed after {resumed:?}, 100 more after {:?}, restarted and caught up in {:?}",
            i + 1,
            up_at.duration_since(down_at),
            up_at.elapsed()
        );
        writers.wait_progress(100, Duration::from_secs(20)).await;
    }

    let (acked, clients, sessions) = writers.finish().await;
    eprintln!("rolling restart: {} writes acknowledged", acked.len());
    let digest = cluster.wait_converged(Duration::from_secs(30));
    eprintln!("converged: {digest}");
    assert_all_present(&cluster, &acked).await;

    // Every session survived: same id, still usable, and its ephemeral is everywhere.
    for (w, (c, sid)) in clients.iter().zip(&sessions).enumerate() {
        assert_eq!(c.session_id(), *sid, "writer {w} got a new session");
        assert_ne!(c.state(), zk::SessionState::Expired, "writer {w}'s session expired");
        c.create(&format!("/load/final-{w}"), b"", &open()).await.unwrap();
    }
    for m in &cluster.members {
        let c = client(&m.connect_string()).await;
        c.sync("/eph").await.unwrap();
        for (w, sid) in sessions.iter().enumerate() {
            let stat = c.check_stat(&format!("/eph/w{w}")).await.unwrap();
            assert_eq!(stat.map(|s| s.ephemeral_owner), Some(sid.0), "ephemeral of writer {w} on member {}", m.id);
        }
    }
    cluster.wait_converged(Duration::from_secs(30));
}

/// Big znodes (about 0.9 MB each) that make the snapshot tens of MB.
const BIG_NODES: usize = 64;
const BIG_SIZE: usize = 900_000;
/// Small znodes written while the follower is down: many log entries, so the leader
/// snapshots several times (snapCount) and purges its log far past the follower.
const SMALL_NODES: usize = 3000;

fn big_data(k: usize) -> Vec<u8> {
    (0..BIG_SIZE).map(|j| (j.wrapping_mul(31) ^ k) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_behind_follower_installs_the_leaders_snapshot() {
    let mut cluster =
        Cluster::start_opts(3, Options { extra: "snapCount=500\ncommitLogCount=100", ..Options::default() });
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let follower = (leader + 1) % 3;
    let c = client(&cluster.members[leader].connect_string()).await;
    c.create("/before", b"x", &open()).await.unwrap();
    cluster.wait_converged(Duration::from_secs(20));
    cluster.kill9(follower);

    c.create("/big", b"", &open()).await.unwrap();
    for k in 0..BIG_NODES {
        c.create(&format!("/big/n{k}"), &big_data(k), &open()).await.unwrap();
    }
    c.create("/small", b"", &open()).await.unwrap();
    // A few writers in parallel: entries carry small batches, so there are thousands.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for n in (w..SMALL_NODES).step_by(4) {
                c.create(&format!("/small/s{n}"), format!("{n}").as_bytes(), &open()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Let the leader finish its last snapshot and purge.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Writes continue while the follower catches up: they travel on the same
    // connection as the snapshot chunks, and the follower must get them after it.
    let stop = Arc::new(AtomicBool::new(false));
    let during = {
        let (c, stop) = (c.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                c.create(&format!("/small/during{n}"), b"d", &open()).await.unwrap();
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n
        })
    };
    let restarted_at = Instant::now();
    cluster.restart(follower);
    wait_caught_up(&cluster, follower, max_zxid(&cluster, follower), Duration::from_secs(120)).await;
    stop.store(true, Ordering::Relaxed);
    let during = during.await.unwrap();
    let digest = cluster.wait_converged(Duration::from_secs(60));
    eprintln!("follower converged after {:?} ({during} writes meanwhile): {digest}", restarted_at.elapsed());
    assert!(cluster.logs().contains("snapshot sent"), "the leader did not report a chunked snapshot transfer");

    let log = cluster.members[follower].log();
    assert!(
        log.contains("installed a snapshot from the leader"),
        "the follower caught up without a snapshot install:\n{log}"
    );
    eprintln!("{}", log.lines().filter(|l| l.contains("snapshot")).collect::<Vec<_>>().join("\n"));

    // The follower serves the same tree.
    let f = client(&cluster.members[follower].connect_string()).await;
    f.sync("/").await.unwrap();
    assert_eq!(f.get_data("/before").await.unwrap().0, b"x");
    let (small, _) = f.get_children("/small").await.unwrap();
    assert_eq!(small.len(), SMALL_NODES + during);
    for k in [0, BIG_NODES / 2, BIG_NODES - 1] {
        assert!(f.get_data(&format!("/big/n{k}")).await.unwrap().0 == big_data(k), "/big/n{k} differs");
    }
    // And keeps replicating new writes.
    c.create("/after", b"y", &open()).await.unwrap();
    f.sync("/").await.unwrap();
    assert_eq!(f.get_data("/after").await.unwrap().0, b"y");
    cluster.wait_converged(Duration::from_secs(30));

    // The installed snapshot is durable: after another kill -9 the follower restores it
    // (and the log after it) from its own disk.
    drop(f);
    cluster.kill9(follower);
    c.create("/after2", b"z", &open()).await.unwrap();
    cluster.restart(follower);
    let digest = cluster.wait_converged(Duration::from_secs(60));
    let f = client(&cluster.members[follower].connect_string()).await;
    f.sync("/").await.unwrap();
    assert_eq!(f.get_data("/after2").await.unwrap().0, b"z");
    assert_eq!(f.get_children("/small").await.unwrap().0.len(), SMALL_NODES + during);
    eprintln!("after a second restart: {digest}");
}
