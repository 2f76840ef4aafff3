//! Apache ZooKeeper's known security bugs, each tried against Roost (docs/SECURITY.md lists them
//! with the tests that cover the others: peer authentication in cluster_peer_tls.rs).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::raw::{self, Session};
use common::{client, four_letter_word, http_with_headers, open, Server};
use zookeeper_client as zk;

fn fixture(name: &str) -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crates/tls/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn flags(pairs: &[String]) -> Vec<String> {
    pairs.iter().flat_map(|p| ["-D".to_string(), p.clone()]).collect()
}

fn start(pairs: &[String]) -> Server {
    let f = flags(pairs);
    let f: Vec<&str> = f.iter().map(String::as_str).collect();
    Server::start(&f)
}

/// The JAAS file of kazoo's SASL tests, plus a super user, in `dir`.
fn jaas(dir: &std::path::Path, bob_password: &str) -> String {
    let path = dir.join("jaas.conf");
    std::fs::write(
        &path,
        format!(
            "Server {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
             user_jaasuser=\"jaas_password\"\n  user_bob=\"{bob_password}\";\n}};\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

const SASL: i32 = 102;

fn sasl_body(token: Option<&[u8]>) -> Vec<u8> {
    match token {
        None => (-1i32).to_be_bytes().to_vec(),
        Some(t) => {
            let mut b = (t.len() as i32).to_be_bytes().to_vec();
            b.extend_from_slice(t);
            b
        }
    }
}

/// Runs a DIGEST-MD5 exchange as `user`/`password` on a new session; returns the final reply.
fn sasl_login(addr: SocketAddr, user: &str, password: &str) -> (Session, Option<raw::Reply>) {
    let mut s = Session::open(addr);
    s.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let challenge = s.call(1, SASL, &sasl_body(Some(b""))).expect("a challenge");
    assert_eq!(challenge.err, 0);
    let token = &challenge.body[4..];
    let mut client = roost_sasl::DigestMd5Client::new(user, password, "zookeeper", "zk-sasl-md5");
    let response = client.step(token).unwrap();
    let last = s.call(2, SASL, &sasl_body(Some(&response)));
    (s, last)
}

/// CVE-2026-24308: ZooKeeper logged its key store passwords. No secret may reach Roost's log,
/// its 4lw answers or its HTTP commands, even at debug level.
#[tokio::test]
async fn secrets_never_reach_logs_or_status_output() {
    let dir = tempfile::tempdir().unwrap();
    let jaas = jaas(dir.path(), "Bob-SASL-s3cret");
    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, "apassword\n").unwrap();
    let secure_port = common::free_port();
    let server = {
        let pairs = vec![
            format!("secureClientPort={secure_port}"),
            format!("ssl.keyStore.location={}", fixture("keystore.jks")),
            "ssl.keyStore.password=apassword".into(),
            format!("ssl.trustStore.location={}", fixture("truststore.jks")),
            format!("ssl.trustStore.passwordPath={}", pw_file.display()),
            format!("java.security.auth.login.config={jaas}"),
            "SASLAuthenticationProvider.superPassword=Super-s3cret".into(),
            "4lw.commands.whitelist=*".into(),
        ];
        let f = flags(&pairs);
        let mut f: Vec<&str> = f.iter().map(String::as_str).collect();
        f.extend(["--log", "debug"]);
        Server::start(&f)
    };
    let (_bob, done) = sasl_login(server.addr(), "bob", "Bob-SASL-s3cret");
    assert_eq!(done.expect("an answer").err, 0, "bob could not log in:\n{}", server.log());
    let (_wrong, refused) = sasl_login(server.addr(), "bob", "Wrong-s3cret");
    assert_ne!(refused.map(|r| r.err), Some(0));
    let digest =
        zk::Client::connector().with_auth("digest", b"carol:Digest-s3cret").connect(&server.connect_string()).await;
    drop(digest);
    let mut seen = server.log();
    for word in ["conf", "envi", "srvr", "cons", "mntr"] {
        seen.push_str(&four_letter_word(server.addr(), word));
    }
    for command in ["configuration", "monitor", "sessions"] {
        seen.push_str(
            &http_with_headers(
                SocketAddr::from(([127, 0, 0, 1], server.http_port)),
                "GET",
                &format!("/commands/{command}"),
                None,
                &[],
            )
            .1,
        );
    }
    for secret in ["apassword", "Bob-SASL-s3cret", "Wrong-s3cret", "Super-s3cret", "Digest-s3cret"] {
        assert!(!seen.contains(secret), "{secret:?} was shown:\n{seen}");
    }
}

/// CVE-2024-51504: the AdminServer took the caller's address from X-Forwarded-For. Roost's HTTP
/// port uses the socket's address for `ip` identities whatever the headers say.
#[tokio::test]
async fn x_forwarded_for_does_not_change_the_callers_address() {
    let server = start(&[]);
    let c = client(&server.connect_string()).await;
    let acl = [zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("ip", "10.9.8.7"))];
    c.create("/by-ip", b"for 10.9.8.7 only", &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl))).await.unwrap();
    let http = SocketAddr::from(([127, 0, 0, 1], server.http_port));
    for header in ["X-Forwarded-For", "X-Real-IP", "Forwarded"] {
        let value = if header == "Forwarded" { "for=10.9.8.7" } else { "10.9.8.7" };
        let (status, body) = http_with_headers(http, "GET", "/api/v1/znodes/by-ip", None, &[(header, value)]);
        assert!(status == 401 || status == 403, "{header}: {status} {body}");
        assert!(!body.contains("for 10.9.8.7 only"), "{header} let the data out: {body}");
    }
}

