//! Backup and restore (docs/BACKUP.md): `roost backup` / `roost restore` against the
//! AdminServer commands `/commands/snapshot` and `/commands/restore`, and the offline seed
//! of a fresh ensemble. Every test runs the real `roost` binary.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, Options};
use common::{http_with_headers, wait_for_port, Server};
use zookeeper_client as zk;

/// `super:secret` as ZooKeeper's superDigest.
const SUPER: &str = "zookeeper.DigestAuthenticationProvider.superDigest=super:lK75jTNcA+U9vtVEw5vB51mj/w4=";
const SUPER_AUTH: &str = "digest super:secret";
/// zoo.cfg lines of the ensembles: the superuser, and no rate limit between commands.
const ENSEMBLE_EXTRA: &str =
    "DigestAuthenticationProvider.superDigest=super:lK75jTNcA+U9vtVEw5vB51mj/w4=\nadmin.rateLimiterIntervalInMS=0";

/// Every znode's data, stat and ACL, by path.
type Dump = BTreeMap<String, (Vec<u8>, zk::Stat, Vec<zk::Acl>)>;

async fn superuser(connect: &str, session_timeout: Duration) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(session_timeout)
        .with_auth("digest", b"super:secret")
        .connect(connect)
        .await
        .expect("connect as super")
}

/// The whole tree as the superuser reads it.
async fn dump(c: &zk::Client) -> Dump {
    let mut out = Dump::new();
    let mut todo = vec!["/".to_string()];
    while let Some(path) = todo.pop() {
        let (data, stat) = c.get_data(&path).await.unwrap_or_else(|e| panic!("get_data {path}: {e}"));
        let (acl, _) = c.get_acl(&path).await.unwrap_or_else(|e| panic!("get_acl {path}: {e}"));
        let (children, _) = c.get_children(&path).await.unwrap_or_else(|e| panic!("get_children {path}: {e}"));
        for child in children {
            todo.push(if path == "/" { format!("/{child}") } else { format!("{path}/{child}") });
        }
        out.insert(path, (data, stat, acl));
    }
    out
}

fn without_config(mut d: Dump) -> Dump {
    d.remove("/zookeeper/config");
    d
}

/// Runs the `roost` binary; returns whether it succeeded, and its stderr.
fn roost(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_roost")).args(args).output().expect("run roost");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn backup(http: SocketAddr, auth: &str, to: &Path) -> (bool, String) {
    roost(&["backup", "--server", &format!("http://{http}"), "--auth", auth, "--to", &to.display().to_string()])
}

fn restore_online(http: SocketAddr, auth: &str, from: &Path) -> (bool, String) {
    roost(&["restore", "--from", &from.display().to_string(), "--server", &format!("http://{http}"), "--auth", auth])
}

/// A POST with a binary body; returns the status and the body as text.
fn post_bytes(addr: SocketAddr, path: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned())
}

fn backup_zxid(file: &Path) -> i64 {
    let bytes = std::fs::read(file).unwrap();
    roost::tree::DataTree::deserialize(&bytes).expect("a valid backup").last_zxid()
}

/// Fills a tree with every kind of node: ACLs, binary and null-ish data, sequential,
/// container, an ephemeral (held by `holder`), deep and wide parts.
async fn populate(c: &zk::Client, holder: &zk::Client) {
    let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let bob = [zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", "bob:c4Q1qVy7hNiB+TmTgDylyC8OmqU="))];
    let secret = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&bob));
    c.create("/app", b"config", &open).await.unwrap();
    c.create("/app/secret", &[0, 159, 146, 150, 255], &secret).await.unwrap();
    c.create("/app/empty", b"", &open).await.unwrap();
    for i in 0..30 {
        c.create(&format!("/app/wide-{i:02}"), format!("v{i}").as_bytes(), &open).await.unwrap();
    }
    let mut deep = String::from("/app");
    for i in 0..12 {
        deep.push_str(&format!("/d{i}"));
        c.create(&deep, &[i as u8], &open).await.unwrap();
    }
    let seq = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    c.create("/app/seq-", b"s", &seq).await.unwrap();
    let container = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());
    c.create("/jobs", b"", &container).await.unwrap();
    c.create("/jobs/job", b"j", &open).await.unwrap();
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    holder.create("/app/lock", b"held", &eph).await.unwrap();
    c.set_data("/app", b"config-v2", None).await.unwrap();
    c.create("/load", b"", &open).await.unwrap();
    for k in 0..10 {
        c.create(&format!("/load/k{k}"), b"0", &open).await.unwrap();
    }
}

/// Every load write: path, data, and the stat it left.
type WriteLog = Arc<Mutex<Vec<(String, Vec<u8>, zk::Stat)>>>;

