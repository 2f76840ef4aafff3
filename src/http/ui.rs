//! The navigator's pages, server-rendered with askama (templates/). Every page works
//! for reading without JS; `static/js/` (native ES modules) adds editing, paging, the tree and live
//! updates through the REST API and the WebSocket stream.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::proto::types::{ErrorCode, Stat};

use super::auth::{add_login, constant_eq, csrf_cookie, random_hex, Caller, LoginRequest};
use super::backend::SearchQuery;
use super::cluster_feed::ClusterView;
use super::codec::{self, encode_data, perms_text, session_hex, Encoding};
use super::format;
use super::znode::{list_children, ListOptions};
use super::State;

/// Children rendered on the first page load (JS pages the rest).
const FIRST_PAGE: usize = 100;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/", get(root))
        .route("/ui", get(root))
        .route("/ui/", get(node_page))
        .route("/ui/{*path}", get(node_page))
        .route("/ui/login", get(login_page).post(login_form))
        .route("/ui/logout", post(logout_form))
        .route("/ui/cluster", get(cluster_page))
        .route("/ui/sessions", get(sessions_page))
        .route("/ui/search", get(search_page))
}

async fn root(AxState(state): AxState<State>) -> Redirect {
    Redirect::to(&format!("{}/ui/", state.base))
}

/// What every page's header needs.
pub struct Chrome {
    pub base: String,
    pub csrf: String,
    pub users: Vec<String>,
    pub read_only: bool,
    pub title: String,
    /// The other ensemble members (id, host), offered when the connection to this one is lost.
    pub others: Vec<(u64, String)>,
    /// The ZooKeeper session holding this browser session's ephemeral nodes (hex), or "".
    pub own_session: String,
    /// The change feed's zxid before the page read anything: the live stream replays from
    /// here, so a change made while the page loads still reaches it.
    pub feed_zxid: i64,
}

/// The page chrome with the caller's CSRF token: the session's, or for an anonymous
/// visitor the `roost_csrf` cookie's (set here when missing). No server-side state is
/// created for anonymous visitors.
fn chrome(state: &State, caller: &Caller, title: String) -> (Chrome, Option<HeaderValue>) {
    // First, before any of the page is read (see `Chrome::feed_zxid`).
    let feed_zxid = state.feed.last_zxid();
    let (csrf, cookie) = match (&caller.session, &caller.csrf_cookie) {
        (Some((_, s)), _) => (s.csrf.clone(), None),
        (None, Some(token)) => (token.clone(), None),
        (None, None) => {
            let token = random_hex();
            let cookie = csrf_cookie(&state.base, &token);
            (token, Some(cookie))
        }
    };
    let others = state
        .cluster
        .current()
        .members
        .iter()
        .filter(|m| !m.this)
        .map(|m| (m.id, m.address.rsplit_once(':').map_or(m.address.as_str(), |(host, _)| host).to_owned()))
        .collect();
    let c = Chrome {
        base: state.base.clone(),
        csrf,
        users: caller.users(),
        read_only: state.opts.read_only,
        title,
        others,
        own_session: caller.session.as_ref().and_then(|(_, s)| s.zk_session).map(session_hex).unwrap_or_default(),
        feed_zxid,
    };
    (c, cookie)
}

fn page(status: StatusCode, body: Result<String, askama::Error>, cookie: Option<HeaderValue>) -> Response {
    let mut resp = match body {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("template error: {e}")).into_response(),
    };
    if let Some(c) = cookie {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    resp
}

/// Whether data is better shown as hex than as text: not UTF-8, or holding control
/// characters other than tab and line breaks (a NUL in a text box is unreadable and
/// does not survive editing).
pub fn looks_binary(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Err(_) => true,
        Ok(s) => s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')),
    }
}

/// One breadcrumb link.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Crumb {
    pub name: String,
    pub href: String,
}

/// One stat row.
pub struct StatRow {
    pub key: &'static str,
    pub label: &'static str,
    pub value: String,
    /// Raw number, for JS updates and tooltips.
    pub raw: String,
    pub link: Option<String>,
}

