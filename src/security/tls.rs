//! TLS on Roost's sockets: ZooKeeper's store settings turned into a rustls context, the accept
//! path with its timeout, port unification, and the reload of rotated certificate files.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use roost_tls::{ClientAuth, ReloadingServerConfig, StoreSpec, TlsSettings};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::SecurityError;
use crate::config::{StoreConfig, TlsConfig};

/// The first byte of a TLS record carrying a handshake; a ZooKeeper frame starts with the high
/// byte of a length below 1 MiB (0) and a four-letter word with a lower-case letter.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// How often certificate files are checked for changes (ZooKeeper watches the directory).
const RELOAD_POLL: Duration = Duration::from_secs(1);

/// Reads a `passwordPath` file: its content without a trailing line break (`SecretUtils.readSecret`).
fn read_password_file(path: &Path) -> Result<String, SecurityError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecurityError::Read { path: path.into(), source })?;
    Ok(text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_string())
}

fn store_spec(store: &StoreConfig) -> Result<StoreSpec, SecurityError> {
    let password = match (&store.password_path, &store.password) {
        (Some(path), _) => Some(read_password_file(path)?),
        (None, Some(secret)) => Some(secret.expose().to_string()),
        (None, None) => None,
    };
    Ok(StoreSpec { location: store.location.clone(), password, store_type: store.store_type.clone() })
}

/// Builds the TLS settings of one context; `what` names it in errors ("the secure client port").
/// `peer_names`: for the peer port, the member hosts a client certificate must match.
pub fn settings(
    cfg: &TlsConfig,
    what: &'static str,
    peer_names: Option<Vec<String>>,
) -> Result<TlsSettings, SecurityError> {
    let key_store = cfg.key_store.as_ref().ok_or(SecurityError::Missing { what, key: "a keyStore.location" })?;
    let client_auth = match cfg.client_auth.as_deref() {
        None | Some("") => ClientAuth::Need,
        Some(text) => text.parse().map_err(|source| SecurityError::Tls { what, source })?,
    };
    if cfg.trust_store.is_none() && client_auth != ClientAuth::None {
        tracing::warn!("{what}: no trust store is configured, so every client certificate will be refused");
    }
    Ok(TlsSettings {
        key_store: store_spec(key_store)?,
        trust_store: cfg.trust_store.as_ref().map(store_spec).transpose()?,
        client_auth,
        protocols: cfg.protocols.clone(),
        cipher_suites: cfg.cipher_suites.clone(),
        expected_peer_names: peer_names,
    })
}

/// Completes a TLS handshake as the server.
/// Generic over the stream so the quorum port's simulated sockets (feature `sim`) fit too.
pub async fn accept<S>(config: &ReloadingServerConfig, sock: S, timeout: Duration) -> std::io::Result<TlsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(config.current());
    match tokio::time::timeout(timeout, acceptor.accept(sock)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")),
    }
}

/// Whether a connection on a unified port opens with TLS: the first byte is a handshake record.
/// Waits at most `timeout` for that byte; `None` when the peer closed or sent nothing in time.
pub async fn starts_with_tls(sock: &TcpStream, timeout: Duration) -> Option<bool> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(timeout, sock.peek(&mut first)).await {
        Ok(Ok(1)) => Some(is_handshake_record(first[0])),
        _ => None,
    }
}

/// Whether the first byte of a connection opens a TLS handshake record.
pub fn is_handshake_record(first: u8) -> bool {
    first == TLS_HANDSHAKE_RECORD
}

/// The subject of the verified client certificate, rendered as Java renders it.
pub fn peer_subject(conn: &roost_tls::rustls::ServerConnection) -> Option<String> {
    let leaf = conn.peer_certificates()?.first()?;
    match roost_tls::java_subject_dn(leaf) {
        Ok(dn) => Some(dn),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the subject of a verified client certificate");
            None
        }
    }
}

/// Re-reads the certificate files of `config` when they change, for as long as the task runs.
/// New connections get the new certificates; established ones keep theirs.
pub async fn reload_forever(config: Arc<ReloadingServerConfig>, what: &'static str) {
    let mut tick = tokio::time::interval(RELOAD_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let config = config.clone();
        match tokio::task::spawn_blocking(move || config.reload_if_changed()).await {
            Ok(Ok(true)) => {
                failing = false;
                tracing::info!("{what}: certificate files changed; new connections use them");
            }
            Ok(Ok(false)) => failing = false,
            Ok(Err(e)) => {
                // Logged once per failure streak; the previous certificates stay in use.
                if !failing {
                    tracing::warn!(error = %e, "{what}: cannot reload certificate files; keeping the old ones");
                }
                failing = true;
            }
            Err(_) => return,
        }
    }
}
