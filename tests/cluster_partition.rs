//! Network partitions of a 3-member ensemble of real processes. Every member reaches
//! each peer through its own fault-injecting proxy (tests/common/proxy.rs), so a test can
//! cut a member off while its client port stays reachable.
//!
//! * An isolated leader must not acknowledge writes; the majority elects a new leader
//!   and keeps accepting writes; after healing every member has the same tree.
//! * With `readonlymode.enabled=true`, a member cut off from the quorum turns read-only:
//!   clients that set the readOnly flag can read there, writes get NotReadOnly, `isro`
//!   says `ro`, clients without the flag are closed; REST API writes get 503 NotReadOnly
//!   at once. After healing it is read-write again and closes its read-only connections.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, Options};
use common::raw::{self, closed_by_server};
use common::{client, open};
use zookeeper_client as zk;

/// Waits until `cond` holds, polling; panics with `what` after `timeout`.
fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A member other than `old` that reports `Mode: leader`.
fn wait_new_leader(cluster: &Cluster, old: usize, timeout: Duration) -> usize {
    let mut found = None;
    wait_until(timeout, "a new leader on the majority side", || {
        found = (0..cluster.members.len()).find(|&i| i != old && cluster.mode(i) == "leader");
        found.is_some()
    });
    found.unwrap()
}

