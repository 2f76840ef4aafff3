//! Assembles one Roost node from its configuration: storage and consensus, the
//! shared state, the background tasks, the client port and the HTTP port.

mod consensus_runtime;
mod http_backend;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::info;

use self::consensus_runtime::ConsensusRuntime;
use crate::config::{Config, PeerRole};
use crate::consensus::transport::{PeerTls, PeerTransport};
use crate::consensus::{Consensus, ConsensusConfig, ConsensusError, Member};
use crate::db::Db;
use crate::reconfig::{follow, Reconfigurer};
use crate::server::{self, ServerContext};
use crate::session::owners::LeaderSessions;
use crate::session::{expiry, SessionTracker};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: std::path::PathBuf, source: std::io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("consensus: {0}")]
    Consensus(#[from] ConsensusError),
    #[error("security settings")]
    Security(#[from] crate::security::SecurityError),
    #[error("pending restore")]
    Seed(#[from] crate::backup::seed::SeedError),
    #[error("cannot start the consensus thread: {0}")]
    ConsensusThread(std::io::Error),
}

/// Consensus settings from the node configuration: a single voter for a standalone
/// server, otherwise every `server.N` line as a member (observers as learners), with the
/// quorum port of this server's own line as the raft listener.
fn consensus_config(config: &Config) -> Result<ConsensusConfig, crate::security::SecurityError> {
    let mut cfg = ConsensusConfig::standalone(config.my_id, config.data_log_dir.join("raft"));
    cfg.snapshot_every = config.snap_count;
    cfg.log_keep_after_snapshot = config.commit_log_count;
    if config.is_standalone() {
        return Ok(cfg);
    }
    cfg.transport = peer_transport(config)?;
    cfg.members = members(config);
    if let Some(me) = config.my_server() {
        cfg.raft_addr = me.quorum_addr().to_string();
        cfg.listen_addr = Some(cfg.raft_addr.clone());
    }
    cfg.heartbeat_ms = ENSEMBLE_HEARTBEAT_MS;
    cfg.election_timeout_min_ms = ENSEMBLE_ELECTION_MIN_MS;
    cfg.election_timeout_max_ms = ENSEMBLE_ELECTION_MAX_MS;
    Ok(cfg)
}

/// The configured `server.N` lines as raft members: participants vote, observers are learners.
pub fn members(config: &Config) -> Vec<Member> {
    config
        .servers
        .iter()
        .map(|s| Member { id: s.id, raft_addr: s.quorum_addr().to_string(), voter: s.role == PeerRole::Participant })
        .collect()
}

/// HTTPS on the HTTP port: ZooKeeper's AdminServer uses the `ssl.quorum.*` stores; a server
/// without them (standalone) uses the client port's `ssl.*` stores.
fn https_config(config: &Config) -> Result<Option<crate::http::Https>, crate::security::SecurityError> {
    let security = &config.security;
    if !security.admin_https() {
        return Ok(None);
    }
    const WHAT: &str = "HTTPS on the HTTP port";
    let stores = if security.quorum_tls.key_store.is_some() { &security.quorum_tls } else { &security.client_tls };
    let mut settings = crate::security::tls::settings(stores, WHAT, None)?;
    settings.client_auth =
        if security.admin_need_client_auth { roost_tls::ClientAuth::Need } else { roost_tls::ClientAuth::None };
    let config = roost_tls::ReloadingServerConfig::new(settings)
        .map_err(|source| crate::security::SecurityError::Tls { what: WHAT, source })?;
    Ok(Some(crate::http::Https { config: Arc::new(config), force: security.admin_force_https }))
}

/// The peer port's transport: mutual TLS with the `ssl.quorum.*` stores when `sslQuorum` or
/// `portUnification` is set, quorum SASL when `quorum.auth.enableSasl` is, plain TCP otherwise.
fn peer_transport(config: &Config) -> Result<Arc<PeerTransport>, crate::security::SecurityError> {
    let security = &config.security;
    let sasl = match &security.quorum_sasl {
        Some(quorum) => Some(crate::security::sasl::quorum(&security.sasl, quorum)?),
        None => None,
    };
    let tls_on = security.ssl_quorum || security.quorum_port_unification;
    if !tls_on && sasl.is_none() {
        return Ok(PeerTransport::plain());
    }
    const WHAT: &str = "the peer port (sslQuorum)";
    let tls = if tls_on {
        let mut settings = crate::security::tls::settings(&security.quorum_tls, WHAT, None)?;
        // Members always authenticate each other: a peer without a certificate is never let in over TLS.
        settings.client_auth = roost_tls::ClientAuth::Need;
        Some(PeerTls { settings, hostname_verification: security.quorum_tls.hostname_verification })
    } else {
        None
    };
    PeerTransport::secured(tls, security.ssl_quorum, security.quorum_port_unification, sasl)
        .map_err(|source| crate::security::SecurityError::Tls { what: WHAT, source })
}

/// Raft timing of an ensemble. ZooKeeper detects a dead leader after about
/// syncLimit*tickTime; these detect it within an election timeout while staying well
/// above a loaded machine's scheduling and fsync hiccups.
const ENSEMBLE_HEARTBEAT_MS: u64 = 50;
const ENSEMBLE_ELECTION_MIN_MS: u64 = 250;
const ENSEMBLE_ELECTION_MAX_MS: u64 = 500;

/// How long a member holding a pending restore waits for its ensemble to form.
const SEED_READY_TIMEOUT: Duration = Duration::from_secs(600);

/// Pending connections the client port queues. Linux's default of 128 overflowed when
/// 2,000 sessions connected at once, costing them a 1 s SYN retry.
const CLIENT_BACKLOG: u32 = 4096;

/// Binds a TCP listener with an explicit accept backlog.
async fn listen(addr: &str, backlog: u32) -> std::io::Result<TcpListener> {
    let mut last_err = None;
    for sock_addr in tokio::net::lookup_host(addr).await? {
        let socket =
            if sock_addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        match socket.bind(sock_addr).and_then(|()| socket.listen(backlog)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address to bind")))
}

/// The client port's accept loop, which a reconfig may move to another address.
struct ClientPort {
    ctx: Arc<ServerContext>,
    /// Plain, or TLS only when the server has no plain client port.
    kind: server::PortKind,
    /// The address it listens on and the accept loop's task.
    current: tokio::sync::Mutex<(String, tokio::task::JoinHandle<()>)>,
}

impl ClientPort {
    fn new(ctx: Arc<ServerContext>, addr: String, listener: TcpListener, kind: server::PortKind) -> Arc<ClientPort> {
        let task = Self::serve(ctx.clone(), listener, kind);
        Arc::new(ClientPort { ctx, kind, current: tokio::sync::Mutex::new((addr, task)) })
    }

    fn serve(ctx: Arc<ServerContext>, listener: TcpListener, kind: server::PortKind) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if let Err(e) = server::run(listener, ctx, kind).await {
                tracing::error!(error = %e, "client port failed");
            }
        })
    }

    /// Listens on `addr` instead; connections accepted before stay open. The old listener
    /// closes first (the new address may overlap it), and comes back if `addr` cannot be bound.
    async fn rebind(&self, addr: String) -> std::io::Result<()> {
        let mut current = self.current.lock().await;
        if current.0 == addr {
            return Ok(());
        }
        current.1.abort();
        let _ = (&mut current.1).await;
        match listen(&addr, CLIENT_BACKLOG).await {
            Ok(listener) => {
                info!(from = %current.0, to = %addr, "client port moved");
                *current = (addr, Self::serve(self.ctx.clone(), listener, self.kind));
                Ok(())
            }
            Err(e) => {
                let old = listen(&current.0, CLIENT_BACKLOG).await?;
                current.1 = Self::serve(self.ctx.clone(), old, self.kind);
                Err(e)
            }
        }
    }

    async fn stop(&self) {
        self.current.lock().await.1.abort();
    }
}

/// A running node.
pub struct Node {
    pub ctx: Arc<ServerContext>,
    pub client_addr: std::net::SocketAddr,
    client_port: Arc<ClientPort>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Last, so that it stops after everything that uses it.
    consensus_runtime: ConsensusRuntime,
}

impl Node {
    /// Opens storage, replays the log, binds the client port and starts serving.
    pub async fn start(config: Config) -> Result<Node, StartError> {
        let config = Arc::new(config);
        for dir in [&config.data_dir, &config.data_log_dir] {
            std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir { path: dir.clone(), source })?;
        }
        // Stores and the JAAS file are read before anything listens: a bad one stops the start.
        let security = Arc::new(crate::security::Security::load(&config.security, &config.data_log_dir)?);
        let db = Arc::new(Db::new());
        if let Some(log) = &security.audit {
            db.set_audit(log.clone());
            log.log_server("serverStart", None, None, crate::security::audit::AuditResult::Success);
        }
        let consensus_cfg = consensus_config(&config)?;
        let ensemble = consensus_cfg.is_ensemble();
        let consensus_runtime = ConsensusRuntime::start().map_err(StartError::ConsensusThread)?;
        let started = consensus_runtime.run(Consensus::start(consensus_cfg, db.clone())).await;
        let consensus = Arc::new(started.map_err(|e| ConsensusError::Fatal(Box::new(e)))??);
        if ensemble {
            // The client port comes up now; handshakes wait until this member has caught
            // up with the leader (see `Consensus::wait_ready`).
            info!(id = config.my_id, members = config.servers.len(), "ensemble member started; joining");
        } else {
            info!(zxid = format_args!("0x{:x}", db.last_zxid()), nodes = db.read(|t| t.node_count()), "state restored");
        }

        let sessions = Arc::new(SessionTracker::new());
        expiry::track_all(&db, &sessions);
        consensus.set_session_sink({
            let (db, sessions) = (db.clone(), sessions.clone());
            Arc::new(move |ids: &[i64]| expiry::touch_reported(&db, &sessions, ids))
        });
        if ensemble {
            // A standalone server is the owner of every session: nothing to track.
            consensus.set_session_ownership(Arc::new(LeaderSessions::new(db.clone(), sessions.clone())));
        }

        // The HTTP port is bound first: once the client port accepts connections, the start
        // can no longer fail (scripts and tests wait for the client port).
        let http_listener = if config.http_enabled {
            let addr = config.http_listen_addr();
            Some(TcpListener::bind(&addr).await.map_err(|source| StartError::Listen { addr, source })?)
        } else {
            None
        };
        let secure_addr = config.security.secure_client_port.map(|port| {
            let host = config.security.secure_client_bind.as_deref().unwrap_or(&config.bind);
            crate::config::HostPort { host: host.to_string(), port }.to_string()
        });
        // With only `secureClientPort` configured, the TLS port is the client port.
        let (addr, kind, secure_addr) = match secure_addr {
            Some(secure) if !config.client_port_plain => (secure, server::PortKind::Secure, None),
            secure => (config.client_listen_addr(), server::PortKind::Plain, secure),
        };
        let listener =
            listen(&addr, CLIENT_BACKLOG).await.map_err(|source| StartError::Listen { addr: addr.clone(), source })?;
        let client_addr = listener.local_addr().map_err(|source| StartError::Listen { addr: addr.clone(), source })?;
        let secure_listener = match secure_addr {
            Some(addr) => {
                Some(listen(&addr, CLIENT_BACKLOG).await.map_err(|source| StartError::Listen { addr, source })?)
            }
            None => None,
        };

        let reconfigurer = ensemble.then(|| {
            let r = Reconfigurer::new(db.clone(), &consensus, config.clone());
            consensus.set_reconfig_handler(r.handler());
            r
        });
        let ctx = Arc::new(ServerContext::new(
            config.clone(),
            db.clone(),
            consensus.clone(),
            sessions.clone(),
            security.clone(),
        ));
        let tick = Duration::from_millis(u64::from(config.tick_time_ms / 2).max(10));
        let reap_every = Duration::from_millis(config.container_check_interval_ms.max(100));
        // Session timers run beside consensus: late, they would expire sessions whose
        // clients are alive.
        let mut tasks = vec![
            consensus_runtime.spawn(expiry::run_session_expiry(sessions.clone(), consensus.clone(), db.clone(), tick)),
            consensus_runtime.spawn(expiry::run_session_reporter(sessions, consensus.clone(), tick)),
            consensus_runtime.spawn(expiry::run_reaper(db.clone(), consensus.clone(), reap_every)),
        ];
        // A backup seeded into this data directory (`roost restore --to`) is restored before
        // any client is accepted here.
        if crate::backup::seed::apply_pending(&config.data_dir, &consensus, SEED_READY_TIMEOUT).await?.is_some() {
            expiry::track_all(&ctx.db, &ctx.sessions);
        }
        let client_port = ClientPort::new(ctx.clone(), addr, listener, kind);
        if let Some(listener) = secure_listener {
            let ctx = ctx.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = server::run(listener, ctx, server::PortKind::Secure).await {
                    tracing::error!(error = %e, "secure client port failed");
                }
            }));
        }
        if let Some(tls) = &security.client_tls {
            tasks.push(tokio::spawn(crate::security::tls::reload_forever(tls.clone(), "the client port's TLS")));
        }
        if let Some(r) = reconfigurer {
            tasks.push(consensus_runtime.spawn(r.reconcile_forever()));
            let port = client_port.clone();
            let rebind: follow::ClientRebind = Arc::new(move |addr| {
                let port = port.clone();
                Box::pin(async move { port.rebind(addr).await })
            });
            tasks.push(tokio::spawn(follow::follow_forever(db, Arc::downgrade(&consensus), config.my_id, rebind)));
        }
        if let Some(listener) = http_listener {
            let https = https_config(&config)?;
            if let Some(https) = &https {
                tasks.push(tokio::spawn(crate::security::tls::reload_forever(https.config.clone(), "HTTPS")));
            }
            let opts = crate::http::HttpOptions::from_config(&config);
            info!("{}", opts.protection_summary());
            let router = crate::http::router(Arc::new(http_backend::NodeBackend::new(ctx.clone())), opts);
            if let Ok(addr) = listener.local_addr() {
                info!(%addr, "HTTP port listening (navigator UI at /ui/, REST at /api/v1)");
            }
            tasks.push(tokio::spawn(async move {
                let limits = crate::http::ConnLimits::default();
                if let Err(e) = crate::http::serve_with_tls(listener, router, limits, https).await {
                    tracing::error!(error = %e, "HTTP port failed");
                }
            }));
        }
        Ok(Node { ctx, client_addr, client_port, tasks, consensus_runtime })
    }

    /// Stops serving and shuts consensus down cleanly.
    pub async fn shutdown(self) {
        if let Some(log) = &self.ctx.security.audit {
            log.log_server("serverStop", None, None, crate::security::audit::AuditResult::Invoked);
        }
        for t in &self.tasks {
            t.abort();
        }
        self.client_port.stop().await;
        let consensus = self.ctx.consensus.clone();
        // Shut down where it runs: its snapshot on exit and final fsyncs use that thread.
        if self.consensus_runtime.run(async move { consensus.shutdown().await }).await.is_err() {
            tracing::warn!("consensus shutdown did not finish");
        }
    }
}
