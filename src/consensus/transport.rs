//! The one place where peer connections are opened and authenticated.
//!
//! Both directions of the quorum port go through [`PeerTransport`]: [`connect`] dials a member
//! and [`accept`] takes a connection from one. With `sslQuorum=true` every connection is mutual
//! TLS: the dialled member must present a certificate signed by the quorum trust store (and,
//! with `ssl.quorum.hostnameVerification`, matching the host it was dialled at), and so must the
//! dialling one; [`authorize`] then binds the member id a connection claims in its `Hello` to
//! that certificate, so a valid certificate of member A cannot speak as member B.
//! `portUnification=true` also accepts plain connections (the rolling switch to TLS); each
//! one is logged and counted, and nothing but that setting lets one through.
//!
//! [`connect`]: PeerTransport::connect
//! [`accept`]: PeerTransport::accept
//! [`authorize`]: PeerTransport::authorize

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use roost_tls::rustls::pki_types::ServerName;
use roost_tls::{CertificateDer, ReloadingServerConfig, TlsSettings};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::types::NodeId;

/// The reading half of a peer connection, plain or TLS.
pub type PeerReader = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a peer connection, plain or TLS.
pub type PeerWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// First byte of a TLS handshake record; a peer's plain `Hello` frame starts with a length.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// How long a connection may take to show whether it speaks TLS, and to finish the handshake
/// (ZooKeeper's `ssl.quorum.handshakeDetectionTimeoutMillis` is 5 s).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// An accepted peer connection.
pub struct Accepted {
    pub reader: PeerReader,
    pub writer: PeerWriter,
    /// The verified certificate of the dialling member (TLS only).
    pub certificate: Option<CertificateDer<'static>>,
}

/// Quorum TLS settings.
pub struct PeerTls {
    /// The stores and protocol settings, shared by both directions.
    pub settings: TlsSettings,
    /// `ssl.quorum.hostnameVerification`: certificates must name the member's host.
    pub hostname_verification: bool,
}

/// How this member opens and accepts peer connections.
pub struct PeerTransport {
    tls: Option<Tls>,
    /// Dial with TLS (`sslQuorum`).
    dial_tls: bool,
    /// Accept plain connections (no quorum TLS at all, or `portUnification`).
    accept_plain: bool,
    /// Plain connections accepted while TLS was also on (the rolling switch).
    plain_accepted: AtomicU64,
    /// Connections refused: failed handshakes, wrong certificates, plain where TLS is required.
    refused: AtomicU64,
}

struct Tls {
    server: Arc<ReloadingServerConfig>,
    settings: TlsSettings,
    hostname_verification: bool,
}

impl std::fmt::Debug for PeerTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTransport")
            .field("tls", &self.tls.is_some())
            .field("dial_tls", &self.dial_tls)
            .field("accept_plain", &self.accept_plain)
            .finish()
    }
}