/// One child row.
pub struct ChildRow {
    pub name: String,
    pub href: String,
    pub path: String,
    pub num_children: i32,
    pub data_length: String,
    pub ephemeral: bool,
}

/// One ACL row.
pub struct AclRow {
    pub scheme: String,
    pub id: String,
    pub perms: String,
    /// `(letter, "checked" or "")` in cdrwa order, for the editor's checkboxes.
    pub flags: Vec<(&'static str, &'static str)>,
}

fn acl_row(a: &crate::proto::types::Acl) -> AclRow {
    let perms = perms_text(a.perms);
    let flags =
        ["c", "d", "r", "w", "a"].into_iter().map(|l| (l, if perms.contains(l) { "checked" } else { "" })).collect();
    AclRow { scheme: a.id.scheme.clone(), id: a.id.id.clone(), perms, flags }
}

#[derive(Template)]
#[template(path = "node.html")]
pub struct NodePage {
    pub c: Chrome,
    pub path: String,
    pub crumbs: Vec<Crumb>,
    /// ZooKeeper error reading the node (`NoNode`, `NoAuth`), shown as such.
    pub error: Option<String>,
    pub error_detail: String,
    pub has_data: bool,
    pub data_text: String,
    pub data_b64: String,
    pub data_null: bool,
    pub binary: bool,
    pub gzip: bool,
    pub stat_rows: Vec<StatRow>,
    pub version: i32,
    pub aversion: i32,
    pub num_children: i32,
    pub children: Vec<ChildRow>,
    pub children_total: usize,
    pub children_error: Option<String>,
    pub acl: Vec<AclRow>,
    pub acl_error: Option<String>,
    /// "version N · size · modified <time>" above the editor.
    pub meta_line: String,
    /// For an error page: what the caller can do about it (see [`explain_error`]).
    pub help: ErrorHelp,
}

/// What a NoNode or NoAuth page tells beyond the error's name.
#[derive(Default)]
pub struct ErrorHelp {
    /// NoNode: the nearest ancestor that exists, and the first missing path below it.
    pub nearest: Option<Crumb>,
    pub first_missing: String,
    /// NoAuth: the identities the request had (`scheme:id`).
    pub identities: Vec<String>,
    /// NoAuth: the ACL entries that grant READ, when the ACL is readable (ADMIN).
    pub readers: Vec<String>,
    /// NoAuth: whether the ACL itself could be read.
    pub acl_readable: bool,
    /// NoAuth: sentences about the digest identities logged in (a mistyped password).
    pub notes: Vec<String>,
}

fn href(base: &str, path: &str) -> String {
    let encoded: Vec<String> = path.split('/').map(pct_encode).collect();
    format!("{base}/ui{}", if path == "/" { "/".to_owned() } else { encoded.join("/") })
}

/// Percent-encodes a path segment for a URL.
pub fn pct_encode(seg: &str) -> String {
    seg.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'@' | b'=' | b'+' | b',' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn crumbs(base: &str, path: &str) -> Vec<Crumb> {
    let mut out = vec![Crumb { name: "/".into(), href: href(base, "/") }];
    let mut cur = String::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        cur.push('/');
        cur.push_str(seg);
        out.push(Crumb { name: seg.to_owned(), href: href(base, &cur) });
    }
    out
}

