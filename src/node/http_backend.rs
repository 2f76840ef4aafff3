//! The HTTP layer's view of a node: reads from the local tree with the caller's
//! identities, writes through consensus exactly like native-port writes.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::http::{
    Backend, BoxFuture, ChangeFeed, ClusterInfo, MemberInfo, NodeData, OpenedSession, RestoreReport, SearchQuery,
    SearchResult, SessionInfo, SnapshotImage,
};
use crate::proto::types::{perms, Acl, ErrorCode, Id, Stat};
use crate::server::{fourlw, handshake::now_ms, ServerContext};
use crate::tree::acl::{check_acl, digest_id};
use crate::tree::txn::{OpResult, Txn, TxnOp};

/// Nodes a search looks at per hold of the tree's read lock.
const SEARCH_SLICE: usize = 256;
/// Most nodes one search looks at (a 2-million-node tree is searched whole).
const SEARCH_NODE_BUDGET: usize = 2_000_000;
/// Longest one search runs.
const SEARCH_TIME_BUDGET: Duration = Duration::from_secs(10);

/// Implements [`Backend`] over a running node.
pub struct NodeBackend {
    ctx: Arc<ServerContext>,
    /// The other members' figures, refreshed in the background (see [`poll_peers`]).
    peers: Arc<PeerCache>,
}

/// Last known figures of the other ensemble members, by server id.
type PeerCache = RwLock<HashMap<u64, MemberInfo>>;

/// How often the other members are asked for their figures: the cluster page shows a
/// member down within a second of it going.
const PEER_POLL: Duration = Duration::from_millis(500);
/// Longest wait for one member's answer.
const PEER_TIMEOUT: Duration = Duration::from_millis(800);

impl NodeBackend {
    /// Must be called inside a tokio runtime when the ensemble has other members: it
    /// starts the task that polls them (it ends once this backend is dropped).
    pub fn new(ctx: Arc<ServerContext>) -> Self {
        let peers = Arc::new(PeerCache::default());
        let others: Vec<(u64, String)> = ctx
            .config
            .servers
            .iter()
            .filter(|s| s.id != ctx.config.my_id)
            .filter_map(|s| {
                let c = s.client_addr.as_ref()?;
                // A wildcard client address is reached through the member's host.
                let host = if c.host.is_empty() || c.host == "0.0.0.0" || c.host == "::" { &s.host } else { &c.host };
                Some((s.id, format!("{host}:{}", c.port)))
            })
            .collect();
        if !others.is_empty() && tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(poll_peers(Arc::downgrade(&peers), others));
        }
        NodeBackend { ctx, peers }
    }
}

impl NodeBackend {
    /// Proposes `op` as `session_id` (0: no session) through consensus, with its audit
    /// record, exactly as a native write is.
    async fn propose_write(&self, session_id: i64, op: TxnOp, auth: Vec<Id>) -> Result<OpResult, ErrorCode> {
        use crate::security::audit::{Actor, WriteAudit};
        let session = (session_id != 0).then_some(session_id);
        let audit = self
            .ctx
            .security
            .audit
            .clone()
            .and_then(|log| WriteAudit::describe(Actor::new(session, &auth), &op).map(|a| (log, a)));
        let txn = Txn { session_id, time_ms: now_ms(), auth, op };
        match self.ctx.consensus.propose(txn).await {
            Ok(outcome) => {
                if let Some((log, audit)) = audit {
                    audit.log(&log, &outcome.result);
                }
                outcome.result
            }
            Err(e) => {
                tracing::warn!(error = %e, "HTTP write failed in consensus");
                Err(ErrorCode::ConnectionLoss)
            }
        }
    }
}

/// Asks every other member for `srvr` (in ZooKeeper's default 4lw whitelist) every
/// [`PEER_POLL`], so that the cluster page never waits on the network.
async fn poll_peers(cache: Weak<PeerCache>, others: Vec<(u64, String)>) {
    loop {
        // All at once: one member that hangs must not delay news of the others.
        let answers = futures::future::join_all(others.iter().map(|(id, addr)| async move {
            match tokio::time::timeout(PEER_TIMEOUT, four_letter(addr, b"srvr")).await {
                Ok(Ok(text)) => parse_srvr(*id, addr, &text),
                _ => None,
            }
            .unwrap_or_else(|| unreachable_member(*id, addr))
        }))
        .await;
        let Some(cache) = cache.upgrade() else { return };
        cache.write().extend(answers.into_iter().map(|m| (m.id, m)));
        drop(cache);
        tokio::time::sleep(PEER_POLL).await;
    }
}

