//! The native client port: connections, handshake, request dispatch, four-letter words.
//!
//! Each accepted socket is served by [`client::serve`]: a reader that decodes
//! requests and queues them in arrival order, a responder that answers them in
//! that order, and a writer that drains the connection's outbound queue (replies
//! and watch events) to the socket.

pub mod client;
pub mod cmd;
pub mod connection;
pub mod flow;
pub mod fourlw;
pub mod handshake;
pub mod outbound;
pub mod readonly;
pub mod stats;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::consensus::Consensus;
use crate::db::Db;
use crate::security::{self, Security};
use crate::session::{SessionIdGenerator, SessionTracker};
use crate::watch::ConnId;
use stats::{ConnStats, ServerStats};

/// Everything a connection needs, shared by all connections of one server.
pub struct ServerContext {
    pub config: Arc<Config>,
    pub db: Arc<Db>,
    pub consensus: Arc<Consensus>,
    pub sessions: Arc<SessionTracker>,
    pub ids: SessionIdGenerator,
    pub stats: ServerStats,
    /// Read-only mode (`readonlymode.enabled`): whether it is on, and its local sessions.
    pub read_only: readonly::ReadOnlyMode,
    /// Per-connection counters for `cons`, `stat` and `mntr`.
    pub conn_stats: RwLock<HashMap<ConnId, Arc<ConnStats>>>,
    /// The bounds every connection runs under (see [`flow`]).
    pub limits: flow::Limits,
    /// Requests outstanding on the whole server (`globalOutstandingLimit`).
    pub outstanding: Arc<flow::GlobalOutstanding>,
    /// TLS contexts, SASL and the audit log.
    pub security: Arc<Security>,
    next_conn: AtomicU64,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl ServerContext {
    pub fn new(
        config: Arc<Config>,
        db: Arc<Db>,
        consensus: Arc<Consensus>,
        sessions: Arc<SessionTracker>,
        security: Arc<Security>,
    ) -> Self {
        let ids = SessionIdGenerator::new(config.my_id);
        let read_only = readonly::ReadOnlyMode::new(config.read_only_enabled);
        let limits = flow::Limits::from_config(&config);
        let outstanding = Arc::new(flow::GlobalOutstanding::new(config.global_outstanding_limit as usize));
        ServerContext {
            limits,
            outstanding,
            read_only,
            config,
            db,
            consensus,
            sessions,
            security,
            ids,
            stats: ServerStats::default(),
            conn_stats: RwLock::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            per_ip: Mutex::new(HashMap::new()),
        }
    }

    fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a new connection from `ip`; false when `maxClientCnxns` is reached.
    fn admit(&self, ip: IpAddr) -> bool {
        let limit = self.config.max_client_cnxns as usize;
        let mut per_ip = self.per_ip.lock();
        let n = per_ip.entry(ip).or_insert(0);
        if limit > 0 && *n >= limit {
            return false;
        }
        *n += 1;
        true
    }

    fn release(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip.lock();
        if let Some(n) = per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
    }
}

/// Whether a listener is the plain client port (TLS only with port unification) or the secure one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    Plain,
    Secure,
}

/// Accepts client connections until the listener fails.
pub async fn run(listener: TcpListener, ctx: Arc<ServerContext>, kind: PortKind) -> std::io::Result<()> {
    info!(addr = %listener.local_addr()?, ?kind, "client port listening");
    let _monitor = (!ctx.config.is_standalone()).then(|| AbortOnDrop(tokio::spawn(readonly::run_monitor(ctx.clone()))));
    loop {
        let (sock, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Running out of file descriptors is transient; keep serving the others.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if !ctx.admit(remote.ip()) {
            warn!(%remote, limit = ctx.config.max_client_cnxns, "too many connections from this address; closing");
            drop(sock);
            continue;
        }
        let _ = sock.set_nodelay(true);
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let id = ctx.next_conn_id();
            serve_one(&ctx, id, sock, remote, kind).await;
            ctx.release(remote.ip());
        });
    }
}

/// Stops a background task when the accept loop ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn serve_one(
    ctx: &Arc<ServerContext>,
    id: ConnId,
    sock: tokio::net::TcpStream,
    remote: SocketAddr,
    kind: PortKind,
) {
    let tls = match (kind, &ctx.security.client_tls) {
        (PortKind::Secure, Some(tls)) => Some(tls.clone()),
        (PortKind::Plain, Some(tls)) if ctx.security.port_unification => {
            match security::tls::starts_with_tls(&sock, ctx.limits.handshake_timeout).await {
                None => return,
                Some(true) => Some(tls.clone()),
                Some(false) => None,
            }
        }
        _ => None,
    };
    let stats = Arc::new(ConnStats::new(remote));
    ctx.conn_stats.write().insert(id, stats.clone());
    let mut identities = vec![crate::proto::types::Id::new("ip", remote.ip().to_string())];
    let served = match tls {
        None => {
            let (rd, wr) = sock.into_split();
            client::serve(ctx.clone(), id, rd, wr, remote, stats, identities).await
        }
        // Boxed: the TLS handshake's state is large and needed only until it is done, and the
        // connection's task lives as long as the session (100,000 of them, on some servers).
        Some(tls) => match Box::pin(security::tls::accept(&tls, sock, ctx.limits.handshake_timeout)).await {
            Err(e) => {
                // ZooKeeper counts a failed handshake as an authentication failure and closes.
                info!(conn = id, %remote, error = %e, "TLS handshake failed; closing");
                Ok(())
            }
            Ok(stream) => {
                if let Some(subject) = security::tls::peer_subject(stream.get_ref().1) {
                    identities.extend(ctx.security.x509_identities(&subject));
                }
                let (rd, wr) = tokio::io::split(stream);
                client::serve(ctx.clone(), id, rd, wr, remote, stats, identities).await
            }
        },
    };
    if let Err(e) = served {
        debug!(conn = id, %remote, error = %e, "connection closed");
    }
    ctx.conn_stats.write().remove(&id);
    ctx.db.unregister_conn(id);
}