fn stat_rows(base: &str, s: &Stat) -> Vec<StatRow> {
    let row = |key, label, value: String, raw: String| StatRow { key, label, value, raw, link: None };
    let owner = session_hex(s.ephemeral_owner);
    vec![
        row("czxid", "Created zxid (czxid)", format::zxid(s.czxid), s.czxid.to_string()),
        row("ctime", "Created (ctime)", format::time_ms(s.ctime), s.ctime.to_string()),
        row("mzxid", "Modified zxid (mzxid)", format::zxid(s.mzxid), s.mzxid.to_string()),
        row("mtime", "Modified (mtime)", format::time_ms(s.mtime), s.mtime.to_string()),
        row("pzxid", "Children zxid (pzxid)", format::zxid(s.pzxid), s.pzxid.to_string()),
        row("version", "Data version", s.version.to_string(), s.version.to_string()),
        row("cversion", "Children version", s.cversion.to_string(), s.cversion.to_string()),
        row("aversion", "ACL version", s.aversion.to_string(), s.aversion.to_string()),
        StatRow {
            key: "ephemeralOwner",
            label: "Ephemeral owner",
            value: if s.ephemeral_owner == 0 { "none (persistent)".into() } else { owner.clone() },
            raw: owner.clone(),
            link: (s.ephemeral_owner != 0).then(|| format!("{base}/ui/sessions#s-{owner}")),
        },
        row("dataLength", "Data length", format::size(i64::from(s.data_length)), s.data_length.to_string()),
        row("numChildren", "Children", s.num_children.to_string(), s.num_children.to_string()),
    ]
}

/// `GET /ui/<path>`: the node page.
async fn node_page(AxState(state): AxState<State>, caller: Caller, tail: Option<Path<String>>) -> Response {
    let raw = tail.map(|Path(t)| t).unwrap_or_default();
    let path = format!("/{}", raw.trim_start_matches('/').trim_end_matches('/'));
    let (c, cookie) = chrome(&state, &caller, path.clone());
    let mut p = NodePage {
        crumbs: crumbs(&state.base, &path),
        c,
        path: path.clone(),
        error: None,
        error_detail: String::new(),
        has_data: false,
        data_text: String::new(),
        data_b64: String::new(),
        data_null: false,
        binary: false,
        gzip: false,
        stat_rows: Vec::new(),
        version: 0,
        aversion: 0,
        num_children: 0,
        children: Vec::new(),
        children_total: 0,
        children_error: None,
        acl: Vec::new(),
        acl_error: None,
        meta_line: String::new(),
        help: ErrorHelp::default(),
    };
    if let Err(e) = codec::validate_path(&path, false) {
        p.error = Some("BadPath".into());
        p.error_detail = e.to_string();
        return page(StatusCode::BAD_REQUEST, p.render(), cookie);
    }
    let mut status = StatusCode::OK;
    let stat = match state.backend.get(&path, &caller.ids) {
        Ok(node) => {
            let bytes = node.data.clone().unwrap_or_default();
            p.has_data = true;
            p.data_null = node.data.is_none();
            p.binary = looks_binary(&bytes);
            p.gzip = bytes.starts_with(&[0x1f, 0x8b]);
            p.data_text = encode_data(&bytes, Some(if p.binary { Encoding::Hex } else { Encoding::Utf8 })).0;
            p.data_b64 = encode_data(&bytes, Some(Encoding::Base64)).0;
            Some(node.stat)
        }
        Err(code) => {
            p.error = Some(format!("{code:?}"));
            p.error_detail = match code {
                ErrorCode::NoAuth => {
                    "You lack READ permission on this node. Log in with a digest identity that the ACL grants.".into()
                }
                ErrorCode::NoNode => "This node does not exist.".into(),
                other => other.to_string(),
            };
            status = if code == ErrorCode::NoNode { StatusCode::NOT_FOUND } else { super::error::zk_status(code) };
            p.help = explain_error(&state, &caller, &path, code);
            // exists needs READ too (ZooKeeper 3.8): a NoAuth node shows its stat and ACL
            // only when the caller holds ADMIN (getACL needs READ or ADMIN and returns both).
            state.backend.get_acl(&path, &caller.ids).ok().map(|(_, s)| s)
        }
    };
    if let Some(s) = stat {
        p.stat_rows = stat_rows(&state.base, &s);
        p.meta_line = format!(
            "version {} · {} · modified {}",
            s.version,
            format::size(i64::from(s.data_length)),
            format::time_ms(s.mtime)
        );
        p.version = s.version;
        p.aversion = s.aversion;
        p.num_children = s.num_children;
        match state.backend.get_acl(&path, &caller.ids) {
            Ok((acl, _)) => p.acl = acl.iter().map(acl_row).collect(),
            Err(code) => p.acl_error = Some(format!("{code:?}")),
        }
        let opts = ListOptions { offset: 0, limit: FIRST_PAGE, ..ListOptions::default() };
        match list_children(&state, &path, &caller.ids, &opts) {
            Ok(page) => {
                p.children_total = page.total;
                p.children = page
                    .items
                    .into_iter()
                    .map(|i| ChildRow {
                        href: href(&state.base, &i.path),
                        num_children: i.stat.as_ref().map_or(0, |s| s.num_children),
                        data_length: i.stat.as_ref().map_or(String::new(), |s| format::size(i64::from(s.data_length))),
                        ephemeral: i.stat.as_ref().is_some_and(|s| s.ephemeral_owner != "0x0"),
                        name: i.name,
                        path: i.path,
                    })
                    .collect();
            }
            Err(e) => p.children_error = Some(e.body().error),
        }
    }
    page(status, p.render(), cookie)
}

