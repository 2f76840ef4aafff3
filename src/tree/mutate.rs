//! The four primitive tree mutations (create, delete, set data, set ACL).
//!
//! Each one is infallible (the caller validated first), records the watch
//! [`Change`]s it causes, and pushes an [`Undo`] entry so that a failing multi
//! can put the tree back exactly as it was. Indexes (ephemerals per session,
//! reapable nodes, data size) are maintained in one place, `index_add` /
//! `index_remove`, shared with boot and snapshot loading.

use bytes::Bytes;

use super::node::{NodeKind, SharedAcl};
use super::path::{canonical, split_parent};
use super::store::{Detached, Node, NodeId, ROOT};
use super::txn::{Change, ChangeKind};
use super::DataTree;
use crate::proto::types::Stat;

/// How to reverse one primitive mutation.
#[derive(Debug)]
pub(super) enum Undo {
    Created { path: Box<str>, parent_cversion: i32, parent_pzxid: i64 },
    Deleted { path: Box<str>, node: Detached, parent_pzxid: i64 },
    Data { path: Box<str>, data: Option<Bytes>, version: i32, mzxid: i64, mtime: i64 },
    Acl { path: Box<str>, acl: SharedAcl, aversion: i32 },
}

/// The zxid and time every mutation of one txn uses, plus what it produced.
#[derive(Debug)]
pub(super) struct Journal {
    pub zxid: i64,
    pub time_ms: i64,
    pub changes: Vec<Change>,
    pub undo: Vec<Undo>,
}

impl Journal {
    pub(super) fn new(zxid: i64, time_ms: i64) -> Self {
        Journal { zxid, time_ms, changes: Vec::new(), undo: Vec::new() }
    }

    fn change(&mut self, path: &str, kind: ChangeKind, acl: &SharedAcl, stat: Option<Stat>, data: Option<Bytes>) {
        self.changes.push(Change { path: path.to_owned(), kind, acl: acl.clone(), stat, data });
    }
}

impl DataTree {
    /// Inserts `node` under its parent (which must exist) and adds it to the
    /// indexes, without touching any stat.
    pub(super) fn link_node(&mut self, path: Box<str>, node: Detached) {
        if &*path == "/" {
            self.index_add(&path, node.stat.ephemeral_owner, node.data_len());
            self.nodes.insert_root(node);
            return;
        }
        let Some((parent, _)) = split_parent(&path) else { return };
        let Some(parent_id) = self.nodes.lookup(canonical(parent)) else { return };
        self.attach(parent_id, &path, node);
    }

    /// Inserts a non-root `node` under the existing `parent_id` and adds it to the indexes.
    fn attach(&mut self, parent_id: NodeId, path: &str, node: Detached) {
        let name = split_parent(path).map_or(path, |(_, name)| name);
        self.index_add(path, node.stat.ephemeral_owner, node.data_len());
        self.nodes.insert(parent_id, name, node);
    }

    /// Reverse of [`Self::link_node`] for a childless non-root node.
    fn unlink_node(&mut self, path: &str) -> Option<(Box<str>, Detached)> {
        let key = canonical(path);
        let id = self.nodes.lookup(key).filter(|&id| id != ROOT && self.nodes.get(id).child_count() == 0)?;
        let node = self.nodes.remove(id);
        self.index_remove(key, &node);
        Some((key.into(), node))
    }

    /// Adds a node with this `ephemeralOwner` and data length to the indexes.
    pub(super) fn index_add(&mut self, path: &str, owner: i64, data_len: usize) {
        self.data_size += (path.len() + data_len) as u64;
        match NodeKind::from_owner(owner) {
            NodeKind::Ephemeral(owner) => {
                self.ephemerals.entry(owner).or_default().insert(path.into());
            }
            kind if kind.is_reapable_kind() => {
                self.reapable_nodes.insert(path.into());
            }
            _ => {}
        }
    }