fn connect_string(cluster: &Cluster, members: &[usize]) -> String {
    members.iter().map(|&i| cluster.members[i].connect_string()).collect::<Vec<_>>().join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_acknowledges_no_write_and_the_majority_carries_on() {
    let cluster = Cluster::start_opts(3, Options { proxied: true, ..Options::default() });
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();

    let all = client(&cluster.connect_string()).await;
    all.create("/before", b"1", &open()).await.unwrap();
    cluster.wait_converged(Duration::from_secs(10));
    // A session on the leader alone, established while it still has its quorum.
    let on_leader = client(&cluster.members[leader].connect_string()).await;

    cluster.isolate(leader);
    // The minority side cannot commit: the write is never acknowledged.
    let write = tokio::time::timeout(Duration::from_secs(5), on_leader.create("/minority", b"x", &open())).await;
    assert!(!matches!(write, Ok(Ok(_))), "an isolated leader acknowledged a write: {write:?}");

    let new_leader = wait_new_leader(&cluster, leader, Duration::from_secs(20));
    assert!(others.contains(&new_leader));
    let majority = client(&connect_string(&cluster, &others)).await;
    majority.create("/majority", b"m", &open()).await.unwrap();
    majority.set_data("/before", b"2", None).await.unwrap();

    cluster.heal();
    cluster.wait_converged(Duration::from_secs(30));
    assert_eq!(cluster.wait_leader(Duration::from_secs(10)), new_leader, "the old leader must not take over");
    for i in 0..3 {
        let c = client(&cluster.members[i].connect_string()).await;
        c.sync("/").await.unwrap();
        assert!(c.check_stat("/majority").await.unwrap().is_some(), "member {i} lacks /majority");
        assert!(c.check_stat("/minority").await.unwrap().is_none(), "member {i} has the unacknowledged /minority");
        assert_eq!(c.get_data("/before").await.unwrap().0, b"2");
    }
    // Those sessions changed the tree (sessions are replicated): compare again.
    cluster.wait_converged(Duration::from_secs(10));
}

/// A raw ConnectRequest for a new session, with or without the trailing readOnly byte.
/// Returns the socket and the ConnectResponse payload (empty if the server closed).
fn raw_connect(addr: SocketAddr, read_only: Option<bool>) -> (TcpStream, Vec<u8>) {
    raw::connect(addr, &common::connect_request_body(30_000, read_only))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_member_serves_read_only_clients_until_healed() {
    let cluster = Cluster::start_opts(3, Options { proxied: true, read_only: true, ..Options::default() });
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let cut = (leader + 1) % 3;
    let rest: Vec<usize> = (0..3).filter(|&i| i != cut).collect();
    let addr = cluster.members[cut].addr();

    let all = client(&cluster.connect_string()).await;
    all.create("/ro", b"data", &open()).await.unwrap();
    cluster.wait_converged(Duration::from_secs(10));
    assert_eq!(cluster.isro(cut), "rw");
    // Read-write mode answers a readOnly client with readOnly=false.
    let (_s, resp) = raw_connect(addr, Some(true));
    assert_eq!(resp.len(), 37);
    assert_eq!(resp[36], 0);
    let (_s, resp) = raw_connect(addr, None);
    assert_eq!(resp.len(), 36, "an old client gets no readOnly byte");
    // A read-write session on the member, established before the cut.
    let (mut rw_conn, resp) = raw_connect(addr, Some(false));
    assert_eq!(resp.len(), 37);

    cluster.isolate(cut);
    wait_until(Duration::from_secs(15), "isro = ro on the cut-off member", || cluster.isro(cut) == "ro");
    let srvr = common::cluster::four_letter_word_timeout(addr, "srvr");
    assert!(srvr.contains("READ-ONLY mode; serving only read-only clients"), "{srvr}");
    assert!(srvr.contains("Mode: read-only"), "{srvr}");
    let mntr = common::cluster::four_letter_word_timeout(addr, "mntr");
    assert!(mntr.contains("zk_server_state\tread-only"), "{mntr}");
    assert!(closed_by_server(&mut rw_conn), "the read-write connection must be closed on entering read-only mode");

    // Clients without the readOnly flag are closed without a response.
    assert!(raw_connect(addr, Some(false)).1.is_empty());
    assert!(raw_connect(addr, None).1.is_empty());
    // A readOnly client gets readOnly=true and a (local) session.
    let (mut ro_conn, resp) = raw_connect(addr, Some(true));
    assert_eq!(resp.len(), 37);
    assert_eq!(resp[36], 1, "readOnly=true in the ConnectResponse");
    assert_ne!(i64::from_be_bytes(resp[8..16].try_into().unwrap()), 0, "a session id");

    let ro = zk::Client::connector()
        .with_readonly(true)
        .with_session_timeout(Duration::from_secs(10))
        .connect(&cluster.members[cut].connect_string())
        .await
        .expect("read-only connect");
    assert_eq!(ro.state(), zk::SessionState::ConnectedReadOnly);
    assert_eq!(ro.get_data("/ro").await.unwrap().0, b"data");
    assert!(matches!(ro.create("/ro/w", b"", &open()).await, Err(zk::Error::NotReadOnly)));
    assert!(matches!(ro.set_data("/ro", b"x", None).await, Err(zk::Error::NotReadOnly)));
    assert!(matches!(ro.delete("/ro", None).await, Err(zk::Error::NotReadOnly)));
    assert!(matches!(ro.sync("/ro").await, Err(zk::Error::NotReadOnly)));
    assert_eq!(ro.get_data("/ro").await.unwrap().0, b"data", "still connected after refused writes");

    // The REST API refuses writes at once too (it used to wait for consensus and time out).
    let http = cluster.members[cut].http_addr();
    for (method, path, body) in [
        ("PUT", "/api/v1/znodes/ro", Some(r#"{"data":"x"}"#)),
        ("POST", "/api/v1/znodes/ro/new", Some("{}")),
        ("DELETE", "/api/v1/znodes/ro", None),
    ] {
        let start = Instant::now();
        let (status, reply) = common::http(http, method, path, body);
        assert!(start.elapsed() < Duration::from_secs(1), "{method} {path} took {:?}", start.elapsed());
        assert_eq!(status, 503, "{method} {path}: {reply}");
        assert!(
            reply.contains(r#""error":"NotReadOnly""#) && reply.contains(r#""code":-119"#),
            "{method} {path}: {reply}"
        );
        assert!(reply.contains("read-only"), "the message says why: {reply}");
    }
    let (status, reply) = common::http(http, "GET", "/api/v1/znodes/ro", None);
    assert_eq!(status, 200, "REST reads are served: {reply}");
    let (_, reply) = common::http(http, "GET", "/commands/is_read_only", None);
    assert!(reply.contains(r#""read_only":true"#), "{reply}");

    // The majority keeps working meanwhile.
    let majority = client(&connect_string(&cluster, &rest)).await;
    majority.create("/during", b"d", &open()).await.unwrap();

    cluster.heal();
    wait_until(Duration::from_secs(20), "isro = rw after healing", || cluster.isro(cut) == "rw");
    assert!(closed_by_server(&mut ro_conn), "read-only connections must be closed when the quorum is back");
    let srvr = common::cluster::four_letter_word_timeout(addr, "srvr");
    assert!(!srvr.contains("READ-ONLY") && !srvr.contains("Mode: read-only"), "{srvr}");

    let (status, reply) = common::http(http, "PUT", "/api/v1/znodes/ro", Some(r#"{"data":"rest"}"#));
    assert_eq!(status, 200, "a REST write after healing: {reply}");
    let (_, reply) = common::http(http, "GET", "/commands/is_read_only", None);
    assert!(reply.contains(r#""read_only":false"#), "{reply}");

    let back = client(&cluster.members[cut].connect_string()).await;
    assert_eq!(back.get_data("/ro").await.unwrap().0, b"rest");
    back.create("/after", b"a", &open()).await.unwrap();
    back.sync("/").await.unwrap();
    assert_eq!(back.get_data("/during").await.unwrap().0, b"d");
    cluster.wait_converged(Duration::from_secs(30));
}

/// A leader that has lost its quorum sends a reconnecting client on at once: it could
/// neither revalidate the session nor keep it alive. It used to take the client in and hold
/// it until its cut-off, a grace period later, dropped every client; meanwhile a new leader
/// was serving (kazoo clients waited 2 s there in tests/faults, writes resumed late).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_lost_its_quorum_refuses_reconnecting_clients_at_once() {
    let cluster = Cluster::start_opts(3, Options { proxied: true, ..Options::default() });
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let addr = cluster.members[leader].addr();
    let session = raw::Session::open(addr);

    cluster.isolate(leader);
    // From the moment its quorum lease has run out, which `srvr` shows, and well before the
    // cut-off closes the connections it already serves.
    let start = Instant::now();
    while !common::four_letter_word(addr, "srvr").contains("not currently serving") {
        assert!(start.elapsed() < Duration::from_secs(10), "the isolated leader kept serving");
        std::thread::sleep(Duration::from_millis(10));
    }
    let body = raw::connect_body(session.last_zxid, 30_000, session.session_id, &session.password, Some(false));
    let (_stream, response) = raw::connect(addr, &body);
    assert!(response.is_empty(), "the isolated leader re-attached the session ({} bytes answered)", response.len());
    // A new session is refused too.
    let (_stream, response) = raw_connect(addr, Some(false));
    assert!(response.is_empty(), "the isolated leader opened a session ({} bytes answered)", response.len());
}

/// A follower whose leader is gone holds a connecting client through the election instead
/// of bouncing it: a client that finds every member refusing gives up (go-zookeeper fails
/// the request with ErrNoServer after one round of refusals, its TestDNSHostProviderReconnect
/// failed so when the leader it was connected to restarted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_in_an_election_holds_a_connecting_client_until_a_leader_is_elected() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let survivor = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let addr = cluster.members[survivor].addr();
    cluster.kill9(leader);
    cluster.kill9(other);
    let start = Instant::now();
    while !common::four_letter_word(addr, "srvr").contains("not currently serving") {
        assert!(start.elapsed() < Duration::from_secs(10), "the survivor kept serving without a quorum");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A quorum is on its way (the member restarts and an election follows) when the
    // client arrives.
    cluster.spawn(other);
    let (_stream, response) = raw_connect(addr, Some(false));
    assert_eq!(response.len(), 37, "the follower refused the client during the election");
    let session_id = i64::from_be_bytes(response[8..16].try_into().expect("8 bytes"));
    assert_ne!(session_id, 0, "no session was created");
}
