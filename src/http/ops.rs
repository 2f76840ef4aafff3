//! Operations over several nodes: multi, copy, move, search, reformat, and the helpers
//! every write shares (running a write, mapping a failed multi, walking a subtree).
//! Export and import live in [`super::transfer`].

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::proto::types::{Acl, ErrorCode, Id, Stat};
use crate::tree::txn::{OpResult, TxnOp};

use super::auth::Caller;
use super::backend::SearchQuery;
use super::codec::{self, acl_from_json, AclIn, StatJson};
use super::error::{parse_json, ApiError};
use super::jobs::{self, JobMode, JobQuery, JobSpec};
use super::znode::{create_ops, input_data, CreateRequest};
use super::{zk_session, State};

/// The path an op works on.
fn op_path(op: &TxnOp) -> Option<&str> {
    match op {
        TxnOp::Create { path, .. }
        | TxnOp::Delete { path, .. }
        | TxnOp::SetData { path, .. }
        | TxnOp::SetAcl { path, .. }
        | TxnOp::Check { path, .. }
        | TxnOp::DeleteContainer { path } => Some(path),
        _ => None,
    }
}

/// Proposes one write and maps failures (including a multi whose sub-op failed) to
/// [`ApiError`] naming the failing path and op index. A read-only server refuses it at
/// once, as the native port does.
pub async fn run_write(state: &State, op: TxnOp, ids: &[Id]) -> Result<OpResult, ApiError> {
    run_write_in(state, op, ids, None).await
}

/// [`run_write`] as ZooKeeper session `session` when given (see [`super::zk_session`]).
pub async fn run_write_in(state: &State, op: TxnOp, ids: &[Id], session: Option<i64>) -> Result<OpResult, ApiError> {
    let sub_paths: Vec<Option<String>> = match &op {
        TxnOp::Multi(ops) => ops.iter().map(|o| op_path(o).map(str::to_owned)).collect(),
        other => vec![op_path(other).map(str::to_owned)],
    };
    let is_multi = matches!(op, TxnOp::Multi(_));
    let result = if state.backend.read_only() {
        Err(ErrorCode::NotReadOnly)
    } else {
        match session {
            Some(id) => state.backend.write_in_session(id, op, ids.to_vec()).await,
            None => state.backend.write(op, ids.to_vec()).await,
        }
    };
    match result {
        Ok(OpResult::Multi(results)) => {
            let failed = results.iter().enumerate().find_map(|(i, r)| match r {
                Err(c) if *c != ErrorCode::Ok && *c != ErrorCode::RuntimeInconsistency => Some((i, *c)),
                _ => None,
            });
            match failed {
                Some((i, code)) => {
                    Err(ApiError::Zk { code, path: sub_paths.get(i).cloned().flatten(), index: Some(i) })
                }
                None => Ok(OpResult::Multi(results)),
            }
        }
        Ok(r) => Ok(r),
        Err(code) => Err(ApiError::Zk {
            code,
            path: if is_multi { None } else { sub_paths.into_iter().next().flatten() },
            index: None,
        }),
    }
}

/// The stat carried by a write result, if any.
pub fn stat_of(r: &OpResult) -> Option<Stat> {
    match r {
        OpResult::Stat(s) | OpResult::Created { stat: s, .. } => Some(*s),
        _ => None,
    }
}

/// Every path of the subtree at `root`, parents before children, with the caller's
/// identities (listing a node's children needs READ on it, as with zkCli's deleteall).
pub fn walk(state: &State, root: &str, ids: &[Id], limit: usize) -> Result<Vec<String>, ApiError> {
    let mut out = vec![root.to_owned()];
    let mut i = 0;
    while i < out.len() {
        let path = out[i].clone();
        let (mut names, _) = state.backend.children(&path, ids).map_err(|c| ApiError::zk(c, &path))?;
        names.sort_unstable();
        out.extend(names.iter().map(|n| codec::join(&path, n)));
        if out.len() > limit {
            return Err(ApiError::TooLarge(format!(
                "the subtree at {root} has more than {limit} nodes, the most one atomic multi may change; \
                 add job=auto to run it as a job in batches (not atomic: see GET /api/v1/jobs)"
            )));
        }
        i += 1;
    }
    Ok(out)
}

