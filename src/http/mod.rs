//! The navigator: the built-in web UI, the REST API (`/api/v1`), ZooKeeper
//! AdminServer-style commands (`/commands/<name>`), Prometheus metrics (`/metrics`)
//! and the WebSocket watch stream (`/api/v1/watch`).
//!
//! Everything here acts as a ZooKeeper client with the caller's identities, through
//! the [`Backend`] trait: nothing bypasses an ACL and every write goes through the
//! replicated log. See `docs` in the OpenAPI spec (`static/openapi.json`) for the API.

pub mod admin;
pub mod admin_auth;
pub mod assets;
pub mod auth;
pub mod backend;
pub mod backup;
pub mod cluster_feed;
pub mod codec;
pub mod error;
pub mod format;
pub mod jobs;
pub mod ops;
pub mod transfer;
pub mod ui;
pub mod ws;
pub mod yaml;
pub mod zk_session;
pub mod znode;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use backend::{
    Backend, BoxFuture, ChangeEvent, ChangeFeed, ClusterInfo, MemberInfo, NodeData, OpenedSession, RestoreReport,
    SearchQuery, SearchResult, SessionInfo, SnapshotImage,
};

/// Settings of the HTTP port.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// Prefix under which everything is served, for reverse proxies: `""` or e.g. `"/zk"`.
    pub base_path: String,
    /// Refuse every mutation (REST writes, multi, UI edits) with 403 and hide edit controls.
    pub read_only: bool,
    /// When set, the port itself requires this token: `Authorization: Bearer <token>` for
    /// API clients, or a login in the UI (stored in the browser session).
    pub login_token: Option<String>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest node data accepted (ZooKeeper's `jute.maxbuffer`); larger writes get 413.
    pub max_data_bytes: usize,
    /// Events a WebSocket client may lag behind before it is disconnected as a slow consumer.
    pub ws_queue: usize,
    /// Recent events kept for `since_zxid` replay.
    pub ring_capacity: usize,
    /// How often the WebSocket stream pings its clients; one silent for two intervals is closed.
    pub ws_ping_interval: Duration,
    /// Most nodes a recursive delete, copy, move or import may touch in one multi.
    pub max_subtree_ops: usize,
    /// When not empty, only requests whose `Host` header names one of these (`name` or
    /// `name:port`, lower case) are served: a page of another site that resolves its own
    /// name to this server (DNS rebinding) gets 403.
    pub allowed_hosts: Vec<String>,
    /// Users who may log in to the port (`user:<digest>`, ZooKeeper's digest format): a
    /// UI or API login with a matching `user:password`, or HTTP Basic auth, opens the port.
    pub users: Vec<String>,
    /// The AdminServer `snapshot` and `restore` commands.
    pub backup: backup::BackupOptions,
    /// Bounds of subtree jobs (operations over more than `max_subtree_ops` nodes).
    pub jobs: jobs::JobLimits,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            base_path: String::new(),
            read_only: false,
            login_token: None,
            max_body_bytes: 8 * 1024 * 1024,
            max_data_bytes: crate::proto::types::DEFAULT_MAX_BUFFER,
            ws_queue: 1024,
            ring_capacity: 10_000,
            ws_ping_interval: Duration::from_secs(20),
            max_subtree_ops: 10_000,
            allowed_hosts: Vec::new(),
            users: Vec::new(),
            backup: backup::BackupOptions::default(),
            jobs: jobs::JobLimits::default(),
        }
    }
}

impl HttpOptions {
    /// The HTTP settings of a server with `config`.
    pub fn from_config(config: &crate::config::Config) -> Self {
        HttpOptions {
            base_path: config.http_base_path.clone(),
            read_only: config.http_read_only,
            login_token: config.http_token.clone(),
            max_data_bytes: config.max_buffer as usize,
            allowed_hosts: config.http_allowed_hosts.clone(),
            users: config.http_users.clone(),
            backup: backup::BackupOptions {
                snapshot_enabled: config.admin_snapshot_enabled,
                restore_enabled: config.admin_restore_enabled,
                rate_limit_interval: config.admin_rate_limit_interval,
            },
            ..HttpOptions::default()
        }
    }

    /// One line for the startup log saying how the port is protected, or that it is not.
    pub fn protection_summary(&self) -> String {
        let mut parts = Vec::new();
        parts.push(match (self.login_token.is_some(), !self.users.is_empty()) {
            (true, true) => "login required (http.token or http.users)",
            (true, false) => "login required (http.token)",
            (false, true) => "login required (http.users)",
            (false, false) => "no login",
        });
        parts.push(if self.read_only { "read-only (http.readOnly)" } else { "read-write" });
        if !self.allowed_hosts.is_empty() {
            parts.push("Host names restricted (http.allowedHosts)");
        }
        let open = !self.locked() && !self.read_only;
        let advice = if open { "; OPEN to anyone who can reach it: set http.token or http.readOnly" } else { "" };
        format!("HTTP port protection: {}{advice}", parts.join(", "))
    }

