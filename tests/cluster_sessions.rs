//! Sessions are global in an ensemble: they outlive the server a client was connected
//! to, and the leader expires them no matter which server they were created on. A
//! session belongs to the server its client attached it to last: writes through a
//! connection left behind on another server are refused (SessionMoved) by closing it.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{four_letter_word_timeout, Cluster};
use common::raw::{self, Session, CREATE, GET_DATA, SET_DATA};
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

    let others: Vec<String> = (0..3).filter(|&i| i != leader).map(|i| cluster.members[i].connect_string()).collect();
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

/// setData through `s`: the reply's (err, data version), or `None` when the server
/// closed the connection instead of answering. A close must come at once, not after
/// the read timeout.
fn set(s: &mut Session, xid: i32, path: &str, data: &[u8]) -> Option<(i32, i32)> {
    let start = Instant::now();
    let reply = s.call(xid, SET_DATA, &raw::set_data_body(path, data));
    assert!(start.elapsed() < Duration::from_secs(5), "setData on {path} took {:?}", start.elapsed());
    reply.map(|r| {
        assert_eq!(r.xid, xid);
        (r.err, if r.err == 0 { raw::stat_version(&r) } else { -1 })
    })
}

fn get(s: &mut Session, xid: i32, path: &str) -> Vec<u8> {
    let r = s.call(xid, GET_DATA, &raw::path_body(path)).expect("a getData reply");
    assert_eq!((r.xid, r.err), (xid, 0));
    raw::data_of(&r)
}

/// A session created on member `a` moves to member `b` while its connection on `a`
/// stays open; then it moves back to `a`.
fn move_and_return(cluster: &Cluster, a: usize, b: usize, path: &str) {
    let (addr_a, addr_b) = (cluster.members[a].addr(), cluster.members[b].addr());
    let mut on_a = Session::open(addr_a);
    let created = on_a.call(1, CREATE, &raw::create_body(path, b"a")).expect("create reply");
    assert_eq!(created.err, 0);

    let mut on_b = on_a.reattach(addr_b);
    // Reads through the stale connection are served (they are not checked).
    assert_eq!(get(&mut on_a, 2, path), b"a");
    // A write is refused as ZooKeeper does: the stale connection is closed, unanswered.
    assert_eq!(set(&mut on_a, 3, path, b"stale"), None, "a write through the connection left on member {a}");
    assert!(raw::closed(&mut on_a.stream));
    // Through the session's new server the same write succeeds; the refused one left nothing.
    assert_eq!(set(&mut on_b, 1, path, b"b"), Some((0, 1)));
    assert_eq!(get(&mut on_b, 2, path), b"b");

    // Back on `a`: it owns the session again, and now `b`'s connection is the stale one.
    let mut back = on_b.reattach(addr_a);
    assert_eq!(set(&mut back, 1, path, b"back"), Some((0, 2)));
    assert_eq!(set(&mut on_b, 3, path, b"stale again"), None, "a write through the connection left on member {b}");
    assert_eq!(get(&mut back, 2, path), b"back");
}

#[test]
fn a_write_through_the_stale_connection_of_a_moved_session_is_refused() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let (f1, f2) = ((leader + 1) % 3, (leader + 2) % 3);
    // Between followers: the writes and the re-attach both travel to the leader.
    move_and_return(&cluster, f1, f2, "/between-followers");
    // The leader's own clients are checked too.
    move_and_return(&cluster, leader, f1, "/from-the-leader");
    move_and_return(&cluster, f2, leader, "/to-the-leader");
    cluster.wait_converged(Duration::from_secs(10));
}

/// A ConnectRequest for `s`'s session on `addr`: the session timeout the server answers
/// (0: expired), or `None` when the server closed without answering.
fn attach_timeout(addr: std::net::SocketAddr, s: &Session) -> Option<i32> {
    let body = raw::connect_body(s.last_zxid, 30_000, s.session_id, &s.password, Some(false));
    let (_stream, resp) = raw::connect(addr, &body);
    (resp.len() >= 8).then(|| i32::from_be_bytes(resp[4..8].try_into().unwrap()))
}

#[test]
fn closing_a_session_through_one_member_closes_its_connection_on_another() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    let mut on_a = Session::open(cluster.members[a].addr());
    assert_eq!(on_a.call(1, CREATE, &raw::create_body("/closed-elsewhere", b"")).expect("create").err, 0);

    // A second handle of the same session closes it through member b (Curator's KillSession).
    let mut on_b = on_a.reattach(cluster.members[b].addr());
    let r = on_b.call(1, raw::CLOSE_SESSION, &[]).expect("the closeSession is answered");
    assert_eq!((r.xid, r.err), (1, 0));

    // The connection on member a is closed by the server (not left serving reads of a closed
    // session), and the session is gone when the client comes back.
    on_a.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(raw::closed_by_server(&mut on_a.stream), "member {a} kept the closed session's connection open");
    assert_eq!(attach_timeout(cluster.members[a].addr(), &on_a), Some(0), "the session is expired");
}

