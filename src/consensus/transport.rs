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

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::net::TcpStream;
use roost_tls::rustls::pki_types::ServerName;
use roost_tls::{CertificateDer, ReloadingServerConfig, TlsSettings};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::types::NodeId;

/// The reading half of a peer connection, plain or TLS.
pub type PeerReader = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a peer connection, plain or TLS.
pub type PeerWriter = Box<dyn AsyncWrite + Send + Unpin>;

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

/// Quorum SASL (`quorum.auth.enableSasl`): DIGEST-MD5 between members, as ZooKeeper's
/// `QuorumAuth` with the JAAS `QuorumLearner` and `QuorumServer` sections.
pub struct PeerSasl {
    /// `username`/`password` this member presents when it dials (`QuorumLearner`).
    pub learner: Option<(String, String)>,
    /// `learnerRequireSasl`: give up a dial whose authentication fails.
    pub learner_required: bool,
    /// `user_<name>` entries this member accepts (`QuorumServer`).
    pub users: Arc<BTreeMap<String, String>>,
    /// `serverRequireSasl`: refuse members that do not authenticate (else let in, logged).
    pub server_required: bool,
}

/// DIGEST-MD5's protocol and server name between ZooKeeper members.
const QUORUM_PROTOCOL: &str = "zookeeper-quorum";
const QUORUM_SERVER_NAME: &str = "zk-quorum-sasl-md5";
/// First 8 bytes of every quorum-auth frame's payload (a peer's `Hello` can never start so).
const AUTH_MAGIC: u64 = 0xA0DB_CAFE_CAFE_1234;
/// Exchange status: in progress, success, error (ZooKeeper's `QuorumAuth.Status`).
const AUTH_IN_PROGRESS: i32 = 0;
const AUTH_SUCCESS: i32 = 1;
const AUTH_ERROR: i32 = -1;
/// The largest quorum-auth frame (DIGEST-MD5 tokens are a few hundred bytes).
const MAX_AUTH_FRAME: usize = 8 + 4 + roost_sasl::MAX_TOKEN_LEN;

/// How this member opens and accepts peer connections.
pub struct PeerTransport {
    tls: Option<Tls>,
    sasl: Option<PeerSasl>,
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
            sasl: None,
            dial_tls: false,
            accept_plain: true,
            plain_accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// `tls`: the quorum stores when `sslQuorum` or `portUnification` is set; `ssl_quorum`: dial
    /// with TLS; `port_unification`: accept plain connections too; `sasl`: quorum SASL.
    pub fn secured(
        tls: Option<PeerTls>,
        ssl_quorum: bool,
        port_unification: bool,
        sasl: Option<PeerSasl>,
    ) -> Result<Arc<PeerTransport>, roost_tls::TlsError> {
        let tls = match tls {
            Some(tls) => {
                let server = Arc::new(ReloadingServerConfig::new(tls.settings.clone())?);
                // A client context built now: bad stores stop the start rather than the first dial.
                roost_tls::client_config(&tls.settings, None)?;
                Some(Tls { server, settings: tls.settings, hostname_verification: tls.hostname_verification })
            }
            None => None,
        };
        Ok(Arc::new(PeerTransport {
            tls,
            sasl,
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

    /// Dials a member at `addr` (`host:port`): TLS if configured, then quorum SASL if configured.
    pub async fn connect(&self, sock: TcpStream, addr: &str) -> io::Result<(PeerReader, PeerWriter)> {
        let (mut rd, mut wr) = self.connect_stream(sock, addr).await?;
        if let Some(sasl) = &self.sasl {
            if let Some((user, password)) = &sasl.learner {
                let exchange = learner_auth(&mut rd, &mut wr, user, password);
                let result = match tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange).await {
                    Ok(result) => result,
                    Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "quorum SASL timed out")),
                };
                if let Err(e) = result {
                    if sasl.learner_required {
                        return Err(e);
                    }
                    tracing::warn!(peer = %addr, error = %e, "quorum SASL failed; going on (learnerRequireSasl=false)");
                }
            }
        }
        Ok((rd, wr))
    }

    async fn connect_stream(&self, sock: TcpStream, addr: &str) -> io::Result<(PeerReader, PeerWriter)> {
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

    /// Takes a connection from a member: TLS when quorum TLS is on, plain where allowed, then
    /// quorum SASL when it is on.
    pub async fn accept(&self, sock: TcpStream) -> io::Result<Accepted> {
        let remote = sock.peer_addr().ok();
        let accepted = self.accept_stream(sock).await?;
        let Some(sasl) = &self.sasl else { return Ok(accepted) };
        let Accepted { reader, mut writer, certificate } = accepted;
        let exchange = server_auth(reader, &mut writer, &sasl.users);
        let (reader, outcome) = match tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange).await {
            Ok(result) => result.map_err(|e| self.refuse(e))?,
            Err(_) => return Err(self.refuse(io::Error::new(io::ErrorKind::TimedOut, "quorum SASL timed out"))),
        };
        match outcome {
            ServerAuth::Authenticated(user) => tracing::debug!(?remote, %user, "peer authenticated (quorum SASL)"),
            ServerAuth::Failed(why) => {
                tracing::warn!(?remote, "quorum SASL refused a peer: {why}");
                return Err(self.refuse(io::Error::new(io::ErrorKind::PermissionDenied, why)));
            }
            ServerAuth::NotAttempted if sasl.server_required => {
                tracing::warn!(?remote, "a peer without quorum SASL refused (serverRequireSasl)");
                return Err(self.refuse(io::Error::new(io::ErrorKind::PermissionDenied, "quorum SASL required")));
            }
            ServerAuth::NotAttempted => {
                self.plain_accepted.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(?remote, "a peer without quorum SASL let in (serverRequireSasl=false)");
            }
        }
        Ok(Accepted { reader, writer, certificate })
    }

    async fn accept_stream(&self, mut sock: TcpStream) -> io::Result<Accepted> {
        let Some(tls) = &self.tls else {
            let (rd, wr) = sock.into_split();
            return Ok(Accepted { reader: Box::new(rd), writer: Box::new(wr), certificate: None });
        };
        let remote = sock.peer_addr().ok();
        let Some(first) = super::net::peek_first_byte(&mut sock, HANDSHAKE_TIMEOUT).await else {
            return Err(self.refuse(io::Error::new(io::ErrorKind::TimedOut, "no first byte in time")));
        };
        let speaks_tls = crate::security::tls::is_handshake_record(first);
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
        let stream = match crate::security::tls::accept(&tls.server, sock, HANDSHAKE_TIMEOUT).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(?remote, error = %e, "peer TLS handshake failed");
                return Err(self.refuse(e));
            }
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

/// Writes one quorum-auth frame: length, magic, status, token.
async fn write_auth(wr: &mut PeerWriter, status: i32, token: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(16 + token.len());
    frame.extend_from_slice(&((8 + 4 + token.len()) as u32).to_be_bytes());
    frame.extend_from_slice(&AUTH_MAGIC.to_be_bytes());
    frame.extend_from_slice(&status.to_be_bytes());
    frame.extend_from_slice(token);
    wr.write_all(&frame).await?;
    wr.flush().await
}

/// Reads one quorum-auth frame's status and token.
async fn read_auth(rd: &mut PeerReader) -> io::Result<(i32, Vec<u8>)> {
    let len = rd.read_u32().await? as usize;
    if !(12..=MAX_AUTH_FRAME).contains(&len) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad quorum auth frame length"));
    }
    let mut payload = vec![0u8; len];
    rd.read_exact(&mut payload).await?;
    let magic = payload[..8].try_into().map(u64::from_be_bytes).unwrap_or(0);
    if magic != AUTH_MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a quorum auth frame"));
    }
    let status = payload[8..12].try_into().map(i32::from_be_bytes).unwrap_or(AUTH_ERROR);
    Ok((status, payload.split_off(12)))
}