/// Which ancestor of a missing node exists, or which identities a NoAuth page was read
/// with and which the ACL would have let in.
fn explain_error(state: &State, caller: &Caller, path: &str, code: ErrorCode) -> ErrorHelp {
    let mut help = ErrorHelp::default();
    match code {
        ErrorCode::NoNode => {
            // getACL answers NoAuth (not NoNode) for a node that exists but is not ours.
            let exists = |p: &str| !matches!(state.backend.get_acl(p, &caller.ids), Err(ErrorCode::NoNode));
            let mut missing = path.to_owned();
            let mut cur = path.to_owned();
            while cur != "/" {
                let parent = match cur.rfind('/') {
                    Some(0) | None => "/".to_owned(),
                    Some(i) => cur[..i].to_owned(),
                };
                if exists(&parent) {
                    help.nearest = Some(Crumb { href: href(&state.base, &parent), name: parent });
                    break;
                }
                missing = parent.clone();
                cur = parent;
            }
            help.first_missing = missing;
        }
        ErrorCode::NoAuth => {
            help.identities = caller.ids.iter().map(|i| format!("{}:{}", i.scheme, i.id)).collect();
            let acl = state.backend.get_acl(path, &caller.ids).ok().map(|(acl, _)| acl);
            for (user, mine) in caller.session.iter().flat_map(|(_, s)| s.ids.iter()) {
                let prefix = format!("{user}:");
                let named = acl.as_ref().is_some_and(|acl| {
                    acl.iter().any(|a| a.id.scheme == "digest" && a.id.id.starts_with(&prefix) && a.id != *mine)
                });
                help.notes.push(if named {
                    format!(
                        "The ACL names {user}, but with another digest than the password you logged in with \
                         gives: the password was probably mistyped. Log out and log in again."
                    )
                } else {
                    format!(
                        "You are logged in as {user} (digest:{}), and that identity is not granted READ here. \
                         A mistyped password gives another digest; nothing checks it at login.",
                        mine.id
                    )
                });
            }
            if let Some(acl) = acl {
                help.acl_readable = true;
                help.readers = acl
                    .iter()
                    .filter(|a| a.perms & crate::proto::types::perms::READ != 0)
                    .map(|a| format!("{}:{} ({})", a.id.scheme, a.id.id, perms_text(a.perms)))
                    .collect();
            }
            if help.identities.iter().all(|i| !i.starts_with("digest:")) {
                help.notes.push("You are not logged in with a digest identity.".into());
            }
        }
        _ => {}
    }
    help
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub c: Chrome,
    pub message: Option<String>,
    pub need_token: bool,
    pub next: String,
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only local redirect targets: a path on this server. Browsers read `\` as `/`, so
/// `/\host` would leave the site like `//host`; and anything but visible ASCII (a CR/LF
/// above all) could not go into a `Location` header.
fn safe_next(state: &State, next: Option<&str>) -> String {
    let local = |n: &str| {
        let mut chars = n.chars();
        chars.next() == Some('/')
            && !matches!(chars.next(), Some('/') | Some('\\'))
            && n.bytes().all(|b| b.is_ascii_graphic())
    };
    match next {
        Some(n) if local(n) => n.to_owned(),
        _ => format!("{}/ui/", state.base),
    }
}

async fn login_page(
    AxState(state): AxState<State>,
    caller: Caller,
    q: Result<Query<NextQuery>, QueryRejection>,
) -> Response {
    let next = q.ok().and_then(|Query(q)| q.next);
    let (c, cookie) = chrome(&state, &caller, "Log in".into());
    let p = LoginPage {
        c,
        message: None,
        need_token: state.opts.login_token.is_some(),
        next: safe_next(&state, next.as_deref()),
    };
    page(StatusCode::OK, p.render(), cookie)
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    next: Option<String>,
}

fn form_csrf_ok(caller: &Caller, sent: &str) -> bool {
    match (&caller.session, &caller.csrf_cookie) {
        (Some((_, s)), _) => constant_eq(sent, &s.csrf),
        (None, Some(token)) => constant_eq(sent, token),
        (None, None) => false,
    }
}

/// `POST /ui/login` (form): adds a digest identity and/or the port token to the session.
async fn login_form(AxState(state): AxState<State>, caller: Caller, body: Bytes) -> Response {
    let form: LoginForm = serde_urlencoded_parse(&body);
    let (c, cookie) = chrome(&state, &caller, "Log in".into());
    let need_token = state.opts.login_token.is_some();
    let next = safe_next(&state, form.next.as_deref());
    let fail = |c: Chrome, msg: &str, status| {
        let p = LoginPage { c, message: Some(msg.to_owned()), need_token, next: next.clone() };
        page(status, p.render(), cookie.clone())
    };
    if !form_csrf_ok(&caller, &form._csrf) {
        return fail(c, "The form expired; please try again.", StatusCode::FORBIDDEN);
    }
    let req = LoginRequest {
        digest: (!form.user.is_empty()).then(|| format!("{}:{}", form.user, form.password)),
        token: (!form.token.is_empty()).then(|| form.token.clone()),
    };
    match add_login(&state, &caller, &req) {
        Ok((_, new_cookie)) => {
            let mut resp = Redirect::to(&next).into_response();
            resp.headers_mut().insert(header::SET_COOKIE, new_cookie);
            resp
        }
        Err(e) => fail(c, &e.to_string(), e.status()),
    }
}

/// `POST /ui/logout` (form).
async fn logout_form(AxState(state): AxState<State>, caller: Caller, body: Bytes) -> Response {
    let form: LoginForm = serde_urlencoded_parse(&body);
    if form_csrf_ok(&caller, &form._csrf) {
        super::auth::logout(&state, &caller).await;
    }
    Redirect::to(&format!("{}/ui/", state.base)).into_response()
}

/// Parses an `application/x-www-form-urlencoded` body; missing fields default.
fn serde_urlencoded_parse<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> T {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{}", String::from_utf8_lossy(body)).parse().unwrap_or_else(|_| axum::http::Uri::from_static("/")),
    )
    .map(|q| q.0)
    .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "cluster.html")]
