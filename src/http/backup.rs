//! ZooKeeper 3.9's AdminServer `snapshot` and `restore` commands (docs/BACKUP.md).
//!
//! * `GET /commands/snapshot[?streaming=true|false]` (alias `snap`): the whole tree as of
//!   one zxid, in Roost's snapshot encoding (`tree::snapshot`), with the headers `last_zxid`
//!   (`0x<hex>`) and `snapshot_size`. `streaming` defaults to true, as in ZooKeeper; with
//!   `false` only the headers and a JSON body come back.
//! * `POST /commands/restore` (alias `rest`): the body is such a snapshot. It is checked
//!   whole (envelope, checksum, tree structure) before anything changes, then goes through
//!   the replicated log, so every member installs the same tree.
//!
//! Both need `Authorization` with ALL on `/` (see [`super::admin_auth`]), can be turned off
//! (`admin.snapshot.enabled`, `admin.restore.enabled`: 503) and run at most once per
//! `admin.rateLimiterIntervalInMS` each (429). Other answers are JSON:
//! `{"command": ..., "error": ...}` plus the command's fields.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State as AxState};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::admin_auth::require_all_on_root;
use super::State;
use crate::tree::DataTree;

/// ZooKeeper's default `admin.rateLimiterIntervalInMS`: five minutes.
pub const DEFAULT_RATE_LIMIT_INTERVAL: Duration = Duration::from_secs(300);

/// The largest snapshot `restore` accepts. The restore travels through the replicated log
/// as one entry, and a peer frame holds at most `consensus::wire::MAX_FRAME` (512 MiB).
/// A larger backup is restored offline (`roost restore --from FILE --to DATA_DIR`).
pub const MAX_RESTORE_BYTES: usize = 256 << 20;

/// Settings of the two commands (`admin.*` keys).
#[derive(Debug, Clone, PartialEq)]
pub struct BackupOptions {
    pub snapshot_enabled: bool,
    pub restore_enabled: bool,
    /// Each command runs at most once per this interval; zero: no limit.
    pub rate_limit_interval: Duration,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            snapshot_enabled: true,
            restore_enabled: true,
            rate_limit_interval: DEFAULT_RATE_LIMIT_INTERVAL,
        }
    }
}