/// CVE-2024-23944: persistent recursive watches delivered the paths of children the watcher
/// could not read.
#[tokio::test]
async fn a_recursive_watch_says_nothing_about_unreadable_children() {
    let server = start(&[]);
    let watcher = client(&server.connect_string()).await;
    watcher.create("/p", b"", &open()).await.unwrap();
    let mut events = watcher.watch("/p", zk::AddWatchMode::PersistentRecursive).await.unwrap();
    let other = zk::Client::connector().with_auth("digest", b"bob:pw").connect(&server.connect_string()).await.unwrap();
    other.create("/p/secret", b"", &zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all())).await.unwrap();
    other.create("/p/public", b"", &open()).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), events.changed()).await.expect("an event");
    assert_eq!(first.path, "/p/public", "the first event must be the readable child's: {first:?}");
    let more = tokio::time::timeout(Duration::from_millis(500), events.changed()).await;
    assert!(more.is_err(), "unexpected event {more:?}");
}

/// CVE-2019-0201: getACL showed digest hashes to anyone who could read the node.
#[tokio::test]
async fn get_acl_without_admin_masks_digests() {
    let server = start(&[]);
    let owner =
        zk::Client::connector().with_auth("digest", b"alice:pw").connect(&server.connect_string()).await.unwrap();
    let acl = [
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", "alice:+1S/6wFQyS2vwGEAJNWkPdjKx0g=")),
        zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
    ];
    owner.create("/masked", b"", &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl))).await.unwrap();
    let stranger = client(&server.connect_string()).await;
    let (seen, _) = stranger.get_acl("/masked").await.unwrap();
    let ids: Vec<String> = seen.iter().map(|a| format!("{}:{}", a.scheme(), a.id())).collect();
    assert!(ids.contains(&"digest:alice:x".to_string()), "{ids:?}");
    assert!(!ids.iter().any(|i| i.contains("+1S/6")), "the hash was shown: {ids:?}");
}

/// CVE-2017-5637: the CPU-heavy watch dumps were open by default.
#[test]
fn watch_dumps_are_off_by_default() {
    let server = start(&[]);
    for word in ["wchp", "wchc", "dump", "cons"] {
        let answer = four_letter_word(server.addr(), word);
        assert_eq!(answer, format!("{word} is not executed because it is not in the whitelist.\n"));
    }
}

/// ZOOKEEPER-4839: a shared DIGEST-MD5 callback let an unknown user log in with another user's
/// password. Each connection has its own exchange; an unknown user fails even right after a
/// known one logged in, with ZooKeeper's failure bytes (AuthFailed, a null token, then close).
#[test]
fn sasl_state_is_per_connection_and_unknown_users_fail() {
    let dir = tempfile::tempdir().unwrap();
    let jaas = jaas(dir.path(), "bobpw");
    let server = start(&[format!("java.security.auth.login.config={jaas}")]);
    let (_jaasuser, ok) = sasl_login(server.addr(), "jaasuser", "jaas_password");
    assert_eq!(ok.unwrap().err, 0);
    let (mut ghost, refused) = sasl_login(server.addr(), "ghost", "jaas_password");
    let refused = refused.expect("an answer before the close");
    assert_eq!(refused.err, -115, "AuthFailed");
    assert_eq!(refused.body, (-1i32).to_be_bytes().to_vec(), "a null SetSASLResponse token");
    assert!(raw::closed(&mut ghost.stream), "the connection stays open after a failed SASL login");
}

/// ZOOKEEPER-5025: line breaks in client-supplied names forged log lines. An auth id with a
/// line break must not start a line of its own in the log or the audit log.
#[tokio::test]
async fn client_supplied_line_breaks_cannot_forge_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let server = start(&["audit.enable=true".into(), format!("audit.file={}", audit.display())]);
    let c = zk::Client::connector()
        .with_auth("digest", b"evil\nFORGED LINE result=success:pw")
        .connect(&server.connect_string())
        .await
        .unwrap();
    c.create("/x\u{1b}[31m", b"", &open()).await.ok();
    c.create("/y", b"", &open()).await.unwrap();
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (name, text) in [("log", server.log()), ("audit", std::fs::read_to_string(&audit).unwrap())] {
        assert!(!text.lines().any(|l| l.starts_with("FORGED")), "{name} has a forged line:\n{text}");
        assert!(!text.contains('\u{1b}'), "{name} has a raw escape character:\n{text}");
    }
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    assert!(audit_text.contains("evil\\nFORGED"), "{audit_text}");
}
