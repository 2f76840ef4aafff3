//! The seam between the HTTP layer and the rest of the server.
//!
//! The navigator, the REST API and the WebSocket stream never touch the data tree or
//! the replicated log directly: everything goes through [`Backend`], so that reads obey
//! the same ACL checks as the native port and writes travel through consensus exactly
//! like a native client's writes (zxids, watches, txn log). The node implements this
//! trait over its `Db` + consensus handle; tests implement it over a plain map.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::proto::types::{Acl, ErrorCode, Id, Stat};
use crate::tree::txn::{OpResult, TxnOp};

/// A boxed future, so that [`Backend`] stays dyn-compatible.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A node's data and stat as returned by a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeData {
    /// `None` when the node was created with null data (ZooKeeper distinguishes null from empty).
    pub data: Option<Vec<u8>>,
    pub stat: Stat,
}

pub use crate::state::feed::{ChangeEvent, ChangeFeed};

/// Which nodes a search looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Substring to look for, or a regular expression when `regex` is set.
    pub text: String,
    pub regex: bool,
    /// Also match against node data (decoded lossily as UTF-8), not only the path.
    pub in_data: bool,
    /// Only nodes at or under this path.
    pub root: String,
}

/// What a search found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchResult {
    pub paths: Vec<String>,
    /// Why the search stopped before it had looked at every node, if it did.
    pub stopped: Option<String>,
}

/// One ensemble member, with the figures `mntr`/`srvr` report for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberInfo {
    pub id: u64,
    /// `host:port` of its client port.
    pub address: String,
    /// "leader", "follower", "observer", "standalone" or "unknown".
    pub role: String,
    pub zxid: i64,
    pub connections: u64,
    pub avg_latency_ms: f64,
    pub max_latency_ms: u64,
    pub znode_count: u64,
    pub reachable: bool,
}

/// The ensemble as seen by the node serving the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterInfo {
    /// Id of the member answering.
    pub this_id: u64,
    pub leader_id: Option<u64>,
    /// The consensus term this member is in (0 for a standalone server): there is at most
    /// one leader per term, so a leader is only shown together with its term.
    pub term: u64,
    /// Voting members of the current configuration (changes on reconfig).
    pub voters: Vec<u64>,
    pub members: Vec<MemberInfo>,
    pub version: String,
}

/// A client session and the ephemeral nodes it owns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionInfo {
    pub id: i64,
    pub timeout_ms: i32,
    /// Client address, when known to this member.
    pub client: Option<String>,
    pub ephemerals: Vec<String>,
}