    fn index_remove(&mut self, path: &str, node: &Detached) {
        self.data_size -= (path.len() + node.data_len()) as u64;
        match node.kind() {
            NodeKind::Ephemeral(owner) => {
                if let Some(set) = self.ephemerals.get_mut(&owner) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&owner);
                    }
                }
            }
            kind if kind.is_reapable_kind() => {
                self.reapable_nodes.remove(path);
            }
            _ => {}
        }
    }

    /// Creates a validated new node: the parent's persisted child counter goes
    /// up by one and its pzxid becomes the txn's zxid (`DataTree.createNode`).
    pub(super) fn create_node(&mut self, j: &mut Journal, path: String, node: Detached) -> Stat {
        let stat = node.client_stat();
        let parent_path = split_parent(&path).map_or("/", |(p, _)| canonical(p)).to_owned();
        let Some(parent_id) = self.nodes.lookup(&parent_path) else {
            return stat;
        };
        let parent = self.nodes.get_mut(parent_id);
        j.undo.push(Undo::Created {
            path: path.as_str().into(),
            parent_cversion: parent.stat.cversion,
            parent_pzxid: parent.stat.pzxid,
        });
        parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.pzxid = j.zxid;
        let parent_acl = parent.acl.clone();
        j.change(&path, ChangeKind::Created, &node.acl, Some(stat), node.data.clone());
        self.attach(parent_id, &path, node);
        let parent_stat = self.nodes.get(parent_id).client_stat();
        j.change(&parent_path, ChangeKind::ChildrenChanged, &parent_acl, Some(parent_stat), None);
        stat
    }

    /// Deletes an existing, childless, non-root node; the parent's pzxid moves
    /// to this zxid, its persisted cversion does not (the client cversion still
    /// goes up, as numChildren went down).
    pub(super) fn delete_node(&mut self, j: &mut Journal, path: &str) {
        let Some((key, node)) = self.unlink_node(path) else {
            return;
        };
        let parent_path = split_parent(&key).map_or("/", |(p, _)| canonical(p)).to_owned();
        j.change(&key, ChangeKind::Deleted, &node.acl, None, None);
        if let Some(parent) = self.node_mut(&parent_path) {
            let parent_pzxid = parent.stat.pzxid;
            parent.stat.pzxid = parent.stat.pzxid.max(j.zxid);
            j.change(&parent_path, ChangeKind::ChildrenChanged, &parent.acl, Some(parent.client_stat()), None);
            j.undo.push(Undo::Deleted { path: key, node, parent_pzxid });
        }
    }

    /// setData on an existing node: version +1 (even for identical data),
    /// mzxid and mtime from the txn.
    pub(super) fn set_node_data(&mut self, j: &mut Journal, path: &str, data: Option<Bytes>) -> Stat {
        let key: Box<str> = canonical(path).into();
        let new_len = data.as_ref().map_or(0, |d| d.len()) as u64;
        let Some(id) = self.nodes.lookup(&key) else {
            return Stat::default();
        };
        let old_data = self.nodes.set_data(id, data.as_deref());
        let new_data = data;
        let old_len = old_data.as_ref().map_or(0, |d| d.len()) as u64;
        let node = self.nodes.get_mut(id);
        let s = &mut node.stat;
        j.undo.push(Undo::Data {
            path: key.clone(),
            data: old_data,
            version: s.version,
            mzxid: s.mzxid,
            mtime: s.mtime,
        });
        s.version = s.version.wrapping_add(1);
        s.mzxid = j.zxid;
        s.mtime = j.time_ms;
        let stat = node.client_stat();
        j.change(&key, ChangeKind::DataChanged, &node.acl, Some(stat), new_data);
        self.data_size = self.data_size - old_len + new_len;
        stat
    }

    /// Overwrites the data version of `path` right after [`Self::set_node_data`] in the same
    /// txn (whose undo entry already holds the old version); returns the new stat.
    pub(super) fn force_data_version(&mut self, j: &mut Journal, path: &str, version: i32) -> Option<Stat> {
        let node = self.node_mut(path)?;
        node.stat.version = version;
        let stat = node.client_stat();
        if let Some(change) = j.changes.last_mut().filter(|c| c.path == path) {
            change.stat = Some(stat);
        }
        Some(stat)
    }

    /// setACL on an existing node: aversion +1; no watch fires.
    pub(super) fn set_node_acl(&mut self, j: &mut Journal, path: &str, acl: SharedAcl) -> Stat {
        let key: Box<str> = canonical(path).into();
        let Some(node) = self.node_mut(&key) else {
            return Stat::default();
        };
        let old = std::mem::replace(&mut node.acl, acl);
        j.undo.push(Undo::Acl { path: key, acl: old, aversion: node.stat.aversion });
        node.stat.aversion = node.stat.aversion.wrapping_add(1);
        node.client_stat()
    }

    /// Reverts the journal's mutations, newest first.
    pub(super) fn rollback(&mut self, undo: Vec<Undo>) {
        for entry in undo.into_iter().rev() {
            match entry {
                Undo::Created { path, parent_cversion, parent_pzxid } => {
                    self.unlink_node(&path);
                    if let Some(parent) = self.parent_mut(&path) {
                        parent.stat.cversion = parent_cversion;
                        parent.stat.pzxid = parent_pzxid;
                    }
                }
                Undo::Deleted { path, node, parent_pzxid } => {
                    if let Some(parent) = self.parent_mut(&path) {
                        parent.stat.pzxid = parent_pzxid;
                    }
                    self.link_node(path, node);
                }
                Undo::Data { path, data, version, mzxid, mtime } => {
                    let Some(id) = self.nodes.lookup(&path) else { continue };
                    let new_len = data.as_ref().map_or(0, |d| d.len()) as u64;
                    let old_len = self.nodes.set_data(id, data.as_deref()).map_or(0, |d| d.len()) as u64;
                    let node = self.nodes.get_mut(id);
                    node.stat.version = version;
                    node.stat.mzxid = mzxid;
                    node.stat.mtime = mtime;
                    self.data_size = self.data_size - old_len + new_len;
                }
                Undo::Acl { path, acl, aversion } => {
                    if let Some(node) = self.node_mut(&path) {
                        node.acl = acl;
                        node.stat.aversion = aversion;
                    }
                }
            }
        }
    }

    fn parent_mut(&mut self, path: &str) -> Option<&mut Node> {
        let (parent, _) = split_parent(path)?;
        self.node_mut(parent)
    }

    pub(super) fn node_mut(&mut self, path: &str) -> Option<&mut Node> {
        let id = self.nodes.lookup(canonical(path))?;
        Some(self.nodes.get_mut(id))
    }
}
