//! `/api/v1/znodes/<path>`: read, set, create and delete one node over REST.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::proto::types::{CreateMode, ErrorCode, Stat};
use crate::tree::txn::{OpResult, TxnOp};

use super::auth::Caller;
use super::codec::{self, acl_from_json, acl_to_json, encode_data, AclIn, AclJson, Encoding, StatJson};
use super::error::{parse_json, ApiError};
use super::jobs;
use super::ops::{delete_subtree_ops, run_write, stat_of, walk};
use super::{zk_session, State};

/// Query parameters of the znode endpoints.
#[derive(Debug, Default, Deserialize)]
pub struct ZnodeQuery {
    /// Output encoding of data (`utf8`, `base64`, `hex`); default: utf8 when valid, else base64.
    pub encoding: Option<String>,
    pub children: Option<bool>,
    pub offset: Option<usize>,
    pub limit: Option<usize>,
    /// Child name filter: substring, or a regular expression with `regex=true`.
    pub filter: Option<String>,
    pub regex: Option<bool>,
    /// `asc` (default) or `desc`, by name.
    pub order: Option<String>,
    pub acl: Option<bool>,
    pub version: Option<i32>,
    pub recursive: Option<bool>,
    /// With `recursive`: `never` (default: one atomic multi or 413), `auto` (a job above
    /// the multi limit) or `always` (a job). See [`super::jobs`].
    #[serde(default)]
    pub job: super::jobs::JobMode,
}

/// Largest page of children returned at once.
pub const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

/// Turns the captured URL tail into a znode path and validates it.
pub fn node_path(tail: Option<Path<String>>, sequential: bool) -> Result<String, ApiError> {
    let path = match tail {
        Some(Path(t)) if !t.is_empty() => format!("/{}", t.trim_start_matches('/')),
        _ => "/".to_owned(),
    };
    codec::validate_path(&path, sequential)?;
    Ok(path)
}

fn query(q: Result<Query<ZnodeQuery>, QueryRejection>) -> Result<ZnodeQuery, ApiError> {
    q.map(|Query(q)| q).map_err(|e| ApiError::bad_request(e.body_text()))
}

/// A page of children with the figures a listing shows.
#[derive(Debug, Serialize)]
pub struct ChildPage {
    /// Children after the filter.
    pub total: usize,
    /// Children before the filter (the parent's numChildren).
    #[serde(rename = "totalUnfiltered")]
    pub total_unfiltered: usize,
    pub offset: usize,
    pub limit: usize,
    pub items: Vec<ChildItem>,
}

#[derive(Debug, Serialize)]
pub struct ChildItem {
    pub name: String,
    pub path: String,
    /// `None` when the child vanished between the listing and the stat lookup.
    pub stat: Option<StatJson>,
}

/// Options of a children listing.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub offset: usize,
    pub limit: usize,
    pub filter: Option<String>,
    pub regex: bool,
    pub descending: bool,
}

impl ListOptions {
    fn from_query(q: &ZnodeQuery) -> Result<Self, ApiError> {
        let descending = match q.order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(o) => return Err(ApiError::bad_request(format!("order must be asc or desc, not {o:?}"))),
        };
        Ok(ListOptions {
            offset: q.offset.unwrap_or(0),
            limit: q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE),
            filter: q.filter.clone().filter(|f| !f.is_empty()),
            regex: q.regex.unwrap_or(false),
            descending,
        })
    }
}