/// One run per interval, the first one at once (ZooKeeper's `RateLimiter` with rate 1).
#[derive(Debug, Default)]
pub struct RateLimiter {
    last: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// Takes the interval's one run if it is still free.
    pub fn allow(&self, interval: Duration) -> bool {
        let mut last = self.last.lock();
        let now = Instant::now();
        match *last {
            Some(t) if now.duration_since(t) <= interval && !interval.is_zero() => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

/// The rate limiters of the two commands (one process, like ZooKeeper's static ones).
#[derive(Debug, Default)]
pub struct Limiters {
    pub snapshot: RateLimiter,
    pub restore: RateLimiter,
}

/// A JSON command answer with `status`.
fn answer(status: StatusCode, command: &str, error: Option<String>, fields: Value) -> Response {
    let mut body = json!({ "command": command, "error": error });
    if let (Value::Object(body), Value::Object(fields)) = (&mut body, fields) {
        body.extend(fields);
    }
    (status, Json(body)).into_response()
}

fn refusal(status: StatusCode, command: &str, error: impl Into<String>) -> Response {
    answer(status, command, Some(error.into()), json!({}))
}

/// Authentication, authorization, the feature switch and the rate limit, in ZooKeeper's
/// order: the answer refusing the command, if one does.
fn refusal_of(state: &State, parts: &Parts, command: &str, enabled: bool, limiter: &RateLimiter) -> Option<Response> {
    if let Err(refused) = require_all_on_root(state, parts) {
        return Some(refusal(refused.status(), command, refused.to_string()));
    }
    if !enabled {
        return Some(refusal(StatusCode::SERVICE_UNAVAILABLE, command, format!("the {command} command is disabled")));
    }
    if !limiter.allow(state.opts.backup.rate_limit_interval) {
        return Some(refusal(
            StatusCode::TOO_MANY_REQUESTS,
            command,
            format!("{command} runs at most once per admin.rateLimiterIntervalInMS; try again later"),
        ));
    }
    None
}

/// `GET /commands/snapshot`
pub async fn snapshot(
    AxState(state): AxState<State>,
    Query(params): Query<HashMap<String, String>>,
    parts: Parts,
) -> Response {
    const COMMAND: &str = "snapshot";
    if let Some(refused) =
        refusal_of(&state, &parts, COMMAND, state.opts.backup.snapshot_enabled, &state.limiters.snapshot)
    {
        return refused;
    }
    // Java's Boolean.parseBoolean: only "true" (any case) is true; absent means streaming.
    let streaming = params.get("streaming").is_none_or(|v| v.eq_ignore_ascii_case("true"));
    let backend = state.backend.clone();
    let image = match tokio::task::spawn_blocking(move || backend.snapshot_image()).await {
        Ok(Ok(image)) => image,
        Ok(Err(e)) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, COMMAND, e),
        Err(e) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, COMMAND, format!("snapshot task failed: {e}")),
    };
    tracing::info!(
        last_zxid = format_args!("0x{:x}", image.last_zxid),
        bytes = image.bytes.len(),
        streaming,
        "snapshot taken for the snapshot command"
    );
    let size = image.bytes.len();
    let mut response = if streaming {
        let mut r = Response::new(Body::from(image.bytes));
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        r
    } else {
        answer(StatusCode::OK, COMMAND, None, json!({}))
    };
    let headers = response.headers_mut();
    if let Ok(zxid) = HeaderValue::from_str(&format!("0x{:x}", image.last_zxid)) {
        headers.insert("last_zxid", zxid);
    }
    headers.insert("snapshot_size", HeaderValue::from(size));
    response
}

/// `POST /commands/restore`
pub async fn restore(
    AxState(state): AxState<State>,
    parts: Parts,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    const COMMAND: &str = "restore";
    if let Some(refused) =
        refusal_of(&state, &parts, COMMAND, state.opts.backup.restore_enabled, &state.limiters.restore)
    {
        return refused;
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => return refusal(e.status(), COMMAND, format!("cannot read the snapshot: {e}; nothing was changed")),
    };
    if body.is_empty() {
        return refusal(
            StatusCode::BAD_REQUEST,
            COMMAND,
            "the request has no body: POST the snapshot; nothing was changed",
        );
    }
    // Checked whole before anything changes: a damaged or foreign file is refused here.
    let image = body.to_vec();
    let checked = tokio::task::spawn_blocking(move || {
        DataTree::deserialize(&image).map(|tree| (tree.last_zxid(), tree.node_count())).map(|info| (info, image))
    })
    .await;
    let ((backup_zxid, nodes), image) = match checked {
        Ok(Ok(ok)) => ok,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, bytes = body.len(), "restore refused: the body is not a valid Roost snapshot");
            return refusal(
                StatusCode::BAD_REQUEST,
                COMMAND,
                format!("not a valid Roost snapshot ({e}); nothing was changed"),
            );
        }
        Err(e) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, COMMAND, format!("check failed: {e}")),
    };
    drop(body);
    tracing::info!(backup_zxid = format_args!("0x{backup_zxid:x}"), nodes, "restoring a snapshot through the log");
    match state.backend.restore_image(image).await {
        Ok(report) => {
            tracing::info!(
                zxid = format_args!("0x{:x}", report.zxid),
                backup_zxid = format_args!("0x{:x}", report.backup_zxid),
                "snapshot restored"
            );
            answer(
                StatusCode::OK,
                COMMAND,
                None,
                json!({ "last_zxid": report.zxid, "backup_zxid": report.backup_zxid, "node_count": nodes }),
            )
        }
        Err(e) => refusal(StatusCode::INTERNAL_SERVER_ERROR, COMMAND, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_per_interval_and_none_without_limit() {
        let limiter = RateLimiter::default();
        assert!(limiter.allow(Duration::from_secs(60)));
        assert!(!limiter.allow(Duration::from_secs(60)));
        assert!(limiter.allow(Duration::ZERO));
        assert!(limiter.allow(Duration::ZERO));
    }
}
