//! Who the HTTP caller is, and the protection of the port itself.
//!
//! Identities: every call acts with `ip:<peer address>` plus the digest identities the
//! caller gave, either once per browser session (login form or `POST /api/v1/auth`,
//! kept server-side under a random `roost_sid` cookie) or per request with the header
//! `ZK-Auth: digest user:password` (repeatable). Nothing else grants access: ZooKeeper's
//! ACLs decide, exactly as on the native port.
//!
//! Port protection ([`guard`]): optional login token, read-only mode, and CSRF: a
//! mutating request that carries the session cookie must echo the session's CSRF token
//! in `X-CSRF-Token` (forms: a `_csrf` field, checked by the form handler); a mutating
//! request without the cookie must not come from a foreign `Origin`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use base64::Engine as _;
use parking_lot::Mutex;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::proto::types::Id;

use super::error::{parse_json, ApiError};
use super::State;

/// Name of the browser-session cookie.
pub const COOKIE: &str = "roost_sid";
/// Name of the cookie that carries an anonymous visitor's CSRF token. Anonymous visitors
/// get no server-side session: their forms are checked by matching this cookie against the
/// form's `_csrf` field (a double-submit token a foreign site can neither read nor set).
pub const CSRF_COOKIE: &str = "roost_csrf";
/// Idle browser sessions are forgotten after this long.
const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// Upper bound of remembered browser sessions (anonymous ones evicted first, oldest first).
const MAX_SESSIONS: usize = 10_000;
/// Browser sessions one client address may hold: a flood of new sessions from one address
/// evicts that address's own sessions, never another client's login.
const MAX_SESSIONS_PER_ADDRESS: usize = 64;

/// One browser session, server-side.
#[derive(Debug, Clone)]
pub struct WebSession {
    /// Digest identities added with a login, with the user names for display.
    pub ids: Vec<(String, Id)>,
    pub csrf: String,
    /// The port's login token was given (only matters when one is configured).
    pub token_ok: bool,
    /// The ZooKeeper session holding this browser session's ephemeral nodes, once it made
    /// one (see [`super::zk_session`]).
    pub zk_session: Option<i64>,
    /// The client address that created it.
    address: String,
    last_seen: Instant,
}

impl WebSession {
    fn anonymous(&self) -> bool {
        self.ids.is_empty() && !self.token_ok && self.zk_session.is_none()
    }
}

/// All browser sessions of this process (not replicated: a browser talks to one node).
#[derive(Default)]
pub struct SessionStore {
    map: Mutex<HashMap<String, WebSession>>,
}

pub(crate) fn random_hex() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl SessionStore {
    /// The session for `sid`, refreshed, if it exists.
    pub fn get(&self, sid: &str) -> Option<WebSession> {
        let mut map = self.map.lock();
        let s = map.get_mut(sid)?;
        if s.last_seen.elapsed() > SESSION_IDLE {
            map.remove(sid);
            return None;
        }
        s.last_seen = Instant::now();
        Some(s.clone())
    }

    /// Creates a new empty session for a client at `address` and returns its id.
    pub fn create(&self, address: &str) -> (String, WebSession) {
        self.create_with_csrf(address, None)
    }

    /// [`SessionStore::create`] keeping the CSRF token `csrf` when given: an anonymous
    /// visitor's page already carries the token of its `roost_csrf` cookie, and keeps
    /// working when a server-side session is made for it.
    pub fn create_with_csrf(&self, address: &str, csrf: Option<String>) -> (String, WebSession) {
        let mut map = self.map.lock();
        if map.values().filter(|s| s.address == address).count() >= MAX_SESSIONS_PER_ADDRESS {
            evict_oldest(&mut map, |s| s.address == address);
        }
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.last_seen.elapsed() <= SESSION_IDLE);
            if map.len() >= MAX_SESSIONS {
                evict_oldest(&mut map, |_| true);
            }
        }
        let sid = random_hex();
        let s = WebSession {
            ids: Vec::new(),
            csrf: csrf.unwrap_or_else(random_hex),
            token_ok: false,
            zk_session: None,
            address: address.to_owned(),
            last_seen: Instant::now(),
        };
        map.insert(sid.clone(), s.clone());
        (sid, s)
    }

    /// Replaces session `old` (if any) by a new one for `address` that keeps its identities
    /// and token: done at every login, so a session id planted before the login (session
    /// fixation) never gains the identities logged in with.
    pub fn rotate(&self, old: Option<&str>, address: &str) -> (String, WebSession) {
        let kept = old.and_then(|sid| self.map.lock().remove(sid));
        let (sid, mut s) = self.create(address);
        if let Some(k) = kept {
            s.ids = k.ids;
            s.token_ok = k.token_ok;
            // The same browser: its ephemeral nodes stay its own.
            s.zk_session = k.zk_session;
            self.update(&sid, |fresh| {
                fresh.ids = s.ids.clone();
                fresh.token_ok = s.token_ok;
                fresh.zk_session = s.zk_session;
            });
        }
        (sid, s)
    }

    /// Forgets a session.
    pub fn remove(&self, sid: &str) {
        self.map.lock().remove(sid);
    }

    /// Changes a session in place; false if it is gone.
    pub fn update(&self, sid: &str, f: impl FnOnce(&mut WebSession)) -> bool {
        match self.map.lock().get_mut(sid) {
            Some(s) => {
                f(s);
                true
            }
            None => false,
        }
    }
}

