//! TLS and SASL on the client port at the wire level (kazoo's, zkCli's and the CVE tests cover
//! the rest): a server with only `secureClientPort` serves no plain port, port unification
//! serves four-letter words in plain text and TLS on one port, and `allowSaslFailedClients`
//! keeps a connection whose SASL login failed.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::raw::Session;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/tls/tests/fixtures").join(name).display().to_string()
}

const TLS_KEYS: &str = "ssl.keyStore.location={keystore}\nssl.keyStore.password=apassword\n\
                        ssl.trustStore.location={truststore}\nssl.trustStore.password=apassword\n";

fn tls_keys() -> String {
    TLS_KEYS.replace("{keystore}", &fixture("keystore.jks")).replace("{truststore}", &fixture("truststore.jks"))
}

/// A roost process started from `zoo_cfg` (written into a temp dir); killed on drop.
struct Proc {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Proc {
    fn start(zoo_cfg: &str) -> Proc {
        let dir = tempfile::tempdir().unwrap();
        let cfg = format!("dataDir={}\nadmin.enableServer=false\n{zoo_cfg}", dir.path().join("data").display());
        std::fs::write(dir.path().join("zoo.cfg"), cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_roost"))
            .arg("--config")
            .arg(dir.path().join("zoo.cfg"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        Proc { child, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens TLS to `addr` with the kazoo-style client certificate.
async fn tls_connect(addr: SocketAddr) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut keys = roost_tls::StoreSpec::new(fixture("client-keystore.pem"), None);
    keys.store_type = Some("PEM".into());
    let mut trust = roost_tls::StoreSpec::new(fixture("ca.pem"), None);
    trust.store_type = Some("PEM".into());
    let config = roost_tls::client_config(&roost_tls::TlsSettings::new(keys, Some(trust)), None).unwrap();
    let sock = tokio::net::TcpStream::connect(addr).await?;
    let name = roost_tls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(config).connect(name, sock).await
}

async fn four_letter_over<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S, word: &str) -> String {
    s.write_all(word.as_bytes()).await.unwrap();
    s.flush().await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn wait_port(addr: SocketAddr, proc: &Proc) {
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "{addr} never listened:\n{}", proc.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn only_a_secure_client_port_means_no_plain_port() {
    let secure = common::free_port();
    let server = Proc::start(&format!("secureClientPort={secure}\n{}", tls_keys()));
    let addr = SocketAddr::from(([127, 0, 0, 1], secure));
    wait_port(addr, &server);
    let srvr = four_letter_over(tls_connect(addr).await.unwrap(), "srvr").await;
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    let log = server.log();
    assert!(log.contains("kind=Secure") && !log.contains("kind=Plain"), "a plain port was opened:\n{log}");
    // Plain text on the secure port gets nothing.
    let plain = four_letter_over(tokio::net::TcpStream::connect(addr).await.unwrap(), "srvr").await;
    assert!(!plain.contains("Mode:"), "{plain}");
}

#[tokio::test]
async fn port_unification_serves_plain_and_tls_on_the_client_port() {
    let port = common::free_port();
    let server = Proc::start(&format!("clientPort={port}\nclient.portUnification=true\n{}", tls_keys()));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_port(addr, &server);
    let plain = four_letter_over(tokio::net::TcpStream::connect(addr).await.unwrap(), "srvr").await;
    assert!(plain.contains("Mode: standalone"), "{plain}");
    let tls = four_letter_over(tls_connect(addr).await.unwrap(), "srvr").await;
    assert!(tls.contains("Mode: standalone"), "{tls}");
}

#[test]
fn allow_sasl_failed_clients_keeps_the_connection_unauthenticated() {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(
        &jaas,
        "Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n user_bob=\"pw\";\n};\n",
    )
    .unwrap();
    let server = Proc::start(&format!(
        "clientPort={port}\njava.security.auth.login.config={}\nallowSaslFailedClients=true\n",
        jaas.display()
    ));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_port(addr, &server);
    let mut s = Session::open(addr);
    s.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let empty = 0i32.to_be_bytes();
    let challenge = s.call(1, 102, &empty).expect("a challenge");
    let mut client = roost_sasl::DigestMd5Client::new("bob", "wrong", "zookeeper", "zk-sasl-md5");
    let response = client.step(&challenge.body[4..]).unwrap();
    let mut body = (response.len() as i32).to_be_bytes().to_vec();
    body.extend_from_slice(&response);
    let failed = s.call(2, 102, &body).expect("an answer, not a close");
    assert_eq!(failed.err, 0, "ZooKeeper answers success when failed clients are allowed");
    assert_eq!(failed.body, (-1i32).to_be_bytes().to_vec(), "with a null token");
    // The connection still serves requests, without the sasl identity.
    let exists = s.call(3, common::raw::EXISTS, &common::raw::watch_body("/zookeeper")).expect("served");
    assert_eq!(exists.err, 0);
}