/// Everything the HTTP layer needs from the server.
///
/// `auth` arguments are the identities of the HTTP caller: the digest ids it logged in
/// with (see [`Backend::digest_id`]) plus `ip:<address>`. Implementations must apply
/// ZooKeeper's ACL rules with them exactly as for a native connection (including `super`).
pub trait Backend: Send + Sync + 'static {
    /// getData: data + stat, after a READ check of the node's ACL.
    fn get(&self, path: &str, auth: &[Id]) -> Result<NodeData, ErrorCode>;

    /// getChildren2: all child names (unordered is fine; the caller sorts) and the
    /// parent's stat, after a READ check on the parent.
    fn children(&self, path: &str, auth: &[Id]) -> Result<(Vec<String>, Stat), ErrorCode>;

    /// The stats of some children of `parent`, in the order of `names`: `None` for a
    /// child that vanished or that `auth` may not READ (ZooKeeper's `exists` needs READ
    /// on an existing node, so a listing must not leak more than `exists` would).
    /// Called for one page of a listing at a time, so it must not walk all children.
    fn child_stats(&self, parent: &str, names: &[String], auth: &[Id]) -> Vec<Option<Stat>>;

    /// getACL: the ACL and stat. ZooKeeper requires READ or ADMIN for it since 3.5;
    /// implementations follow whatever the native port does.
    fn get_acl(&self, path: &str, auth: &[Id]) -> Result<(Vec<Acl>, Stat), ErrorCode>;

    /// Proposes a write through the replicated log, exactly like a native-port write,
    /// and resolves once it is applied. `op` may be `TxnOp::Multi`; a multi that fails
    /// may either resolve to `Err(code)` or to `Ok(OpResult::Multi(..))` carrying the
    /// per-op errors (the HTTP layer accepts both). It is session-less: ephemeral creates
    /// are never sent through it, only through [`Backend::write_in_session`].
    fn write(&self, op: TxnOp, auth: Vec<Id>) -> BoxFuture<'_, Result<OpResult, ErrorCode>>;

    /// [`Backend::write`] as ZooKeeper session `session_id` (one opened by
    /// [`Backend::open_session`]): its ephemeral creates belong to that session.
    fn write_in_session(
        &self,
        _session_id: i64,
        _op: TxnOp,
        _auth: Vec<Id>,
    ) -> BoxFuture<'_, Result<OpResult, ErrorCode>> {
        Box::pin(async { Err(ErrorCode::Unimplemented) })
    }

    /// Opens a ZooKeeper session through the replicated log, held by this member for an
    /// HTTP client. `timeout_ms` is clamped to the server's session timeout bounds, as a
    /// native client's request is.
    fn open_session(&self, _timeout_ms: i32) -> BoxFuture<'_, Result<OpenedSession, ErrorCode>> {
        Box::pin(async { Err(ErrorCode::Unimplemented) })
    }

    /// A sign of life of the HTTP client behind `session_id` (what a ping is on the native
    /// port): pushes its expiry out by its timeout.
    fn touch_session(&self, _session_id: i64) {}

    /// Whether `session_id` is still open (not closed, not expired).
    fn session_alive(&self, _session_id: i64) -> bool {
        false
    }

    /// Closes `session_id` through the replicated log; its ephemeral nodes go with it.
    fn close_session(&self, _session_id: i64) -> BoxFuture<'_, Result<(), ErrorCode>> {
        Box::pin(async { Ok(()) })
    }

    /// Paths matching `query`, at most `limit`, only nodes `auth` may READ. A search may stop
    /// early at its node or time budget ([`SearchResult::stopped`]); it must never hold the
    /// tree for long, since writes wait for it. It blocks: call it off the async runtime.
    fn search(&self, query: &SearchQuery, auth: &[Id], limit: usize) -> SearchResult;

    /// The change feed: every applied change in zxid order. The HTTP port enables it when
    /// it starts ([`ChangeFeed::enable`]); until then it keeps nothing.
    fn change_feed(&self) -> std::sync::Arc<ChangeFeed>;

    /// The zxid of the last applied txn (the starting point of the event ring buffer).
    fn last_zxid(&self) -> i64;

    /// Whether `auth` holds permission `perm` (a `perms::*` bit) on a node with `acl`,
    /// by the same rules as the tree (world, ip, digest, auth, super). Used to filter
    /// the event stream without another tree lookup.
    fn check_perm(&self, acl: &[Acl], auth: &[Id], perm: i32) -> bool;

    /// The ensemble with the mntr figures of each member.
    fn cluster(&self) -> ClusterInfo;

    /// Live sessions with those of their ephemerals that a caller with `auth` could list
    /// (READ on the parent, as getChildren needs).
    fn sessions(&self, auth: &[Id]) -> Vec<SessionInfo>;

    /// Watched paths with the sessions holding a watch there (the 4lw `wchp`), sorted by
    /// path. Paths only, no data: like ZooKeeper's AdminServer, no ACL filter applies.
    fn watches_by_path(&self) -> Vec<(String, Vec<i64>)>;

    /// The `mntr` key/value pairs of this member (`zk_version`, `zk_avg_latency`, ...),
    /// in mntr order. Used for `/metrics` and `/commands/monitor`.
    fn mntr(&self) -> Vec<(String, String)>;

    /// Server configuration as `conf` reports it (key, value), for `/commands/configuration`.
    fn conf(&self) -> Vec<(String, String)>;

    /// The digest identity for a login `user:password`: `digest:user:base64(sha1(user:password))`.
    fn digest_id(&self, user_password: &str) -> Id;

    /// The identities a login `user:password` gives: its digest identity, and `super` when
    /// it matches the server's `superDigest` (as an auth packet on the client port does).
    fn login_ids(&self, user_password: &str) -> Vec<Id> {
        vec![self.digest_id(user_password)]
    }

    /// Records an authentication attempt in the audit log (`audit.enable`), with the caller's
    /// identities after it. No-op by default.
    fn audit_auth(&self, _ids: &[Id], _success: bool) {}

    /// True while the server is in ZooKeeper's read-only mode (cut off from the quorum):
    /// writes are refused at once with NotReadOnly instead of waiting for consensus.
    fn read_only(&self) -> bool {
        false
    }

    /// The whole tree as of one zxid, in [`DataTree::serialize`](crate::tree::DataTree::serialize)'s
    /// encoding, for `/commands/snapshot`. Blocks while it encodes: call it off the runtime.
    fn snapshot_image(&self) -> Result<SnapshotImage, String> {
        Err("this server keeps no tree to snapshot".into())
    }

    /// Replaces the whole tree with `image` (checked beforehand by the caller) through the
    /// replicated log, so every member ends with the same tree; resolves once it is
    /// applied here. For `/commands/restore`.
    fn restore_image(&self, _image: Vec<u8>) -> BoxFuture<'_, Result<RestoreReport, String>> {
        Box::pin(async { Err("this server cannot restore a snapshot".to_string()) })
    }
}

/// A ZooKeeper session opened for an HTTP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenedSession {
    pub id: i64,
    /// The timeout the server granted.
    pub timeout_ms: i32,
}

/// A snapshot of the whole tree, as `/commands/snapshot` serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotImage {
    pub bytes: Vec<u8>,
    /// The zxid of the last txn it holds.
    pub last_zxid: i64,
}

/// What a restore did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreReport {
    /// The zxid the restore took (above both the backup's and the tree's before it).
    pub zxid: i64,
    /// The last zxid held by the backup.
    pub backup_zxid: i64,
}