/// Evicts the oldest session among those `among` selects, anonymous ones first.
fn evict_oldest(map: &mut HashMap<String, WebSession>, among: impl Fn(&WebSession) -> bool) {
    let victim =
        map.iter().filter(|(_, s)| among(s)).min_by_key(|(_, s)| (!s.anonymous(), s.last_seen)).map(|(k, _)| k.clone());
    if let Some(k) = victim {
        map.remove(&k);
    }
}

/// Reads a cookie from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(base: &str, sid: &str) -> HeaderValue {
    cookie_header(COOKIE, base, sid)
}

/// The `Set-Cookie` value for an anonymous visitor's CSRF token.
pub fn csrf_cookie(base: &str, token: &str) -> HeaderValue {
    cookie_header(CSRF_COOKIE, base, token)
}

fn cookie_header(name: &str, base: &str, value: &str) -> HeaderValue {
    let path = if base.is_empty() { "/" } else { base };
    HeaderValue::from_str(&format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict"))
        .unwrap_or_else(|_| HeaderValue::from_static("roost_invalid=; Path=/"))
}

/// The caller of one request: identities and browser session.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// `ip:` identity first, then digest identities.
    pub ids: Vec<Id>,
    /// The browser session (id and state), when the cookie named a live one.
    pub session: Option<(String, WebSession)>,
    /// An anonymous visitor's CSRF token (the `roost_csrf` cookie), when well-formed.
    pub csrf_cookie: Option<String>,
}

impl Caller {
    /// The user names logged in, for display.
    /// The client address (the `ip:` identity), for per-address bounds.
    pub fn address(&self) -> &str {
        self.ids.iter().find(|i| i.scheme == "ip").map_or("", |i| i.id.as_str())
    }

    pub fn users(&self) -> Vec<String> {
        self.session.as_ref().map(|(_, s)| s.ids.iter().map(|(u, _)| u.clone()).collect()).unwrap_or_default()
    }
}

/// Identity resolution shared by the extractor and the WebSocket upgrade.
pub fn resolve_caller(state: &State, parts: &Parts) -> Result<Caller, ApiError> {
    let mut ids = Vec::new();
    if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        ids.push(Id::new("ip", addr.ip().to_string()));
    }
    // An HTTPS client certificate verified against the trust store: `x509:<subject>`.
    if let Some(super::ClientCertificate(subject)) = parts.extensions.get::<super::ClientCertificate>() {
        ids.push(Id::new("x509", subject.clone()));
    }
    let session = cookie(&parts.headers, COOKIE).and_then(|sid| state.sessions.get(&sid).map(|s| (sid, s)));
    if let Some((_, s)) = &session {
        ids.extend(s.ids.iter().map(|(_, id)| id.clone()));
        super::zk_session::keep_alive(state, s);
    }
    for value in parts.headers.get_all("zk-auth") {
        let text = value.to_str().map_err(|_| ApiError::bad_request("ZK-Auth header is not ASCII"))?;
        let (scheme, cred) = text.trim().split_once(' ').unwrap_or(("", ""));
        if !scheme.eq_ignore_ascii_case("digest") || !cred.contains(':') {
            return Err(ApiError::bad_request("ZK-Auth must be `digest user:password`"));
        }
        ids.extend(state.backend.login_ids(cred.trim()));
        state.backend.audit_auth(&ids, true);
    }
    let csrf_cookie =
        cookie(&parts.headers, CSRF_COOKIE).filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()));
    Ok(Caller { ids, session, csrf_cookie })
}

impl FromRequestParts<State> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        resolve_caller(state, parts)
    }
}

/// Paths that work without the port's login token (the login page itself and assets).
fn open_path(rel: &str) -> bool {
    rel == "/ui/login" || rel.starts_with("/static/") || rel == "/api/v1/auth" || rel == "/api/v1/openapi.json"
}

