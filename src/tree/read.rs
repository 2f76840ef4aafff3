//! Client reads, with the ACL checks of ZooKeeper's FinalRequestProcessor.
//!
//! Reads do not validate paths (a malformed path simply does not exist), except
//! that `exists` refuses a NUL with BadArguments.

use bytes::Bytes;

use super::acl::{check_acl, mask_digests};
use super::path::canonical;
use super::{DataTree, CONFIG_PATH};
use crate::proto::types::{perms, Acl, ErrorCode, Id, Stat};

impl DataTree {
    /// getData: the data (`None` = null) and stat; READ needed.
    pub fn get_data(&self, path: &str, auth: &[Id]) -> Result<(Option<Bytes>, Stat), ErrorCode> {
        let (data, stat) = self.get_data_ref(path, auth)?;
        Ok((data.map(Bytes::copy_from_slice), stat))
    }

    /// [`Self::get_data`] borrowing the data from the tree, for a caller that encodes it
    /// while it holds the tree (no copy of the value).
    pub fn get_data_ref(&self, path: &str, auth: &[Id]) -> Result<(Option<&[u8]>, Stat), ErrorCode> {
        let node = self.node_with_perm(path, perms::READ, auth)?;
        Ok((self.nodes.data(node), node.client_stat()))
    }

    /// exists: NoNode when absent; READ needed only when present.
    pub fn exists(&self, path: &str, auth: &[Id]) -> Result<Stat, ErrorCode> {
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        Ok(self.node_with_perm(path, perms::READ, auth)?.client_stat())
    }

    /// getChildren / getChildren2: child names (sorted) and the stat; READ needed.
    pub fn get_children(&self, path: &str, auth: &[Id]) -> Result<(Vec<String>, Stat), ErrorCode> {
        let id = self.node_id_with_perm(path, perms::READ, auth)?;
        let names = self.nodes.sorted_children(id).into_iter().map(|c| self.nodes.name(self.nodes.get(c)).to_owned());
        Ok((names.collect(), self.nodes.get(id).client_stat()))
    }

    /// getChildren / getChildren2 as the client port answers them: the names in Apache
    /// ZooKeeper's order (see `NodeStore::child_names_in_zookeeper_order`), each as a 4-byte
    /// big-endian length and its bytes, with their count and the stat; READ needed.
    pub fn children_in_zookeeper_order(&self, path: &str, auth: &[Id]) -> Result<(usize, Vec<u8>, Stat), ErrorCode> {
        let id = self.node_id_with_perm(path, perms::READ, auth)?;
        let (count, names) = self.nodes.child_names_in_zookeeper_order(id);
        Ok((count, names, self.nodes.get(id).client_stat()))
    }

    /// getACL: READ or ADMIN needed; without ADMIN digest ids come back as `user:x`.
    pub fn get_acl(&self, path: &str, auth: &[Id]) -> Result<(Vec<Acl>, Stat), ErrorCode> {
        let node = self.node_with_perm(path, perms::READ | perms::ADMIN, auth)?;
        let acl = if check_acl(&node.acl, perms::ADMIN, auth) { node.acl.to_vec() } else { mask_digests(&node.acl) };
        Ok((acl, node.client_stat()))
    }

    /// getAllChildrenNumber: every descendant (for `/`, every other node,
    /// `/zookeeper` and its children included); READ needed.
    pub fn all_children_number(&self, path: &str, auth: &[Id]) -> Result<i32, ErrorCode> {
        let id = self.node_id_with_perm(path, perms::READ, auth)?;
        if canonical(path) == "/" {
            return Ok((self.nodes.len() - 1) as i32);
        }
        let mut count = 0usize;
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            let children = self.nodes.children(id);
            count += children.len();
            stack.extend_from_slice(children);
        }
        Ok(count as i32)
    }

    /// The `/zookeeper/config` data (empty until a configuration was installed), without
    /// an ACL check: for the reconfig machinery, not for clients.
    pub fn config_data(&self) -> Bytes {
        self.node(CONFIG_PATH).and_then(|n| self.nodes.data(n).map(Bytes::copy_from_slice)).unwrap_or_default()
    }

    /// Whether `auth` may change `/zookeeper/config` (WRITE on it; super always may).
    pub fn may_write_config(&self, auth: &[Id]) -> bool {
        self.node_with_perm(CONFIG_PATH, perms::WRITE, auth).is_ok()
    }

    /// Containers and TTL nodes the leader should reap at `now_ms`, sorted.
    /// Each is then proposed as a `DeleteContainer`, which re-checks at apply.
    pub fn reapable(&self, now_ms: i64) -> Vec<String> {
        self.reapable_nodes
            .iter()
            .filter(|p| self.node(p).is_some_and(|n| n.is_reap_due(now_ms)))
            .map(|p| p.to_string())
            .collect()
    }
}