#[test]
fn a_leader_that_lost_its_majority_drops_its_clients_until_the_quorum_is_back() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let addr = cluster.members[leader].addr();
    let mut s = Session::open(addr);
    assert_eq!(s.call(1, CREATE, &raw::create_body("/before", b"")).expect("create").err, 0);

    let followers = [(leader + 1) % 3, (leader + 2) % 3];
    for f in followers {
        cluster.kill9(f);
    }
    // ZooKeeper drops the clients of a leader without quorum within about 2 s.
    s.stream.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let lost = Instant::now();
    assert!(raw::closed_by_server(&mut s.stream), "the minority leader kept serving its client");
    assert!(lost.elapsed() < Duration::from_secs(6), "dropped only after {:?}", lost.elapsed());
    // New connections, and this session's reconnects, are refused while the quorum is gone.
    for _ in 0..3 {
        assert_eq!(attach_timeout(addr, &s), None, "a member without quorum accepted a session");
        std::thread::sleep(Duration::from_millis(300));
    }
    // Tools see that it serves nobody (a stale `Mode: leader` showed two leaders), as with
    // ZooKeeper; `ruok` still answers.
    let not_serving = "This ZooKeeper instance is not currently serving requests\n";
    assert_eq!(four_letter_word_timeout(addr, "srvr"), not_serving);
    assert_eq!(four_letter_word_timeout(addr, "mntr"), not_serving);
    assert_eq!(four_letter_word_timeout(addr, "isro"), "null");
    assert_eq!(four_letter_word_timeout(addr, "ruok"), "imok");

    // With one follower back there is a quorum again: the same session resumes, its
    // ephemeral state intact (nothing expired while nobody could decide it).
    cluster.spawn(followers[0]);
    let start = Instant::now();
    loop {
        match attach_timeout(addr, &s) {
            Some(t) => {
                assert!(t > 0, "the session expired while the quorum was gone");
                assert!(["leader", "follower"].contains(&cluster.mode(leader).as_str()), "srvr once serving again");
                break;
            }
            None => {
                assert!(start.elapsed() < Duration::from_secs(30), "no service after the quorum came back");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

#[test]
fn sync_without_a_leader_is_never_answered_ok() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let follower = (leader + 1) % 3;
    let mut s = Session::open(cluster.members[follower].addr());
    let other = (leader + 2) % 3;
    cluster.kill9(leader);
    cluster.kill9(other);
    // The barrier cannot be had: the answer is an error, or the connection closes; never
    // a success that promises the client an up-to-date view.
    s.stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    if let Some(r) = s.call(5, raw::SYNC, &raw::path_only_body("/")) {
        assert_eq!(r.xid, 5);
        assert_ne!(r.err, 0, "sync answered OK without a leader");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_that_comes_back_expires_no_session_that_stayed_active() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let follower = (leader + 1) % 3;
    // Several sessions, so that a deposed leader that expires one after the other would get
    // the later closes forwarded to its successor once it has stepped down.
    let mut clients = Vec::new();
    for i in 0..4 {
        let c = client(&cluster.members[follower].connect_string(), Duration::from_secs(4)).await;
        c.create(&format!("/alive-{i}"), b"", &eph()).await.unwrap();
        clients.push(c);
    }
    // Let the leader track them, then freeze it for twice the session timeout while the
    // clients keep pinging the follower (which reports them to the new leader).
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.stop(leader);
    tokio::time::sleep(Duration::from_secs(8)).await;
    cluster.resume(leader);
    // The old leader wakes up with every deadline it knew long passed.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let observer = client(&cluster.members[(leader + 2) % 3].connect_string(), Duration::from_secs(10)).await;
    observer.sync("/").await.unwrap();
    for (i, c) in clients.iter().enumerate() {
        let stat = observer.check_stat(&format!("/alive-{i}")).await.unwrap();
        assert!(stat.is_some(), "session {i} was expired although its client was active throughout");
        assert!(c.check_stat("/").await.is_ok(), "session {i} is gone for its client");
    }
}

/// An ephemeral node made through a follower's REST API belongs to a session that follower
/// holds for the browser session: the browser session's requests keep it alive through a
/// leader change (they are reported to the new leader like a client's pings), and a logout
/// through the follower deletes it for everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sessions_ephemeral_lives_through_a_leader_change_and_goes_at_logout() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let (follower, other) = ((leader + 1) % 3, (leader + 2) % 3);
    let http = cluster.members[follower].http_addr();
    let (status, headers, body) =
        common::http_exchange(http, "POST", "/api/v1/znodes/browser-eph", Some(r#"{"mode":"ephemeral"}"#), &[]);
    assert_eq!(status, 201, "{body}");
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let cookie = header("set-cookie").and_then(|c| c.split(';').next().map(str::to_owned)).expect("a session cookie");
    let csrf = header("x-csrf-token").expect("the token of the new browser session");

    let watcher = client(&cluster.members[other].connect_string(), Duration::from_secs(10)).await;
    watcher.sync("/").await.unwrap();
    let owner = watcher.check_stat("/browser-eph").await.unwrap().expect("created").ephemeral_owner;
    assert_ne!(owner, 0);

    // The leader goes; the browser session goes on making requests through the follower for
    // longer than its session's timeout (10 s: maxSessionTimeout at tickTime 500).
    cluster.kill9(leader);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        let (status, body) = common::http_with_headers(http, "GET", "/api/v1/auth", None, &[("Cookie", &cookie)]);
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    watcher.sync("/").await.unwrap();
    let stat = watcher.check_stat("/browser-eph").await.unwrap().expect("the ephemeral of an active browser session");
    assert_eq!(stat.ephemeral_owner, owner);

    let (status, body) = common::http_with_headers(
        http,
        "DELETE",
        "/api/v1/auth",
        None,
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
    );
    assert_eq!(status, 200, "{body}");
    watcher.sync("/").await.unwrap();
    assert!(watcher.check_stat("/browser-eph").await.unwrap().is_none(), "logout left the ephemeral");
}
