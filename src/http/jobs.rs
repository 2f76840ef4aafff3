//! Subtree jobs: delete, copy, move, recursive ACL and export of subtrees larger than one
//! multi (`max_subtree_ops`), run on the server in bounded batches.
//!
//! A subtree up to the multi limit is changed atomically, in one multi, as before. A larger
//! one (or any, with `?job=always`) becomes a *job*: the endpoint answers `202 Accepted`
//! with `{"job": {...}}` and a `Location: /api/v1/jobs/<id>`, and the job walks the live
//! tree and proposes one multi per batch (`JobLimits::batch` ops) with the identities of
//! the caller who started it, so every batch is checked against the ACLs as they are when
//! that batch is applied. Between batches nothing is held: clients keep reading and
//! writing, and the tree lock is only taken for one listing, one read or one multi at a
//! time.
//!
//! A job is **not atomic**: each batch is. What a cancelled or failed job leaves behind is
//! said by its `outcome`:
//! - delete removes leaves first (post-order), so whatever remains is the top of the
//!   subtree: the root and the nodes whose children were not all deleted yet. A child
//!   created under the subtree while the job runs is deleted too (the delete retries the
//!   batch after listing the newcomers, like `zkCli deleteall`), at most
//!   [`NOT_EMPTY_RETRIES`] times per job; then it fails with `NotEmpty` naming the node.
//! - copy creates parents first, so a partial copy is a connected top part of the subtree
//!   at the destination; the source is untouched.
//! - move is a copy, then a delete of the source. A node created in the source while it
//!   runs is *not* deleted (it was not copied): the job fails with `NotEmpty` and the
//!   source keeps that node and its ancestors.
//! - recursive ACL sets parents first; a partial run leaves the top part with the new ACL.
//! - export streams the document as it walks; a cut-short download is not valid JSON.
//!
//! Nodes that vanish while a job runs (deleted by someone else) are skipped. Nodes created
//! in a copied subtree after the job passed their parent are not copied.
//!
//! Bounds ([`JobLimits`]): at most `max_nodes` per job, `max_running` jobs at once on the
//! member and `max_running_per_owner` per identity; finished jobs are kept `keep_for`
//! and at most `keep_finished` of them. A job is visible only to callers with exactly the
//! identities that started it, and to `super`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::proto::types::{Acl, CreateMode, ErrorCode, Id};
use crate::tree::txn::TxnOp;

use super::auth::Caller;
use super::codec::{self, acl_to_json, encode_data, AclJson, Encoding};
use super::error::{ApiError, ErrorBody};
use super::ops::run_write;
use super::State;

/// How often a delete job lists and deletes nodes created under its subtree meanwhile,
/// before it gives up with `NotEmpty`.
pub const NOT_EMPTY_RETRIES: u32 = 10;

/// Bounds of the job engine.
#[derive(Debug, Clone, PartialEq)]
pub struct JobLimits {
    /// Most nodes one job may touch.
    pub max_nodes: usize,
    /// Ops per batch (one multi each).
    pub batch: usize,
    /// Jobs running at once on this member.
    pub max_running: usize,
    /// Jobs running at once for one identity.
    pub max_running_per_owner: usize,
    /// Finished jobs kept for `GET /api/v1/jobs`.
    pub keep_finished: usize,
    /// How long a finished job stays listed.
    pub keep_for: Duration,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits {
            max_nodes: 1_000_000,
            batch: 1000,
            max_running: 4,
            max_running_per_owner: 2,
            keep_finished: 100,
            keep_for: Duration::from_secs(3600),
        }
    }
}

/// When an operation on a subtree becomes a job: `?job=never` (the default: atomic or
/// 413), `auto` (atomic up to the multi limit, a job above it), `always`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobMode {
    #[default]
    #[serde(alias = "false")]
    Never,
    Auto,
    #[serde(alias = "true")]
    Always,
}