/// The deletes of a recursive delete, deepest first; `version` applies to the root.
pub fn delete_subtree_ops(state: &State, root: &str, version: i32, ids: &[Id]) -> Result<Vec<TxnOp>, ApiError> {
    let paths = walk(state, root, ids, state.opts.max_subtree_ops)?;
    Ok(paths
        .into_iter()
        .rev()
        .map(|p| {
            let v = if p == root { version } else { -1 };
            TxnOp::Delete { path: p, version: v }
        })
        .collect())
}

/// One op of `POST /api/v1/multi`.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum MultiOp {
    Create {
        path: String,
        #[serde(flatten)]
        spec: CreateRequest,
    },
    Delete {
        path: String,
        version: Option<i32>,
    },
    SetData {
        path: String,
        data: Option<String>,
        encoding: Option<String>,
        version: Option<i32>,
    },
    SetAcl {
        path: String,
        acl: Vec<AclIn>,
        version: Option<i32>,
    },
    Check {
        path: String,
        version: i32,
    },
}

/// Body of `POST /api/v1/multi`.
#[derive(Debug, Deserialize)]
pub struct MultiRequest {
    pub ops: Vec<MultiOp>,
}

/// Result of one op of a successful multi.
#[derive(Debug, Serialize)]
pub struct MultiResult {
    pub op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat: Option<StatJson>,
}

fn to_txn_op(state: &State, op: &MultiOp) -> Result<TxnOp, ApiError> {
    let checked = |p: &str| codec::validate_path(p, false).map(|_| p.to_owned());
    Ok(match op {
        MultiOp::Create { path, spec } => {
            if spec.create_parents {
                return Err(ApiError::bad_request("createParents is not supported inside multi"));
            }
            create_ops(state, path, spec, &[])?.remove(0)
        }
        MultiOp::Delete { path, version } => TxnOp::Delete { path: checked(path)?, version: version.unwrap_or(-1) },
        MultiOp::SetData { path, data, encoding, version } => TxnOp::SetData {
            path: checked(path)?,
            data: input_data(state, data.as_deref(), encoding.as_deref())?,
            version: version.unwrap_or(-1),
        },
        MultiOp::SetAcl { path, acl, version } => {
            if acl.is_empty() {
                return Err(ApiError::zk(ErrorCode::InvalidAcl, path));
            }
            TxnOp::SetAcl { path: checked(path)?, acl: acl_from_json(Some(acl))?, version: version.unwrap_or(-1) }
        }
        MultiOp::Check { path, version } => TxnOp::Check { path: checked(path)?, version: *version },
    })
}

fn describe(r: &OpResult) -> MultiResult {
    let (op, path, stat) = match r {
        OpResult::Created { path, stat } => ("create", Some(path.clone()), Some(StatJson::from(stat))),
        OpResult::Deleted => ("delete", None, None),
        OpResult::Stat(s) => ("setData", None, Some(StatJson::from(s))),
        OpResult::Checked => ("check", None, None),
        _ => ("other", None, None),
    };
    MultiResult { op, path, stat }
}

/// Turns ops into one write and describes the results.
pub(crate) async fn run_ops(state: &State, ops: Vec<TxnOp>, ids: &[Id]) -> Result<Vec<MultiResult>, ApiError> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    check_multi_size(state, &ops)?;
    let kinds = kinds_of(&ops);
    Ok(describe_all(run_write(state, TxnOp::Multi(ops), ids).await?, kinds))
}

/// Refuses a multi longer than the subtree limit.
fn check_multi_size(state: &State, ops: &[TxnOp]) -> Result<(), ApiError> {
    if ops.len() > state.opts.max_subtree_ops {
        return Err(ApiError::TooLarge(format!("more than {} ops in one multi", state.opts.max_subtree_ops)));
    }
    Ok(())
}

