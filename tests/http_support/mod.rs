//! TEST DOUBLE: an in-memory `Backend` for the HTTP tests. A map of path -> node with
//! ZooKeeper-ish stat bumping, sequential names and ACL checks, good enough to test the
//! HTTP layer. It is not the server's tree and must not be used outside tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use parking_lot::Mutex;
use roost::http::{
    Backend, BoxFuture, ChangeEvent, ChangeFeed, ClusterInfo, MemberInfo, NodeData, SearchQuery, SessionInfo,
};
use roost::proto::types::{perms, Acl, CreateMode, ErrorCode, Id, Stat};
use roost::tree::txn::{ChangeKind, OpResult, TxnOp};
use sha1::{Digest, Sha1};

#[derive(Clone)]
struct Node {
    data: Option<Vec<u8>>,
    acl: Vec<Acl>,
    stat: Stat,
    children: BTreeSet<String>,
}

#[derive(Clone)]
struct Tree {
    nodes: BTreeMap<String, Node>,
    zxid: i64,
}

pub struct TestBackend {
    tree: Mutex<Tree>,
    feed: Arc<ChangeFeed>,
    /// Sessions to report (tests fill it).
    pub sessions: Mutex<Vec<SessionInfo>>,
    /// Watches to report (tests fill it): path -> session ids.
    pub watches: Mutex<Vec<(String, Vec<i64>)>>,
    /// When set, every write first takes a permit from it (tests hold writes back).
    pub write_gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
    /// Writes waiting at the gate.
    pub writes_waiting: std::sync::atomic::AtomicUsize,
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

pub fn digest(user_password: &str) -> Id {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha1::digest(user_password.as_bytes()));
    Id::new("digest", format!("{user}:{hash}"))
}

fn allowed(acl: &[Acl], auth: &[Id], perm: i32) -> bool {
    if auth.iter().any(|i| i.scheme == "super") || acl.is_empty() {
        return true;
    }
    acl.iter().any(|a| a.perms & perm != 0 && ((a.id.scheme == "world" && a.id.id == "anyone") || auth.contains(&a.id)))
}

impl Tree {
    fn node(&self, path: &str) -> Result<&Node, ErrorCode> {
        self.nodes.get(path).ok_or(ErrorCode::NoNode)
    }