/// Mutating requests allowed in read-only mode (they only change the browser session).
fn session_only(rel: &str) -> bool {
    matches!(rel, "/ui/login" | "/ui/logout" | "/api/v1/auth")
}

fn is_mutating(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether an `Origin` header (if any) names the same host as `Host`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    origin.split_once("://").map(|(_, rest)| rest == host).unwrap_or(false)
}

/// Middleware: login token, read-only mode and CSRF checks before any handler runs.
pub async fn guard(axum::extract::State(state): axum::extract::State<State>, req: Request, next: Next) -> Response {
    let rel = req.uri().path().to_owned();
    let (parts, body) = req.into_parts();
    let host = parts.headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !state.opts.host_allowed(host) {
        return ApiError::Forbidden("this Host name is not served here (http.allowedHosts)".into()).into_response();
    }
    let session = cookie(&parts.headers, COOKIE).and_then(|sid| state.sessions.get(&sid));
    if state.opts.locked() {
        let authorization = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let bearer = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .zip(state.opts.login_token.as_deref())
            .is_some_and(|(sent, token)| constant_eq(sent.trim(), token));
        let basic = authorization
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .is_some_and(|user_password| state.opts.is_user(&user_password));
        // ZooKeeper's AdminServer header (`snapshot`, `restore`) opens the port for a configured user too.
        let digest = authorization
            .and_then(|v| v.strip_prefix("digest "))
            .is_some_and(|user_password| state.opts.is_user(user_password.trim()));
        let ok = bearer || basic || digest || session.as_ref().is_some_and(|s| s.token_ok);
        if !ok && !open_path(&rel) {
            if rel.starts_with("/ui") || rel == "/" {
                return Redirect::to(&format!("{}/ui/login", state.base)).into_response();
            }
            return ApiError::Unauthorized.into_response();
        }
    }
    if is_mutating(&parts.method) {
        if state.opts.read_only && !session_only(&rel) && rel != "/api/v1/reformat" {
            return ApiError::Forbidden("the HTTP port is read-only".into()).into_response();
        }
        // Form handlers check their `_csrf` field themselves.
        let form = rel.starts_with("/ui/");
        match &session {
            Some(s) if !form => {
                let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
                if !constant_eq(sent, &s.csrf) {
                    return ApiError::Forbidden("missing or wrong X-CSRF-Token".into()).into_response();
                }
            }
            _ => {
                if !same_origin(&parts.headers) {
                    return ApiError::Forbidden("cross-origin request refused".into()).into_response();
                }
            }
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Forgets the identities of the caller's browser session and closes its ZooKeeper
/// session. Shared by the API and the logout form.
pub async fn logout(state: &State, caller: &Caller) {
    if let Some((sid, _)) = &caller.session {
        state.sessions.update(sid, |s| {
            s.ids.clear();
            s.token_ok = false;
        });
        super::zk_session::end(state, sid).await;
    }
}

/// Comparison whose time does not depend on where the strings differ.
pub fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Body of `POST /api/v1/auth`.
#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    /// Digest credentials `user:password` to add to the session.
    #[serde(default)]
    pub digest: Option<String>,
    /// The port's login token, when one is configured.
    #[serde(default)]
    pub token: Option<String>,
}

/// Answer of the auth endpoints.
#[derive(Debug, Serialize)]
pub struct WhoAmI {
    pub identities: Vec<String>,
    pub users: Vec<String>,
    pub csrf: Option<String>,
    #[serde(rename = "readOnly")]
    pub read_only: bool,
}

fn whoami_of(state: &State, caller: &Caller) -> WhoAmI {
    WhoAmI {
        identities: caller.ids.iter().map(|i| format!("{}:{}", i.scheme, i.id)).collect(),
        users: caller.users(),
        csrf: caller.session.as_ref().map(|(_, s)| s.csrf.clone()),
        read_only: state.opts.read_only,
    }
}

/// `GET /api/v1/auth`: the identities this request acts with.
pub async fn whoami(axum::extract::State(state): axum::extract::State<State>, caller: Caller) -> Json<WhoAmI> {
    Json(whoami_of(&state, &caller))
}

/// Adds credentials to the caller's browser session, under a new session id (the old one
/// is forgotten), and returns the new id with its cookie. A request without credentials
/// creates nothing. Shared by the API and the login form.
pub fn add_login(state: &State, caller: &Caller, req: &LoginRequest) -> Result<(String, HeaderValue), ApiError> {
    if req.token.is_none() && req.digest.as_deref().map(str::trim).is_none_or(str::is_empty) {
        return Err(ApiError::bad_request("nothing to log in with: give a digest (user:password) or the token"));
    }
    if let Some(token) = &req.token {
        let expected =
            state.opts.login_token.as_deref().ok_or_else(|| ApiError::bad_request("no login token is configured"))?;
        if !constant_eq(token, expected) {
            state.backend.audit_auth(&caller.ids, false);
            return Err(ApiError::Unauthorized);
        }
    }
    let digest = match req.digest.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => {
            let (user, _) = d.split_once(':').ok_or_else(|| ApiError::bad_request("digest must be user:password"))?;
            Some((user.to_owned(), state.backend.login_ids(d)))
        }
        None => None,
    };
    // The port opens with its token or as one of its configured users.
    let as_user = req.digest.as_deref().map(str::trim).is_some_and(|d| state.opts.is_user(d));
    if state.opts.locked() && req.token.is_none() && !as_user {
        state.backend.audit_auth(&caller.ids, false);
        return Err(ApiError::Unauthorized);
    }
    let mut after = caller.ids.clone();
    after.extend(digest.iter().flat_map(|(_, ids)| ids.iter().cloned()));
    state.backend.audit_auth(&after, true);
    let token_ok = req.token.is_some() || as_user;
    let (sid, _) = state.sessions.rotate(caller.session.as_ref().map(|(sid, _)| sid.as_str()), caller.address());
    state.sessions.update(&sid, |s| {
        s.token_ok |= token_ok;
        if let Some((user, ids)) = digest {
            for id in ids {
                if !s.ids.iter().any(|(_, i)| *i == id) {
                    s.ids.push((user.clone(), id));
                }
            }
        }
    });
    let cookie = session_cookie(&state.base, &sid);
    Ok((sid, cookie))
}

/// `POST /api/v1/auth` with `{"digest": "user:password"}` and/or `{"token": ...}`.
pub async fn login_api(
    axum::extract::State(state): axum::extract::State<State>,
    caller: Caller,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let req: LoginRequest = parse_json(&body?)?;
    let (sid, set_cookie) = add_login(&state, &caller, &req)?;
    let session = state.sessions.get(&sid).map(|s| (sid, s));
    let mut ids = caller.ids.clone();
    if let Some((_, s)) = &session {
        for (_, id) in &s.ids {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
    }
    let me = whoami_of(&state, &Caller { ids, session, csrf_cookie: None });
    let mut resp = Json(me).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, set_cookie);
    Ok(resp)
}

/// `DELETE /api/v1/auth`: forgets the identities of the browser session and closes its
/// ZooKeeper session (its ephemeral nodes are deleted).
pub async fn logout_api(axum::extract::State(state): axum::extract::State<State>, caller: Caller) -> Json<WhoAmI> {
    logout(&state, &caller).await;
    let ids = caller.ids.iter().filter(|i| i.scheme == "ip").cloned().collect();
    Json(whoami_of(&state, &Caller { ids, session: None, csrf_cookie: None }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; roost_sid=abc; b=2"));
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn foreign_origins_are_detected() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn sessions_keep_state() {
        let store = SessionStore::default();
        let (sid, s) = store.create("10.0.0.1");
        assert_eq!(s.csrf.len(), 32);
        assert!(store.update(&sid, |s| s.token_ok = true));
        assert!(store.get(&sid).unwrap().token_ok);
        assert!(store.get("nope").is_none());
        assert!(constant_eq("abc", "abc") && !constant_eq("abc", "abd") && !constant_eq("a", "ab"));
    }

    #[test]
    fn a_flood_from_one_address_evicts_only_that_address_and_anonymous_sessions_first() {
        let store = SessionStore::default();
        let (victim, _) = store.create("10.0.0.1");
        store.update(&victim, |s| s.ids.push(("alice".into(), Id::new("digest", "alice:x"))));
        let (own_login, _) = store.create("10.0.0.2");
        store.update(&own_login, |s| s.token_ok = true);
        for _ in 0..10 * MAX_SESSIONS_PER_ADDRESS {
            store.create("10.0.0.2");
        }
        assert!(store.get(&victim).is_some(), "another address's login was evicted");
        assert!(store.get(&own_login).is_some(), "a login was evicted while anonymous sessions remained");
        let from_flooder = store.map.lock().values().filter(|s| s.address == "10.0.0.2").count();
        assert_eq!(from_flooder, MAX_SESSIONS_PER_ADDRESS);
    }

    #[test]
    fn rotation_gives_a_new_id_and_forgets_the_old_one() {
        let store = SessionStore::default();
        let (planted, _) = store.create("10.0.0.9");
        let (fresh, _) = store.rotate(Some(&planted), "10.0.0.1");
        assert_ne!(fresh, planted);
        assert!(store.get(&planted).is_none(), "the planted id still names a session");
        assert!(store.get(&fresh).is_some());
    }
}