/// The op names [`describe`] cannot tell from a result (a setACL answers with a stat, as
/// setData does).
fn kinds_of(ops: &[TxnOp]) -> Vec<&'static str> {
    ops.iter()
        .map(|o| match o {
            TxnOp::SetAcl { .. } => "setAcl",
            _ => "",
        })
        .collect()
}

/// Describes the results of a multi, op by op.
fn describe_all(result: OpResult, kinds: Vec<&'static str>) -> Vec<MultiResult> {
    match result {
        OpResult::Multi(results) => results
            .iter()
            .zip(kinds)
            .map(|(r, k)| {
                let mut d = r.as_ref().map(describe).unwrap_or(MultiResult { op: "error", path: None, stat: None });
                if !k.is_empty() {
                    d.op = k;
                }
                d
            })
            .collect(),
        other => vec![describe(&other)],
    }
}

/// `POST /api/v1/multi`: `{ "ops": [ {"op": "create"|"delete"|"setData"|"setAcl"|"check", ...} ] }`,
/// applied atomically. On failure the status follows the failing op's error and the
/// body names its `index`.
pub async fn multi(
    AxState(state): AxState<State>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: MultiRequest = parse_json(&body?)?;
    let ops = req.ops.iter().map(|o| to_txn_op(&state, o)).collect::<Result<Vec<_>, _>>()?;
    if ops.is_empty() || !ops.iter().any(zk_session::needs_session) {
        let results = run_ops(&state, ops, &caller.ids).await?;
        return Ok(Json(serde_json::json!({ "results": results })).into_response());
    }
    // Ephemeral creates: as the browser session's ZooKeeper session.
    check_multi_size(&state, &ops)?;
    let kinds = kinds_of(&ops);
    let (result, made) = zk_session::write(&state, &caller, TxnOp::Multi(ops)).await?;
    let mut resp = Json(serde_json::json!({ "results": describe_all(result, kinds) })).into_response();
    made.add_to(&mut resp);
    Ok(resp)
}

/// Source data of a copy: path, data and ACL of every node of a subtree.
pub(crate) struct Snapshot {
    pub(crate) rel: String,
    pub(crate) data: Option<Vec<u8>>,
    pub(crate) acl: Vec<Acl>,
    /// Owned by a session: a copy leaves it out.
    pub(crate) ephemeral: bool,
}

/// The subtree at `root` as the caller may read it. The ACLs are the stored ones, not the
/// masked form (`user:x`) a caller without ADMIN is shown: a copy or move must give the new
/// nodes the same ACL, and writing the mask back would lock the owner out. The caller never
/// sees them: a copy with the same ACL masks them from the caller the same way.
pub(crate) fn snapshot(state: &State, root: &str, ids: &[Id]) -> Result<Vec<Snapshot>, ApiError> {
    let server = [Id::new("super", "")];
    walk(state, root, ids, state.opts.max_subtree_ops)?
        .into_iter()
        .map(|p| {
            let node = state.backend.get(&p, ids).map_err(|c| ApiError::zk(c, &p))?;
            let (acl, _) = state.backend.get_acl(&p, &server).map_err(|c| ApiError::zk(c, &p))?;
            let rel = p[root.len()..].to_owned();
            Ok(Snapshot { rel, data: node.data, acl, ephemeral: node.stat.ephemeral_owner != 0 })
        })
        .collect()
}

fn creates_at(dest: &str, snap: &[Snapshot]) -> Vec<TxnOp> {
    snap.iter()
        .map(|s| TxnOp::Create {
            path: if dest == "/" { s.rel.clone() } else { format!("{dest}{}", s.rel) },
            data: s.data.clone(),
            acl: s.acl.clone(),
            mode: crate::proto::types::CreateMode::Persistent,
            ttl_ms: None,
        })
        .collect()
}

/// Body of copy and move.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyRequest {
    pub source: String,
    /// The new path of the source node itself.
    pub destination: String,
    /// Create the destination's missing ancestors (persistent, no data, with the source's
    /// ACL), in the same multi.
    #[serde(default)]
    pub create_parents: bool,
}

