//! Dynamic reconfiguration (op 16) on a multi-process ensemble: a fourth server joins
//! by reconfig and serves, a follower and (separately) the leader leave, and writes keep
//! working; refusals come with ZooKeeper's error codes. A removed server keeps following
//! without a vote until it stops, and members' client and quorum ports move by reconfig.
//! Expected values were taken from a 3-server Apache ZooKeeper 3.8.0 ensemble.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cluster::{four_letter_word_timeout, Cluster};
use common::{client, free_port, open, wait_for_port};
use zookeeper_client as zk;

/// reconfig on, and the super user's password is "test" (kazoo's harness uses the same).
const EXTRA: &str = "reconfigEnabled=true\nDigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

async fn super_client(connect: &str) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_auth("digest", b"super:test")
        .connect(connect)
        .await
        .expect("connect as super")
}

type Update<'a> = zk::EnsembleUpdate<'a, std::vec::IntoIter<&'a str>>;

fn incremental<'a>(joining: Vec<&'a str>, leaving: Vec<&'a str>) -> Update<'a> {
    zk::EnsembleUpdate::Incremental { joinings: joining.into_iter(), leavings: leaving.into_iter() }
}

fn server_ids(config: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(config);
    text.lines().filter_map(|l| l.strip_prefix("server.")?.split_once('=')?.0.parse().ok()).collect()
}

fn version(config: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(config);
    let last = text.lines().last().unwrap_or("");
    u64::from_str_radix(last.strip_prefix("version=").expect("version line last"), 16).expect("hex version")
}

