//! The navigator: the built-in web UI, the REST API (`/api/v1`), ZooKeeper
//! AdminServer-style commands (`/commands/<name>`), Prometheus metrics (`/metrics`)
//! and the WebSocket watch stream (`/api/v1/watch`).
//!
//! Everything here acts as a ZooKeeper client with the caller's identities, through
//! the [`Backend`] trait: nothing bypasses an ACL and every write goes through the
//! replicated log. See `docs` in the OpenAPI spec (`static/openapi.json`) for the API.

pub mod admin;
pub mod assets;
pub mod auth;
pub mod backend;
pub mod codec;
pub mod error;
pub mod format;
pub mod hub;
pub mod ops;
pub mod transfer;
pub mod ui;
pub mod ws;
pub mod yaml;
pub mod znode;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use backend::{Backend, BoxFuture, ChangeEvent, ClusterInfo, MemberInfo, NodeData, SearchQuery, SessionInfo};

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
    /// Most nodes a recursive delete, copy, move or import may touch in one multi.
    pub max_subtree_ops: usize,
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
            max_subtree_ops: 10_000,
        }
    }
}

impl HttpOptions {
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
    pub hub: hub::Hub,
}

pub type State = Arc<AppState>;

/// Builds the whole HTTP application. Must be called inside a tokio runtime (it starts
/// the task that feeds the WebSocket ring buffer).
pub fn router(backend: Arc<dyn Backend>, opts: HttpOptions) -> Router {
    let base = opts.normalized_base();
    let hub = hub::Hub::start(backend.clone(), opts.ring_capacity, opts.ws_queue);
    let state: State = Arc::new(AppState {
        backend,
        base: base.clone(),
        sessions: auth::SessionStore::default(),
        hub,
        opts,
    });
    let api = Router::new()
        .route("/api/v1/znodes", get(znode::get_node).put(znode::put_node).post(znode::post_node).delete(znode::delete_node))
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
        .route("/api/v1/reformat", post(ops::reformat))
        .route("/api/v1/search", get(ops::search))
        .route("/api/v1/auth", get(auth::whoami).post(auth::login_api).delete(auth::logout_api))
        .route("/api/v1/watch", get(ws::upgrade))
        .route("/api/v1/cluster", get(admin::cluster))
        .route("/api/v1/sessions", get(admin::sessions))
        .route("/api/v1/openapi.json", get(assets::openapi))
        .route("/commands", get(admin::command_list))
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

/// Serves `router` on `listener` until the process ends, with peer addresses available
/// to handlers (they become the caller's `ip:` identity).
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await
}
