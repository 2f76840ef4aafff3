//! ZooKeeper's data tree as its snapshot and log describe it, and the replay of logged txns
//! onto it with `DataTree.processTxn`'s rules (which make re-applying a txn that a fuzzy
//! snapshot already holds harmless).
//!
//! Paths are ZooKeeper's: the root is `""`, a node's parent is the path up to its last `/`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::txn::{TxnHeader, ZkTxn};
use crate::proto::types::Acl;

/// `ephemeralOwner` of a container (`EphemeralType.CONTAINER_EPHEMERAL_OWNER`).
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// Top byte of a TTL node's `ephemeralOwner` (`EphemeralType.TTL`); the TTL is in the low 40 bits.
const TTL_MARK: i64 = 0xFF00_0000_0000_0000_u64 as i64;

/// `StatPersisted`: the stat fields a snapshot stores, the same that a Roost node keeps.
pub use crate::tree::PersistedStat as StatPersisted;

/// One znode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkNode {
    /// `None` is null data, distinct from empty.
    pub data: Option<Vec<u8>>,
    pub acl: Arc<Vec<Acl>>,
    pub stat: StatPersisted,
}

/// The whole state: nodes, global sessions (id -> timeout in ms) and the last zxid.
#[derive(Debug, Clone, Default)]
pub struct ZkTree {
    nodes: HashMap<String, ZkNode>,
    sessions: BTreeMap<i64, i32>,
    /// Normal ephemerals by owning session (`DataTree.ephemerals`).
    ephemerals: HashMap<i64, BTreeSet<String>>,
    /// Equal ACL lists share one allocation (ZooKeeper's ACL cache).
    acl_lists: HashMap<Vec<Acl>, Arc<Vec<Acl>>>,
    last_zxid: i64,
}

/// Is this owner a session (rather than persistent, container or TTL)?
pub(super) fn is_session_owner(owner: i64) -> bool {
    owner != 0 && owner != CONTAINER_OWNER && owner & TTL_MARK != TTL_MARK
}

/// The parent path and child name, ZooKeeper's way (`/a` has parent `""`).
fn split(path: &str) -> Option<(&str, &str)> {
    path.rfind('/').map(|i| (&path[..i], &path[i + 1..]))
}

impl ZkTree {
    pub(super) fn with_last_zxid(last_zxid: i64) -> Self {
        ZkTree { last_zxid, ..ZkTree::default() }
    }

    pub(super) fn intern_acl(&mut self, acl: Vec<Acl>) -> Arc<Vec<Acl>> {
        self.acl_lists.entry(acl.clone()).or_insert_with(|| Arc::new(acl)).clone()
    }

    /// Adds a node read from a snapshot, after its parent. `Err` names what is wrong.
    pub(super) fn insert_loaded(&mut self, path: String, node: ZkNode) -> Result<(), String> {
        if !path.is_empty() {
            let (parent, name) = split(&path).ok_or_else(|| format!("invalid path {path:?}"))?;
            if name.is_empty() || !self.nodes.contains_key(parent) {
                return Err(format!("node {path:?} comes before its parent (invalid data tree)"));
            }
        }
        if self.nodes.contains_key(&path) {
            return Err(format!("node {path:?} appears twice"));
        }
        self.index(&path, node.stat.ephemeral_owner);
        self.nodes.insert(path, node);
        Ok(())
    }

    pub(super) fn insert_session(&mut self, id: i64, timeout_ms: i32) {
        self.sessions.insert(id, timeout_ms);
    }

    fn index(&mut self, path: &str, owner: i64) {
        if is_session_owner(owner) {
            self.ephemerals.entry(owner).or_default().insert(path.to_string());
        }
    }

    /// The zxid of the last txn applied (or the snapshot's, if none was).
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn node(&self, path: &str) -> Option<&ZkNode> {
        self.nodes.get(path)
    }

    /// Global sessions and their timeouts, by id.
    pub fn sessions(&self) -> &BTreeMap<i64, i32> {
        &self.sessions
    }