/// Natural order: runs of ASCII digits compare by their value, so `n2` comes before `n10`
/// (sequential nodes and numbered items read in order); the rest by bytes. Equal values
/// written differently (`n01`, `n1`) fall back to byte order, so the order is total.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        if x[i].is_ascii_digit() && y[j].is_ascii_digit() {
            let run = |s: &[u8], mut k: usize| {
                while k < s.len() && s[k].is_ascii_digit() {
                    k += 1;
                }
                k
            };
            let (ie, je) = (run(x, i), run(y, j));
            fn trim(s: &[u8]) -> &[u8] {
                let z = s.iter().take_while(|&&c| c == b'0').count();
                &s[z.min(s.len().saturating_sub(1))..]
            }
            let (p, q) = (trim(&x[i..ie]), trim(&y[j..je]));
            let by_value = p.len().cmp(&q.len()).then_with(|| p.cmp(q));
            if by_value != Ordering::Equal {
                return by_value;
            }
            (i, j) = (ie, je);
        } else {
            if x[i] != y[j] {
                return x[i].cmp(&y[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (x.len() - i).cmp(&(y.len() - j)).then_with(|| x.cmp(y))
}

/// Lists, filters, sorts and pages the children of `path`; stats only for the page.
pub fn list_children(
    state: &State,
    path: &str,
    ids: &[crate::proto::types::Id],
    o: &ListOptions,
) -> Result<ChildPage, ApiError> {
    let (mut names, _) = state.backend.children(path, ids).map_err(|c| ApiError::zk(c, path))?;
    let total_unfiltered = names.len();
    if let Some(f) = &o.filter {
        if o.regex {
            let re = regex::RegexBuilder::new(f)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| ApiError::bad_request(format!("invalid regex: {e}")))?;
            names.retain(|n| re.is_match(n));
        } else {
            let needle = f.to_lowercase();
            names.retain(|n| n.to_lowercase().contains(&needle));
        }
    }
    let total = names.len();
    let order = |a: &String, b: &String| if o.descending { natural_cmp(b, a) } else { natural_cmp(a, b) };
    // Only the names up to the page's end need sorting: at a million children a full
    // natural sort was most of a page's time.
    let end = o.offset.saturating_add(o.limit);
    if end < names.len() {
        names.select_nth_unstable_by(end, order);
        names.truncate(end);
    }
    names.sort_unstable_by(order);
    let page: Vec<String> = names.into_iter().skip(o.offset).collect();
    let stats = state.backend.child_stats(path, &page, ids);
    let items = page
        .into_iter()
        .zip(stats.into_iter().chain(std::iter::repeat(None)))
        .map(|(name, stat)| ChildItem { path: codec::join(path, &name), name, stat: stat.as_ref().map(StatJson::from) })
        .collect();
    Ok(ChildPage { total, total_unfiltered, offset: o.offset, limit: o.limit, items })
}

/// `GET` answer.
#[derive(Debug, Serialize)]
pub struct NodeJson {
    pub path: String,
    /// `null` for a node created with null data.
    pub data: Option<String>,
    pub encoding: Encoding,
    pub stat: StatJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<ChildPage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<AclJson>>,
    /// Why the ACL is missing although it was asked for (e.g. `NoAuth`).
    #[serde(rename = "aclError", skip_serializing_if = "Option::is_none")]
    pub acl_error: Option<String>,
}

fn etag(stat: &Stat) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{}\"", stat.version)).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// `GET /api/v1/znodes/<path>`
pub async fn get_node(
    AxState(state): AxState<State>,
    caller: Caller,
    tail: Option<Path<String>>,
    q: Result<Query<ZnodeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let path = node_path(tail, false)?;
    let wanted = q.encoding.as_deref().map(Encoding::parse).transpose()?;
    let node = state.backend.get(&path, &caller.ids).map_err(|c| ApiError::zk(c, &path))?;
    let (data, encoding) = match &node.data {
        Some(d) => {
            let (t, e) = encode_data(d, wanted);
            (Some(t), e)
        }
        None => (None, wanted.unwrap_or_default()),
    };
    let children = if q.children.unwrap_or(false) {
        Some(list_children(&state, &path, &caller.ids, &ListOptions::from_query(&q)?)?)
    } else {
        None
    };
    let (acl, acl_error) = if q.acl.unwrap_or(false) {
        match state.backend.get_acl(&path, &caller.ids) {
            Ok((acl, _)) => (Some(acl_to_json(&acl)), None),
            Err(c) => (None, Some(format!("{c:?}"))),
        }
    } else {
        (None, None)
    };
    let tag = etag(&node.stat);
    let body = NodeJson { path, data, encoding, stat: StatJson::from(&node.stat), children, acl, acl_error };
    Ok(([(header::ETAG, tag)], Json(body)).into_response())
}

