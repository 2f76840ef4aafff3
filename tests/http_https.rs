//! HTTPS on the HTTP port: `admin.forceHttps` (HTTPS only, with HSTS), `admin.portUnification`
//! (HTTP and HTTPS on one port), and `admin.needClientAuth` (a client certificate is required
//! and its subject is the caller's `x509` identity, checked by ACLs like on the client port).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::{client, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zookeeper_client as zk;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/tls/tests/fixtures").join(name).display().to_string()
}

fn server(extra: &[&str]) -> Server {
    let mut args: Vec<String> = vec![
        format!("ssl.keyStore.location={}", fixture("server-keystore.pem")),
        "ssl.keyStore.type=PEM".into(),
        format!("ssl.trustStore.location={}", fixture("ca.pem")),
        "ssl.trustStore.type=PEM".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<String> = args.into_iter().flat_map(|a| ["-D".to_string(), a]).collect();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start(&flags)
}

/// One HTTP/1.1 GET; returns the whole response text (head and body).
async fn get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTPS GET, presenting `client_keystore` (PEM) if given.
async fn https_get(addr: SocketAddr, path: &str, client_keystore: Option<&str>) -> std::io::Result<String> {
    let key_store = client_keystore.unwrap_or("client-keystore.pem");
    let mut keys = roost_tls::StoreSpec::new(fixture(key_store), None);
    keys.store_type = Some("PEM".into());
    let mut trust = roost_tls::StoreSpec::new(fixture("ca.pem"), None);
    trust.store_type = Some("PEM".into());
    let config = if client_keystore.is_some() {
        roost_tls::client_config(&roost_tls::TlsSettings::new(keys, Some(trust)), None).unwrap()
    } else {
        // No client certificate: a plain rustls client trusting the test CA (the server cert is v1,
        // so it goes through our verifier with an empty key store of its own).
        let mut settings = roost_tls::TlsSettings::new(keys, Some(trust));
        settings.client_auth = roost_tls::ClientAuth::None;
        let mut config = (*roost_tls::client_config(&settings, None).unwrap()).clone();
        config.client_auth_cert_resolver = std::sync::Arc::new(NoCert);
        std::sync::Arc::new(config)
    };
    let sock = tokio::net::TcpStream::connect(addr).await?;
    let name = roost_tls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tokio_rustls::TlsConnector::from(config).connect(name, sock).await?;
    let text = get(stream, path).await;
    if text.is_empty() {
        return Err(std::io::Error::other("no response"));
    }
    Ok(text)
}

/// A client that has no certificate to offer.
#[derive(Debug)]
struct NoCert;

impl roost_tls::rustls::client::ResolvesClientCert for NoCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[roost_tls::rustls::SignatureScheme],
    ) -> Option<std::sync::Arc<roost_tls::rustls::sign::CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

fn http_addr(s: &Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], s.http_port))
}

#[tokio::test]
async fn force_https_serves_only_https_with_hsts() {
    let s = server(&["admin.forceHttps=true"]);
    let text = https_get(http_addr(&s), "/commands/ruok", None).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("strict-transport-security: max-age=86400; includesubdomains"),
        "{text}"
    );
    let plain = get(tokio::net::TcpStream::connect(http_addr(&s)).await.unwrap(), "/commands/ruok").await;
    assert!(!plain.starts_with("HTTP/1.1"), "plain HTTP was answered on an HTTPS-only port: {plain}");
}

#[tokio::test]
async fn port_unification_serves_http_and_https() {
    let s = server(&["admin.portUnification=true"]);
    let text = https_get(http_addr(&s), "/commands/ruok", None).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let plain = get(tokio::net::TcpStream::connect(http_addr(&s)).await.unwrap(), "/commands/ruok").await;
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
    assert!(!plain.to_ascii_lowercase().contains("strict-transport-security"), "HSTS over plain HTTP: {plain}");
}

#[tokio::test]
async fn need_client_auth_requires_a_certificate_and_makes_it_the_callers_identity() {
    let s = server(&["admin.forceHttps=true", "admin.needClientAuth=true"]);
    assert!(https_get(http_addr(&s), "/commands/ruok", None).await.is_err(), "no certificate was accepted");
    assert!(
        https_get(http_addr(&s), "/commands/ruok", Some("other-client-keystore.pem")).await.is_err(),
        "a certificate from another CA was accepted"
    );
    // A node only CN=client may read.
    let zk = client(&s.connect_string()).await;
    let acl = [zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("x509", "CN=client"))];
    zk.create("/x509-only", b"for the client cert", &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl)))
        .await
        .unwrap();
    let text = https_get(http_addr(&s), "/api/v1/znodes/x509-only", Some("client-keystore.pem")).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200") && text.contains("for the client cert"), "{text}");
    let zk_denied = zk.get_data("/x509-only").await;
    assert!(matches!(zk_denied, Err(zk::Error::NoAuth)), "{zk_denied:?}");
}
