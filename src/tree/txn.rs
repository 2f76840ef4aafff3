//! Transactions: the replicated commands that change the data tree.
//!
//! A client write becomes a [`Txn`] on the server that received it. The txn
//! carries everything `apply` needs to reach the same result on every replica:
//! the wall-clock time (decided once, by the proposer), the caller's identities
//! (for ACL checks) and the session. Validation (versions, existence, ACLs)
//! happens at apply time against the committed tree, so every replica computes
//! the same outcome in log order.
//!
//! Many txns travel in one consensus entry as a [`TxnBatch`]; each txn that
//! changes the tree gets its own zxid.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::proto::types::{Acl, CreateMode, ErrorCode, Id, Stat};

/// One replicated command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Txn {
    /// The session that issued it; 0 for server-internal txns (container/TTL reaping).
    pub session_id: i64,
    /// Milliseconds since the Unix epoch, decided by the proposer. Becomes ctime/mtime.
    pub time_ms: i64,
    /// The caller's authenticated identities (ip, digest, super...), used for ACL checks
    /// and to expand the `auth` ACL scheme.
    pub auth: Vec<Id>,
    pub op: TxnOp,
}

/// What a txn does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TxnOp {
    /// Registers a new session. `session_id` is chosen by the proposer; apply fails
    /// with `NodeExists`-like `BadArguments` if the id is taken.
    CreateSession {
        session_id: i64,
        timeout_ms: i32,
        password: [u8; 16],
    },
    /// Closes (or expires) a session and deletes all of its ephemeral nodes in one zxid.
    CloseSession {
        session_id: i64,
    },
    /// Covers create (1), create2 (15), createContainer (19) and createTTL (21).
    Create {
        path: String,
        // As a byte string: postcard would otherwise encode node data one byte at a time.
        #[serde(with = "serde_bytes")]
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        mode: CreateMode,
        /// Only for the TTL modes.
        ttl_ms: Option<i64>,
    },
    Delete {
        path: String,
        version: i32,
    },
    /// Server-internal reaping of an empty container or an expired TTL node.
    /// Applies only if the node is still reapable at apply time.
    DeleteContainer {
        path: String,
    },
    SetData {
        path: String,
        #[serde(with = "serde_bytes")]
        data: Option<Vec<u8>>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    /// Version check; only valid inside a multi.
    Check {
        path: String,
        version: i32,
    },
    /// Atomic multi: all sub-ops apply with one zxid, or none.
    Multi(Vec<TxnOp>),
    /// Installs a new ensemble configuration in `/zookeeper/config` (reconfig, or the
    /// first leader recording the initial one): the data becomes `members` (the
    /// `server.N=...` lines, each ending in a newline) followed by `version=<hex zxid>`,
    /// the stat version -1, as ZooKeeper's reconfig does. No ACL check: the proposer
    /// checked the caller's right before proposing.
    SetConfig {
        members: String,
    },
    /// The first leader records the initial configuration (from zoo.cfg). ZooKeeper does
    /// this outside its txn log (`initConfigInZKDatabase`), so it takes no zxid: the
    /// version and mzxid are the epoch's first zxid (`term << 32`, the NEWLEADER zxid),
    /// and it does nothing when a configuration is installed already.
    InitConfig {
        members: String,
    },
    /// A session expiry decided by the leader of `term`. It closes the session as
    /// `CloseSession` does, but only if its log entry belongs to that same term: a leader
    /// deposed while it decided must not have the decision carried out by its successor,
    /// which would expire a session whose client kept it alive through another member.
    /// (Last in the enum so that logs written before it still decode.)
    ExpireSession {
        session_id: i64,
        term: u64,
    },
    /// Replaces the whole tree (nodes, sessions) with a backup: a snapshot in
    /// [`DataTree::serialize`](super::DataTree::serialize)'s encoding. Every replica decodes
    /// the same bytes, so all end with the same tree; bytes that do not decode change
    /// nothing anywhere. The tree keeps its own `/zookeeper/config` (the backup's names the
    /// members of the ensemble it came from) and its zxids keep rising: the restore takes
    /// a zxid above both the tree's and the backup's last one. With `only_if_fresh`, a tree
    /// that has applied any txn already refuses it (seeding a new ensemble from a backup
    /// must never overwrite writes made meanwhile). (After `ExpireSession` so that older
    /// logs still decode.)
    Restore {
        #[serde(with = "serde_bytes")]
        snapshot: Vec<u8>,
        only_if_fresh: bool,
    },
}

impl TxnOp {
    /// The session this op ends when it applies: a client's close or an expiry.
    pub fn ended_session(&self) -> Option<i64> {
        match *self {
            TxnOp::CloseSession { session_id } | TxnOp::ExpireSession { session_id, .. } => Some(session_id),
            _ => None,
        }
    }
}

/// A batch of txns carried by one consensus log entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TxnBatch {
    pub txns: Vec<Txn>,
}

/// The result of applying one txn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnOutcome {
    /// The zxid the txn got if it changed the tree, else the last zxid at apply time.
    pub zxid: i64,
    pub result: Result<OpResult, ErrorCode>,
}

/// The result of one successful op (or of a multi, whose sub-results may be errors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OpResult {
    SessionCreated,
    SessionClosed,
    /// The final path (with sequence suffix) and the new node's stat.
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    /// setData / setACL: the node's stat after the change.
    Stat(Stat),
    Checked,
    /// SetConfig: the new `/zookeeper/config` data and stat.
    Config {
        data: Vec<u8>,
        stat: Stat,
    },
    /// One entry per sub-op, ZooKeeper's 0 / error / -2 pattern already applied:
    /// on failure, earlier ops are `Err(ErrorCode::Ok)`, the failing op its code,
    /// later ops `Err(ErrorCode::RuntimeInconsistency)`.
    Multi(Vec<Result<OpResult, ErrorCode>>),
    /// Restore: the last zxid of the backup that was installed.
    Restored {
        backup_zxid: i64,
    },
}

/// The outcomes of one batch, in txn order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BatchOutcome {
    pub outcomes: Vec<TxnOutcome>,
}

/// What a txn changed, as seen by watches and the change feed. `apply` returns these in op
/// order so the watch layer can fire NodeCreated / NodeDeleted / NodeDataChanged /
/// NodeChildrenChanged, and the feed can show the change, without looking at the tree again.
/// Everything here is shared with the tree (the ACL) or the write (the data), not copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
    /// The ACL that decides who may see the event: the node's own ACL for
    /// Created / Deleted / DataChanged, the parent's for ChildrenChanged.
    pub acl: Arc<Vec<Acl>>,
    /// The node's stat right after this change (the parent's for ChildrenChanged); `None`
    /// for Deleted.
    pub stat: Option<Stat>,
    /// The data this change wrote (Created, DataChanged; `None` for null data and for the
    /// other kinds).
    pub data: Option<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Created,
    Deleted,
    DataChanged,
    ChildrenChanged,
}