/// A write load on `/load/k0..k9` until `stop`; every write's data and resulting stat.
async fn write_load(c: zk::Client, stop: Arc<AtomicBool>, log: WriteLog) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let path = format!("/load/k{}", i % 10);
        let data = format!("write-{i}").into_bytes();
        let stat = c.set_data(&path, &data, None).await.expect("load write");
        log.lock().unwrap().push((path, data, stat));
        i += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_seeds_a_fresh_ensemble_with_the_tree_as_of_its_zxid() {
    let source = Server::start(&["-D", SUPER, "-D", "admin.rateLimiterIntervalInMS=0"]);
    let http = SocketAddr::from(([127, 0, 0, 1], source.http_port));
    let c = superuser(&source.connect_string(), Duration::from_secs(10)).await;
    // Its session travels in the backup; a long timeout keeps its ephemeral alive in the
    // new ensemble until the dumps are compared.
    let holder = superuser(&source.connect_string(), Duration::from_secs(30)).await;
    populate(&c, &holder).await;

    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let load = tokio::spawn(write_load(
        superuser(&source.connect_string(), Duration::from_secs(10)).await,
        stop.clone(),
        log.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.roostsnap");
    let (ok, out) = tokio::task::spawn_blocking({
        let file = file.clone();
        move || backup(http, SUPER_AUTH, &file)
    })
    .await
    .unwrap();
    assert!(ok, "roost backup failed: {out}");
    assert!(out.contains("backup: zxid 0x"), "{out}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let zxid = backup_zxid(&file);

    // The tree as of the backup's zxid: now, with every load write after it undone.
    let writes = log.lock().unwrap().clone();
    assert!(writes.iter().any(|(_, _, s)| s.mzxid <= zxid), "no load write before the backup");
    assert!(writes.iter().any(|(_, _, s)| s.mzxid > zxid), "no load write after the backup");
    let mut expected = dump(&c).await;
    for k in 0..10 {
        let path = format!("/load/k{k}");
        let before_backup = writes.iter().rfind(|(p, _, s)| *p == path && s.mzxid <= zxid);
        if let Some((_, data, stat)) = before_backup {
            let entry = expected.get_mut(&path).unwrap();
            entry.0 = data.clone();
            entry.1 = *stat;
        }
    }

    // A fresh ensemble, every member seeded with the same file.
    let mut ensemble = Cluster::start_opts(3, Options { extra: ENSEMBLE_EXTRA, deferred: true, ..Options::default() });
    for m in &ensemble.members {
        let data = m.dir.join("data");
        let (ok, out) = roost(&["restore", "--from", &file.display().to_string(), "--to", &data.display().to_string()]);
        assert!(ok, "roost restore --to failed: {out}");
        assert!(out.contains("pending"), "{out}");
    }
    for i in (0..3).rev() {
        ensemble.spawn(i);
    }
    for m in &ensemble.members {
        wait_for_port(m.addr(), Duration::from_secs(60));
    }
    ensemble.wait_converged(Duration::from_secs(60));
    let expected = without_config(expected);
    for (i, m) in ensemble.members.iter().enumerate() {
        let c = superuser(&m.connect_string(), Duration::from_secs(10)).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while c.check_stat("/load").await.unwrap().is_none() {
            assert!(Instant::now() < deadline, "member {} never showed the restored tree", i + 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let got = without_config(dump(&c).await);
        assert_eq!(got.len(), expected.len(), "member {}: node count", i + 1);
        for (path, want) in &expected {
            assert_eq!(got.get(path), Some(want), "member {}: {path}", i + 1);
        }
    }
    // A seed is used once; a second seed into the same directory is refused.
    let seeded = ensemble.members[0].dir.join("data");
    assert!(
        seeded.join("restore-pending.roostsnap.applied").exists()
            || seeded.join("restore-pending.roostsnap.skipped").exists()
    );
    let (ok, out) = roost(&["restore", "--from", &file.display().to_string(), "--to", &seeded.display().to_string()]);
    assert!(!ok && out.contains("fresh"), "{out}");
    drop(holder);
}

/// Raw bytes of the snapshot command's answer (status, headers, body).
fn snapshot_raw(addr: SocketAddr, auth: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let head =
        format!("GET /commands/snapshot?streaming=true HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head, response[split + 4..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_restore_into_a_running_ensemble_needs_all_on_root_refuses_damage_and_leaves_members_equal() {
    let cluster = Cluster::start_opts(3, Options { extra: ENSEMBLE_EXTRA, ..Options::default() });
    cluster.wait_leader(Duration::from_secs(30));
    let http = cluster.members[1].http_addr();
    let c = superuser(&cluster.connect_string(), Duration::from_secs(10)).await;
    let holder = superuser(&cluster.members[0].connect_string(), Duration::from_secs(30)).await;
    // The first leader records the ensemble in /zookeeper/config shortly after it is elected;
    // the backup is taken after that, like any backup of a live ensemble.
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.get_data("/zookeeper/config").await.unwrap().0.is_empty() {
        assert!(Instant::now() < deadline, "no initial configuration");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    populate(&c, &holder).await;
    // Only admin holds ALL on /; everyone may read it.
    let root_acl = [
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", "admin:B05meOaFZGavGA/rJPCQlodOTYU=")),
        zk::Acl::new(zk::Permission::READ, zk::AuthId::new("world", "anyone")),
    ];
    c.set_acl("/", &root_acl, None).await.unwrap();

    // Authentication and per-bit authorization (READ alone is not enough: CVE-2025-58457).
    let snap = "/commands/snapshot?streaming=false";
    for (auth, status) in [
        (None, 401),
        (Some("digest bob:wrong"), 403),
        (Some("ip"), 403),
        (Some("bogus x"), 401),
        (Some("digest a b"), 401),
    ] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
        let (got, body) = http_with_headers(http, "GET", snap, None, &headers);
        assert_eq!(got, status, "snapshot with {auth:?}: {body}");
        let (got, body) = post_bytes(http, "/commands/restore", b"x", &headers);
        assert_eq!(got, status, "restore with {auth:?}: {body}");
    }
    let (status, head, body) = snapshot_raw(http, Some("digest admin:adminpw"));
    assert_eq!(status, 200, "{head}");
    assert!(head.contains(&format!("snapshot_size: {}", body.len())), "{head}");
    assert!(head.to_ascii_lowercase().contains("last_zxid: 0x"), "{head}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.roostsnap");
    let (ok, out) = backup(http, "digest admin:adminpw", &file);
    assert!(ok, "{out}");
    let (ok, out) = backup(cluster.members[2].http_addr(), "digest bob:x", &dir.path().join("no"));
    assert!(!ok && out.contains("403"), "{out}");
    assert!(!dir.path().join("no").exists());
    let at_backup = dump(&c).await;

    // Changes after the backup, and a watcher whose session is in the backup.
    c.create("/after", b"a", &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())).await.unwrap();
    c.set_data("/app", b"changed", None).await.unwrap();
    c.delete("/app/empty", None).await.unwrap();
    let (_, watcher) = holder.check_and_watch_stat("/after").await.unwrap();
    let latecomer = superuser(&cluster.members[2].connect_string(), Duration::from_secs(10)).await;
    latecomer.create("/late", b"", &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())).await.unwrap();
    let before_damage = cluster.wait_converged(Duration::from_secs(30));

    // A damaged file: refused by the CLI before sending, and by the server, changing nothing.
    let mut damaged = std::fs::read(&file).unwrap();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x20;
    let bad = dir.path().join("bad.roostsnap");
    std::fs::write(&bad, &damaged).unwrap();
    let (ok, out) = restore_online(http, "digest admin:adminpw", &bad);
    assert!(!ok && out.contains("not a valid Roost backup"), "{out}");
    let (status, body) = post_bytes(http, "/commands/restore", &damaged, &[("Authorization", "digest admin:adminpw")]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("nothing was changed"), "{body}");
    let (status, body) =
        post_bytes(http, "/commands/restore", b"ZKSN\0\0\0\x02", &[("Authorization", "digest admin:adminpw")]);
    assert_eq!(status, 400, "a foreign file: {body}");
    assert_eq!(cluster.wait_converged(Duration::from_secs(30)), before_damage, "a refused restore changed the tree");

    // The real restore, through a follower or the leader alike.
    let (ok, out) = restore_online(http, "digest admin:adminpw", &file);
    assert!(ok, "{out}");
    let after = cluster.wait_converged(Duration::from_secs(60));
    assert_ne!(after, before_damage);
    for (i, m) in cluster.members.iter().enumerate() {
        let c = superuser(&m.connect_string(), Duration::from_secs(10)).await;
        c.sync("/").await.unwrap();
        assert_eq!(dump(&c).await, at_backup, "member {} after the restore", i + 1);
    }
    // The watch fired (its node is gone); the session created after the backup is over.
    let event = tokio::time::timeout(Duration::from_secs(10), watcher.changed()).await.expect("the watch fired");
    assert_eq!(event.event_type, zk::EventType::NodeDeleted);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match latecomer.get_data("/").await {
            Err(zk::Error::SessionExpired) => break,
            _ => {
                assert!(Instant::now() < deadline, "the session missing from the backup is still usable");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    // Zxids kept rising: a write after the restore is newer than anything before it.
    let stat = holder.set_data("/app", b"post-restore", None).await.unwrap();
    assert!(stat.mzxid > at_backup["/app"].1.mzxid);
}

#[test]
fn snapshot_and_restore_are_rate_limited_and_can_be_disabled() {
    let server = Server::start(&["-D", "admin.restore.enabled=false"]);
    let http = SocketAddr::from(([127, 0, 0, 1], server.http_port));
    let ip = [("Authorization", "ip")];
    let (status, body) = http_with_headers(http, "GET", "/commands/snapshot?streaming=false", None, &ip);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"command\":\"snapshot\""), "{body}");
    let (status, body) = http_with_headers(http, "GET", "/commands/snap?streaming=false", None, &ip);
    assert_eq!(status, 429, "the second snapshot within the interval: {body}");
    let (status, body) = post_bytes(http, "/commands/restore", b"x", &ip);
    assert_eq!(status, 503, "{body}");
    let (status, body) = http_with_headers(http, "GET", "/commands", None, &[]);
    assert_eq!(status, 200);
    assert!(body.contains("\"snapshot\"") && body.contains("\"restore\""), "{body}");
}
