//! Real TLS handshakes (in memory) between configs built by this crate.

mod common;

use common::{cert, handshake, settings, without_client_cert};
use roost_tls::rustls::{CipherSuite, ProtocolVersion};
use roost_tls::{client_config, java_subject_dn, server_config, ClientAuth, TlsError, TlsSettings};

fn server(auth: ClientAuth) -> TlsSettings {
    let mut s = settings("keystore.jks", Some("truststore.jks"));
    s.client_auth = auth;
    s
}

fn client(key: &str) -> TlsSettings {
    settings(key, Some("truststore.jks"))
}

#[test]
fn v1_server_and_v1_client_with_need() {
    let done = handshake(
        server_config(&server(ClientAuth::Need)).unwrap(),
        client_config(&client("client.jks"), None).unwrap(),
    )
    .unwrap();
    assert_eq!(done.server_cert().unwrap(), cert("server.pem"));
    let seen = done.client_cert().unwrap();
    assert_eq!(seen, cert("client.pem"));
    assert_eq!(java_subject_dn(&seen).unwrap(), "CN=client");
}

#[test]
fn missing_client_cert_refused_under_need_accepted_under_want() {
    let no_cert = without_client_cert(client_config(&client("client.jks"), None).unwrap());
    let e = handshake(server_config(&server(ClientAuth::Need)).unwrap(), no_cert.clone()).err().unwrap();
    assert!(e.starts_with("server:"), "{e}");
    let done = handshake(server_config(&server(ClientAuth::Want)).unwrap(), no_cert).unwrap();
    assert!(done.client_cert().is_none());
    // Want still verifies a certificate that is sent.
    let other = client_config(&client("other-client-keystore.pem"), None).unwrap();
    assert!(handshake(server_config(&server(ClientAuth::Want)).unwrap(), other).is_err());
}

#[test]
fn client_auth_none_does_not_ask() {
    let done = handshake(
        server_config(&server(ClientAuth::None)).unwrap(),
        client_config(&client("client.jks"), None).unwrap(),
    )
    .unwrap();
    assert!(done.client_cert().is_none());
}

#[test]
fn foreign_and_expired_client_certs_refused() {
    for key in ["other-client-keystore.pem", "expired-client-keystore.pem"] {
        let e =
            handshake(server_config(&server(ClientAuth::Need)).unwrap(), client_config(&client(key), None).unwrap())
                .err()
                .unwrap_or_else(|| panic!("{key} accepted"));
        assert!(e.starts_with("server:"), "{key}: {e}");
    }
    let e = handshake(
        server_config(&server(ClientAuth::Need)).unwrap(),
        client_config(&client("expired-client-keystore.pem"), None).unwrap(),
    )
    .err()
    .unwrap();
    assert!(e.contains("xpired"), "{e}");
}

#[test]
fn no_trust_store_refuses_every_client_cert() {
    let mut s = server(ClientAuth::Need);
    s.trust_store = None;
    assert!(handshake(server_config(&s).unwrap(), client_config(&client("client.jks"), None).unwrap()).is_err());
}

#[test]
fn client_refuses_untrusted_server() {
    let c = settings("client.jks", Some("other-ca.pem"));
    let e =
        handshake(server_config(&server(ClientAuth::None)).unwrap(), client_config(&c, None).unwrap()).err().unwrap();
    assert!(e.starts_with("client:"), "{e}");
}

#[test]
fn protocol_versions() {
    for (name, want) in [("TLSv1.2", ProtocolVersion::TLSv1_2), ("TLSv1.3", ProtocolVersion::TLSv1_3)] {
        let mut s = server(ClientAuth::Need);
        s.protocols = Some(vec!["TLSv1.1".into(), name.into()]);
        let done = handshake(server_config(&s).unwrap(), client_config(&client("client.jks"), None).unwrap()).unwrap();
        assert_eq!(done.version(), Some(want), "{name}");
    }
    let mut s = server(ClientAuth::Need);
    s.protocols = Some(vec!["TLSv1.2".into()]);
    let mut c = client("client.jks");
    c.protocols = Some(vec!["TLSv1.3".into()]);
    assert!(handshake(server_config(&s).unwrap(), client_config(&c, None).unwrap()).is_err());
    s.protocols = Some(vec!["SSLv3".into(), "TLSv1".into()]);
    assert!(matches!(server_config(&s), Err(TlsError::NoUsable { .. })));
}

#[test]
fn cipher_suite_restriction() {
    for (name, want) in [
        ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
        ("TLS_CHACHA20_POLY1305_SHA256", CipherSuite::TLS13_CHACHA20_POLY1305_SHA256),
    ] {
        let mut s = server(ClientAuth::Need);
        s.cipher_suites = Some(vec!["TLS_RSA_WITH_RC4_128_MD5".into(), name.into()]);
        let done = handshake(server_config(&s).unwrap(), client_config(&client("client.jks"), None).unwrap()).unwrap();
        assert_eq!(done.suite(), Some(want), "{name}");
    }
    let mut s = server(ClientAuth::Need);
    s.cipher_suites = Some(vec!["TLS_RSA_WITH_RC4_128_MD5".into()]);
    assert!(matches!(server_config(&s), Err(TlsError::NoUsable { .. })));
}

#[test]
fn other_store_formats_serve() {
    for (key, trust) in [
        ("server-keystore-enc.pem", "ca.pem"),
        ("server.p12", "truststore-openssl.p12"),
        ("keytool-keystore.jks", "keytool-truststore.p12"),
        ("keytool-keystore.p12", "keytool-truststore.jks"),
        ("ec-server-keystore.pem", "two-cas.pem"),
    ] {
        let mut s = settings(key, Some("truststore.jks"));
        s.client_auth = ClientAuth::Need;
        let c = settings("client-keystore.pem", Some(trust));
        let done = handshake(server_config(&s).unwrap(), client_config(&c, Some("localhost".into())).unwrap())
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(done.client_cert().unwrap(), cert("client.pem"));
    }
}