/// The version a write is conditioned on: `If-Match`, else `?version=`, else the body's, else -1.
fn version_of(headers: &HeaderMap, q: &ZnodeQuery, body: Option<i32>) -> Result<i32, ApiError> {
    if let Some(v) = headers.get(header::IF_MATCH) {
        let text = v.to_str().map_err(|_| ApiError::bad_request("invalid If-Match"))?;
        let text = text.trim().trim_start_matches("W/").trim_matches('"');
        if text == "*" {
            return Ok(-1);
        }
        return text
            .parse()
            .map_err(|_| ApiError::bad_request(format!("If-Match must be a version number, not {text:?}")));
    }
    Ok(q.version.or(body).unwrap_or(-1))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_none_or(|ct| ct.starts_with("application/json"))
}

/// JSON body of `PUT` (set data, or the ACL with `?acl=true`).
#[derive(Debug, Deserialize)]
pub struct SetRequest {
    pub data: Option<String>,
    #[serde(default)]
    pub encoding: Option<String>,
    pub version: Option<i32>,
    pub acl: Option<Vec<AclIn>>,
}

/// Decodes `data` + `encoding` from a request, enforcing the data size limit.
pub fn input_data(state: &State, data: Option<&str>, encoding: Option<&str>) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(text) = data else { return Ok(None) };
    let enc = encoding.map(Encoding::parse).transpose()?.unwrap_or_default();
    let bytes = codec::decode_data(text, enc)?;
    check_size(state, &bytes)?;
    Ok(Some(bytes))
}

fn check_size(state: &State, bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.len() > state.opts.max_data_bytes {
        return Err(ApiError::TooLarge(format!(
            "data is {} bytes, the limit (jute.maxbuffer) is {}",
            bytes.len(),
            state.opts.max_data_bytes
        )));
    }
    Ok(())
}

/// Answer of writes that leave a node behind.
#[derive(Debug, Serialize)]
pub struct WriteResult {
    pub path: String,
    pub stat: Option<StatJson>,
}

/// `PUT /api/v1/znodes/<path>`: setData (JSON `{data, encoding, version}` or a raw
/// non-JSON body), or setACL with `?acl=true` (`{acl: [...], version}`).
pub async fn put_node(
    AxState(state): AxState<State>,
    caller: Caller,
    tail: Option<Path<String>>,
    q: Result<Query<ZnodeQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let path = node_path(tail, false)?;
    let body = body?;
    let op = if q.acl.unwrap_or(false) {
        let req: SetRequest = parse_json(&body)?;
        let acl = req.acl.ok_or_else(|| ApiError::bad_request("missing acl"))?;
        if acl.is_empty() {
            return Err(ApiError::zk(ErrorCode::InvalidAcl, &path));
        }
        let version = version_of(&headers, &q, req.version)?;
        let acl = acl_from_json(Some(&acl))?;
        if q.recursive.unwrap_or(false) && jobs::decide(&state, q.job, &path, &caller.ids)? {
            jobs::check_root_version(&state, &path, &caller.ids, version, true)?;
            return jobs::start(&state, &caller.ids, jobs::JobSpec::SetAcl { path, acl, version });
        }
        if q.recursive.unwrap_or(false) {
            // The whole subtree in one multi: the version is checked on the root only.
            let paths = walk(&state, &path, &caller.ids, state.opts.max_subtree_ops)?;
            TxnOp::Multi(
                paths
                    .into_iter()
                    .map(|p| {
                        let v = if p == path { version } else { -1 };
                        TxnOp::SetAcl { path: p, acl: acl.clone(), version: v }
                    })
                    .collect(),
            )
        } else {
            TxnOp::SetAcl { path: path.clone(), acl, version }
        }
    } else if is_json(&headers) {
        let req: SetRequest = parse_json(&body)?;
        let data = input_data(&state, req.data.as_deref(), req.encoding.as_deref())?;
        let version = version_of(&headers, &q, req.version)?;
        TxnOp::SetData { path: path.clone(), data, version }
    } else {
        check_size(&state, &body)?;
        TxnOp::SetData { path: path.clone(), data: Some(body.to_vec()), version: version_of(&headers, &q, None)? }
    };
    let result = run_write(&state, op, &caller.ids).await?;
    // A recursive ACL change answers with the root's stat (the first op of the multi).
    let stat = match &result {
        OpResult::Multi(rs) => rs.first().and_then(|r| r.as_ref().ok()).and_then(stat_of),
        other => stat_of(other),
    };
    let mut resp = Json(WriteResult { path, stat: stat.as_ref().map(StatJson::from) }).into_response();
    if let Some(s) = stat {
        resp.headers_mut().insert(header::ETAG, etag(&s));
    }
    Ok(resp)
}

