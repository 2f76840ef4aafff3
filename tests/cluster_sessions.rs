//! Sessions are global in an ensemble: they outlive the server a client was connected
//! to, and the leader expires them no matter which server they were created on.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use zookeeper_client as zk;

fn eph() -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())
}

async fn client(connect: &str, timeout: Duration) -> zk::Client {
    zk::Client::connector().with_session_timeout(timeout).connect(connect).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_the_death_of_its_server_and_keeps_its_ephemeral() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    // Connected to the leader only; its death also moves expiry to a new leader.
    let c = client(&cluster.members[leader].connect_string(), Duration::from_secs(4)).await;
    c.create("/mine", b"", &eph()).await.unwrap();
    let session = c.session().clone();
    let owner = c.session_id();
    cluster.kill9(leader);
    drop(c);

    let others: Vec<String> =
        (0..3).filter(|&i| i != leader).map(|i| cluster.members[i].connect_string()).collect();
    let resumed = zk::Client::connector()
        .with_session(session)
        .connect(&others.join(","))
        .await
        .expect("the session is accepted by another member");
    assert_eq!(resumed.session_id(), owner);
    // Well past the session timeout: the resumed connection keeps it alive through the
    // new leader (activity on a follower is reported to it).
    tokio::time::sleep(Duration::from_secs(7)).await;
    let stat = resumed.check_stat("/mine").await.unwrap().expect("ephemeral survives");
    assert_eq!(stat.ephemeral_owner, owner.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_expires_a_session_whose_follower_died() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let follower = (leader + 1) % 3;
    let c = client(&cluster.members[follower].connect_string(), Duration::from_secs(2)).await;
    c.create("/orphan", b"", &eph()).await.unwrap();
    let watcher = client(&cluster.members[leader].connect_string(), Duration::from_secs(10)).await;
    watcher.sync("/").await.unwrap();
    assert!(watcher.check_stat("/orphan").await.unwrap().is_some());

    // Keep the session alive through the follower for a while: no expiry while active.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(watcher.check_stat("/orphan").await.unwrap().is_some(), "an active session expired");

    cluster.kill9(follower);
    let start = Instant::now();
    while watcher.check_stat("/orphan").await.unwrap().is_some() {
        assert!(start.elapsed() < Duration::from_secs(10), "the leader never expired the session");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(c);
}
