//! Mutual TLS between ensemble members (`sslQuorum=true` with the `ssl.quorum.*` stores): the
//! ensemble elects, replicates and fails over over TLS; a process that reaches the peer port in
//! plain text, with a certificate from another CA, or with a valid certificate that names another
//! host, changes nothing and is logged; a member whose certificate is replaced on disk keeps
//! serving and the new certificate is used for new connections.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::cluster::{Cluster, Options};
use common::{client, open};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/tls/tests/fixtures").join(name)
}

/// zoo.cfg lines for quorum TLS with `keystore` (a PEM key store) and the test CA.
fn quorum_tls(keystore: &std::path::Path, hostname_verification: bool) -> &'static str {
    let text = format!(
        "sslQuorum=true\nssl.quorum.keyStore.location={}\nssl.quorum.keyStore.type=PEM\n\
         ssl.quorum.trustStore.location={}\nssl.quorum.trustStore.type=PEM\n\
         ssl.quorum.hostnameVerification={hostname_verification}\n",
        keystore.display(),
        fixture("ca.pem").display()
    );
    Box::leak(text.into_boxed_str())
}

/// The quorum (peer) port of member `i`, from its server line.
fn quorum_port(cluster: &Cluster, i: usize) -> SocketAddr {
    let line = &cluster.members[i].server_line;
    let port = line.split('=').nth(1).and_then(|v| v.split(':').nth(1)).and_then(|p| p.parse().ok()).unwrap();
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Writes through member `from`, then checks every member converges on the same tree.
async fn write_and_converge(cluster: &Cluster, from: usize, path: &str) {
    let c = client(&cluster.members[from].connect_string()).await;
    c.create(path, b"over tls", &open()).await.unwrap();
    cluster.wait_converged(Duration::from_secs(20));
}

/// Reads until the peer closes; true when it closed (or reset) within `timeout` without
/// sending anything back.
fn closed_without_answer(mut sock: TcpStream, timeout: Duration) -> bool {
    sock.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 256];
    match sock.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe),
    }
}

