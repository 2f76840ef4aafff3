//! Shared helpers: fixture paths and an in-memory TLS handshake driver.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use roost_tls::rustls::client::ResolvesClientCert;
use roost_tls::rustls::pki_types::pem::PemObject;
use roost_tls::rustls::pki_types::{CertificateDer, ServerName};
use roost_tls::rustls::sign::CertifiedKey;
use roost_tls::rustls::{self, ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use roost_tls::{StoreSpec, TlsSettings};

pub const PW: &str = "apassword";

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

pub fn spec(name: &str) -> StoreSpec {
    StoreSpec::new(fixture(name), Some(PW))
}

pub fn cert(name: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(fixture(name)).unwrap()
}

/// Settings with the given key store and trust store fixture names.
pub fn settings(key: &str, trust: Option<&str>) -> TlsSettings {
    TlsSettings::new(spec(key), trust.map(spec))
}

pub struct Done {
    pub client: Connection,
    pub server: Connection,
}

impl Done {
    pub fn version(&self) -> Option<rustls::ProtocolVersion> {
        self.server.protocol_version()
    }
    pub fn suite(&self) -> Option<rustls::CipherSuite> {
        self.server.negotiated_cipher_suite().map(|s| s.suite())
    }
    /// The client certificate the server saw.
    pub fn client_cert(&self) -> Option<CertificateDer<'static>> {
        self.server.peer_certificates().and_then(|c| c.first()).map(|c| c.clone().into_owned())
    }
    /// The server certificate the client saw.
    pub fn server_cert(&self) -> Option<CertificateDer<'static>> {
        self.client.peer_certificates().and_then(|c| c.first()).map(|c| c.clone().into_owned())
    }
}

fn pump(from: &mut Connection, to: &mut Connection) -> Result<bool, rustls::Error> {
    let mut moved = false;
    while from.wants_write() {
        let mut buf = Vec::new();
        from.write_tls(&mut buf).unwrap();
        let mut rd = &buf[..];
        while !rd.is_empty() {
            to.read_tls(&mut rd).unwrap();
        }
        moved = true;
        to.process_new_packets()?;
    }
    Ok(moved)
}

/// Runs a full handshake in memory, then sends a byte each way so late (TLS 1.3 client-auth)
/// failures surface. Errors say which side failed.
pub fn handshake(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Result<Done, String> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = Connection::from(ClientConnection::new(client, name).unwrap());
    let mut s = Connection::from(ServerConnection::new(server).unwrap());
    use std::io::{Read, Write};
    c.writer().write_all(b"p").unwrap();
    for _ in 0..50 {
        let a = pump(&mut c, &mut s).map_err(|e| format!("server: {e}"))?;
        let b = pump(&mut s, &mut c).map_err(|e| format!("client: {e}"))?;
        if !a && !b && !c.is_handshaking() && !s.is_handshaking() {
            let mut got = [0u8; 1];
            s.reader().read_exact(&mut got).map_err(|e| format!("server read: {e}"))?;
            assert_eq!(&got, b"p");
            return Ok(Done { client: c, server: s });
        }
    }
    Err("handshake did not finish".into())
}

/// A client that has no certificate to offer.
#[derive(Debug)]
struct NoCert;

impl ResolvesClientCert for NoCert {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        None
    }
    fn has_certs(&self) -> bool {
        false
    }
}

pub fn without_client_cert(cfg: Arc<ClientConfig>) -> Arc<ClientConfig> {
    let mut c = (*cfg).clone();
    c.client_auth_cert_resolver = Arc::new(NoCert);
    Arc::new(c)
}