    /// Whether the port itself requires a login (a token or configured users).
    pub fn locked(&self) -> bool {
        self.login_token.is_some() || !self.users.is_empty()
    }

    /// Whether `user:password` is one of the configured users.
    pub fn is_user(&self, user_password: &str) -> bool {
        let digest = crate::tree::acl::digest_id(user_password);
        self.users.iter().any(|u| auth::constant_eq(u, &digest))
    }

    /// Whether a request's `Host` header is one this port answers to.
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        if self.allowed_hosts.is_empty() {
            return true;
        }
        let Some(host) = host.map(str::to_ascii_lowercase) else { return false };
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
            _ => host.clone(),
        };
        self.allowed_hosts.iter().any(|a| *a == host || *a == name)
    }

    /// The base path normalised to `""` or `"/x"` (no trailing slash).
    fn normalized_base(&self) -> String {
        let trimmed = self.base_path.trim_matches('/');
        if trimmed.is_empty() {
            String::new()
        } else {
            format!("/{trimmed}")
        }
    }
}

/// Shared state of all handlers.
pub struct AppState {
    pub backend: Arc<dyn Backend>,
    pub opts: HttpOptions,
    /// Normalised base path (`""` or `"/x"`).
    pub base: String,
    pub sessions: auth::SessionStore,
    /// The rate limits of `snapshot` and `restore`.
    pub limiters: backup::Limiters,
    pub cluster: cluster_feed::ClusterFeed,
    /// The backend's change feed, enabled by [`router`].
    pub feed: Arc<ChangeFeed>,
    /// Subtree jobs (started and finished) of this member.
    pub jobs: jobs::Jobs,
    /// ZooKeeper sessions held for browser sessions' ephemeral nodes.
    pub zk_sessions: zk_session::Held,
}

pub type State = Arc<AppState>;

/// Builds the whole HTTP application and enables the backend's change feed (from now on
/// it keeps `ring_capacity` events for `since_zxid` replay). Must be called inside a tokio
/// runtime (it starts the task that feeds the live cluster view).
pub fn router(backend: Arc<dyn Backend>, opts: HttpOptions) -> Router {
    let base = opts.normalized_base();
    let feed = backend.change_feed();
    feed.enable(opts.ring_capacity, opts.ws_queue, backend.last_zxid());
    let cluster = cluster_feed::ClusterFeed::start(backend.clone());
    let state: State = Arc::new(AppState {
        backend,
        base: base.clone(),
        sessions: auth::SessionStore::default(),
        feed,
        cluster,
        opts,
        limiters: backup::Limiters::default(),
        jobs: jobs::Jobs::default(),
        zk_sessions: zk_session::Held::default(),
    });
    // A restore's body is a whole snapshot: far above the API's usual body limit.
    let restore = post(backup::restore).layer(DefaultBodyLimit::max(backup::MAX_RESTORE_BYTES));
    let api = Router::new()
        .route(
            "/api/v1/znodes",
            get(znode::get_node).put(znode::put_node).post(znode::post_node).delete(znode::delete_node),
        )
        .route(
            "/api/v1/znodes/",
            get(znode::get_node).put(znode::put_node).post(znode::post_node).delete(znode::delete_node),
        )
        .route(
            "/api/v1/znodes/{*path}",
            get(znode::get_node).put(znode::put_node).post(znode::post_node).delete(znode::delete_node),
        )
        .route("/api/v1/multi", post(ops::multi))
        .route("/api/v1/copy", post(ops::copy))
        .route("/api/v1/move", post(ops::move_subtree))
        .route("/api/v1/export", get(transfer::export))
        .route("/api/v1/import", post(transfer::import))
        .route("/api/v1/jobs", get(jobs::list))
        .route("/api/v1/jobs/{id}", get(jobs::get).delete(jobs::cancel))
        .route("/api/v1/reformat", post(ops::reformat))
        .route("/api/v1/search", get(ops::search))
        .route("/api/v1/auth", get(auth::whoami).post(auth::login_api).delete(auth::logout_api))
        .route("/api/v1/watch", get(ws::upgrade))
        .route("/api/v1/cluster", get(admin::cluster))
        .route("/api/v1/cluster/stream", get(cluster_feed::stream))
        .route("/api/v1/sessions", get(admin::sessions))
        .route("/api/v1/openapi.json", get(assets::openapi))
        .route("/commands", get(admin::command_list))
        .route("/commands/snapshot", get(backup::snapshot))
        .route("/commands/snap", get(backup::snapshot))
        .route("/commands/restore", restore.clone())
        .route("/commands/rest", restore)
        .route("/commands/{name}", get(admin::command))
        .route("/metrics", get(admin::metrics));
    let app = api
        .merge(ui::routes())
        .route("/static/{*file}", get(assets::static_file))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::guard))
        .layer(DefaultBodyLimit::max(state.opts.max_body_bytes))
        .fallback(|| async { error::ApiError::NotFound })
        .with_state(state);
    if base.is_empty() {
        app
    } else {
        let redirect_to = format!("{base}/ui/");
        Router::new()
            .route("/", get(move || async move { axum::response::Redirect::to(&redirect_to) }))
            .nest(&base, app)
    }
}

