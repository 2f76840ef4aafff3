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

/// One setData of `path` over a fresh session on `addr`; false on any failure (refused,
/// closed, error answer, no answer within 2 s).
fn write_once(addr: std::net::SocketAddr, path: &str) -> bool {
    use std::io::Write as _;
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let body = common::raw::connect_body(0, 30_000, 0, &[0; 16], Some(false));
    if s.write_all(&common::raw::frame(&body)).is_err() {
        return false;
    }
    let mut resp = [0u8; 41];
    if std::io::Read::read_exact(&mut s, &mut resp).is_err() {
        return false;
    }
    if s.write_all(&common::raw::request(1, 5, &common::raw::set_data_body(path, b"x"))).is_err() {
        return false;
    }
    common::raw::reply(&mut s).is_some_and(|r| r.xid == 1 && r.err == 0)
}

#[test]
fn writes_through_a_follower_resume_soon_after_the_leader_freezes() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let follower = (leader + 1) % 3;
    let addr = cluster.members[follower].addr();
    let mut s = common::raw::Session::open(addr);
    assert_eq!(s.call(1, 1, &common::raw::create_body("/f", b"")).expect("create").err, 0);
    // A write through the follower is in flight to the leader when it freezes.
    use std::io::Write as _;
    cluster.stop(leader);
    let stopped = Instant::now();
    s.stream.write_all(&common::raw::request(2, 5, &common::raw::set_data_body("/f", b"y"))).expect("send");
    let _ = s.stream.set_read_timeout(Some(Duration::from_secs(15)));
    let first = common::raw::reply(&mut s.stream);
    let first_answered = stopped.elapsed();
    while !write_once(addr, "/f") {
        assert!(stopped.elapsed() < Duration::from_secs(20), "no write through the follower 20 s after the freeze");
        std::thread::sleep(Duration::from_millis(50));
    }
    let resumed = stopped.elapsed();
    cluster.resume(leader);
    eprintln!(
        "leader frozen: in-flight write ended after {first_answered:?} ({first:?}), writes resumed after {resumed:?}"
    );
    // The forward to the frozen leader used to hold its batcher slot for the 10 s forward
    // timeout; a new leader is elected in about a second (ZooKeeper resumed after 5 s).
    assert!(resumed < Duration::from_secs(7), "writes resumed only {resumed:?} after the leader froze");
    // The frozen leader never replicated the write: once the new leader's first entry is
    // applied on the follower that is certain, and the follower submits it again. Its
    // client gets the answer on the same connection (it used to be closed, and a client
    // that then dialled the frozen leader waited out its connect timeout).
    let first = first.expect("the in-flight write was answered, its connection not closed");
    assert_eq!((first.xid, first.err), (2, 0), "the in-flight write succeeded");
    let again = s.call(3, 4, &common::raw::path_body("/f")).expect("the connection stays open");
    assert_eq!((again.xid, again.err), (3, 0));
}

/// Re-attaches `session` on `addr` and sends a create in the same write, so that the create
/// is the first thing the member does once it answers the handshake. `Err` says what went
/// wrong instead of an OK answer to the create.
fn reattach_and_create_at_once(
    addr: std::net::SocketAddr,
    session: &common::raw::Session,
    path: &str,
) -> Result<(), String> {
    use std::io::{Read as _, Write as _};
    let start = Instant::now();
    loop {
        let mut s =
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| format!("connect: {e}"))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let body = common::raw::connect_body(session.last_zxid, 30_000, session.session_id, &session.password, None);
        let mut bytes = common::raw::frame(&body);
        bytes.extend(common::raw::request(1, 1, &common::raw::create_body(path, b"")));
        s.write_all(&bytes).map_err(|e| format!("send: {e}"))?;
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            // No ConnectResponse: the member is not serving yet (no leader); try again.
            if start.elapsed() > Duration::from_secs(10) {
                return Err("no handshake within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let mut resp = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
        s.read_exact(&mut resp).map_err(|e| format!("ConnectResponse: {e}"))?;
        if resp.len() < 8 || resp[4..8] == [0; 4] {
            return Err(format!("session declared expired ({} bytes)", resp.len()));
        }
        return match common::raw::reply(&mut s) {
            Some(r) if r.xid == 1 && r.err == 0 => Ok(()),
            Some(r) => Err(format!("create answered {r:?}")),
            None => Err("connection closed with the create unanswered".into()),
        };
    }
}

#[test]
fn a_write_on_a_member_just_elected_is_answered() {
    // openraft refuses a new leader's writes until a quorum has acknowledged it; a client
    // that re-attached to the new leader at once (go-zookeeper's TestDNSHostProviderReconnect)
    // had its first write refused and its connection closed, about 1 election in 10 on this
    // machine, and most often when the write came with the handshake as here.
    let mut cluster = Cluster::start(3);
    let mut refused = Vec::new();
    for round in 0..30 {
        let leader = cluster.wait_leader(Duration::from_secs(20));
        let addr = cluster.members[leader].addr();
        let sessions = [common::raw::Session::open(addr), common::raw::Session::open(addr)];
        cluster.kill9(leader);
        let others: Vec<_> = (0..3).filter(|&i| i != leader).map(|i| cluster.members[i].addr()).collect();
        let answered: Vec<Result<(), String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = others
                .iter()
                .zip(&sessions)
                .enumerate()
                .map(|(k, (addr, s))| {
                    scope.spawn(move || reattach_and_create_at_once(*addr, s, &format!("/r{round}-{k}")))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("client thread")).collect()
        });
        for (k, result) in answered.into_iter().enumerate() {
            if let Err(e) = result {
                refused.push(format!("round {round}, member {}: {e}", others[k]));
            }
        }
        cluster.restart(leader);
    }
    assert!(refused.is_empty(), "writes right after an election were refused: {refused:?}");
}

#[test]
fn sync_through_a_follower_is_answered_soon_after_the_leader_freezes() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let follower = (leader + 1) % 3;
    let mut s = common::raw::Session::open(cluster.members[follower].addr());
    assert_eq!(s.call(1, common::raw::SYNC, &common::raw::path_only_body("/")).expect("sync").err, 0);
    cluster.stop(leader);
    let stopped = Instant::now();
    let _ = s.stream.set_read_timeout(Some(Duration::from_secs(15)));
    let reply = s.call(2, common::raw::SYNC, &common::raw::path_only_body("/"));
    let answered = stopped.elapsed();
    cluster.resume(leader);
    eprintln!("sync while the leader is frozen: {reply:?} after {answered:?}");
    // The read index asked of the frozen leader used to be waited for until the 10 s
    // timeout, and then the connection was closed; it now goes to the new leader (elected
    // in about a second) as soon as one is known.
    let reply = reply.expect("the sync is answered, the connection stays");
    assert_eq!((reply.xid, reply.err), (2, 0));
    assert!(answered < Duration::from_secs(6), "sync answered only {answered:?} after the leader froze");
}