    /// Every node, parents before children (sorted by path: a path sorts before its extensions).
    pub fn nodes_parent_first(&self) -> Vec<(&str, &ZkNode)> {
        let mut all: Vec<(&str, &ZkNode)> = self.nodes.iter().map(|(p, n)| (p.as_str(), n)).collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Applies one logged txn as `FileTxnSnapLog.processTransaction` + `DataTree.processTxn` do
    /// during a restart: failures (the txn's effect may already be in the snapshot) are ignored.
    pub(super) fn replay(&mut self, header: &TxnHeader, txn: &ZkTxn) {
        match txn {
            ZkTxn::CreateSession { timeout_ms } => {
                self.sessions.insert(header.client_id, *timeout_ms);
            }
            ZkTxn::CloseSession { .. } => {
                self.sessions.remove(&header.client_id);
            }
            _ => {}
        }
        self.process(header, txn);
        self.last_zxid = self.last_zxid.max(header.zxid);
    }

    fn process(&mut self, header: &TxnHeader, txn: &ZkTxn) {
        let zxid = header.zxid;
        match txn {
            ZkTxn::Create { path, data, acl, ephemeral, parent_cversion, kind } => {
                let owner = match kind {
                    super::txn::CreateKind::Plain if *ephemeral => header.client_id,
                    super::txn::CreateKind::Plain => 0,
                    super::txn::CreateKind::Container => CONTAINER_OWNER,
                    super::txn::CreateKind::Ttl(ttl) => TTL_MARK | (ttl & ((1 << 40) - 1)),
                };
                let exists = self.create(path, data, acl, owner, *parent_cversion, zxid, header.time);
                // processTxn: a plain create (type 1 only) that meets an existing node still
                // advances the parent's cversion/pzxid (the node was re-created by another session).
                if exists && header.txn_type == super::txn::OP_CREATE {
                    if let Some((parent, _)) = split(path) {
                        self.set_cversion_pzxid(parent, *parent_cversion, zxid);
                    }
                }
            }
            ZkTxn::Delete { path } => self.delete(path, zxid),
            ZkTxn::SetData { path, data, version } => {
                if let Some(node) = self.nodes.get_mut(path) {
                    node.data = data.clone();
                    node.stat.version = *version;
                    node.stat.mtime = header.time;
                    node.stat.mzxid = zxid;
                }
            }
            ZkTxn::SetAcl { path, acl, version } => {
                let acl = self.intern_acl(acl.clone());
                if let Some(node) = self.nodes.get_mut(path) {
                    node.acl = acl;
                    node.stat.aversion = *version;
                }
            }
            ZkTxn::CloseSession { paths } => {
                let owned = self.ephemerals.remove(&header.client_id).unwrap_or_default();
                for path in paths.iter().flatten().chain(owned.iter()) {
                    self.delete(path, zxid);
                }
            }
            ZkTxn::Multi(subs) => {
                // A multi with any failed sub-txn was not applied at all.
                if subs.iter().any(|s| matches!(s.1, ZkTxn::Error { .. })) {
                    return;
                }
                for (sub_type, sub) in subs {
                    let sub_header = TxnHeader { txn_type: *sub_type, ..*header };
                    self.process(&sub_header, sub);
                }
            }
            ZkTxn::CreateSession { .. } | ZkTxn::Error { .. } | ZkTxn::Check { .. } => {}
        }
    }

    /// `DataTree.createNode`; true if the node existed already (its ACL is re-pointed, as there).
    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        path: &str,
        data: &Option<Vec<u8>>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
    ) -> bool {
        let Some((parent_path, _)) = split(path) else { return false };
        if !self.nodes.contains_key(parent_path) {
            return false; // NoNode, ignored in replay
        }
        let acl = self.intern_acl(acl.to_vec());
        if let Some(existing) = self.nodes.get_mut(path) {
            existing.acl = acl;
            return true;
        }
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            let new_cversion = if parent_cversion == -1 { parent.stat.cversion + 1 } else { parent_cversion };
            // Only forward: replaying a create of a node deleted again inside the fuzzy
            // range must not move the parent back.
            if new_cversion > parent.stat.cversion {
                parent.stat.cversion = new_cversion;
                parent.stat.pzxid = zxid;
            }
        }
        let node = ZkNode { data: data.clone(), acl, stat: StatPersisted::created(zxid, time, owner) };
        self.index(path, owner);
        self.nodes.insert(path.to_string(), node);
        false
    }

    /// `DataTree.setCversionPzxid`.
    fn set_cversion_pzxid(&mut self, path: &str, cversion: i32, zxid: i64) {
        if let Some(node) = self.nodes.get_mut(path) {
            let cversion = if cversion == -1 { node.stat.cversion + 1 } else { cversion };
            if cversion > node.stat.cversion {
                node.stat.cversion = cversion;
                node.stat.pzxid = zxid;
            }
        }
    }

    /// `DataTree.deleteNode`: the parent's pzxid moves forward even if the child is gone already.
    fn delete(&mut self, path: &str, zxid: i64) {
        let Some((parent_path, _)) = split(path) else { return };
        let Some(parent) = self.nodes.get_mut(parent_path) else { return };
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        if let Some(node) = self.nodes.remove(path) {
            let owner = node.stat.ephemeral_owner;
            if let Some(owned) = self.ephemerals.get_mut(&owner) {
                owned.remove(path);
                if owned.is_empty() {
                    self.ephemerals.remove(&owner);
                }
            }
        }
    }

    /// `ZooKeeperServer.loadData`'s clean-up: ephemerals whose session is not in the session
    /// table are deleted (with the last zxid, as `killSession` does there). Returns how many.
    pub(super) fn remove_orphan_ephemerals(&mut self) -> u64 {
        let dead: Vec<i64> = self.ephemerals.keys().copied().filter(|s| !self.sessions.contains_key(s)).collect();
        let mut removed = 0;
        for session in dead {
            for path in self.ephemerals.remove(&session).unwrap_or_default() {
                self.delete(&path, self.last_zxid);
                removed += 1;
            }
        }
        removed
    }

    /// `DataTree.setupQuota`: every `/zookeeper/quota/<path>/zookeeper_stats` gets the node
    /// count and data bytes of `<path>`'s subtree. ZooKeeper keeps these without txns, so the
    /// files hold stale values that its own load recomputes.
    pub(super) fn recompute_quota_stats(&mut self) {
        const QUOTA: &str = "/zookeeper/quota";
        const LIMITS: &str = "/zookeeper_limits";
        let limited: Vec<String> = self
            .nodes
            .keys()
            .filter(|p| p.starts_with(QUOTA) && p.ends_with(LIMITS))
            .map(|p| p[QUOTA.len()..p.len() - LIMITS.len()].to_string())
            .collect();
        if limited.is_empty() {
            return;
        }
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for path in self.nodes.keys().filter(|p| !p.is_empty()) {
            if let Some((parent, _)) = split(path) {
                children.entry(parent).or_default().push(path);
            }
        }
        let mut updates = Vec::new();
        for target in limited {
            let (mut count, mut bytes) = (0u64, 0u64);
            let mut stack = vec![target.as_str()];
            while let Some(p) = stack.pop() {
                let Some(node) = self.nodes.get(p) else { continue };
                count += 1;
                bytes += node.data.as_ref().map_or(0, |d| d.len() as u64);
                stack.extend(children.get(p).into_iter().flatten().copied());
            }
            updates.push((format!("{QUOTA}{target}/zookeeper_stats"), format!("count={count},bytes={bytes}")));
        }
        for (stats_path, text) in updates {
            if let Some(node) = self.nodes.get_mut(&stats_path) {
                node.data = Some(text.into_bytes());
            }
        }
    }
}