pub struct ClusterPage {
    pub c: Chrome,
    pub view: Arc<ClusterView>,
    pub mntr: Vec<(String, String)>,
    /// Watched paths (links) with the sessions watching them (hex ids).
    pub watches: Vec<(Crumb, Vec<String>)>,
    /// Live sessions with their ephemeral nodes.
    pub sessions: Vec<SessionRow>,
}

async fn cluster_page(AxState(state): AxState<State>, caller: Caller) -> Response {
    let (c, cookie) = chrome(&state, &caller, "Cluster".into());
    let p = ClusterPage {
        c,
        view: state.cluster.current(),
        mntr: state.backend.mntr(),
        watches: watch_rows(&state),
        sessions: session_rows(&state, &caller.ids),
    };
    page(StatusCode::OK, p.render(), cookie)
}

/// Watched paths (links) with the sessions watching them (hex ids).
pub(super) fn watch_rows(state: &State) -> Vec<(Crumb, Vec<String>)> {
    state
        .backend
        .watches_by_path()
        .into_iter()
        .map(|(path, ids)| {
            (Crumb { href: href(&state.base, &path), name: path }, ids.into_iter().map(session_hex).collect())
        })
        .collect()
}

/// One session row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionRow {
    pub id: String,
    pub timeout: String,
    pub client: String,
    pub ephemerals: Vec<Crumb>,
}