/// JSON body of `POST` (create).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    pub data: Option<String>,
    pub encoding: Option<String>,
    /// `persistent` (default), `persistent_sequential`, `ephemeral`, `ephemeral_sequential`,
    /// `container`, `ttl`, `persistent_sequential_ttl`. An ephemeral node belongs to the
    /// caller's browser session (see [`super::zk_session`]).
    pub mode: Option<String>,
    /// Milliseconds, for the TTL modes.
    pub ttl: Option<i64>,
    /// Default: world:anyone with all permissions.
    pub acl: Option<Vec<AclIn>>,
    /// Also create missing ancestors (as persistent nodes with the same ACL), atomically.
    #[serde(default)]
    pub create_parents: bool,
}

/// Parses a create mode name.
pub fn parse_mode(name: Option<&str>) -> Result<CreateMode, ApiError> {
    Ok(match name.unwrap_or("persistent").to_ascii_lowercase().replace('-', "_").as_str() {
        "persistent" => CreateMode::Persistent,
        "persistent_sequential" | "sequential" => CreateMode::PersistentSequential,
        "container" => CreateMode::Container,
        "ttl" | "persistent_ttl" | "persistent_with_ttl" => CreateMode::PersistentWithTtl,
        "persistent_sequential_ttl" | "sequential_ttl" | "persistent_sequential_with_ttl" => {
            CreateMode::PersistentSequentialWithTtl
        }
        "ephemeral" => CreateMode::Ephemeral,
        "ephemeral_sequential" => CreateMode::EphemeralSequential,
        other => return Err(ApiError::bad_request(format!("unknown mode {other:?}"))),
    })
}

/// Builds the create op(s) of a create request: the missing ancestors first when asked.
pub fn create_ops(
    state: &State,
    path: &str,
    req: &CreateRequest,
    ids: &[crate::proto::types::Id],
) -> Result<Vec<TxnOp>, ApiError> {
    let mode = parse_mode(req.mode.as_deref())?;
    codec::validate_path(path, mode.is_sequential())?;
    if path == "/" {
        return Err(ApiError::zk(ErrorCode::NodeExists, path));
    }
    let ttl_ms = if mode.is_ttl() {
        match req.ttl {
            Some(t) if t > 0 => Some(t),
            _ => return Err(ApiError::bad_request("TTL modes need a positive ttl (milliseconds)")),
        }
    } else {
        None
    };
    let acl = acl_from_json(req.acl.as_deref())?;
    let data = input_data(state, req.data.as_deref(), req.encoding.as_deref())?;
    let mut ops = if req.create_parents { missing_parents(state, path, ids, &acl) } else { Vec::new() };
    ops.push(TxnOp::Create { path: path.to_owned(), data: data.or(Some(Vec::new())), acl, mode, ttl_ms });
    Ok(ops)
}

/// Creates (persistent, no data, with `acl`) for the ancestors of `path` that do not exist.
pub(super) fn missing_parents(
    state: &State,
    path: &str,
    ids: &[crate::proto::types::Id],
    acl: &[crate::proto::types::Acl],
) -> Vec<TxnOp> {
    let mut ops = Vec::new();
    let target = path.trim_end_matches('/');
    let mut prefix = String::new();
    let segments: Vec<&str> = target.get(1..).unwrap_or("").split('/').collect();
    for seg in &segments[..segments.len().saturating_sub(1)] {
        let parent = if prefix.is_empty() { "/".to_owned() } else { prefix.clone() };
        prefix = codec::join(&parent, seg);
        // Below an ancestor being created nothing exists yet. A parent the caller may not
        // list is taken as existing: the create then fails with ZooKeeper's own answer.
        let exists = ops.is_empty()
            && match state.backend.children(&parent, ids) {
                Ok((names, _)) => names.iter().any(|n| n == seg),
                Err(ErrorCode::NoNode) => false,
                Err(_) => true,
            };
        if !exists {
            ops.push(TxnOp::Create {
                path: prefix.clone(),
                data: None,
                acl: acl.to_vec(),
                mode: CreateMode::Persistent,
                ttl_ms: None,
            });
        }
    }
    ops
}