impl PeerTransport {
    /// Plain TCP both ways: an ensemble without quorum security.
    pub fn plain() -> Arc<PeerTransport> {
        Arc::new(PeerTransport {
            tls: None,
            dial_tls: false,
            accept_plain: true,
            plain_accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// `ssl_quorum`: dial with TLS; `port_unification`: accept plain connections too.
    pub fn secured(
        tls: PeerTls,
        ssl_quorum: bool,
        port_unification: bool,
    ) -> Result<Arc<PeerTransport>, roost_tls::TlsError> {
        let server = Arc::new(ReloadingServerConfig::new(tls.settings.clone())?);
        // Build a client context once now, so bad stores stop the start rather than the first dial.
        roost_tls::client_config(&tls.settings, None)?;
        Ok(Arc::new(PeerTransport {
            tls: Some(Tls { server, settings: tls.settings, hostname_verification: tls.hostname_verification }),
            dial_tls: ssl_quorum,
            accept_plain: !ssl_quorum || port_unification,
            plain_accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }))
    }

    /// The reloading server context, for the task that re-reads rotated certificate files.
    pub fn reloading(&self) -> Option<Arc<ReloadingServerConfig>> {
        self.tls.as_ref().map(|t| t.server.clone())
    }

    /// Plain connections let in by `portUnification` while TLS was on, and connections refused.
    pub fn counters(&self) -> (u64, u64) {
        (self.plain_accepted.load(Ordering::Relaxed), self.refused.load(Ordering::Relaxed))
    }

    /// Dials a member at `addr` (`host:port`).
    pub async fn connect(&self, sock: TcpStream, addr: &str) -> io::Result<(PeerReader, PeerWriter)> {
        let tls = match (&self.tls, self.dial_tls) {
            (Some(tls), true) => tls,
            _ => {
                let (rd, wr) = sock.into_split();
                return Ok((Box::new(rd), Box::new(wr)));
            }
        };
        let host = host_of(addr);
        // The client context is built per dial: dials are rare, and a rotated store is read again.
        let check = tls.hostname_verification.then(|| host.to_string());
        let config = roost_tls::client_config(&tls.settings, check).map_err(io::Error::other)?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, sock))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let (rd, wr) = tokio::io::split(stream);
        Ok((Box::new(rd), Box::new(wr)))
    }

    /// Takes a connection from a member: TLS when quorum TLS is on, plain where allowed.
    pub async fn accept(&self, sock: TcpStream) -> io::Result<Accepted> {
        let Some(tls) = &self.tls else {
            let (rd, wr) = sock.into_split();
            return Ok(Accepted { reader: Box::new(rd), writer: Box::new(wr), certificate: None });
        };
        let remote = sock.peer_addr().ok();
        let mut first = [0u8; 1];
        let speaks_tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, sock.peek(&mut first)).await {
            Ok(Ok(1)) => first[0] == TLS_HANDSHAKE_RECORD,
            _ => return Err(self.refuse(io::Error::new(io::ErrorKind::TimedOut, "no first byte in time"))),
        };
        if !speaks_tls {
            if !self.accept_plain {
                tracing::warn!(?remote, "a plain connection to the peer port refused: sslQuorum requires TLS");
                return Err(self.refuse(io::Error::new(io::ErrorKind::PermissionDenied, "TLS required")));
            }
            self.plain_accepted.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(?remote, "an unauthenticated plain peer connection accepted (portUnification)");
            let (rd, wr) = sock.into_split();
            return Ok(Accepted { reader: Box::new(rd), writer: Box::new(wr), certificate: None });
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.current());
        let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::warn!(?remote, error = %e, "peer TLS handshake failed");
                return Err(self.refuse(e));
            }
            Err(_) => return Err(self.refuse(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))),
        };
        let certificate =
            stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.clone().into_owned());
        let (rd, wr) = tokio::io::split(stream);
        Ok(Accepted { reader: Box::new(rd), writer: Box::new(wr), certificate })
    }

    /// Whether a connection may act as member `from`, whose configured address is `from_addr`:
    /// over TLS with host name verification, its certificate must name that member's host.
    pub fn authorize(
        &self,
        certificate: Option<&CertificateDer<'_>>,
        from: NodeId,
        from_addr: Option<&str>,
    ) -> Result<(), String> {
        let Some(tls) = &self.tls else {
            return Ok(());
        };
        let Some(cert) = certificate else {
            // Only `portUnification` lets a connection in without TLS.
            return Ok(());
        };
        if !tls.hostname_verification {
            return Ok(());
        }
        let Some(addr) = from_addr else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(format!("member {from} is not in this member's configuration"));
        };
        match roost_tls::cert_matches_name(cert, host_of(addr)) {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(format!("the certificate does not name {} (member {from})", host_of(addr)))
            }
            Err(e) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(format!("unreadable certificate: {e}"))
            }
        }
    }

    fn refuse(&self, e: io::Error) -> io::Error {
        self.refused.fetch_add(1, Ordering::Relaxed);
        e
    }
}

/// The host part of `host:port` or `[v6]:port`.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(host_of("10.0.0.1:2888"), "10.0.0.1");
        assert_eq!(host_of("[::1]:2888"), "::1");
        assert_eq!(host_of("zk1.example.org:2888"), "zk1.example.org");
    }
}