async fn four_letter(addr: &str, word: &[u8]) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(word).await?;
    let mut buf = Vec::new();
    s.take(64 * 1024).read_to_end(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn unreachable_member(id: u64, addr: &str) -> MemberInfo {
    MemberInfo {
        id,
        address: addr.to_owned(),
        role: "unknown".into(),
        zxid: 0,
        connections: 0,
        avg_latency_ms: 0.0,
        max_latency_ms: 0,
        znode_count: 0,
        reachable: false,
    }
}

/// A member's figures from its `srvr` answer; `None` if it is not one (e.g. the word is
/// not whitelisted there).
fn parse_srvr(id: u64, addr: &str, text: &str) -> Option<MemberInfo> {
    if text == crate::server::fourlw::NOT_SERVING {
        // Up, but without a quorum: it serves no client.
        return Some(MemberInfo { role: "not serving".into(), reachable: true, ..unreachable_member(id, addr) });
    }
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
    let role = field("Mode:")?.to_owned();
    let zxid = field("Zxid:").and_then(|z| i64::from_str_radix(z.trim_start_matches("0x"), 16).ok()).unwrap_or(0);
    let mut latency = field("Latency min/avg/max:").unwrap_or("").split('/');
    let (_, avg, max) = (latency.next(), latency.next(), latency.next());
    Some(MemberInfo {
        id,
        address: addr.to_owned(),
        role,
        zxid,
        connections: field("Connections:").and_then(|c| c.parse().ok()).unwrap_or(0),
        avg_latency_ms: avg.and_then(|a| a.parse().ok()).unwrap_or(0.0),
        max_latency_ms: max.and_then(|m| m.parse().ok()).unwrap_or(0),
        znode_count: field("Node count:").and_then(|n| n.parse().ok()).unwrap_or(0),
        reachable: true,
    })
}

/// Joins a parent path and a child name.
fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl Backend for NodeBackend {
    fn get(&self, path: &str, auth: &[Id]) -> Result<NodeData, ErrorCode> {
        let (data, stat) = self.ctx.db.read(|t| t.get_data(path, auth))?;
        Ok(NodeData { data: data.map(|d| d.to_vec()), stat })
    }

    fn children(&self, path: &str, auth: &[Id]) -> Result<(Vec<String>, Stat), ErrorCode> {
        self.ctx.db.read(|t| t.get_children(path, auth))
    }

    fn child_stats(&self, parent: &str, names: &[String], auth: &[Id]) -> Vec<Option<Stat>> {
        self.ctx.db.read(|t| names.iter().map(|n| t.exists(&child_path(parent, n), auth).ok()).collect())
    }

    fn get_acl(&self, path: &str, auth: &[Id]) -> Result<(Vec<Acl>, Stat), ErrorCode> {
        self.ctx.db.read(|t| t.get_acl(path, auth))
    }

    fn write(&self, op: TxnOp, auth: Vec<Id>) -> BoxFuture<'_, Result<OpResult, ErrorCode>> {
        Box::pin(self.propose_write(0, op, auth))
    }

    fn write_in_session(
        &self,
        session_id: i64,
        op: TxnOp,
        auth: Vec<Id>,
    ) -> BoxFuture<'_, Result<OpResult, ErrorCode>> {
        // The session's activity, as a native client's request is.
        self.ctx.sessions.touch(session_id);
        Box::pin(self.propose_write(session_id, op, auth))
    }

    fn open_session(&self, timeout_ms: i32) -> BoxFuture<'_, Result<OpenedSession, ErrorCode>> {
        Box::pin(async move {
            let timeout_ms = self.ctx.config.clamp_session_timeout(timeout_ms);
            let (id, _) = crate::server::handshake::create_session(&self.ctx, timeout_ms)
                .await
                .ok_or(ErrorCode::ConnectionLoss)?;
            Ok(OpenedSession { id, timeout_ms })
        })
    }

    fn touch_session(&self, session_id: i64) {
        self.ctx.sessions.touch(session_id);
    }

    fn session_alive(&self, session_id: i64) -> bool {
        !self.ctx.sessions.is_expiring(session_id) && self.ctx.db.read(|t| t.session(session_id).is_some())
    }

    fn close_session(&self, session_id: i64) -> BoxFuture<'_, Result<(), ErrorCode>> {
        Box::pin(async move {
            let op = TxnOp::CloseSession { session_id };
            self.propose_write(session_id, op, Vec::new()).await.map(|_| ())
        })
    }

    fn search(&self, query: &SearchQuery, auth: &[Id], limit: usize) -> SearchResult {
        let regex = if query.regex { regex::Regex::new(&query.text).ok() } else { None };
        if query.regex && regex.is_none() {
            return SearchResult::default();
        }
        let matches = |s: &str| match &regex {
            Some(r) => r.is_match(s),
            None => s.contains(&query.text),
        };
        // Breadth-first from the root of the search, skipping subtrees the caller may not
        // list, in slices: the tree's read lock is taken for SEARCH_SLICE nodes at a time, so
        // a write waits for one slice at most, never for the whole walk. Between slices the
        // tree may change; a node gone by then is skipped.
        let started = std::time::Instant::now();
        let mut found = SearchResult::default();
        let mut queue = std::collections::VecDeque::from([query.root.clone()]);
        let mut visited = 0usize;
        while !queue.is_empty() && found.paths.len() < limit {
            if visited >= SEARCH_NODE_BUDGET {
                found.stopped = Some(format!("visited {SEARCH_NODE_BUDGET} nodes (the search budget)"));
                break;
            }
            if started.elapsed() > SEARCH_TIME_BUDGET {
                found.stopped = Some(format!("ran for {} s (the search budget)", SEARCH_TIME_BUDGET.as_secs()));
                break;
            }
            self.ctx.db.read(|t| {
                for _ in 0..SEARCH_SLICE {
                    let Some(path) = queue.pop_front() else { break };
                    visited += 1;
                    let hit = matches(&path)
                        || (query.in_data
                            && t.get_data(&path, auth)
                                .ok()
                                .and_then(|(d, _)| d)
                                .is_some_and(|d| matches(&String::from_utf8_lossy(&d))));
                    if hit {
                        found.paths.push(path.clone());
                        if found.paths.len() >= limit {
                            break;
                        }
                    }
                    if let Ok((children, _)) = t.get_children(&path, auth) {
                        queue.extend(children.iter().map(|c| child_path(&path, c)));
                    }
                }
            });
        }
        found
    }

    fn change_feed(&self) -> Arc<ChangeFeed> {
        self.ctx.db.change_feed()
    }

    fn last_zxid(&self) -> i64 {
        self.ctx.db.last_zxid()
    }

    fn check_perm(&self, acl: &[Acl], auth: &[Id], perm: i32) -> bool {
        check_acl(acl, perm, auth)
    }

    fn cluster(&self) -> ClusterInfo {
        let ctx = &self.ctx;
        let status = ctx.consensus.metrics();
        let (_, avg, max) = ctx.stats.latency.summary();
        let me = MemberInfo {
            id: ctx.config.my_id,
            address: ctx.config.client_listen_addr(),
            role: if ctx.config.is_standalone() {
                "standalone".into()
            } else {
                format!("{:?}", status.role).to_lowercase()
            },
            zxid: ctx.db.last_zxid(),
            connections: ctx.conn_stats.read().len() as u64,
            avg_latency_ms: avg,
            max_latency_ms: max,
            znode_count: ctx.db.read(|t| t.node_count()) as u64,
            reachable: true,
        };
        let mut members = vec![me];
        members.extend(self.peers.read().values().cloned());
        members.sort_by_key(|m| m.id);
        ClusterInfo {
            this_id: ctx.config.my_id,
            leader_id: status.leader_id,
            term: status.term,
            voters: status.voters,
            members,
            version: fourlw::VERSION_LINE.to_string(),
        }
    }

    fn sessions(&self, auth: &[Id]) -> Vec<SessionInfo> {
        let ctx = &self.ctx;
        let clients: std::collections::HashMap<i64, String> = ctx
            .conn_stats
            .read()
            .values()
            .map(|c| (c.session_id.load(Ordering::Relaxed), c.remote.to_string()))
            .collect();
        ctx.db.read(|t| {
            t.sessions()
                .map(|(id, s)| SessionInfo {
                    id,
                    timeout_ms: s.timeout_ms,
                    client: clients.get(&id).cloned(),
                    ephemerals: t
                        .ephemerals(id, "")
                        .into_iter()
                        .filter(|path| {
                            let parent =
                                crate::tree::path::split_parent(path)
                                    .map_or("/", |(p, _)| if p.is_empty() { "/" } else { p });
                            t.acl(parent).is_some_and(|acl| check_acl(&acl, perms::READ, auth))
                        })
                        .collect(),
                })
                .collect()
        })
    }

    fn watches_by_path(&self) -> Vec<(String, Vec<i64>)> {
        let by_path = self.ctx.db.watches(|w| w.by_path());
        let conns = self.ctx.conn_stats.read();
        let session_of = |conn: u64| conns.get(&conn).map_or(0, |c| c.session_id.load(Ordering::Relaxed));
        by_path
            .into_iter()
            .map(|(path, cs)| {
                let mut ids: Vec<i64> = cs.into_iter().map(session_of).collect();
                ids.sort_unstable();
                ids.dedup();
                (path, ids)
            })
            .collect()
    }

    fn mntr(&self) -> Vec<(String, String)> {
        fourlw::monitor_lines(&self.ctx).into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn conf(&self) -> Vec<(String, String)> {
        fourlw::conf_lines(&self.ctx).into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn digest_id(&self, user_password: &str) -> Id {
        Id::new("digest", digest_id(user_password))
    }

    fn login_ids(&self, user_password: &str) -> Vec<Id> {
        crate::server::cmd::auth::authenticate(
            "digest",
            user_password.as_bytes(),
            self.ctx.config.super_digest.as_deref(),
        )
        .unwrap_or_else(|_| vec![self.digest_id(user_password)])
    }

    fn audit_auth(&self, ids: &[Id], success: bool) {
        if let Some(log) = &self.ctx.security.audit {
            use crate::security::audit::{Actor, AuditResult};
            let result = if success { AuditResult::Success } else { AuditResult::Failure };
            log.log(&Actor::new(None, ids).event("auth"), result);
        }
    }

    fn read_only(&self) -> bool {
        self.ctx.read_only.is_active()
    }

    fn snapshot_image(&self) -> Result<SnapshotImage, String> {
        // The image is taken under the read lock in microseconds; writers go on while it
        // is encoded, and the bytes and the zxid still describe the same tree.
        let image = self.ctx.db.read(|t| t.image());
        Ok(SnapshotImage { bytes: image.serialize(), last_zxid: image.last_zxid() })
    }

    fn restore_image(&self, image: Vec<u8>) -> BoxFuture<'_, Result<RestoreReport, String>> {
        Box::pin(async move {
            let report = crate::backup::restore_through_log(&self.ctx.consensus, image, false)
                .await
                .map_err(|e| e.to_string())?;
            // Sessions are the backup's now: each gets a full timeout, the others are forgotten.
            crate::session::expiry::track_all(&self.ctx.db, &self.ctx.sessions);
            Ok(report)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srvr_answers_become_member_figures() {
        let text = "Zookeeper version: 3.8.4-roost\nLatency min/avg/max: 0/1.5000/12\nReceived: 10\nSent: 10\n\
                    Connections: 3\nOutstanding: 0\nZxid: 0x10000002b\nMode: follower\nNode count: 42\n";
        let m = parse_srvr(2, "10.0.0.2:2181", text).unwrap();
        assert_eq!((m.id, m.role.as_str(), m.zxid, m.connections), (2, "follower", 0x1_0000_002b, 3));
        assert_eq!((m.avg_latency_ms, m.max_latency_ms, m.znode_count, m.reachable), (1.5, 12, 42, true));
        // A member that refuses the word (not whitelisted) is not mistaken for figures.
        assert!(parse_srvr(2, "x", "srvr is not executed because it is not in the whitelist.\n").is_none());
        assert!(!unreachable_member(3, "x").reachable);
        // A member without quorum is up but serves nobody.
        let m = parse_srvr(3, "x", crate::server::fourlw::NOT_SERVING).unwrap();
        assert_eq!((m.role.as_str(), m.reachable), ("not serving", true));
    }
}