/// A TLS client handshake with `keystore` as its certificate; `Ok` when the server accepted it.
async fn tls_handshake(addr: SocketAddr, keystore: &std::path::Path) -> std::io::Result<()> {
    let mut key_store = roost_tls::StoreSpec::new(keystore, None);
    key_store.store_type = Some("PEM".into());
    let mut trust = roost_tls::StoreSpec::new(fixture("ca.pem"), None);
    trust.store_type = Some("PEM".into());
    let settings = roost_tls::TlsSettings::new(key_store, Some(trust));
    let config = roost_tls::client_config(&settings, None).map_err(std::io::Error::other)?;
    let sock = tokio::net::TcpStream::connect(addr).await?;
    let name = roost_tls::rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(config).connect(name, sock).await?;
    // The server finishes its side of TLS 1.3 only when it reads our Finished; a refused
    // certificate then closes the connection, which a read sees.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(&[0, 0, 0, 4, 1, 2, 3, 4]).await?;
    let mut buf = [0u8; 16];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Err(std::io::Error::other("closed by the server")),
        Ok(Ok(_)) => Ok(()),
        Err(_) => Ok(()), // still open: the handshake was accepted
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ensemble_over_mutual_tls_replicates_fails_over_and_refuses_rogue_peers() {
    let extra = quorum_tls(&fixture("san-ip-keystore.pem"), true);
    let mut cluster = Cluster::start_opts(3, Options { extra, ..Options::default() });
    let leader = cluster.wait_leader(Duration::from_secs(30));
    write_and_converge(&cluster, (leader + 1) % 3, "/tls-a").await;
    let target = (leader + 1) % 3;
    let peer = quorum_port(&cluster, target);
    // The writer's session closes in the background once it is dropped; let that land first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tree_before = cluster.wait_converged(Duration::from_secs(20));

    // Plain text: a would-be peer's first bytes get the connection closed, unanswered.
    let mut plain = TcpStream::connect(peer).unwrap();
    plain.write_all(&[0, 0, 0, 12, b'r', b'o', b'o', b's', b't', 0, 0, 0, 0, 0, 0, 1]).unwrap();
    assert!(closed_without_answer(plain, Duration::from_secs(10)), "a plain peer connection was kept open");

    // Replayed bytes of a TLS ClientHello from another connection do not make a session.
    let mut replay = TcpStream::connect(peer).unwrap();
    let mut hello = vec![0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03];
    hello.extend_from_slice(&[0x42; 32]);
    hello.extend_from_slice(&[0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00]);
    replay.write_all(&hello).unwrap();
    let mut answer = [0u8; 5];
    replay.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let n = replay.read(&mut answer).unwrap_or(0);
    // Either closed, or a TLS alert (content type 21): never application data.
    assert!(n == 0 || answer[0] == 21, "replayed bytes got {:?}", &answer[..n]);

    // A client certificate from an unrelated CA, and a valid certificate naming another host.
    assert!(tls_handshake(peer, &fixture("other-client-keystore.pem")).await.is_err(), "a foreign CA was accepted");
    // The server logs a refusal just after the client sees it: give the log a moment.
    let logged = |log: &str| {
        log.contains("plain connection to the peer port refused") && log.contains("peer TLS handshake failed")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !logged(&cluster.members[target].log()) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = cluster.members[target].log();
    assert!(logged(&log), "rogue connections were not logged:\n{log}");
    assert_eq!(cluster.wait_leader(Duration::from_secs(10)), leader, "a rogue connection moved the leadership");
    assert_eq!(cluster.wait_converged(Duration::from_secs(20)), tree_before, "a rogue connection changed the tree");

    // Failover over TLS.
    cluster.kill9(leader);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let survivor = (leader + 1) % 3;
    loop {
        let c = client(&cluster.members[survivor].connect_string()).await;
        if tokio::time::timeout(Duration::from_secs(5), c.create("/tls-after-failover", b"", &open())).await.is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no write after the leader died:\n{}", cluster.logs());
    }
    cluster.restart(leader);
    cluster.wait_converged(Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_claiming_another_members_id_with_a_valid_certificate_is_refused() {
    // Member certificates name 127.0.0.1, so all three are accepted; a fourth process holding
    // a valid certificate for another host (DNS SANs only) is refused once it says who it is.
    let extra = quorum_tls(&fixture("san-ip-keystore.pem"), true);
    let cluster = Cluster::start_opts(3, Options { extra, ..Options::default() });
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let peer = quorum_port(&cluster, leader);

    let mut key_store = roost_tls::StoreSpec::new(fixture("san-dns-keystore.pem"), None);
    key_store.store_type = Some("PEM".into());
    let mut trust = roost_tls::StoreSpec::new(fixture("ca.pem"), None);
    trust.store_type = Some("PEM".into());
    let settings = roost_tls::TlsSettings::new(key_store, Some(trust));
    let config: Arc<_> = roost_tls::client_config(&settings, None).unwrap();
    let sock = tokio::net::TcpStream::connect(peer).await.unwrap();
    let name = roost_tls::rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(config).connect(name, sock).await.unwrap();
    // The Hello frame of a member that is not the leader.
    let claimed = cluster.members[(leader + 1) % 3].id;
    let hello = roost::consensus::wire::Hello { magic: roost::consensus::wire::MAGIC, from: claimed };
    let frame = roost::consensus::wire::encode_frame(&hello).unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.write_all(&frame).await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the impostor's connection stayed open: {read:?}");
    let log = cluster.members[leader].log();
    assert!(log.contains("peer connection refused") && log.contains("does not name"), "not logged:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_replaced_on_disk_is_used_without_a_restart() {
    // Host names are not checked here, so two certificates of the same CA can be swapped.
    let dir = tempfile::tempdir().unwrap();
    let keystore = dir.path().join("member.pem");
    std::fs::copy(fixture("server-keystore.pem"), &keystore).unwrap();
    let extra = quorum_tls(&keystore, false);
    let mut cluster = Cluster::start_opts(3, Options { extra, ..Options::default() });
    let leader = cluster.wait_leader(Duration::from_secs(30));
    write_and_converge(&cluster, leader, "/before-rotation").await;

    // Rotate: every member reads the same file. New connections must use the new certificate
    // and existing ones keep working.
    std::fs::copy(fixture("server2-keystore.pem"), &keystore).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    write_and_converge(&cluster, leader, "/during-rotation").await;
    let follower = (leader + 1) % 3;
    cluster.kill9(follower);
    cluster.restart(follower);
    write_and_converge(&cluster, leader, "/after-rotation").await;
    let logs = cluster.logs();
    assert!(logs.contains("certificate files changed"), "no reload was logged:\n{logs}");

    // A broken replacement keeps the last good certificate, and the ensemble keeps serving.
    std::fs::write(&keystore, b"not a key store").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    write_and_converge(&cluster, leader, "/after-broken-replacement").await;
    let logs = cluster.logs();
    assert!(
        logs.contains("cannot reload certificate files; keeping the old ones"),
        "not logged:
{logs}"
    );
}

/// Rewrites one zoo.cfg line `key=...` of member `i` (or appends it).
fn set_cfg(cluster: &Cluster, i: usize, key: &str, value: &str) {
    let path = cluster.members[i].dir.join("zoo.cfg");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> =
        text.lines().filter(|l| !l.starts_with(&format!("{key}="))).map(str::to_string).collect();
    lines.push(format!("{key}={value}"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_tls_is_switched_on_member_by_member_without_downtime() {
    // ZooKeeper's documented path: portUnification=true everywhere, then sslQuorum=true one
    // member at a time, then portUnification=false one member at a time.
    let keys = quorum_tls(&fixture("san-ip-keystore.pem"), true).replace("sslQuorum=true\n", "");
    let extra: &'static str = Box::leak(format!("{keys}portUnification=true\nsslQuorum=false\n").into_boxed_str());
    let mut cluster = Cluster::start_opts(3, Options { extra, ..Options::default() });
    cluster.wait_leader(Duration::from_secs(30));
    let writer = client(&cluster.connect_string()).await;
    writer.create("/rolling", b"", &open()).await.unwrap();
    let mut n = 0;
    for (key, value) in [("sslQuorum", "true"), ("portUnification", "false")] {
        for i in 0..3 {
            set_cfg(&cluster, i, key, value);
            cluster.kill9(i);
            cluster.restart(i);
            cluster.wait_leader(Duration::from_secs(30));
            n += 1;
            let path = format!("/rolling/step-{n}");
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while tokio::time::timeout(Duration::from_secs(5), writer.create(&path, b"", &open())).await.is_err() {
                assert!(std::time::Instant::now() < deadline, "no write after step {n}:\n{}", cluster.logs());
            }
            cluster.wait_converged(Duration::from_secs(30));
        }
    }
    // In the middle, TLS members accepted the plain ones (and said so).
    let logs = cluster.logs();
    assert!(logs.contains("unauthenticated plain peer connection accepted (portUnification)"), "{logs}");
    // At the end nothing plain gets in.
    let leader = cluster.wait_leader(Duration::from_secs(10));
    let mut plain = TcpStream::connect(quorum_port(&cluster, leader)).unwrap();
    plain.write_all(&[0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap();
    assert!(closed_without_answer(plain, Duration::from_secs(10)), "plain accepted after the switch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joins_by_reconfig_over_tls_and_another_leaves() {
    let tls = quorum_tls(&fixture("san-ip-keystore.pem"), true);
    let extra: &'static str = Box::leak(
        format!(
            "{tls}reconfigEnabled=true\nDigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n"
        )
        .into_boxed_str(),
    );
    let mut cluster = Cluster::start_opts(4, Options { running: Some(3), extra, ..Options::default() });
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let admin = zookeeper_client::Client::connector()
        .with_auth("digest", b"super:test")
        .connect(&cluster.members[leader].connect_string())
        .await
        .unwrap();
    cluster.restart(3);
    let joiner = cluster.members[3].server_line.clone();
    let joinings = vec![joiner.as_str()];
    let update = zookeeper_client::EnsembleUpdate::Incremental {
        joinings: joinings.into_iter(),
        leavings: Vec::<&str>::new().into_iter(),
    };
    admin.update_ensemble(update, None).await.unwrap_or_else(|e| panic!("reconfig add: {e:?}\n{}", cluster.logs()));
    // The new member replicates over TLS and takes writes (forwarded to the leader over TLS).
    let fourth = client(&cluster.members[3].connect_string()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::timeout(Duration::from_secs(5), fourth.create("/from-4", b"", &open()))
        .await
        .map_or(true, |r| r.is_err())
    {
        assert!(std::time::Instant::now() < deadline, "member 4 takes no writes:\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.wait_converged(Duration::from_secs(30));
    // A follower leaves; the rest keep taking writes.
    let gone = (0..3).find(|&i| i != leader).unwrap();
    let gone_id = cluster.members[gone].id.to_string();
    let leavings = vec![gone_id.as_str()];
    let update = zookeeper_client::EnsembleUpdate::Incremental {
        joinings: Vec::<&str>::new().into_iter(),
        leavings: leavings.into_iter(),
    };
    admin.update_ensemble(update, None).await.unwrap_or_else(|e| panic!("reconfig remove: {e:?}"));
    cluster.kill9(gone);
    let c = client(&cluster.members[3].connect_string()).await;
    c.create("/after-removal", b"", &open()).await.unwrap();
}