/// The dialling side of quorum SASL (DIGEST-MD5 as `user`).
async fn learner_auth(rd: &mut PeerReader, wr: &mut PeerWriter, user: &str, password: &str) -> io::Result<()> {
    let denied = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
    let mut client = roost_sasl::DigestMd5Client::new(user, password, QUORUM_PROTOCOL, QUORUM_SERVER_NAME);
    write_auth(wr, AUTH_IN_PROGRESS, &[]).await?;
    loop {
        let (status, token) = read_auth(rd).await?;
        match status {
            AUTH_IN_PROGRESS => {
                let response = client.step(&token).map_err(|e| denied(e.to_string()))?;
                write_auth(wr, AUTH_IN_PROGRESS, &response).await?;
            }
            AUTH_SUCCESS => return client.verify_rspauth(&token).map_err(|e| denied(e.to_string())),
            _ => return Err(denied("the member refused our quorum credentials".into())),
        }
    }
}

enum ServerAuth {
    Authenticated(String),
    Failed(String),
    NotAttempted,
}

/// The accepting side of quorum SASL. A connection that does not open with an auth frame is
/// handed back with its first bytes put back in front of it.
async fn server_auth(
    mut rd: PeerReader,
    wr: &mut PeerWriter,
    users: &Arc<BTreeMap<String, String>>,
) -> io::Result<(PeerReader, ServerAuth)> {
    let mut head = [0u8; 12];
    rd.read_exact(&mut head).await?;
    if head[4..12] != AUTH_MAGIC.to_be_bytes() {
        let reader: PeerReader = Box::new(Prefixed { prefix: head.to_vec(), pos: 0, inner: rd });
        return Ok((reader, ServerAuth::NotAttempted));
    }
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if !(12..=MAX_AUTH_FRAME).contains(&len) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad quorum auth frame length"));
    }
    let mut rest = vec![0u8; len - 8];
    rd.read_exact(&mut rest).await?;
    let mut token = rest.split_off(4);
    let mut server = roost_sasl::DigestMd5Server::new(QUORUM_PROTOCOL, QUORUM_SERVER_NAME, users.clone());
    loop {
        match server.step(&token) {
            Ok(roost_sasl::Step::Challenge(challenge)) => {
                write_auth(wr, AUTH_IN_PROGRESS, &challenge).await?;
                let (status, next) = read_auth(&mut rd).await?;
                if status != AUTH_IN_PROGRESS {
                    return Ok((rd, ServerAuth::Failed("the peer gave up".into())));
                }
                token = next;
            }
            Ok(roost_sasl::Step::Success { token, authentication_id }) => {
                write_auth(wr, AUTH_SUCCESS, token.as_deref().unwrap_or_default()).await?;
                return Ok((rd, ServerAuth::Authenticated(authentication_id)));
            }
            Err(e) => {
                let _ = write_auth(wr, AUTH_ERROR, &[]).await;
                return Ok((rd, ServerAuth::Failed(e.to_string())));
            }
        }
    }
}

/// A reader that first returns bytes already read off the connection.
struct Prefixed {
    prefix: Vec<u8>,
    pos: usize,
    inner: PeerReader,
}

impl AsyncRead for Prefixed {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
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