    fn apply(
        &mut self,
        op: &TxnOp,
        auth: &[Id],
        zxid: i64,
        events: &mut Vec<ChangeEvent>,
    ) -> Result<OpResult, ErrorCode> {
        let now = 1_700_000_000_000 + zxid * 1000;
        match op {
            TxnOp::Create { path, data, acl, mode, .. } => {
                let parent_path = parent_of(path.trim_end_matches('/')).to_owned();
                let parent_path = if path.ends_with('/') && mode.is_sequential() {
                    path.trim_end_matches('/').to_owned()
                } else {
                    parent_path
                };
                let parent = self.node(&parent_path)?;
                if !allowed(&parent.acl, auth, perms::CREATE) {
                    return Err(ErrorCode::NoAuth);
                }
                if parent.stat.ephemeral_owner != 0 {
                    return Err(ErrorCode::NoChildrenForEphemerals);
                }
                let final_path =
                    if mode.is_sequential() { format!("{path}{:010}", parent.stat.cversion) } else { path.clone() };
                if self.nodes.contains_key(&final_path) {
                    return Err(ErrorCode::NodeExists);
                }
                if acl.is_empty() {
                    return Err(ErrorCode::InvalidAcl);
                }
                let len = data.as_ref().map_or(0, |d| d.len()) as i32;
                let stat = Stat {
                    czxid: zxid,
                    mzxid: zxid,
                    ctime: now,
                    mtime: now,
                    pzxid: zxid,
                    data_length: len,
                    // Tests create ephemerals as super to stand for a client session's.
                    ephemeral_owner: if mode.is_ephemeral() { 0x1234 } else { 0 },
                    ..Stat::default()
                };
                self.nodes.insert(
                    final_path.clone(),
                    Node { data: data.clone(), acl: acl.clone(), stat, children: BTreeSet::new() },
                );
                let p = self.nodes.get_mut(&parent_path).ok_or(ErrorCode::NoNode)?;
                p.children.insert(name_of(&final_path).to_owned());
                p.stat.cversion += 1;
                p.stat.pzxid = zxid;
                p.stat.num_children += 1;
                let (pstat, pacl) = (p.stat, p.acl.clone());
                events.push(ChangeEvent {
                    zxid,
                    path: final_path.clone(),
                    kind: ChangeKind::Created,
                    stat: Some(stat),
                    data: data.clone().map(Bytes::from),
                    acl: Arc::new(acl.clone()),
                    encodings: Default::default(),
                });
                events.push(ChangeEvent {
                    zxid,
                    path: parent_path,
                    kind: ChangeKind::ChildrenChanged,
                    stat: Some(pstat),
                    data: None,
                    acl: Arc::new(pacl),
                    encodings: Default::default(),
                });
                let _ = CreateMode::Persistent;
                Ok(OpResult::Created { path: final_path, stat })
            }
            TxnOp::Delete { path, version } => {
                let node = self.node(path)?;
                let parent_path = parent_of(path).to_owned();
                if !allowed(&self.node(&parent_path)?.acl, auth, perms::DELETE) {
                    return Err(ErrorCode::NoAuth);
                }
                if *version != -1 && *version != node.stat.version {
                    return Err(ErrorCode::BadVersion);
                }
                if !node.children.is_empty() {
                    return Err(ErrorCode::NotEmpty);
                }
                let acl = node.acl.clone();
                self.nodes.remove(path);
                let p = self.nodes.get_mut(&parent_path).ok_or(ErrorCode::NoNode)?;
                p.children.remove(name_of(path));
                p.stat.cversion += 1;
                p.stat.pzxid = zxid;
                p.stat.num_children -= 1;
                let (pstat, pacl) = (p.stat, p.acl.clone());
                events.push(ChangeEvent {
                    zxid,
                    path: path.clone(),
                    kind: ChangeKind::Deleted,
                    stat: None,
                    data: None,
                    acl: Arc::new(acl),
                    encodings: Default::default(),
                });
                events.push(ChangeEvent {
                    zxid,
                    path: parent_path,
                    kind: ChangeKind::ChildrenChanged,
                    stat: Some(pstat),
                    data: None,
                    acl: Arc::new(pacl),
                    encodings: Default::default(),
                });
                Ok(OpResult::Deleted)
            }
            TxnOp::SetData { path, data, version } => {
                let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
                if !allowed(&node.acl, auth, perms::WRITE) {
                    return Err(ErrorCode::NoAuth);
                }
                if *version != -1 && *version != node.stat.version {
                    return Err(ErrorCode::BadVersion);
                }
                node.data = data.clone();
                node.stat.version += 1;
                node.stat.mzxid = zxid;
                node.stat.mtime = now;
                node.stat.data_length = data.as_ref().map_or(0, |d| d.len()) as i32;
                events.push(ChangeEvent {
                    zxid,
                    path: path.clone(),
                    kind: ChangeKind::DataChanged,
                    stat: Some(node.stat),
                    data: data.clone().map(Bytes::from),
                    acl: Arc::new(node.acl.clone()),
                    encodings: Default::default(),
                });
                Ok(OpResult::Stat(node.stat))
            }
            TxnOp::SetAcl { path, acl, version } => {
                let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
                if !allowed(&node.acl, auth, perms::ADMIN) {
                    return Err(ErrorCode::NoAuth);
                }
                if *version != -1 && *version != node.stat.aversion {
                    return Err(ErrorCode::BadVersion);
                }
                node.acl = acl.clone();
                node.stat.aversion += 1;
                Ok(OpResult::Stat(node.stat))
            }
            TxnOp::Check { path, version } => {
                let node = self.node(path)?;
                if *version != -1 && *version != node.stat.version {
                    return Err(ErrorCode::BadVersion);
                }
                Ok(OpResult::Checked)
            }
            TxnOp::Multi(ops) => {
                let mut scratch = self.clone();
                let mut evs = Vec::new();
                let mut results = Vec::new();
                for (i, op) in ops.iter().enumerate() {
                    match scratch.apply(op, auth, zxid, &mut evs) {
                        Ok(r) => results.push(Ok(r)),
                        Err(code) => {
                            let mut out: Vec<Result<OpResult, ErrorCode>> =
                                (0..i).map(|_| Err(ErrorCode::Ok)).collect();
                            out.push(Err(code));
                            out.extend((i + 1..ops.len()).map(|_| Err(ErrorCode::RuntimeInconsistency)));
                            return Ok(OpResult::Multi(out));
                        }
                    }
                }
                *self = scratch;
                events.extend(evs);
                Ok(OpResult::Multi(results))
            }
            _ => Err(ErrorCode::Unimplemented),
        }
    }
}

