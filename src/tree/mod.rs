//! The data tree: znodes, stats, ACLs and the deterministic `apply(txn)`.
//!
//! Every replica applies the same txns in log order and must end in the same
//! state, so nothing here reads the clock, iterates a randomly-ordered map in a
//! way that shows, or depends on anything outside the txn.
//!
//! Layout: [`node`] (one znode, persisted stat, ACL interning), [`path`]
//! (validation rules), [`acl`] (permission checks, fixupACL), `apply` and
//! `mutate` (writes with an undo log for multi), `read` (client reads),
//! `sessions`, `digest`, [`snapshot`].

pub mod acl;
mod apply;
mod blobs;
mod cow;
mod digest;
mod index;
mod mutate;
mod node;
pub mod path;
mod read;
mod restore;
mod sessions;
pub mod snapshot;
mod store;
pub mod txn;

#[cfg(test)]
mod apply_tests;
#[cfg(test)]
mod multi_tests;
#[cfg(test)]
mod test_util;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

use crate::proto::types::{Acl, Stat};
pub use node::MAX_TTL_MS;

/// The node holding the ensemble configuration (`ZooDefs.CONFIG_NODE`).
pub const CONFIG_PATH: &str = "/zookeeper/config";
use node::AclTable;
pub use node::PersistedStat;
pub use snapshot::SnapshotError;
pub(crate) use snapshot::TreeBuilder;
use store::{Detached, Node, NodeStore};

/// A replicated session: what the tree needs to keep a session alive across
/// failover and restarts. Deadlines are not replicated (the leader owns them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionEntry {
    pub timeout_ms: i32,
    pub password: [u8; 16],
}

/// The in-memory ZooKeeper namespace plus the sessions table.
#[derive(Debug, Clone)]
pub struct DataTree {
    /// Every znode (see [`store`] for the memory layout).
    nodes: NodeStore,
    sessions: BTreeMap<i64, SessionEntry>,
    /// Normal ephemerals per owning session (`DataTree.ephemerals`).
    ephemerals: HashMap<i64, BTreeSet<Box<str>>>,
    /// Containers and TTL nodes: the only candidates for reaping.
    reapable_nodes: BTreeSet<Box<str>>,
    acls: AclTable,
    last_zxid: i64,
    /// Sum over nodes of path length + data length (ZooKeeper counts the root as
    /// both `""` and `/`, which is 0 + 1 bytes).
    data_size: u64,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree with ZooKeeper's boot-time nodes: `/`, `/zookeeper`,
    /// `/zookeeper/quota` and `/zookeeper/config` (world READ only), all with
    /// zero stats and empty (not null) data.
    pub fn new() -> Self {
        let mut tree = Self::empty();
        let open = tree.acls.intern(Acl::open_unsafe());
        let read_only = tree.acls.intern(Acl::read_unsafe());
        let empty = || Some(Bytes::new());
        let zero = PersistedStat::default();
        for (path, acl) in [
            ("/", open.clone()),
            ("/zookeeper", open.clone()),
            ("/zookeeper/quota", open),
            ("/zookeeper/config", read_only),
        ] {
            // Wired in without a create: the persisted cversion stays 0, which is
            // why `/` reports cversion -1 and `/zookeeper` -2.
            // ZooKeeper's boot-time setACL(config, READ_ACL_UNSAFE, -1) stores -1 as its aversion.
            let stat = if path == "/zookeeper/config" { PersistedStat { aversion: -1, ..zero } } else { zero };
            tree.link_node(path.into(), Detached::new(empty(), acl, stat));
        }
        tree
    }

    /// A tree with no nodes at all; snapshot loading fills it.
    fn empty() -> Self {
        DataTree {
            nodes: NodeStore::default(),
            sessions: BTreeMap::new(),
            ephemerals: HashMap::new(),
            reapable_nodes: BTreeSet::new(),
            acls: AclTable::default(),
            last_zxid: 0,
            data_size: 0,
        }
    }

    /// The node at `path`; `""` is ZooKeeper's alias of the root.
    fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.lookup(path::canonical(path)).map(|id| self.nodes.get(id))
    }

    /// Stat of `path` without any ACL check (for the watch layer).
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.node(path).map(Node::client_stat)
    }

    /// ACL of `path` without any check (for ACL-filtered watch delivery).
    pub fn acl(&self, path: &str) -> Option<Vec<Acl>> {
        self.node(path).map(|n| n.acl.to_vec())
    }

    /// ACL of `path` as the tree holds it (shared, not copied).
    pub fn shared_acl(&self, path: &str) -> Option<std::sync::Arc<Vec<Acl>>> {
        self.node(path).map(|n| n.acl.clone())
    }

    /// The zxid of the last txn that changed the tree.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Number of znodes, root included (4 on a fresh tree; ZooKeeper's
    /// `zk_znode_count` reports one more because it stores the root twice).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of normal ephemeral nodes across all sessions.
    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// ZooKeeper's `approximateDataSize`: sum of path and data lengths (44 fresh).
    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }
}
