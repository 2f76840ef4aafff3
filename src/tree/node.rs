//! What a znode records (the persisted stat, its kind) and the shared ACL table;
//! [`super::store`] holds the nodes themselves.
//!
//! A node keeps ZooKeeper's *persisted* stat (`StatPersisted`): the client
//! `Stat` is derived on demand, because two of its fields (`dataLength`,
//! `numChildren`) and the client-visible `cversion` follow from the node's
//! contents. Keeping the persisted form is also what makes sequential suffixes
//! right: they come from the persisted child-create counter.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::proto::types::Acl;

/// Internal `ephemeralOwner` marker of a container node (`Long.MIN_VALUE`).
pub(crate) const CONTAINER_OWNER: i64 = i64::MIN;
/// Top byte that marks an extended ephemeral type (TTL) in `ephemeralOwner`.
pub(crate) const TTL_MARK: i64 = 0xFF00_0000_0000_0000_u64 as i64;
/// Largest TTL ZooKeeper can encode in the low 40 bits of `ephemeralOwner`.
pub const MAX_TTL_MS: i64 = (1 << 40) - 1;

/// What kind of node an `ephemeralOwner` value denotes (`EphemeralType.get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Persistent,
    /// A normal ephemeral owned by this session.
    Ephemeral(i64),
    Container,
    /// A TTL node with this ttl in milliseconds.
    Ttl(i64),
}

impl NodeKind {
    pub(crate) fn from_owner(owner: i64) -> NodeKind {
        if owner == 0 {
            NodeKind::Persistent
        } else if owner == CONTAINER_OWNER {
            NodeKind::Container
        } else if owner & TTL_MARK == TTL_MARK {
            NodeKind::Ttl(owner & MAX_TTL_MS)
        } else {
            NodeKind::Ephemeral(owner)
        }
    }

    /// Containers and TTL nodes are candidates for server-side reaping.
    pub(crate) fn is_reapable_kind(self) -> bool {
        matches!(self, NodeKind::Container | NodeKind::Ttl(_))
    }
}

/// ZooKeeper's `StatPersisted`: what survives in a snapshot.
///
/// Packed to 4-byte alignment: 60 bytes instead of 64, which lets a tree node fit in
/// 96 bytes. Fields are read and written by value (no references into it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[repr(C, packed(4))]
pub struct PersistedStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// Number of children ever created (not decremented by deletes).
    pub cversion: i32,
    pub aversion: i32,
    /// Raw owner, including the container and TTL markers.
    pub ephemeral_owner: i64,
}

impl PersistedStat {
    /// The stat of a node created by the txn with this zxid and time.
    pub(crate) fn created(zxid: i64, time_ms: i64, ephemeral_owner: i64) -> Self {
        PersistedStat {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            ephemeral_owner,
            ..Default::default()
        }
    }
}

/// An interned ACL list. A thin pointer (8 bytes) rather than `Arc<[Acl]>` (16), as
/// every znode holds one.
pub(crate) type SharedAcl = Arc<Vec<Acl>>;

/// Interns ACL lists so that a million nodes with `OPEN_ACL_UNSAFE` share one
/// allocation (the role of ZooKeeper's `ReferenceCountedACLCache`).
#[derive(Debug, Clone, Default)]
pub(crate) struct AclTable {
    set: HashSet<SharedAcl>,
    /// Size at which unused entries are swept next; doubling keeps it amortised O(1).
    purge_at: usize,
}

impl AclTable {
    pub(crate) fn intern(&mut self, acl: Vec<Acl>) -> SharedAcl {
        if let Some(existing) = self.set.get(&acl) {
            return existing.clone();
        }
        let shared = Arc::new(acl);
        self.set.insert(shared.clone());
        if self.set.len() > self.purge_at {
            // An entry only the table still holds is referenced by no node.
            self.set.retain(|a| Arc::strong_count(a) > 1);
            self.purge_at = (self.set.len() * 2).max(64);
        }
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_markers_classify_like_ephemeral_type() {
        assert_eq!(NodeKind::from_owner(0), NodeKind::Persistent);
        assert_eq!(NodeKind::from_owner(i64::MIN), NodeKind::Container);
        assert_eq!(NodeKind::from_owner(TTL_MARK | 500), NodeKind::Ttl(500));
        let sid_200 = 0xC800_0000_0000_0001_u64 as i64;
        assert_eq!(NodeKind::from_owner(sid_200), NodeKind::Ephemeral(sid_200), "server ids >= 128 give negative ids");
    }
}