/// Dials a server holding `key` and checks the certificate against `name`.
fn dial(key: &str, name: &str) -> Result<(), String> {
    let mut s = settings(key, Some("truststore.jks"));
    s.client_auth = ClientAuth::None;
    handshake(server_config(&s).unwrap(), client_config(&client("client.jks"), Some(name.into())).unwrap()).map(|_| ())
}

#[test]
fn server_host_names() {
    // IP SANs (IPv6 compared after normalisation).
    dial("san-ip-keystore.pem", "127.0.0.1").unwrap();
    dial("san-ip-keystore.pem", "::1").unwrap();
    dial("san-ip-keystore.pem", "[0:0:0:0:0:0:0:1]").unwrap();
    assert!(dial("san-ip-keystore.pem", "127.0.0.2").is_err());
    assert!(dial("san-ip-keystore.pem", "not-this-name").is_err(), "CN used despite SANs");
    // DNS SANs and a wildcard; the CN (localhost) is not consulted when SANs exist.
    dial("san-dns-keystore.pem", "node1.zk.example.org").unwrap();
    dial("san-dns-keystore.pem", "NODE1.zk.example.org").unwrap();
    dial("san-dns-keystore.pem", "x.wild.example.org").unwrap();
    assert!(dial("san-dns-keystore.pem", "a.b.wild.example.org").is_err());
    assert!(dial("san-dns-keystore.pem", "localhost").is_err(), "CN used despite SANs");
    // v1 certificate, no SANs: CN fallback.
    dial("keystore.jks", "localhost").unwrap();
    assert!(dial("keystore.jks", "otherhost").is_err());
    assert!(dial("keystore.jks", "127.0.0.1").is_err());
}

#[test]
fn quorum_peer_names_on_server_side() {
    let mut s = server(ClientAuth::Need);
    s.expected_peer_names = Some(vec!["10.0.0.9".into(), "127.0.0.1".into()]);
    let c = client("san-ip-keystore.pem");
    handshake(server_config(&s).unwrap(), client_config(&c, None).unwrap()).unwrap();
    s.expected_peer_names = Some(vec!["10.0.0.9".into(), "zk2.example.org".into()]);
    let e = handshake(server_config(&s).unwrap(), client_config(&c, None).unwrap()).err().unwrap();
    assert!(e.starts_with("server:"), "{e}");
}

#[test]
fn cert_matches_name_directly() {
    use roost_tls::cert_matches_name;
    assert!(cert_matches_name(&cert("san-ip.pem"), "::1").unwrap());
    assert!(!cert_matches_name(&cert("san-ip.pem"), "::2").unwrap());
    assert!(cert_matches_name(&cert("server.pem"), "LocalHost").unwrap());
    assert!(!cert_matches_name(&cert("san-dns.pem"), "wild.example.org").unwrap());
}

#[test]
fn mismatched_key_and_cert_refused_at_build_time() {
    let dir = std::env::temp_dir().join(format!("roost-tls-hs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("mixed.pem");
    let mut data = std::fs::read(common::fixture("client.key")).unwrap();
    data.extend(std::fs::read(common::fixture("server.pem")).unwrap());
    std::fs::write(&p, data).unwrap();
    let s = TlsSettings::new(roost_tls::StoreSpec::new(&p, None), None);
    let e = server_config(&s).unwrap_err();
    assert!(matches!(e, TlsError::BadKey { .. }), "{e}");
}

#[test]
fn impostor_ca_with_same_name_refused_by_signature() {
    let e = handshake(
        server_config(&server(ClientAuth::Need)).unwrap(),
        client_config(&client("impostor-client-keystore.pem"), None).unwrap(),
    )
    .err()
    .unwrap();
    assert!(e.starts_with("server:") && e.to_lowercase().contains("signature"), "{e}");
}

/// A client that presents the genuine client certificate but holds a different key: only the
/// CertificateVerify signature check can catch it.
#[derive(Debug)]
struct StolenCert(std::sync::Arc<roost_tls::rustls::sign::CertifiedKey>);

impl roost_tls::rustls::client::ResolvesClientCert for StolenCert {
    fn resolve(
        &self,
        _: &[&[u8]],
        _: &[roost_tls::rustls::SignatureScheme],
    ) -> Option<std::sync::Arc<roost_tls::rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

#[test]
fn forged_certificate_verify_refused() {
    let other_key = roost_tls::load_key_store(&common::spec("other-client-keystore.pem")).unwrap().key;
    let signer = roost_tls::rustls::crypto::ring::default_provider().key_provider.load_private_key(other_key).unwrap();
    let ck = std::sync::Arc::new(roost_tls::rustls::sign::CertifiedKey::new(vec![cert("client.pem")], signer));
    for version in ["TLSv1.2", "TLSv1.3"] {
        let mut c = client("client.jks");
        c.protocols = Some(vec![version.into()]);
        let mut cfg = (*client_config(&c, None).unwrap()).clone();
        cfg.client_auth_cert_resolver = std::sync::Arc::new(StolenCert(ck.clone()));
        let e = handshake(server_config(&server(ClientAuth::Need)).unwrap(), std::sync::Arc::new(cfg)).err();
        let e = e.unwrap_or_else(|| panic!("{version}: forged CertificateVerify accepted"));
        assert!(e.starts_with("server:"), "{version}: {e}");
    }
}