impl TestBackend {
    pub fn new() -> Arc<TestBackend> {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            "/".to_owned(),
            Node { data: Some(Vec::new()), acl: Acl::open_unsafe(), stat: Stat::default(), children: BTreeSet::new() },
        );
        Arc::new(TestBackend {
            tree: Mutex::new(Tree { nodes, zxid: 0 }),
            feed: Arc::new(ChangeFeed::new()),
            sessions: Mutex::new(Vec::new()),
            watches: Mutex::new(Vec::new()),
            write_gate: Mutex::new(None),
            writes_waiting: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Applies a write synchronously (for test setup), as `super`.
    pub fn apply_as_super(&self, op: TxnOp) -> Result<OpResult, ErrorCode> {
        self.apply(op, &[Id::new("super", "")])
    }

    /// Creates a persistent node with open ACL and text data, as super.
    pub fn put(&self, path: &str, data: &str) {
        self.apply_as_super(TxnOp::Create {
            path: path.into(),
            data: Some(data.as_bytes().to_vec()),
            acl: Acl::open_unsafe(),
            mode: CreateMode::Persistent,
            ttl_ms: None,
        })
        .unwrap();
    }

    /// Creates many children quickly (no events), for paging tests.
    pub fn bulk_children(&self, parent: &str, n: usize) {
        let mut t = self.tree.lock();
        t.zxid += 1;
        let zxid = t.zxid;
        let stat = Stat { czxid: zxid, mzxid: zxid, pzxid: zxid, ..Stat::default() };
        for i in 0..n {
            let name = format!("child-{i:06}");
            let path = format!("{}/{name}", parent.trim_end_matches('/'));
            t.nodes.insert(
                path,
                Node { data: Some(Vec::new()), acl: Acl::open_unsafe(), stat, children: BTreeSet::new() },
            );
            if let Some(p) = t.nodes.get_mut(parent) {
                p.children.insert(name);
                p.stat.num_children += 1;
                p.stat.cversion += 1;
            }
        }
    }

    fn apply(&self, op: TxnOp, auth: &[Id]) -> Result<OpResult, ErrorCode> {
        let mut t = self.tree.lock();
        let zxid = t.zxid + 1;
        let mut events = Vec::new();
        let r = t.apply(&op, auth, zxid, &mut events)?;
        let failed_multi = matches!(&r, OpResult::Multi(rs) if rs.iter().any(|x| x.is_err()));
        if !failed_multi {
            t.zxid = zxid;
        }
        self.feed.publish(events);
        Ok(r)
    }
}

impl Backend for TestBackend {
    fn get(&self, path: &str, auth: &[Id]) -> Result<NodeData, ErrorCode> {
        let t = self.tree.lock();
        let n = t.node(path)?;
        if !allowed(&n.acl, auth, perms::READ) {
            return Err(ErrorCode::NoAuth);
        }
        Ok(NodeData { data: n.data.clone(), stat: n.stat })
    }

    fn children(&self, path: &str, auth: &[Id]) -> Result<(Vec<String>, Stat), ErrorCode> {
        let t = self.tree.lock();
        let n = t.node(path)?;
        if !allowed(&n.acl, auth, perms::READ) {
            return Err(ErrorCode::NoAuth);
        }
        Ok((n.children.iter().cloned().collect(), n.stat))
    }

    fn child_stats(&self, parent: &str, names: &[String], auth: &[Id]) -> Vec<Option<Stat>> {
        let t = self.tree.lock();
        names
            .iter()
            .map(|n| {
                let p = if parent == "/" { format!("/{n}") } else { format!("{parent}/{n}") };
                t.nodes.get(&p).filter(|x| allowed(&x.acl, auth, perms::READ)).map(|x| x.stat)
            })
            .collect()
    }

    fn get_acl(&self, path: &str, _auth: &[Id]) -> Result<(Vec<Acl>, Stat), ErrorCode> {
        let t = self.tree.lock();
        let n = t.node(path)?;
        Ok((n.acl.clone(), n.stat))
    }

    fn write(&self, op: TxnOp, auth: Vec<Id>) -> BoxFuture<'_, Result<OpResult, ErrorCode>> {
        Box::pin(async move {
            let gate = self.write_gate.lock().clone();
            if let Some(gate) = gate {
                use std::sync::atomic::Ordering::SeqCst;
                self.writes_waiting.fetch_add(1, SeqCst);
                let permit = gate.acquire().await;
                self.writes_waiting.fetch_sub(1, SeqCst);
                if let Ok(p) = permit {
                    p.forget();
                }
            }
            self.apply(op, &auth)
        })
    }

    fn search(&self, query: &SearchQuery, auth: &[Id], limit: usize) -> roost::http::SearchResult {
        let t = self.tree.lock();
        let re = if query.regex { regex::Regex::new(&query.text).ok() } else { None };
        let paths = t
            .nodes
            .iter()
            .filter(|(p, _)| p.starts_with(&query.root))
            .filter(|(_, n)| allowed(&n.acl, auth, perms::READ))
            .filter(|(p, n)| {
                let hay_data = n.data.as_ref().map(|d| String::from_utf8_lossy(d).into_owned()).unwrap_or_default();
                let hit = |s: &str| match &re {
                    Some(r) => r.is_match(s),
                    None => s.contains(&query.text),
                };
                hit(p) || (query.in_data && hit(&hay_data))
            })
            .map(|(p, _)| p.clone())
            .take(limit)
            .collect();
        roost::http::SearchResult { paths, stopped: None }
    }

    fn change_feed(&self) -> Arc<ChangeFeed> {
        self.feed.clone()
    }

    fn last_zxid(&self) -> i64 {
        self.tree.lock().zxid
    }

    fn check_perm(&self, acl: &[Acl], auth: &[Id], perm: i32) -> bool {
        allowed(acl, auth, perm)
    }

    fn cluster(&self) -> ClusterInfo {
        let count = self.tree.lock().nodes.len() as u64;
        let member = |id: u64, role: &str| MemberInfo {
            id,
            address: format!("127.0.0.1:{}", 2180 + id),
            role: role.into(),
            zxid: self.last_zxid(),
            connections: 3,
            avg_latency_ms: 0.4,
            max_latency_ms: 7,
            znode_count: count,
            reachable: true,
        };
        ClusterInfo {
            this_id: 1,
            leader_id: Some(1),
            term: 1,
            voters: vec![1, 2, 3],
            members: vec![member(1, "leader"), member(2, "follower"), member(3, "follower")],
            version: "roost-test".into(),
        }
    }

    fn sessions(&self, auth: &[Id]) -> Vec<SessionInfo> {
        let tree = self.tree.lock();
        let mut list = self.sessions.lock().clone();
        for s in &mut list {
            s.ephemerals.retain(|e| tree.nodes.get(parent_of(e)).is_some_and(|p| allowed(&p.acl, auth, perms::READ)));
        }
        list
    }

    fn watches_by_path(&self) -> Vec<(String, Vec<i64>)> {
        self.watches.lock().clone()
    }

    fn mntr(&self) -> Vec<(String, String)> {
        vec![
            ("zk_version".into(), "roost-test".into()),
            ("zk_server_state".into(), "leader".into()),
            ("zk_avg_latency".into(), "0.4".into()),
            ("zk_znode_count".into(), self.tree.lock().nodes.len().to_string()),
            ("zk_num_alive_connections".into(), "3".into()),
        ]
    }

    fn conf(&self) -> Vec<(String, String)> {
        vec![("clientPort".into(), "2181".into()), ("tickTime".into(), "2000".into())]
    }

    fn digest_id(&self, user_password: &str) -> Id {
        digest(user_password)
    }
}

/// Builds the router over a fresh test backend.
pub fn app(opts: roost::http::HttpOptions) -> (Arc<TestBackend>, axum::Router) {
    let b = TestBackend::new();
    let r = roost::http::router(b.clone(), opts);
    (b, r)
}

/// A response as the REST tests look at it: status, headers, the body as JSON (Null when
/// it is not JSON) and as text.
pub struct Resp {
    pub status: axum::http::StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: serde_json::Value,
    pub text: String,
}

/// Calls the router in-process: `body` goes as JSON, `headers` as given.
pub async fn call(
    app: &axum::Router,
    method: axum::http::Method,
    uri: &str,
    body: Option<serde_json::Value>,
    headers: &[(&str, &str)],
) -> Resp {
    use tower::ServiceExt;
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            axum::body::Body::from(v.to_string())
        }
        None => axum::body::Body::empty(),
    };
    read_resp(app.clone().oneshot(req.body(body).expect("request")).await.expect("router")).await
}

/// Reads a whole response.
pub async fn read_resp(resp: axum::response::Response) -> Resp {
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Resp { status, headers, body, text }
}