/// The `job` query parameter, for endpoints that take no other query.
#[derive(Debug, Default, Deserialize)]
pub struct JobQuery {
    #[serde(default)]
    pub job: JobMode,
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum JobKind {
    Delete,
    Copy,
    Move,
    SetAcl,
    Export,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum JobState {
    Running,
    Done,
    Failed,
    Cancelled,
}

/// The work of a job (export is driven by its download instead, see [`export_stream`]).
#[derive(Debug, Clone)]
pub enum JobSpec {
    Delete { path: String, version: i32 },
    Copy { source: String, destination: String, create_parents: bool },
    Move { source: String, destination: String, create_parents: bool },
    SetAcl { path: String, acl: Vec<Acl>, version: i32 },
}

impl JobSpec {
    fn kind(&self) -> JobKind {
        match self {
            JobSpec::Delete { .. } => JobKind::Delete,
            JobSpec::Copy { .. } => JobKind::Copy,
            JobSpec::Move { .. } => JobKind::Move,
            JobSpec::SetAcl { .. } => JobKind::SetAcl,
        }
    }
    fn paths(&self) -> (String, Option<String>) {
        match self {
            JobSpec::Delete { path, .. } | JobSpec::SetAcl { path, .. } => (path.clone(), None),
            JobSpec::Copy { source, destination, .. } | JobSpec::Move { source, destination, .. } => {
                (source.clone(), Some(destination.clone()))
            }
        }
    }
}

/// Progress of a job, as `GET /api/v1/jobs/<id>` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub state: JobState,
    /// `counting`, `copy`, `delete`, `setAcl`, `export`, or `finished`.
    pub phase: &'static str,
    /// Nodes handled (for a move, copied plus deleted).
    pub done: u64,
    /// Nodes to handle, as counted when the job started (a move counts each node twice);
    /// `null` while counting. Grows if nodes are found that were created meanwhile.
    pub total: Option<u64>,
    /// Multis applied.
    pub batches: u64,
    /// Nodes that vanished while the job ran (deleted by someone else) and were skipped.
    pub vanished: u64,
    /// Ephemeral nodes left out (export, copy).
    pub skipped_ephemeral: u64,
    /// Nodes the caller may not read, left out with their subtrees (export).
    pub skipped_unreadable: u64,
    pub error: Option<ErrorBody>,
    /// What the job did, and, if it stopped early, what is left where.
    pub outcome: String,
    pub finished_at: Option<u64>,
}

/// A job: what it is, who started it, and its progress.
pub struct Job {
    pub id: u64,
    pub kind: JobKind,
    pub path: String,
    pub destination: Option<String>,
    owner: Vec<Id>,
    started_at: u64,
    finished: Mutex<Option<Instant>>,
    cancel: AtomicBool,
    progress: Mutex<Progress>,
}

/// The JSON of a job.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobJson {
    pub id: u64,
    pub kind: JobKind,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Always false: each batch is atomic, the job is not.
    pub atomic: bool,
    pub batch_size: usize,
    pub started_at: u64,
    #[serde(flatten)]
    pub progress: Progress,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Job {
    /// The job as JSON, with the batch size it runs with.
    pub fn json(&self, batch: usize) -> JobJson {
        JobJson {
            id: self.id,
            kind: self.kind,
            path: self.path.clone(),
            destination: self.destination.clone(),
            atomic: false,
            batch_size: batch,
            started_at: self.started_at,
            progress: self.progress.lock().clone(),
        }
    }

    pub fn state(&self) -> JobState {
        self.progress.lock().state
    }

    fn running(&self) -> bool {
        self.state() == JobState::Running
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.progress.lock());
    }

    fn finish(&self, state: JobState, error: Option<ErrorBody>, outcome: String) {
        {
            let mut p = self.progress.lock();
            p.state = state;
            p.phase = "finished";
            p.error = error;
            p.outcome = outcome;
            p.finished_at = Some(now_ms());
        }
        *self.finished.lock() = Some(Instant::now());
    }

    fn visible_to(&self, ids: &[Id]) -> bool {
        ids.iter().any(|i| i.scheme == "super") || owner_key(ids) == self.owner
    }
}

/// The identities a job belongs to: the caller's, sorted (the `ip:` identity included, so
/// two anonymous callers share jobs only when they share an address, and with it every
/// permission ZooKeeper would give them).
fn owner_key(ids: &[Id]) -> Vec<Id> {
    let mut v = ids.to_vec();
    v.sort();
    v.dedup();
    v
}

/// The jobs of this member.
#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    jobs: Mutex<BTreeMap<u64, Arc<Job>>>,
}