#[derive(Template)]
#[template(path = "sessions.html")]
pub struct SessionsPage {
    pub c: Chrome,
    pub sessions: Vec<SessionRow>,
}

async fn sessions_page(AxState(state): AxState<State>, caller: Caller) -> Response {
    let (c, cookie) = chrome(&state, &caller, "Sessions".into());
    page(StatusCode::OK, SessionsPage { c, sessions: session_rows(&state, &caller.ids) }.render(), cookie)
}

pub(super) fn session_rows(state: &State, auth: &[crate::proto::types::Id]) -> Vec<SessionRow> {
    super::zk_session::sessions(state, auth)
        .into_iter()
        .map(|s| SessionRow {
            id: session_hex(s.id),
            timeout: format!("{} ms", s.timeout_ms),
            client: s.client.unwrap_or_else(|| "-".into()),
            ephemerals: s.ephemerals.iter().map(|e| Crumb { name: e.clone(), href: href(&state.base, e) }).collect(),
        })
        .collect()
}

#[derive(Debug, Deserialize, Default)]
pub struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    regex: Option<String>,
}

#[derive(Template)]
#[template(path = "search.html")]
pub struct SearchPage {
    pub c: Chrome,
    pub q: String,
    pub data: bool,
    pub regex: bool,
    pub error: Option<String>,
    pub results: Vec<Crumb>,
}

/// Most results the search page shows.
const SEARCH_LIMIT: usize = 500;

async fn search_page(
    AxState(state): AxState<State>,
    caller: Caller,
    q: Result<Query<SearchForm>, QueryRejection>,
) -> Response {
    let form = q.map(|Query(q)| q).unwrap_or_default();
    let (c, cookie) = chrome(&state, &caller, format!("Search {}", form.q));
    let data = form.data.is_some();
    let regex = form.regex.is_some();
    let mut p = SearchPage { c, q: form.q.clone(), data, regex, error: None, results: Vec::new() };
    if !form.q.is_empty() {
        if regex {
            if let Err(e) = regex::Regex::new(&form.q) {
                p.error = Some(format!("invalid regex: {e}"));
            }
        }
        if p.error.is_none() {
            let query = SearchQuery { text: form.q, regex, in_data: data, root: "/".into() };
            match super::ops::run_search(&state, query, caller.ids.clone(), SEARCH_LIMIT).await {
                Ok(found) => {
                    p.error = found.stopped.map(|why| format!("results may be incomplete: {why}"));
                    p.results = found
                        .paths
                        .into_iter()
                        .map(|path| Crumb { href: href(&state.base, &path), name: path })
                        .collect();
                }
                Err(e) => p.error = Some(e.to_string()),
            }
        }
    }
    page(StatusCode::OK, p.render(), cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_make_data_binary() {
        assert!(!looks_binary(b"plain {\"json\": 1}\n\ttabbed\r\n"));
        assert!(!looks_binary("caf\u{e9}".as_bytes()));
        assert!(looks_binary(b"\x00\x01binary"));
        assert!(looks_binary(b"\xff\xfe"));
        assert!(looks_binary(b"\x1f\x8b\x08"));
    }

    #[test]
    fn deep_links_encode_segments() {
        assert_eq!(href("", "/"), "/ui/");
        assert_eq!(href("/zk", "/a b/c%"), "/zk/ui/a%20b/c%25");
        let c = crumbs("", "/a/b");
        assert_eq!(c.iter().map(|c| c.href.as_str()).collect::<Vec<_>>(), ["/ui/", "/ui/a", "/ui/a/b"]);
    }
}