/// The creates of a copy or move: missing parents first when asked for, then the subtree.
fn copy_creates(state: &State, req: &CopyRequest, snap: &[Snapshot], ids: &[Id]) -> Vec<TxnOp> {
    let mut ops = match (req.create_parents, snap.first()) {
        (true, Some(root)) => super::znode::missing_parents(state, &req.destination, ids, &root.acl),
        _ => Vec::new(),
    };
    ops.extend(creates_at(&req.destination, snap));
    ops
}

fn check_copy(req: &CopyRequest) -> Result<(), ApiError> {
    codec::validate_path(&req.source, false)?;
    codec::validate_path(&req.destination, false)?;
    if req.source == "/" || req.destination == "/" {
        return Err(ApiError::bad_request("cannot copy or move the root"));
    }
    if req.destination == req.source || req.destination.starts_with(&format!("{}/", req.source)) {
        return Err(ApiError::bad_request("the destination lies inside the source"));
    }
    Ok(())
}

/// The ephemeral nodes at or under `root`, of every session.
pub(crate) fn ephemerals_under(state: &State, root: &str) -> Vec<String> {
    let below = format!("{root}/");
    let server = [Id::new("super", "")];
    let mut found: Vec<String> = state
        .backend
        .sessions(&server)
        .into_iter()
        .flat_map(|s| s.ephemerals)
        .filter(|p| p == root || p.starts_with(&below))
        .collect();
    found.sort();
    found
}

/// An ephemeral node belongs to the session that made it and ends with it: a copy leaves
/// ephemerals out (a persistent copy of a lock or a registration would outlive its owner
/// and mislead whoever reads it), and a move, which deletes its source, is refused while
/// the source holds any (it would delete them from under their live owners).
fn check_ephemerals(state: &State, req: &CopyRequest, moving: bool) -> Result<(), ApiError> {
    let found = ephemerals_under(state, &req.source);
    if found.first().is_some_and(|p| *p == req.source) {
        return Err(ApiError::bad_request(format!(
            "{} is an ephemeral node: it belongs to its session and is not copied or moved",
            req.source
        )));
    }
    if moving && !found.is_empty() {
        let shown: Vec<&str> = found.iter().take(3).map(String::as_str).collect();
        return Err(ApiError::bad_request(format!(
            "{} holds {} ephemeral node(s) of live sessions ({}{}): moving it would delete them from under \
             their owners. Copy it instead (ephemeral nodes are left out), or wait until they are gone.",
            req.source,
            found.len(),
            shown.join(", "),
            if found.len() > shown.len() { ", ..." } else { "" }
        )));
    }
    Ok(())
}

fn job_query(q: Result<Query<JobQuery>, QueryRejection>) -> Result<JobMode, ApiError> {
    q.map(|Query(q)| q.job).map_err(|e| ApiError::bad_request(e.body_text()))
}

/// `POST /api/v1/copy[?job=auto|always]` `{source, destination}`: duplicates a subtree
/// (data and ACLs; modes become persistent; ephemeral nodes are left out) in one multi, or
/// as a job (202).
pub async fn copy(
    AxState(state): AxState<State>,
    caller: Caller,
    q: Result<Query<JobQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let mode = job_query(q)?;
    let req: CopyRequest = parse_json(&body?)?;
    check_copy(&req)?;
    check_ephemerals(&state, &req, false)?;
    if jobs::decide(&state, mode, &req.source, &caller.ids)? {
        let spec =
            JobSpec::Copy { source: req.source, destination: req.destination, create_parents: req.create_parents };
        return jobs::start(&state, &caller.ids, spec);
    }
    let (snap, ephemeral): (Vec<Snapshot>, Vec<Snapshot>) =
        snapshot(&state, &req.source, &caller.ids)?.into_iter().partition(|s| !s.ephemeral);
    let results = run_ops(&state, copy_creates(&state, &req, &snap, &caller.ids), &caller.ids).await?;
    let skipped: Vec<String> = ephemeral.iter().map(|s| format!("{}{}", req.source, s.rel)).collect();
    Ok(Json(serde_json::json!({
        "created": results.len(),
        "path": req.destination,
        "skippedEphemeral": skipped.len(),
        "skippedEphemeralPaths": skipped,
    }))
    .into_response())
}