impl Jobs {
    /// Registers a running job, or refuses it (429) when the bounds are reached.
    fn register(
        &self,
        limits: &JobLimits,
        ids: &[Id],
        kind: JobKind,
        path: String,
        destination: Option<String>,
    ) -> Result<Arc<Job>, ApiError> {
        let owner = owner_key(ids);
        let mut jobs = self.jobs.lock();
        prune(&mut jobs, limits);
        let running: Vec<&Arc<Job>> = jobs.values().filter(|j| j.running()).collect();
        if running.len() >= limits.max_running {
            return Err(ApiError::Busy(format!(
                "{} jobs are running on this member (the limit); try again when one has finished",
                running.len()
            )));
        }
        let mine = running.iter().filter(|j| j.owner == owner).count();
        if mine >= limits.max_running_per_owner {
            return Err(ApiError::Busy(format!(
                "you have {mine} jobs running (the limit per identity); wait for one or cancel it"
            )));
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Arc::new(Job {
            id,
            kind,
            path,
            destination,
            owner,
            started_at: now_ms(),
            finished: Mutex::new(None),
            cancel: AtomicBool::new(false),
            progress: Mutex::new(Progress {
                state: JobState::Running,
                phase: "counting",
                done: 0,
                total: None,
                batches: 0,
                vanished: 0,
                skipped_ephemeral: 0,
                skipped_unreadable: 0,
                error: None,
                outcome: String::new(),
                finished_at: None,
            }),
        });
        jobs.insert(id, job.clone());
        Ok(job)
    }

    fn get(&self, id: u64, ids: &[Id]) -> Option<Arc<Job>> {
        self.jobs.lock().get(&id).filter(|j| j.visible_to(ids)).cloned()
    }

    fn list(&self, limits: &JobLimits, ids: &[Id]) -> Vec<Arc<Job>> {
        let mut jobs = self.jobs.lock();
        prune(&mut jobs, limits);
        jobs.values().rev().filter(|j| j.visible_to(ids)).cloned().collect()
    }

    fn remove(&self, id: u64) {
        self.jobs.lock().remove(&id);
    }
}

/// Drops finished jobs past their time, then the oldest finished ones past the count.
fn prune(jobs: &mut BTreeMap<u64, Arc<Job>>, limits: &JobLimits) {
    jobs.retain(|_, j| j.finished.lock().is_none_or(|t| t.elapsed() < limits.keep_for));
    let finished: Vec<u64> = jobs.iter().filter(|(_, j)| !j.running()).map(|(id, _)| *id).collect();
    for id in finished.iter().take(finished.len().saturating_sub(limits.keep_finished)) {
        jobs.remove(id);
    }
}

/// The 202 answer of a started job.
pub fn accepted(state: &State, job: &Job) -> Response {
    let location = format!("{}/api/v1/jobs/{}", state.base, job.id);
    let mut resp =
        (StatusCode::ACCEPTED, Json(serde_json::json!({ "job": job.json(state.opts.jobs.batch) }))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Starts a job with the caller's identities and answers 202.
pub fn start(state: &State, ids: &[Id], spec: JobSpec) -> Result<Response, ApiError> {
    let (path, destination) = spec.paths();
    // A root that is missing or that the caller may not list is refused now, not as a job.
    state.backend.children(&path, ids).map_err(|c| ApiError::zk(c, &path))?;
    let job = state.jobs.register(&state.opts.jobs, ids, spec.kind(), path, destination)?;
    let resp = accepted(state, &job);
    let (state, ids) = (state.clone(), ids.to_vec());
    tokio::spawn(async move {
        let mut run = Run { state: &state, job: &job, ids: &ids, not_empty_retries: 0 };
        let result = run.go(&spec).await;
        let (st, error) = match result {
            Ok(()) => (JobState::Done, None),
            Err(Stop::Cancelled) => (JobState::Cancelled, None),
            Err(Stop::Failed(e)) => (JobState::Failed, Some(e.body())),
        };
        let outcome = describe(&spec, &job.progress.lock(), st);
        job.finish(st, error, outcome);
        tracing::info!(id = job.id, kind = ?job.kind, path = %job.path, state = ?st, "subtree job finished");
    });
    Ok(resp)
}

/// What a job did, and what is left where if it stopped early.
fn describe(spec: &JobSpec, p: &Progress, st: JobState) -> String {
    let n = p.done;
    let total = p.total.map_or_else(|| "?".to_owned(), |t| t.to_string());
    let stopped = match st {
        JobState::Done => None,
        JobState::Cancelled => Some("Cancelled"),
        _ => Some("Failed"),
    };
    match (spec, stopped) {
        (JobSpec::Delete { path, .. }, None) => format!("Deleted {path} and its subtree: {n} nodes."),
        (JobSpec::Delete { path, .. }, Some(why)) => format!(
            "{why} after deleting {n} of {total} nodes, leaves first: what remains of {path} is its top part \
             (the root and every node whose children were not all deleted yet)."
        ),
        (JobSpec::Copy { source, destination, .. }, None) => {
            let skipped = match p.skipped_ephemeral {
                0 => String::new(),
                k => format!(" {k} ephemeral nodes were left out (they belong to client sessions)."),
            };
            format!("Copied {} nodes from {source} to {destination}.{skipped}", n - p.skipped_ephemeral.min(n))
        }
        (JobSpec::Copy { destination, source, .. }, Some(why)) => format!(
            "{why} after copying {n} of {total} nodes: {destination} holds a partial copy (parents first, so \
             a connected top part of the subtree); {source} is unchanged."
        ),
        (JobSpec::Move { source, destination, .. }, None) => {
            format!("Moved {source} to {destination}: {} nodes.", n / 2)
        }
        (JobSpec::Move { source, destination, .. }, Some(why)) => {
            let half = p.total.map_or(u64::MAX, |t| t / 2);
            if n < half || p.phase == "copy" {
                format!(
                    "{why} while copying ({n} of {half} nodes copied): {destination} holds a partial copy; \
                     {source} is unchanged."
                )
            } else {
                format!(
                    "{why} while deleting the source after a complete copy: {destination} is complete; \
                     {} of {half} source nodes were deleted (leaves first), what remains of {source} is its top part.",
                    n - half
                )
            }
        }
        (JobSpec::SetAcl { path, .. }, None) => format!("Set the ACL of {path} and its subtree: {n} nodes."),
        (JobSpec::SetAcl { path, .. }, Some(why)) => format!(
            "{why} after setting the ACL of {n} of {total} nodes under {path}, parents first: the nodes not \
             reached keep their old ACL."
        ),
    }
}

/// Why a job stopped early.
enum Stop {
    Cancelled,
    Failed(ApiError),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        Stop::Failed(e)
    }
}

/// A walk of a live subtree that lists each node's children when it reaches it, keeping
/// only the names of the nodes on the way down (never the whole subtree).
struct Cursor {
    root: String,
    stack: Vec<(String, Vec<String>, usize)>,
    started: bool,
    /// Leave out (and count) the subtrees of nodes the caller may not read, instead of
    /// failing with `NoAuth` (an export gives what the caller can read, as search does).
    skip_unreadable: bool,
    unreadable: u64,
    /// The first 100 of them.
    unreadable_paths: Vec<String>,
}

impl Cursor {
    fn new(root: &str) -> Cursor {
        Cursor {
            root: root.to_owned(),
            stack: Vec::new(),
            started: false,
            skip_unreadable: false,
            unreadable: 0,
            unreadable_paths: Vec::new(),
        }
    }

    fn readable(root: &str) -> Cursor {
        Cursor { skip_unreadable: true, ..Cursor::new(root) }
    }

    fn note_unreadable(&mut self, path: String) {
        self.unreadable += 1;
        if self.unreadable_paths.len() < 100 {
            self.unreadable_paths.push(path);
        }
    }

    fn list(state: &State, path: &str, ids: &[Id]) -> Result<Option<Vec<String>>, ApiError> {
        match state.backend.children(path, ids) {
            Ok((mut names, _)) => {
                names.sort_unstable();
                Ok(Some(names))
            }
            Err(ErrorCode::NoNode) => Ok(None),
            Err(c) => Err(ApiError::zk(c, path)),
        }
    }

    /// The children of a node below the root: `None` when it vanished, or when it may not
    /// be read and such nodes are skipped.
    fn list_child(&mut self, state: &State, path: &str, ids: &[Id]) -> Result<Option<Vec<String>>, ApiError> {
        match Self::list(state, path, ids) {
            Err(ApiError::Zk { code: ErrorCode::NoAuth, .. }) if self.skip_unreadable => {
                self.note_unreadable(path.to_owned());
                Ok(None)
            }
            other => other,
        }
    }

    /// The next child to visit (`Ok`), or the node whose children are all visited (`Err`,
    /// popped); `None` at the end.
    fn next_child(&mut self) -> Option<Result<String, String>> {
        let (parent, names, next) = self.stack.last_mut()?;
        if *next < names.len() {
            let path = codec::join(parent, &names[*next]);
            *next += 1;
            Some(Ok(path))
        } else {
            self.stack.pop().map(|(p, _, _)| Err(p))
        }
    }

    /// The next node parents first, with its depth below the root; `None` at the end.
    fn next_pre(&mut self, state: &State, ids: &[Id]) -> Result<Option<(String, usize)>, ApiError> {
        if !self.started {
            self.started = true;
            let names =
                Self::list(state, &self.root, ids)?.ok_or_else(|| ApiError::zk(ErrorCode::NoNode, &self.root))?;
            self.stack.push((self.root.clone(), names, 0));
            return Ok(Some((self.root.clone(), 0)));
        }
        while let Some(step) = self.next_child() {
            if let Ok(path) = step {
                if let Some(kids) = self.list_child(state, &path, ids)? {
                    let depth = self.stack.len();
                    self.stack.push((path.clone(), kids, 0));
                    return Ok(Some((path, depth)));
                }
            }
        }
        Ok(None)
    }

    /// The next node children first; `None` at the end.
    fn next_post(&mut self, state: &State, ids: &[Id]) -> Result<Option<String>, ApiError> {
        if !self.started {
            self.started = true;
            match Self::list(state, &self.root, ids)? {
                Some(names) => self.stack.push((self.root.clone(), names, 0)),
                None => return Ok(None),
            }
        }
        while let Some(step) = self.next_child() {
            match step {
                Ok(path) => {
                    if let Some(kids) = self.list_child(state, &path, ids)? {
                        self.stack.push((path, kids, 0));
                    }
                }
                Err(finished) => return Ok(Some(finished)),
            }
        }
        Ok(None)
    }
}

/// Whether the part of the subtree at `root` that the caller may read has more than
/// `limit` nodes (an export over the multi limit runs as a job).
pub fn readable_over(state: &State, root: &str, ids: &[Id], limit: usize) -> Result<bool, ApiError> {
    let mut c = Cursor::readable(root);
    let mut n = 0usize;
    while c.next_pre(state, ids)?.is_some() {
        n += 1;
        if n > limit {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Counts the nodes of the subtree at `root`, refusing more than `limit`.
fn count(state: &State, root: &str, ids: &[Id], limit: usize, job: Option<&Job>) -> Result<u64, Stop> {
    let readable = job.is_some_and(|j| j.kind == JobKind::Export);
    let mut c = if readable { Cursor::readable(root) } else { Cursor::new(root) };
    let mut n = 0u64;
    while c.next_pre(state, ids)?.is_some() {
        n += 1;
        if n as usize > limit {
            return Err(Stop::Failed(ApiError::TooLarge(format!(
                "the subtree at {root} has more than {limit} nodes, the most one job may touch"
            ))));
        }
        if n % 10_000 == 0 && job.is_some_and(Job::cancelled) {
            return Err(Stop::Cancelled);
        }
    }
    Ok(n)
}

struct Run<'a> {
    state: &'a State,
    job: &'a Job,
    ids: &'a [Id],
    not_empty_retries: u32,
}

impl Run<'_> {
    async fn go(&mut self, spec: &JobSpec) -> Result<(), Stop> {
        let limit = self.state.opts.jobs.max_nodes;
        let (root, _) = spec.paths();
        let n = count(self.state, &root, self.ids, limit, Some(self.job))?;
        let total = if matches!(spec, JobSpec::Move { .. }) { 2 * n } else { n };
        self.job.update(|p| p.total = Some(total));
        match spec {
            JobSpec::Delete { path, version } => self.delete(path, *version, true).await,
            JobSpec::SetAcl { path, acl, version } => self.set_acl(path, acl, *version).await,
            JobSpec::Copy { source, destination, create_parents } => {
                self.copy(source, destination, *create_parents).await
            }
            JobSpec::Move { source, destination, create_parents } => {
                self.copy(source, destination, *create_parents).await?;
                // The move was refused at the start if the source held ephemeral nodes; one
                // made while it copied must not be deleted from under its owner either.
                let found = super::ops::ephemerals_under(self.state, source);
                if let Some(first) = found.first() {
                    return Err(Stop::Failed(ApiError::bad_request(format!(
                        "{source} was copied to {destination} but not deleted: {} ephemeral node(s) of live \
                         sessions appeared in it meanwhile ({first}); delete the copy, or the source once they \
                         are gone",
                        found.len()
                    ))));
                }
                self.delete(source, -1, false).await
            }
        }
    }

    fn check_cancel(&self) -> Result<(), Stop> {
        if self.job.cancelled() {
            Err(Stop::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Proposes one batch; on success counts `counted` nodes as done.
    async fn submit(&self, ops: Vec<TxnOp>, counted: u64) -> Result<(), ApiError> {
        let op = TxnOp::Multi(ops);
        run_write(self.state, op, self.ids).await?;
        self.job.update(|p| {
            p.done += counted;
            p.batches += 1;
            if let Some(t) = p.total {
                p.total = Some(t.max(p.done));
            }
        });
        // Let the clients' requests in between two batches.
        tokio::task::yield_now().await;
        Ok(())
    }

    /// Deletes the subtree at `root` leaves first. `retry_new`: delete children created
    /// meanwhile (a delete job) or fail on them (the delete phase of a move).
    async fn delete(&mut self, root: &str, version: i32, retry_new: bool) -> Result<(), Stop> {
        self.job.update(|p| p.phase = "delete");
        let batch = self.state.opts.jobs.batch.max(1);
        let mut cursor = Cursor::new(root);
        let mut queue: VecDeque<String> = VecDeque::new();
        let mut exhausted = false;
        loop {
            self.check_cancel()?;
            while !exhausted && queue.len() < batch {
                match cursor.next_post(self.state, self.ids)? {
                    Some(p) => queue.push_back(p),
                    None => exhausted = true,
                }
            }
            if queue.is_empty() {
                return Ok(());
            }
            let paths: Vec<String> = queue.drain(..queue.len().min(batch)).collect();
            let ops = paths
                .iter()
                .map(|p| TxnOp::Delete { path: p.clone(), version: if p == root { version } else { -1 } })
                .collect();
            match self.submit(ops, paths.len() as u64).await {
                Ok(()) => {}
                Err(ApiError::Zk { code, index: Some(i), path }) => {
                    let failing = paths.get(i).cloned().unwrap_or_default();
                    let mut rest: Vec<String> = paths;
                    match code {
                        ErrorCode::NoNode => {
                            rest.remove(i);
                            self.job.update(|p| p.vanished += 1);
                        }
                        ErrorCode::NotEmpty if retry_new && self.not_empty_retries < NOT_EMPTY_RETRIES => {
                            self.not_empty_retries += 1;
                            // The failing node's subtree now, less what this batch holds already.
                            let queued: std::collections::HashSet<&str> = rest.iter().map(String::as_str).collect();
                            let mut sub = Cursor::new(&failing);
                            let mut newcomers = Vec::new();
                            while let Some(p) = sub.next_post(self.state, self.ids)? {
                                if !queued.contains(p.as_str()) {
                                    newcomers.push(p);
                                }
                                if newcomers.len() > self.state.opts.jobs.max_nodes {
                                    return Err(Stop::Failed(ApiError::TooLarge(format!(
                                        "{failing} gained more than {} nodes while it was being deleted",
                                        self.state.opts.jobs.max_nodes
                                    ))));
                                }
                            }
                            self.job.update(|p| p.total = p.total.map(|t| t + newcomers.len() as u64));
                            rest.splice(i..i, newcomers);
                        }
                        ErrorCode::NotEmpty if !retry_new => {
                            // A node created in the source of a move after it was copied:
                            // deleting it would lose it.
                            return Err(Stop::Failed(ApiError::Zk { code, path: Some(failing), index: None }));
                        }
                        _ => return Err(Stop::Failed(ApiError::Zk { code, path, index: None })),
                    }
                    for p in rest.into_iter().rev() {
                        queue.push_front(p);
                    }
                }
                Err(e) => return Err(Stop::Failed(e)),
            }
        }
    }

    /// Sets `acl` on the subtree at `root`, parents first; `version` on the root only.
    async fn set_acl(&mut self, root: &str, acl: &[Acl], version: i32) -> Result<(), Stop> {
        self.job.update(|p| p.phase = "setAcl");
        let batch = self.state.opts.jobs.batch.max(1);
        let mut cursor = Cursor::new(root);
        loop {
            self.check_cancel()?;
            let mut paths = Vec::new();
            while paths.len() < batch {
                match cursor.next_pre(self.state, self.ids)? {
                    Some((p, _)) => paths.push(p),
                    None => break,
                }
            }
            if paths.is_empty() {
                return Ok(());
            }
            loop {
                let ops = paths
                    .iter()
                    .map(|p| TxnOp::SetAcl {
                        path: p.clone(),
                        acl: acl.to_vec(),
                        version: if p == root { version } else { -1 },
                    })
                    .collect();
                match self.submit(ops, paths.len() as u64).await {
                    Ok(()) => break,
                    Err(ApiError::Zk { code: ErrorCode::NoNode, index: Some(i), .. }) if i < paths.len() => {
                        paths.remove(i);
                        self.job.update(|p| p.vanished += 1);
                        if paths.is_empty() {
                            break;
                        }
                    }
                    Err(e) => return Err(Stop::Failed(e)),
                }
            }
        }
    }

    /// Copies the subtree at `source` to `dest`, parents first, reading each node in the
    /// batch that creates its copy.
    async fn copy(&mut self, source: &str, dest: &str, create_parents: bool) -> Result<(), Stop> {
        self.job.update(|p| p.phase = "copy");
        let batch = self.state.opts.jobs.batch.max(1);
        let server = [Id::new("super", "")];
        let mut cursor = Cursor::new(source);
        let mut first = true;
        loop {
            self.check_cancel()?;
            let mut ops = Vec::new();
            let mut nodes = 0u64;
            while nodes < batch as u64 {
                let Some((p, _)) = cursor.next_pre(self.state, self.ids)? else { break };
                let node = match self.state.backend.get(&p, self.ids) {
                    Ok(n) => n,
                    Err(ErrorCode::NoNode) => {
                        self.job.update(|x| x.vanished += 1);
                        continue;
                    }
                    Err(c) => return Err(Stop::Failed(ApiError::zk(c, &p))),
                };
                if node.stat.ephemeral_owner != 0 {
                    // A session's node ends with it: not copied (see `ops::check_ephemerals`).
                    // A move refused to start while the source held any; one made since is
                    // left out here too (and the move's delete phase then deletes it).
                    self.job.update(|x| {
                        x.skipped_ephemeral += 1;
                        x.done += 1;
                    });
                    continue;
                }
                let acl = match self.state.backend.get_acl(&p, &server) {
                    Ok((acl, _)) => acl,
                    Err(ErrorCode::NoNode) => {
                        self.job.update(|x| x.vanished += 1);
                        continue;
                    }
                    Err(c) => return Err(Stop::Failed(ApiError::zk(c, &p))),
                };
                if first && create_parents {
                    ops.extend(super::znode::missing_parents(self.state, dest, self.ids, &acl));
                }
                first = false;
                let rel = &p[source.len()..];
                let path = if dest == "/" { rel.to_owned() } else { format!("{dest}{rel}") };
                ops.push(TxnOp::Create { path, data: node.data, acl, mode: CreateMode::Persistent, ttl_ms: None });
                nodes += 1;
            }
            if ops.is_empty() {
                return Ok(());
            }
            self.submit(ops, nodes).await?;
        }
    }
}

/// Checks the root's version before a job starts (the job deletes or changes the root
/// only at its end or start; a stale version must not cost a half-done job).
pub fn check_root_version(state: &State, path: &str, ids: &[Id], version: i32, acl: bool) -> Result<(), ApiError> {
    if version < 0 {
        return Ok(());
    }
    let node = state.backend.get(path, ids).map_err(|c| ApiError::zk(c, path))?;
    let current = if acl { node.stat.aversion } else { node.stat.version };
    if current != version {
        return Err(ApiError::zk(ErrorCode::BadVersion, path));
    }
    Ok(())
}

/// Whether the subtree at `root` is over the multi limit (then it must be a job).
pub fn over_limit(state: &State, root: &str, ids: &[Id]) -> Result<bool, ApiError> {
    match super::ops::walk(state, root, ids, state.opts.max_subtree_ops) {
        Ok(_) => Ok(false),
        Err(ApiError::TooLarge(_)) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Whether to run an operation on the subtree at `root` as a job: `Ok(true)` for a job,
/// `Ok(false)` for one atomic multi, `Err` when atomic is asked for and impossible.
pub fn decide(state: &State, mode: JobMode, root: &str, ids: &[Id]) -> Result<bool, ApiError> {
    match mode {
        JobMode::Always => Ok(true),
        JobMode::Auto => over_limit(state, root, ids),
        // The atomic path walks the subtree itself and refuses it over the limit.
        JobMode::Never => Ok(false),
    }
}

// ---------- export ----------

/// One node's head in an export (the children follow as a JSON array).
#[derive(Serialize)]
struct Head<'a> {
    name: &'a str,
    data: Option<String>,
    encoding: Encoding,
    acl: Vec<ExportAcl>,
}

#[derive(Serialize)]
struct ExportAcl {
    scheme: String,
    id: String,
    perms: String,
}

/// Bytes of output gathered before they are handed to the connection.
const CHUNK: usize = 64 * 1024;

/// Streams the export of the subtree at `root` (see `transfer::export`): nested JSON
/// written as the walk goes, never the whole subtree in memory. Ephemeral nodes are left
/// out and counted in the trailing `summary`. With `job`, progress is reported there and
/// a cancel ends the stream early (the download is then incomplete and invalid JSON).
pub fn export_stream(state: &State, root: String, ids: Vec<Id>, job: Option<Arc<Job>>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(4);
    let state = state.clone();
    tokio::spawn(async move {
        let result = write_export(&state, &root, &ids, job.as_deref(), &tx).await;
        if let Some(job) = &job {
            let (st, error, outcome) = match &result {
                Ok(()) => {
                    let p = job.progress.lock().clone();
                    let mut skipped = String::new();
                    if p.skipped_ephemeral > 0 {
                        skipped += &format!(
                            " {} ephemeral nodes were left out (they belong to client sessions).",
                            p.skipped_ephemeral
                        );
                    }
                    if p.skipped_unreadable > 0 {
                        skipped += &format!(
                            " {} nodes you may not read were left out with their subtrees (see the summary).",
                            p.skipped_unreadable
                        );
                    }
                    let written = p.done.saturating_sub(p.skipped_ephemeral + p.skipped_unreadable);
                    (JobState::Done, None, format!("Exported {written} nodes of {root}.{skipped}"))
                }
                Err(Stop::Cancelled) => (
                    JobState::Cancelled,
                    None,
                    "Cancelled: the download was cut short and is not a valid export.".to_owned(),
                ),
                Err(Stop::Failed(e)) => (
                    JobState::Failed,
                    Some(e.body()),
                    "Failed: the download was cut short and is not a valid export.".to_owned(),
                ),
            };
            job.finish(st, error, outcome);
        }
        // Ending the body with an error cuts the download short, so that no client mistakes
        // a partial export for a whole one.
        let cut = match result {
            Ok(()) => None,
            Err(Stop::Cancelled) => Some("export cancelled".to_owned()),
            Err(Stop::Failed(e)) => Some(e.to_string()),
        };
        if let Some(why) = cut {
            let _ = tx.send(Err(std::io::Error::other(why))).await;
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Body::from_stream(stream)
}

async fn write_export(
    state: &State,
    root: &str,
    ids: &[Id],
    job: Option<&Job>,
    tx: &tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>,
) -> Result<(), Stop> {
    let limit = state.opts.jobs.max_nodes;
    if let Some(job) = job {
        let n = count(state, root, ids, limit, Some(job))?;
        job.update(|p| {
            p.total = Some(n);
            p.phase = "export";
        });
    }
    let server = [Id::new("super", "")];
    let mut out = String::with_capacity(CHUNK + 1024);
    out.push_str("{\"format\":\"roost-export-1\",\"source\":");
    out.push_str(&serde_json::to_string(root).unwrap_or_else(|_| "\"\"".into()));
    out.push_str(",\"nodes\":[");
    // For each open node: whether a child has been written yet.
    let mut open: Vec<bool> = Vec::new();
    let mut root_written = false;
    let (mut written, mut skipped, mut seen) = (0u64, Vec::<String>::new(), 0u64);
    let mut skipped_count = 0u64;
    let mut cursor = Cursor::readable(root);
    while let Some((path, depth)) = cursor.next_pre(state, ids)? {
        seen += 1;
        if seen as usize > limit {
            return Err(Stop::Failed(ApiError::TooLarge(format!("the subtree at {root} has more than {limit} nodes"))));
        }
        let node = match state.backend.get(&path, ids) {
            Ok(n) => n,
            Err(ErrorCode::NoNode) => continue,
            Err(ErrorCode::NoAuth) if depth > 0 => {
                cursor.note_unreadable(path);
                continue;
            }
            Err(c) => return Err(Stop::Failed(ApiError::zk(c, &path))),
        };
        if node.stat.ephemeral_owner != 0 {
            skipped_count += 1;
            if skipped.len() < 100 {
                skipped.push(path);
            }
            continue;
        }
        let acl = match state.backend.get_acl(&path, &server) {
            Ok((a, _)) => a,
            Err(ErrorCode::NoNode) => continue,
            Err(c) => return Err(Stop::Failed(ApiError::zk(c, &path))),
        };
        // Close the nodes that are not ancestors of this one.
        while open.len() > depth {
            open.pop();
            out.push_str("]}");
        }
        if depth > 0 && open.len() < depth {
            // The parent was skipped (it vanished): nothing below it is written.
            continue;
        }
        match open.last_mut() {
            Some(has_child) => {
                if *has_child {
                    out.push(',');
                }
                *has_child = true;
            }
            None => {
                if root_written {
                    continue;
                }
                root_written = true;
            }
        }
        let name =
            if depth == 0 { root.rsplit('/').next().unwrap_or("") } else { path.rsplit('/').next().unwrap_or("") };
        let (data, encoding) = match &node.data {
            Some(d) => {
                let (t, e) = encode_data(d, None);
                (Some(t), e)
            }
            None => (None, Encoding::Utf8),
        };
        let acl = acl_to_json(&acl)
            .into_iter()
            .map(|a: AclJson| ExportAcl { scheme: a.scheme, id: a.id, perms: a.perms })
            .collect();
        let head = serde_json::to_string(&Head { name, data, encoding, acl })
            .map_err(|e| Stop::Failed(ApiError::bad_request(e.to_string())))?;
        out.push_str(&head[..head.len() - 1]);
        out.push_str(",\"children\":[");
        open.push(false);
        written += 1;
        if out.len() >= CHUNK {
            if let Some(job) = job {
                if job.cancelled() {
                    return Err(Stop::Cancelled);
                }
                job.update(|p| {
                    p.done = seen;
                    p.skipped_ephemeral = skipped_count;
                    p.batches += 1;
                });
            }
            send_chunk(tx, std::mem::take(&mut out), job).await?;
            out.reserve(CHUNK + 1024);
        }
    }
    while open.pop().is_some() {
        out.push_str("]}");
    }
    let summary = serde_json::json!({
        "nodes": written,
        "skippedEphemeral": skipped_count,
        "skippedEphemeralPaths": skipped,
        "skippedUnreadable": cursor.unreadable,
        "skippedUnreadablePaths": cursor.unreadable_paths,
        "note": "Ephemeral nodes are not exported: they belong to client sessions and end with them. \
                 An import creates every node as persistent.",
    });
    out.push_str("],\"summary\":");
    out.push_str(&summary.to_string());
    out.push('}');
    if let Some(job) = job {
        job.update(|p| {
            p.done = seen;
            p.skipped_ephemeral = skipped_count;
            p.skipped_unreadable = cursor.unreadable;
            p.total = Some(seen);
        });
    }
    send_chunk(tx, out, job).await
}

/// Hands a chunk to the connection, waiting while the client reads slowly, but no longer
/// than [`STALLED`], and noticing a cancel meanwhile.
async fn send_chunk(
    tx: &tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>,
    chunk: String,
    job: Option<&Job>,
) -> Result<(), Stop> {
    let deadline = Instant::now() + STALLED;
    loop {
        match tokio::time::timeout(Duration::from_millis(100), tx.reserve()).await {
            Ok(Ok(permit)) => {
                permit.send(Ok(axum::body::Bytes::from(chunk)));
                return Ok(());
            }
            Ok(Err(_)) => return Err(Stop::Failed(ApiError::bad_request("the client went away"))),
            Err(_) if job.is_some_and(Job::cancelled) => return Err(Stop::Cancelled),
            Err(_) if Instant::now() > deadline => {
                return Err(Stop::Failed(ApiError::bad_request("the client stopped reading the export")))
            }
            Err(_) => {}
        }
    }
}

/// How long an export waits for a client that reads nothing.
const STALLED: Duration = Duration::from_secs(300);

/// Registers an export job (it runs as its download is read).
pub fn register_export(state: &State, ids: &[Id], path: &str) -> Result<Arc<Job>, ApiError> {
    state.jobs.register(&state.opts.jobs, ids, JobKind::Export, path.to_owned(), None)
}

// ---------- REST ----------

/// `GET /api/v1/jobs`: the caller's jobs (all jobs for `super`), newest first.
pub async fn list(AxState(state): AxState<State>, caller: Caller) -> Json<serde_json::Value> {
    let batch = state.opts.jobs.batch;
    let jobs: Vec<JobJson> = state.jobs.list(&state.opts.jobs, &caller.ids).iter().map(|j| j.json(batch)).collect();
    let l = &state.opts.jobs;
    Json(serde_json::json!({
        "jobs": jobs,
        "limits": {
            "maxNodes": l.max_nodes,
            "batchSize": l.batch,
            "maxRunning": l.max_running,
            "maxRunningPerIdentity": l.max_running_per_owner,
            "keepFinished": l.keep_finished,
            "keepSeconds": l.keep_for.as_secs(),
            "atomicUpTo": state.opts.max_subtree_ops,
        }
    }))
}

fn parse_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// `GET /api/v1/jobs/<id>`: one job's progress; 404 for a job of someone else.
pub async fn get(
    AxState(state): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobJson>, ApiError> {
    let job = state.jobs.get(parse_id(&id)?, &caller.ids).ok_or(ApiError::NotFound)?;
    Ok(Json(job.json(state.opts.jobs.batch)))
}

/// `DELETE /api/v1/jobs/<id>`: cancels a running job (it stops between two batches; the
/// answer comes once it has, or after 5 s) or forgets a finished one.
pub async fn cancel(
    AxState(state): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobJson>, ApiError> {
    let job = state.jobs.get(parse_id(&id)?, &caller.ids).ok_or(ApiError::NotFound)?;
    if job.running() {
        job.cancel.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(5);
        while job.running() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    } else {
        state.jobs.remove(job.id);
    }
    Ok(Json(job.json(state.opts.jobs.batch)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> JobLimits {
        JobLimits { max_running: 10, max_running_per_owner: 10, keep_finished: 2, ..JobLimits::default() }
    }

    #[test]
    fn a_job_is_visible_to_its_identities_and_to_super_only() {
        let jobs = Jobs::default();
        let bob = vec![Id::new("ip", "10.0.0.1"), Id::new("digest", "bob:x")];
        let job = jobs.register(&limits(), &bob, JobKind::Delete, "/a".into(), None).unwrap();
        let reordered = vec![bob[1].clone(), bob[0].clone(), bob[1].clone()];
        assert!(jobs.get(job.id, &reordered).is_some(), "the same identities in another order");
        assert!(jobs.get(job.id, &[Id::new("ip", "10.0.0.1")]).is_none(), "the same address without bob's login");
        assert!(jobs.get(job.id, &[Id::new("ip", "10.0.0.2"), Id::new("super", "")]).is_some());
        assert!(jobs.list(&limits(), &[Id::new("digest", "alice:y")]).is_empty());
    }

    #[test]
    fn finished_jobs_are_kept_up_to_the_count_newest_first_running_ones_always() {
        let jobs = Jobs::default();
        let ids = [Id::new("ip", "1.2.3.4")];
        let all: Vec<Arc<Job>> =
            (0..4).map(|i| jobs.register(&limits(), &ids, JobKind::Copy, format!("/n{i}"), None).unwrap()).collect();
        for j in &all[..3] {
            j.finish(JobState::Done, None, String::new());
        }
        let listed: Vec<u64> = jobs.list(&limits(), &ids).iter().map(|j| j.id).collect();
        assert_eq!(listed, vec![all[3].id, all[2].id, all[1].id]);
        let short = JobLimits { keep_for: Duration::ZERO, ..limits() };
        let listed: Vec<u64> = jobs.list(&short, &ids).iter().map(|j| j.id).collect();
        assert_eq!(listed, vec![all[3].id], "expired finished jobs go, the running one stays");
    }

    #[test]
    fn job_mode_reads_its_words_and_booleans() {
        let parse = |s: &str| serde_json::from_value::<JobMode>(serde_json::Value::String(s.into())).ok();
        assert_eq!(parse("auto"), Some(JobMode::Auto));
        assert_eq!(parse("always"), Some(JobMode::Always));
        assert_eq!(parse("true"), Some(JobMode::Always));
        assert_eq!(parse("false"), Some(JobMode::Never));
        assert_eq!(parse("sometimes"), None);
    }
}
