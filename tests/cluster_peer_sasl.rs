//! Quorum SASL (`quorum.auth.enableSasl`, DIGEST-MD5 with the JAAS `QuorumServer` and
//! `QuorumLearner` sections): members that authenticate form the ensemble; with
//! `serverRequireSasl=true` a process that does not authenticate, or does so with a wrong
//! password, is refused, logged, and changes nothing.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::cluster::{Cluster, Options};
use common::{client, open};

const MAGIC: u64 = 0xA0DB_CAFE_CAFE_1234;

fn jaas(dir: &std::path::Path) -> String {
    let path = dir.join("jaas.conf");
    std::fs::write(
        &path,
        "QuorumServer {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_zk=\"quorum-pw\";\n};\n\
         QuorumLearner {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"zk\"\n  password=\"quorum-pw\";\n};\n",
    )
    .unwrap();
    path.display().to_string()
}

fn quorum_port(cluster: &Cluster, i: usize) -> SocketAddr {
    let line = &cluster.members[i].server_line;
    let port = line.split('=').nth(1).and_then(|v| v.split(':').nth(1)).and_then(|p| p.parse().ok()).unwrap();
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn auth_frame(status: i32, token: &[u8]) -> Vec<u8> {
    let mut f = ((12 + token.len()) as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&MAGIC.to_be_bytes());
    f.extend_from_slice(&status.to_be_bytes());
    f.extend_from_slice(token);
    f
}

fn read_auth(s: &mut TcpStream) -> Option<(i32, Vec<u8>)> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut payload).ok()?;
    Some((i32::from_be_bytes(payload[8..12].try_into().ok()?), payload[12..].to_vec()))
}

fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_authenticate_with_quorum_sasl_and_strangers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let extra: &'static str = Box::leak(
        format!(
            "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n\
             java.security.auth.login.config={}\n",
            jaas(dir.path())
        )
        .into_boxed_str(),
    );
    let mut cluster = Cluster::start_opts(3, Options { extra, ..Options::default() });
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let c = client(&cluster.members[(leader + 1) % 3].connect_string()).await;
    c.create("/sasl-quorum", b"", &open()).await.unwrap();
    drop(c);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tree = cluster.wait_converged(Duration::from_secs(20));
    let target = (leader + 1) % 3;
    let peer = quorum_port(&cluster, target);

    // No authentication at all: a plain Hello.
    let mut plain = TcpStream::connect(peer).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hello = roost::consensus::wire::Hello { magic: roost::consensus::wire::MAGIC, from: 2 };
    plain.write_all(&roost::consensus::wire::encode_frame(&hello).unwrap()).unwrap();
    assert!(closed(&mut plain), "a peer without quorum SASL was kept");

    // A wrong password.
    let mut wrong = TcpStream::connect(peer).unwrap();
    wrong.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    wrong.write_all(&auth_frame(0, b"")).unwrap();
    let (status, challenge) = read_auth(&mut wrong).expect("a challenge");
    assert_eq!(status, 0);
    let mut sasl = roost_sasl::DigestMd5Client::new("zk", "guess", "zookeeper-quorum", "zk-quorum-sasl-md5");
    wrong.write_all(&auth_frame(0, &sasl.step(&challenge).unwrap())).unwrap();
    let answer = read_auth(&mut wrong);
    assert!(matches!(answer, None | Some((-1, _))), "{answer:?}");
    assert!(closed(&mut wrong), "a peer with a wrong password was kept");

    let logged = |log: &str| {
        log.contains("a peer without quorum SASL refused (serverRequireSasl)")
            && log.contains("quorum SASL refused a peer")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !logged(&cluster.members[target].log()) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logged(&cluster.members[target].log()), "not logged:\n{}", cluster.members[target].log());
    assert_eq!(cluster.wait_converged(Duration::from_secs(20)), tree, "a stranger changed the tree");

    // Failover with authenticated members.
    cluster.kill9(leader);
    let survivor = (leader + 1) % 3;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let c = client(&cluster.members[survivor].connect_string()).await;
        if tokio::time::timeout(Duration::from_secs(5), c.create("/after-failover", b"", &open()))
            .await
            .is_ok_and(|r| r.is_ok())
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no write after the leader died:\n{}", cluster.logs());
    }
}

/// ZooKeeper's start-up checks: requiring SASL without enabling it is an error.
#[test]
fn requiring_quorum_sasl_without_enabling_it_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roost"))
        .args(["--data-dir", &dir.path().display().to_string(), "--client-port", "0"])
        .args(["-D", "quorum.auth.serverRequireSasl=true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("quorum.auth.serverRequireSasl"), "{stderr}");
}