/// `POST /api/v1/move[?job=auto|always]` `{source, destination}`: copy + delete of the
/// source in one multi, or as a job (202): all copied first, then the source deleted.
pub async fn move_subtree(
    AxState(state): AxState<State>,
    caller: Caller,
    q: Result<Query<JobQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let mode = job_query(q)?;
    let req: CopyRequest = parse_json(&body?)?;
    check_copy(&req)?;
    check_ephemerals(&state, &req, true)?;
    if jobs::decide(&state, mode, &req.source, &caller.ids)? {
        let spec =
            JobSpec::Move { source: req.source, destination: req.destination, create_parents: req.create_parents };
        return jobs::start(&state, &caller.ids, spec);
    }
    let snap = snapshot(&state, &req.source, &caller.ids)?;
    let mut ops = copy_creates(&state, &req, &snap, &caller.ids);
    ops.extend(snap.iter().rev().map(|s| TxnOp::Delete { path: format!("{}{}", req.source, s.rel), version: -1 }));
    run_ops(&state, ops, &caller.ids).await?;
    Ok(Json(serde_json::json!({ "moved": snap.len(), "path": req.destination })).into_response())
}

/// Query of search.
#[derive(Debug, Deserialize)]
pub struct SearchParams {
    pub q: String,
    #[serde(default)]
    pub regex: bool,
    #[serde(default)]
    pub data: bool,
    pub root: Option<String>,
    pub limit: Option<usize>,
}

/// `GET /api/v1/search?q=&regex=&data=&root=&limit=`: paths whose path (or data) matches.
pub async fn search(
    AxState(state): AxState<State>,
    caller: Caller,
    q: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if q.regex {
        regex::Regex::new(&q.q).map_err(|e| ApiError::bad_request(format!("invalid regex: {e}")))?;
    }
    let root = q.root.unwrap_or_else(|| "/".into());
    codec::validate_path(&root, false)?;
    let query = SearchQuery { text: q.q, regex: q.regex, in_data: q.data, root };
    let limit = q.limit.unwrap_or(200).clamp(1, 5000);
    let found = run_search(&state, query, caller.ids, limit).await?;
    Ok(Json(serde_json::json!({ "paths": found.paths, "complete": found.stopped.is_none(), "stopped": found.stopped })))
}

/// Runs a search on a blocking thread: it walks the tree in slices and must not hold up
/// the async runtime that serves clients meanwhile.
pub(crate) async fn run_search(
    state: &State,
    query: SearchQuery,
    ids: Vec<Id>,
    limit: usize,
) -> Result<super::SearchResult, ApiError> {
    let backend = state.backend.clone();
    tokio::task::spawn_blocking(move || backend.search(&query, &ids, limit)).await.map_err(|_| ApiError::Zk {
        code: crate::proto::types::ErrorCode::SystemError,
        path: None,
        index: None,
    })
}

/// Body of `POST /api/v1/reformat`.
#[derive(Debug, Deserialize)]
pub struct ReformatRequest {
    /// Only `"yaml"` (JSON is re-indented in the browser, token by token).
    pub format: String,
    pub text: String,
}

/// `POST /api/v1/reformat` `{format: "yaml", text}`: the text re-indented without any
/// change of meaning (see [`super::yaml`]), or 400 saying why it cannot be. Changes
/// nothing on the server, so it is allowed on a read-only port too.
pub async fn reformat(body: Result<Bytes, BytesRejection>) -> Result<Json<serde_json::Value>, ApiError> {
    let req: ReformatRequest = parse_json(&body?)?;
    if req.format != "yaml" {
        return Err(ApiError::bad_request(format!("cannot reformat {:?}: only \"yaml\" is supported", req.format)));
    }
    let text = super::yaml::reformat(&req.text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(serde_json::json!({ "format": "yaml", "text": text })))
}