/// Bounds of the HTTP port's connections (see docs/SECURITY.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// A request's head must arrive within this; it is also how long an idle keep-alive
    /// connection stays open, since waiting for the next request is waiting for its head.
    pub header_timeout: Duration,
    /// A request body must arrive within this.
    pub body_timeout: Duration,
    /// Open connections one client address may hold; more are closed at once.
    pub per_address: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits { header_timeout: Duration::from_secs(10), body_timeout: Duration::from_secs(30), per_address: 100 }
    }
}

/// Serves `router` on `listener` until the process ends, with peer addresses available
/// to handlers (they become the caller's `ip:` identity).
///
/// Each connection is HTTP/1.1 with upgrades (the WebSocket stream), under `limits`:
/// slow or silent clients are closed by the header and body timeouts, and one address
/// cannot take the file descriptors every other client needs.
pub async fn serve(listener: tokio::net::TcpListener, router: Router, limits: ConnLimits) -> std::io::Result<()> {
    serve_with_tls(listener, router, limits, None).await
}

/// HTTPS on the HTTP port (`admin.forceHttps`, `admin.portUnification`).
#[derive(Clone)]
pub struct Https {
    pub config: Arc<roost_tls::ReloadingServerConfig>,
    /// Only HTTPS (`admin.forceHttps`); otherwise HTTP and HTTPS, told apart by the first byte.
    pub force: bool,
}

/// The subject of an HTTPS client's verified certificate: the caller's `x509` identity.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub String);

/// HSTS for HTTPS responses, as ZooKeeper's AdminServer sends it (one day, subdomains).
const HSTS: &str = "max-age=86400; includeSubDomains";

/// [`serve`], with HTTPS when `tls` is given.
pub async fn serve_with_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ConnLimits,
    tls: Option<Https>,
) -> std::io::Result<()> {
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_timeout));
    let per_address = Arc::new(AddressCounts::default());
    loop {
        let (sock, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors is transient: keep serving the open connections.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = AddressSlot::take(&per_address, remote.ip(), limits.per_address) else {
            tracing::debug!(%remote, limit = limits.per_address, "too many HTTP connections from this address");
            continue;
        };
        let (router, tls) = (router.clone(), tls.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let https = match &tls {
                None => None,
                Some(https) if https.force => Some(https.config.clone()),
                Some(https) => match crate::security::tls::starts_with_tls(&sock, limits.header_timeout).await {
                    None => return,
                    Some(true) => Some(https.config.clone()),
                    Some(false) => None,
                },
            };
            match https {
                None => serve_connection(hyper_util::rt::TokioIo::new(sock), router, remote, None, limits).await,
                Some(config) => match crate::security::tls::accept(&config, sock, limits.header_timeout).await {
                    Ok(stream) => {
                        let subject = crate::security::tls::peer_subject(stream.get_ref().1);
                        let cert = Some(subject.map(ClientCertificate));
                        serve_connection(hyper_util::rt::TokioIo::new(stream), router, remote, cert, limits).await
                    }
                    Err(e) => tracing::debug!(%remote, error = %e, "HTTPS handshake failed"),
                },
            }
        });
    }
}

/// Serves one HTTP/1.1 connection (with upgrades). `tls`: `Some` for HTTPS, holding the
/// client certificate's subject if one was verified.
async fn serve_connection<I>(
    io: I,
    router: Router,
    remote: std::net::SocketAddr,
    tls: Option<Option<ClientCertificate>>,
    limits: ConnLimits,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let https = tls.is_some();
    let certificate = tls.flatten();
    let service = tower::ServiceExt::map_request(router, move |mut req: axum::extract::Request<_>| {
        req.extensions_mut().insert(axum::extract::ConnectInfo(remote));
        if let Some(cert) = &certificate {
            req.extensions_mut().insert(cert.clone());
        }
        req
    });
    let service = tower::ServiceExt::map_response(service, move |mut res: axum::response::Response| {
        if https {
            res.headers_mut()
                .insert(axum::http::header::STRICT_TRANSPORT_SECURITY, axum::http::HeaderValue::from_static(HSTS));
        }
        res
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let conn = http.serve_connection(io, hyper_util::service::TowerToHyperService::new(service)).with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%remote, error = %e, "HTTP connection ended");
    }
}

/// Open HTTP connections per client address.
#[derive(Default)]
struct AddressCounts(parking_lot::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

/// One counted connection; uncounted when dropped.
struct AddressSlot {
    counts: Arc<AddressCounts>,
    ip: std::net::IpAddr,
}

impl AddressSlot {
    fn take(counts: &Arc<AddressCounts>, ip: std::net::IpAddr, limit: usize) -> Option<AddressSlot> {
        let mut map = counts.0.lock();
        let n = map.entry(ip).or_insert(0);
        if limit > 0 && *n >= limit {
            return None;
        }
        *n += 1;
        Some(AddressSlot { counts: counts.clone(), ip })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self.counts.0.lock();
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}
