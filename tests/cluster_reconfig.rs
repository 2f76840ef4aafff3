//! Dynamic reconfiguration (op 16) on a multi-process ensemble: a fourth server joins
//! by reconfig and serves, a follower and (separately) the leader leave, and writes keep
//! working; refusals come with ZooKeeper's error codes.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{client, open};
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
    text.lines()
        .filter_map(|l| l.strip_prefix("server.")?.split_once('=')?.0.parse().ok())
        .collect()
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
    assert_eq!(stat.version, -1, "reconfig'd config has version -1 as in ZooKeeper");
    assert_eq!(stat.mzxid as u64, version(&initial), "the version is the zxid that installed it");

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
    for m in &cluster.members {
        let (seen, _) = wait_config(&m.connect_string(), &[1, 2, 3, 4]).await;
        assert_eq!(seen, data, "member {} serves the same config", m.id);
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
    cluster.kill9(leader);
    for &i in &others {
        let c = client(&cluster.members[i].connect_string()).await;
        c.create(&format!("/w{i}"), b"", &open()).await.unwrap_or_else(|e| panic!("write via {i}: {e:?}\n{}", cluster.logs()));
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