/// Waits until member `connect` serves a `/zookeeper/config` with exactly `ids`.
async fn wait_config(connect: &str, ids: &[u64]) -> (Vec<u8>, zk::Stat) {
    let c = client(connect).await;
    let start = Instant::now();
    loop {
        c.sync("/").await.expect("sync");
        let (data, stat) = c.get_config().await.expect("get config");
        if server_ids(&data) == ids {
            return (data, stat);
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{connect}: config {:?}", String::from_utf8_lossy(&data));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `membership: ` section of member `i`'s `conf` (everything after that line).
fn conf_membership(cluster: &Cluster, i: usize) -> String {
    let conf = four_letter_word_timeout(cluster.members[i].addr(), "conf");
    conf.split_once("\nmembership: \n").map(|(_, m)| m.to_string()).unwrap_or_else(|| panic!("no membership in {conf}"))
}

/// The value of `key` in `out` (`key<sep>value` lines, as conf and mntr print them).
fn value_of(out: &str, key: &str, sep: char) -> String {
    out.lines()
        .find_map(|l| l.split_once(sep).filter(|(k, _)| *k == key).map(|(_, v)| v.to_string()))
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

/// Waits until `f` holds (20 s at most), re-evaluating `what` for the failure message.
fn wait_until(what: impl Fn() -> String, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out: {}", what());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The single member reporting `Mode: leader` among those in `candidates`.
fn wait_leader_among(cluster: &Cluster, candidates: &[usize]) -> usize {
    let start = Instant::now();
    loop {
        let leaders: Vec<usize> = candidates.iter().copied().filter(|&i| cluster.mode(i) == "leader").collect();
        if leaders.len() == 1 {
            return leaders[0];
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no single leader among {candidates:?}: {leaders:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_joins_serves_and_a_follower_leaves() {
    let mut cluster = Cluster::start_partial(4, 3, EXTRA);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let (initial, stat) = wait_config(&cluster.members[0].connect_string(), &[1, 2, 3]).await;
    let text = String::from_utf8_lossy(&initial).to_string();
    // zoo.cfg's lines have no client address, so neither has the initial config.
    let static_line = cluster.members[0].server_line.split(';').next().unwrap();
    assert!(text.starts_with(&format!("{static_line}\n")), "{text}");
    // A fresh ZooKeeper 3.8 ensemble serves version=100000000: the first epoch's NEWLEADER
    // zxid, which no txn gets (the first write is still 0x100000001). Stat: version and
    // aversion -1, mzxid the version, czxid/ctime/pzxid 0.
    assert_eq!(version(&initial) & 0xffff_ffff, 0, "{text}");
    assert!(version(&initial) >> 32 >= 1, "{text}");
    assert_eq!((stat.version, stat.aversion), (-1, -1), "{stat:?}");
    assert_eq!(stat.mzxid as u64, version(&initial), "the version is the mzxid");
    assert_eq!((stat.czxid, stat.ctime, stat.pzxid, stat.cversion), (0, 0, 0, 0), "{stat:?}");
    assert!(stat.mtime > 0);
    // `conf` ends with the same text (ZooKeeper prints it without a final newline).
    assert_eq!(conf_membership(&cluster, 0), text);

    let admin = super_client(&cluster.members[0].connect_string()).await;
    admin.create("/before", b"x", &open()).await.unwrap();

    // Refusals: no permission, a stale version, a malformed server line.
    let plain = client(&cluster.members[1].connect_string()).await;
    let joiner = cluster.members[3].server_line.clone();
    let refused = plain.update_ensemble(incremental(vec![&joiner], vec![]), None).await;
    assert!(matches!(refused, Err(zk::Error::NoAuth)), "{refused:?}");
    let stale = admin.update_ensemble(incremental(vec![&joiner], vec![]), Some(version(&initial) as i64 + 1)).await;
    assert!(matches!(stale, Err(zk::Error::BadVersion)), "{stale:?}");
    let bad = admin.update_ensemble(incremental(vec!["some thing"], vec![]), None).await;
    assert!(matches!(bad, Err(zk::Error::BadArguments(_))), "{bad:?}");

    // Member 4 starts with a zoo.cfg listing all four and joins by reconfig.
    cluster.restart(3);
    let (data, stat) = admin
        .update_ensemble(incremental(vec![&joiner], vec![]), Some(version(&initial) as i64))
        .await
        .unwrap_or_else(|e| panic!("reconfig add: {e:?}\n{}", cluster.logs()));
    assert_eq!(server_ids(&data), vec![1, 2, 3, 4]);
    assert!(String::from_utf8_lossy(&data).contains(&format!("{joiner}\n")), "{}", String::from_utf8_lossy(&data));
    assert_eq!(version(&data), stat.mzxid as u64);
    assert!(version(&data) > version(&initial));
    for (i, m) in cluster.members.iter().enumerate() {
        let (seen, _) = wait_config(&m.connect_string(), &[1, 2, 3, 4]).await;
        assert_eq!(seen, data, "member {} serves the same config", m.id);
        assert_eq!(conf_membership(&cluster, i).as_bytes(), &data[..], "member {}: conf", m.id);
    }
    // The new member serves old and new data, and takes writes.
    let fourth = client(&cluster.members[3].connect_string()).await;
    fourth.sync("/").await.unwrap();
    assert_eq!(fourth.get_data("/before").await.unwrap().0, b"x");
    fourth.create("/from4", b"4", &open()).await.unwrap();
    assert_eq!(cluster.mode(3), "follower");

    // A follower (not the new one) leaves; the other three keep taking writes.
    let gone = (0..3).find(|&i| i != leader).unwrap();
    let gone_id = cluster.members[gone].id.to_string();
    let (data, _) = admin.update_ensemble(incremental(vec![], vec![&gone_id]), None).await.expect("reconfig remove");
    let remaining: Vec<u64> = [1, 2, 3, 4].into_iter().filter(|&id| id != cluster.members[gone].id).collect();
    assert_eq!(server_ids(&data), remaining);
    let stayed: Vec<usize> = (0..4).filter(|&i| i != gone).collect();
    for &i in &stayed {
        wait_config(&cluster.members[i].connect_string(), &remaining).await;
        let c = client(&cluster.members[i].connect_string()).await;
        c.create(&format!("/after{i}"), b"", &open()).await.unwrap();
    }
    cluster.kill9(gone);
    let c = client(&cluster.members[stayed[0]].connect_string()).await;
    c.create("/without-the-removed", b"", &open()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_leader_hands_over_and_writes_continue() {
    let mut cluster = Cluster::start_partial(3, 3, EXTRA);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let follower = (0..3).find(|&i| i != leader).unwrap();
    wait_config(&cluster.members[follower].connect_string(), &[1, 2, 3]).await;
    let admin = super_client(&cluster.members[follower].connect_string()).await;
    // A watch on the config fires when it changes.
    let (_, _, watcher) = admin.get_and_watch_config().await.unwrap();

    let leader_id = cluster.members[leader].id.to_string();
    let (data, _) = admin.update_ensemble(incremental(vec![], vec![&leader_id]), None).await.expect("remove leader");
    let remaining: Vec<u64> = (1..=3).filter(|&id| id != cluster.members[leader].id).collect();
    assert_eq!(server_ids(&data), remaining);
    let event = tokio::time::timeout(Duration::from_secs(5), watcher.changed()).await.expect("config watch");
    assert_eq!(event.event_type, zk::EventType::NodeDataChanged);

    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let new_leader = wait_leader_among(&cluster, &others);
    assert_ne!(new_leader, leader);
    // Like ZooKeeper 3.8's removed leader, it then follows without a vote and serves.
    wait_until(|| cluster.mode(leader), || cluster.mode(leader) == "follower");
    let old = client(&cluster.members[leader].connect_string()).await;
    admin.create("/after-hand-over", b"", &open()).await.unwrap();
    old.sync("/").await.unwrap();
    assert!(old.check_stat("/after-hand-over").await.unwrap().is_some());
    drop(old);
    cluster.kill9(leader);
    for &i in &others {
        let c = client(&cluster.members[i].connect_string()).await;
        c.create(&format!("/w{i}"), b"", &open())
            .await
            .unwrap_or_else(|e| panic!("write via {i}: {e:?}\n{}", cluster.logs()));
        wait_config(&cluster.members[i].connect_string(), &remaining).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_config_without_a_synced_quorum_is_refused() {
    let cluster = Cluster::start_partial(3, 3, EXTRA);
    cluster.wait_leader(Duration::from_secs(20));
    let (initial, _) = wait_config(&cluster.members[0].connect_string(), &[1, 2, 3]).await;
    let admin = super_client(&cluster.members[0].connect_string()).await;
    // Two of three voters would be servers nobody runs.
    let port = |_| common::free_port();
    let first = cluster.members[0].server_line.clone();
    let ghost5 = format!("server.5=127.0.0.1:{}:{}:participant;{}", port(0), port(0), port(0));
    let ghost6 = format!("server.6=127.0.0.1:{}:{}:participant;{}", port(0), port(0), port(0));
    let update = zk::EnsembleUpdate::New { ensemble: vec![first.as_str(), &ghost5, &ghost6].into_iter() };
    let refused = admin.update_ensemble(update, None).await;
    assert!(matches!(refused, Err(zk::Error::UnexpectedErrorCode(-13))), "{refused:?}");
    // Nothing changed, and the ensemble still works.
    let (after, _) = admin.get_config().await.unwrap();
    assert_eq!(after, initial);
    admin.create("/still", b"", &open()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_is_disabled_by_default() {
    let cluster = Cluster::start_partial(3, 3, "");
    cluster.wait_leader(Duration::from_secs(20));
    let c = super_client(&cluster.members[0].connect_string()).await;
    let r = c.update_ensemble(incremental(vec![], vec!["3"]), None).await;
    assert!(matches!(r, Err(zk::Error::ReconfigDisabled)), "{r:?}");
    // The config is still readable (zkCli `config`).
    wait_config(&cluster.members[0].connect_string(), &[1, 2, 3]).await;
}

/// Whether something listens on 127.0.0.1:`port`.
fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200)).is_ok()
}

/// The quorum and election ports of a `server.N=host:q:e:role;client` line.
fn quorum_ports(line: &str) -> (u16, u16) {
    let parts: Vec<&str> = line.split(':').collect();
    (parts[1].parse().expect("quorum port"), parts[2].parse().expect("election port"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_follower_keeps_following_without_a_vote_until_it_stops() {
    let mut cluster = Cluster::start_partial(4, 4, EXTRA);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let leader_addr = cluster.members[leader].addr();
    wait_config(&cluster.members[leader].connect_string(), &[1, 2, 3, 4]).await;
    let admin = super_client(&cluster.members[leader].connect_string()).await;
    let gone = (0..4).find(|&i| i != leader).unwrap();
    let gone_id = cluster.members[gone].id.to_string();
    admin.update_ensemble(incremental(vec![], vec![&gone_id]), None).await.expect("remove");
    let remaining: Vec<u64> = (1..=4).filter(|&id| id != cluster.members[gone].id).collect();

    // As in ZooKeeper 3.8, the removed server is not shut down: it keeps following (and
    // says so), answers ruok/isro as before and serves its clients current data and writes.
    wait_config(&cluster.members[gone].connect_string(), &remaining).await;
    let addr = cluster.members[gone].addr();
    assert_eq!(cluster.mode(gone), "follower");
    assert_eq!(four_letter_word_timeout(addr, "ruok"), "imok");
    assert_eq!(four_letter_word_timeout(addr, "isro"), "rw");
    assert_eq!(value_of(&four_letter_word_timeout(addr, "mntr"), "zk_server_state", '\t'), "follower");
    let removed = client(&cluster.members[gone].connect_string()).await;
    admin.create("/after-removal", b"1", &open()).await.unwrap();
    removed.sync("/").await.unwrap();
    assert_eq!(removed.get_data("/after-removal").await.unwrap().0, b"1");
    removed.create("/from-the-removed", b"", &open()).await.unwrap();
    // The leader counts it as a non-voting follower; the quorum is the three voters'.
    let mntr = || four_letter_word_timeout(leader_addr, "mntr");
    wait_until(mntr, || value_of(&mntr(), "zk_synced_non_voting_followers", '\t') == "1");
    assert_eq!(value_of(&mntr(), "zk_quorum_size", '\t'), "2");

    // Re-added, it votes again.
    let line = cluster.members[gone].server_line.clone();
    admin.update_ensemble(incremental(vec![&line], vec![]), None).await.expect("re-add");
    wait_until(mntr, || {
        let m = mntr();
        value_of(&m, "zk_quorum_size", '\t') == "3" && value_of(&m, "zk_synced_non_voting_followers", '\t') == "0"
    });

    // Removed again and stopped: the leader forgets it after syncLimit ticks (2.5 s here),
    // as ZooKeeper's leader drops a learner that stops answering.
    admin.update_ensemble(incremental(vec![], vec![&gone_id]), None).await.expect("remove again");
    cluster.kill9(gone);
    wait_until(mntr, || value_of(&mntr(), "zk_learners", '\t') == "2");
    admin.create("/without-it", b"", &open()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_quorum_ports_move_by_reconfig() {
    let mut cluster = Cluster::start_partial(3, 3, EXTRA);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let other = (0..3).find(|&i| i != leader && i != follower).unwrap();
    wait_config(&cluster.members[other].connect_string(), &[1, 2, 3]).await;
    let admin = super_client(&cluster.members[other].connect_string()).await;
    let kept = client(&cluster.members[follower].connect_string()).await;

    // An existing voter's line with another client port and quorum port (the follower),
    // and with another quorum port (the leader): ZooKeeper accepts both.
    let (old_fq, fe) = quorum_ports(&cluster.members[follower].server_line);
    let (old_lq, le) = quorum_ports(&cluster.members[leader].server_line);
    let (new_fq, new_fc, new_lq) = (free_port(), free_port(), free_port());
    let (fid, lid) = (cluster.members[follower].id, cluster.members[leader].id);
    let f_line = format!("server.{fid}=127.0.0.1:{new_fq}:{fe}:participant;127.0.0.1:{new_fc}");
    let l_client = cluster.members[leader].client_port;
    let l_line = format!("server.{lid}=127.0.0.1:{new_lq}:{le}:participant;127.0.0.1:{l_client}");
    let (data, _) = admin
        .update_ensemble(incremental(vec![&f_line, &l_line], vec![]), None)
        .await
        .unwrap_or_else(|e| panic!("move ports: {e:?}\n{}", cluster.logs()));
    let text = String::from_utf8_lossy(&data).to_string();
    assert!(text.contains(&format!("{f_line}\n")) && text.contains(&format!("{l_line}\n")), "{text}");

    // The follower listens on its new client port only; its open connection stays, and
    // `conf` shows the new ports (ZooKeeper 3.8 behaves the same).
    let old_client = cluster.members[follower].client_port;
    let new_client = SocketAddr::from(([127, 0, 0, 1], new_fc));
    wait_for_port(new_client, Duration::from_secs(10));
    wait_until(|| format!("client port {old_client} still open"), || !listening(old_client));
    assert!(kept.get_data("/zookeeper/config").await.is_ok(), "a connection from before the move stays");
    cluster.members[follower].client_port = new_fc;
    let conf = four_letter_word_timeout(new_client, "conf");
    assert_eq!(value_of(&conf, "clientPort", '='), new_fc.to_string(), "{conf}");
    assert_eq!(value_of(&conf, "quorumPort", '='), new_fq.to_string(), "{conf}");
    // The quorum ports moved too.
    for (old, new) in [(old_fq, new_fq), (old_lq, new_lq)] {
        wait_until(|| format!("quorum port {old} -> {new}"), || !listening(old) && listening(new));
    }
    for i in 0..3 {
        let c = client(&cluster.members[i].connect_string()).await;
        c.create(&format!("/moved{i}"), b"", &open()).await.unwrap_or_else(|e| panic!("write via {i}: {e:?}"));
    }

    // Peers dial the new addresses: a restarted member, whose zoo.cfg still names the old
    // ports, forwards writes to the leader's new quorum port...
    cluster.kill9(other);
    cluster.restart(other);
    let c = client(&cluster.members[other].connect_string()).await;
    c.create("/via-restarted", b"", &open()).await.unwrap_or_else(|e| panic!("{e:?}\n{}", cluster.logs()));
    // ...and without the leader, the other two elect one over the follower's new port.
    cluster.kill9(leader);
    let new_leader = wait_leader_among(&cluster, &[follower, other]);
    for i in [follower, other] {
        let c = client(&cluster.members[i].connect_string()).await;
        c.create(&format!("/after-leader{i}"), b"", &open()).await.unwrap_or_else(|e| panic!("write via {i}: {e:?}"));
    }
    assert!(new_leader == follower || new_leader == other);
}