/// `POST /api/v1/znodes/<path>`: create (JSON body, or a raw body as data with `?mode=`).
pub async fn post_node(
    AxState(state): AxState<State>,
    caller: Caller,
    tail: Option<Path<String>>,
    q: Result<Query<std::collections::HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let raw = tail.map(|Path(t)| t).unwrap_or_default();
    let path = format!("/{}", raw.trim_start_matches('/'));
    let body = body?;
    let req = if is_json(&headers) {
        if body.is_empty() {
            CreateRequest::default()
        } else {
            parse_json(&body)?
        }
    } else {
        check_size(&state, &body)?;
        CreateRequest {
            data: None,
            mode: q.get("mode").cloned(),
            ttl: q.get("ttl").and_then(|t| t.parse().ok()),
            ..Default::default()
        }
    };
    let mut ops = create_ops(&state, &path, &req, &caller.ids)?;
    if !is_json(&headers) {
        if let Some(TxnOp::Create { data, .. }) = ops.last_mut() {
            *data = Some(body.to_vec());
        }
    }
    let single = ops.len() == 1;
    let op = if single { ops.remove(0) } else { TxnOp::Multi(ops) };
    let (result, made) = if zk_session::needs_session(&op) {
        zk_session::write(&state, &caller, op).await?
    } else {
        (run_write(&state, op, &caller.ids).await?, Default::default())
    };
    let created = match result {
        OpResult::Created { path, stat } => Some((path, stat)),
        OpResult::Multi(rs) => rs.into_iter().rev().find_map(|r| match r {
            Ok(OpResult::Created { path, stat }) => Some((path, stat)),
            _ => None,
        }),
        _ => None,
    };
    let (path, stat) = created.ok_or(ApiError::Zk { code: ErrorCode::SystemError, path: Some(path), index: None })?;
    let location = HeaderValue::from_str(&format!("{}/api/v1/znodes{}", state.base, path)).ok();
    let mut resp = (StatusCode::CREATED, Json(WriteResult { path, stat: Some(StatJson::from(&stat)) })).into_response();
    if let Some(l) = location {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    made.add_to(&mut resp);
    Ok(resp)
}

/// Answer of a delete.
#[derive(Debug, Serialize)]
pub struct DeleteResult {
    pub path: String,
    pub deleted: usize,
}

/// `DELETE /api/v1/znodes/<path>?version=&recursive=true[&job=auto|always]`. A recursive
/// delete is one multi of deletes, children first, the version checked on the root only;
/// above the multi limit (with `job=auto`) or always (`job=always`) it is a job (202).
pub async fn delete_node(
    AxState(state): AxState<State>,
    caller: Caller,
    tail: Option<Path<String>>,
    q: Result<Query<ZnodeQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let path = node_path(tail, false)?;
    if path == "/" {
        return Err(ApiError::zk(ErrorCode::BadArguments, "/"));
    }
    let version = version_of(&headers, &q, None)?;
    if q.recursive.unwrap_or(false) && jobs::decide(&state, q.job, &path, &caller.ids)? {
        jobs::check_root_version(&state, &path, &caller.ids, version, false)?;
        return jobs::start(&state, &caller.ids, jobs::JobSpec::Delete { path, version });
    }
    let ops = if q.recursive.unwrap_or(false) {
        delete_subtree_ops(&state, &path, version, &caller.ids)?
    } else {
        vec![TxnOp::Delete { path: path.clone(), version }]
    };
    let deleted = ops.len();
    let op = if deleted == 1 { ops.into_iter().next().unwrap_or(TxnOp::Multi(Vec::new())) } else { TxnOp::Multi(ops) };
    run_write(&state, op, &caller.ids).await?;
    Ok(Json(DeleteResult { path, deleted }).into_response())
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;

    #[test]
    fn natural_order_reads_numbers_as_numbers() {
        let mut v = vec!["n10", "n1", "n0", "n2", "a", "n01", "item-10000", "item-9", "b1c10", "b1c9", "n", "n007x"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a", "b1c9", "b1c10", "item-9", "item-10000", "n", "n0", "n01", "n1", "n2", "n007x", "n10"]);
    }
}
