//! Where the znodes live: an arena of nodes with a hash index on (parent, name).
//!
//! Memory is the point of this layout; a million znodes should cost little more
//! than their data and stats. So:
//! - nodes sit in one `Vec` and refer to each other by `u32` index;
//! - a node's name and data share one allocation (`blob`), and no full path is
//!   stored anywhere: the index maps `(parent id, name)` to a node, and a path is
//!   resolved one segment at a time;
//! - child lists are unordered `Vec<u32>`s, and each child remembers its position
//!   in its parent's list, so create and delete stay O(1) under a parent with a
//!   million children. Whoever needs name order ([`NodeStore::sorted_children`])
//!   sorts when it asks; the replicas never depend on list order.

use std::hash::BuildHasher;
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::{DefaultHashBuilder, HashTable};

use super::node::{NodeKind, PersistedStat};
use crate::proto::types::{Acl, Stat};

/// Index of a node in the arena.
pub(crate) type NodeId = u32;
/// The root is always the first node.
pub(crate) const ROOT: NodeId = 0;
/// "No node" / "no list" marker.
const NIL: u32 = u32::MAX;

/// A znode outside the tree: one about to be created, or one an undo entry holds.
#[derive(Debug, Clone)]
pub(crate) struct Detached {
    /// `None` is ZooKeeper's null data, distinct from empty data.
    pub data: Option<Bytes>,
    pub acl: Arc<[Acl]>,
    pub stat: PersistedStat,
}

impl Detached {
    pub(crate) fn new(data: Option<Bytes>, acl: Arc<[Acl]>, stat: PersistedStat) -> Self {
        Detached { data, acl, stat }
    }

    pub(crate) fn kind(&self) -> NodeKind {
        NodeKind::from_owner(self.stat.ephemeral_owner)
    }

    pub(crate) fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }

    /// The stat a client sees for this node once created (no children yet).
    pub(crate) fn client_stat(&self) -> Stat {
        client_stat(&self.stat, 0, self.data_len())
    }
}

/// One znode in the tree. 112 bytes plus its blob.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub stat: PersistedStat,
    pub acl: Arc<[Acl]>,
    /// A varint `name_len << 1 | data_is_null`, the name, then the data.
    blob: Box<[u8]>,
    parent: NodeId,
    /// Position in the parent's child list.
    pos: u32,
    /// The child list in [`NodeStore::lists`], or NIL while childless.
    list: u32,
    child_count: u32,
}

impl Node {
    fn header(&self) -> (usize, bool, usize) {
        let mut value = 0usize;
        let mut shift = 0;
        let mut at = 0;
        while let Some(&b) = self.blob.get(at) {
            at += 1;
            value |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 || shift >= usize::BITS as usize {
                break;
            }
        }
        (value >> 1, value & 1 == 1, at)
    }

    fn name_bytes(&self) -> &[u8] {
        let (len, _, at) = self.header();
        self.blob.get(at..at + len).unwrap_or_default()
    }

    /// The last path segment (`""` for the root).
    pub(crate) fn name(&self) -> &str {
        std::str::from_utf8(self.name_bytes()).unwrap_or_default()
    }

    /// The data; `None` is ZooKeeper's null data.
    pub(crate) fn data(&self) -> Option<&[u8]> {
        let (len, null, at) = self.header();
        if null {
            None
        } else {
            Some(self.blob.get(at + len..).unwrap_or_default())
        }
    }

    pub(crate) fn data_len(&self) -> usize {
        self.data().map_or(0, <[u8]>::len)
    }

    pub(crate) fn child_count(&self) -> usize {
        self.child_count as usize
    }

    pub(crate) fn kind(&self) -> NodeKind {
        NodeKind::from_owner(self.stat.ephemeral_owner)
    }

    /// Whether a container or TTL node may be reaped at `now_ms`: no children,
    /// and either a container that once had a child or a TTL node whose last
    /// change is more than ttl old (`ContainerManager.getCandidates`).
    pub(crate) fn is_reap_due(&self, now_ms: i64) -> bool {
        self.child_count == 0
            && match self.kind() {
                NodeKind::Container => self.stat.cversion > 0,
                NodeKind::Ttl(ttl) => now_ms.saturating_sub(self.stat.mtime) > ttl,
                _ => false,
            }
    }

    /// The client view (`DataNode.copyStat`).
    pub(crate) fn client_stat(&self) -> Stat {
        client_stat(&self.stat, self.child_count, self.data_len())
    }
}

/// `DataNode.copyStat`: cversion is `2*created - numChildren` (ZOOKEEPER-1046) and
/// container/TTL owners are reported as 0.
fn client_stat(s: &PersistedStat, num_children: u32, data_len: usize) -> Stat {
    let num_children = num_children as i32;
    let ephemeral_owner = match NodeKind::from_owner(s.ephemeral_owner) {
        NodeKind::Ephemeral(owner) => owner,
        _ => 0,
    };
    Stat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
        aversion: s.aversion,
        ephemeral_owner,
        data_length: data_len as i32,
        num_children,
        pzxid: s.pzxid,
    }
}

fn make_blob(name: &[u8], data: Option<&[u8]>) -> Box<[u8]> {
    let data_bytes = data.unwrap_or_default();
    let mut blob = Vec::with_capacity(10 + name.len() + data_bytes.len());
    let mut header = (name.len() << 1) | usize::from(data.is_none());
    loop {
        let low = (header & 0x7f) as u8;
        header >>= 7;
        if header == 0 {
            blob.push(low);
            break;
        }
        blob.push(low | 0x80);
    }
    blob.extend_from_slice(name);
    blob.extend_from_slice(data_bytes);
    blob.into_boxed_slice()
}

/// The arena, the (parent, name) index and the child lists.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeStore {
    nodes: Vec<Node>,
    /// Slots of deleted nodes, reused first.
    free: Vec<NodeId>,
    index: HashTable<NodeId>,
    hasher: DefaultHashBuilder,
    lists: Vec<Vec<NodeId>>,
    free_lists: Vec<u32>,
    len: usize,
}

impl NodeStore {
    /// Room for `nodes` nodes without reallocating (snapshot loading).
    pub(crate) fn reserve(&mut self, nodes: usize) {
        self.nodes.reserve(nodes.saturating_sub(self.nodes.len()));
        let NodeStore { index, nodes: arena, hasher, .. } = self;
        index.reserve(nodes.saturating_sub(index.len()), |&id| key_hash(hasher, arena, id));
    }

    /// Number of nodes, root included.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn get(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    pub(crate) fn get_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    /// The node at a canonical path (`/` is the root), resolved segment by segment.
    pub(crate) fn lookup(&self, path: &str) -> Option<NodeId> {
        if self.is_empty() {
            return None;
        }
        if path == "/" {
            return Some(ROOT);
        }
        let rest = path.strip_prefix('/')?;
        rest.split('/').try_fold(ROOT, |parent, name| self.child(parent, name.as_bytes()))
    }

    /// The child of `parent` called `name`.
    pub(crate) fn child(&self, parent: NodeId, name: &[u8]) -> Option<NodeId> {
        let hash = self.hasher.hash_one((parent, name));
        self.index
            .find(hash, |&id| {
                let n = &self.nodes[id as usize];
                n.parent == parent && n.name_bytes() == name
            })
            .copied()
    }

    /// The children of `id`, in no particular order.
    pub(crate) fn children(&self, id: NodeId) -> &[NodeId] {
        let list = self.nodes[id as usize].list;
        self.lists.get(list as usize).map_or(&[], Vec::as_slice)
    }

    /// The children of `id` in name order (byte order, as `String`'s `Ord`).
    pub(crate) fn sorted_children(&self, id: NodeId) -> Vec<NodeId> {
        let mut kids = self.children(id).to_vec();
        kids.sort_unstable_by(|&a, &b| self.get(a).name_bytes().cmp(self.get(b).name_bytes()));
        kids
    }

    /// Installs the root of an empty store.
    pub(crate) fn insert_root(&mut self, value: Detached) -> NodeId {
        debug_assert!(self.is_empty());
        self.nodes.clear();
        self.free.clear();
        let node = Node {
            stat: value.stat,
            acl: value.acl,
            blob: make_blob(b"", value.data.as_deref()),
            parent: NIL,
            pos: 0,
            list: NIL,
            child_count: 0,
        };
        self.nodes.push(node);
        self.len = 1;
        ROOT
    }

    /// Adds `value` as the child `name` of `parent`, which must not have one by that name.
    pub(crate) fn insert(&mut self, parent: NodeId, name: &str, value: Detached) -> NodeId {
        let list = self.list_of(parent);
        let pos = self.lists[list as usize].len() as u32;
        let node = Node {
            stat: value.stat,
            acl: value.acl,
            blob: make_blob(name.as_bytes(), value.data.as_deref()),
            parent,
            pos,
            list: NIL,
            child_count: 0,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as NodeId
            }
        };
        self.lists[list as usize].push(id);
        self.nodes[parent as usize].child_count += 1;
        let hash = self.hasher.hash_one((parent, name.as_bytes()));
        let NodeStore { index, nodes, hasher, .. } = self;
        index.insert_unique(hash, id, |&other| key_hash(hasher, nodes, other));
        self.len += 1;
        id
    }

    /// The child list of `parent`, created on first use.
    fn list_of(&mut self, parent: NodeId) -> u32 {
        let current = self.nodes[parent as usize].list;
        if current != NIL {
            return current;
        }
        let list = match self.free_lists.pop() {
            Some(list) => list,
            None => {
                self.lists.push(Vec::new());
                (self.lists.len() - 1) as u32
            }
        };
        self.nodes[parent as usize].list = list;
        list
    }

    /// Removes a childless non-root node and returns what it held.
    pub(crate) fn remove(&mut self, id: NodeId) -> Detached {
        let (parent, pos) = {
            let n = &self.nodes[id as usize];
            (n.parent, n.pos)
        };
        let hash = key_hash(&self.hasher, &self.nodes, id);
        if let Ok(entry) = self.index.find_entry(hash, |&other| other == id) {
            entry.remove();
        }
        let list = self.nodes[parent as usize].list;
        if let Some(kids) = self.lists.get_mut(list as usize) {
            kids.swap_remove(pos as usize);
            if let Some(&moved) = kids.get(pos as usize) {
                self.nodes[moved as usize].pos = pos;
            }
            if kids.is_empty() {
                // Give the allocation back: a parent that had a million children keeps nothing.
                *kids = Vec::new();
                self.free_lists.push(list);
                self.nodes[parent as usize].list = NIL;
            }
        }
        self.nodes[parent as usize].child_count -= 1;
        // A free slot keeps a shared ACL (no allocation) until it is reused.
        let placeholder_acl = Arc::clone(&self.nodes[ROOT as usize].acl);
        let node = std::mem::replace(
            &mut self.nodes[id as usize],
            Node {
                stat: PersistedStat::default(),
                acl: placeholder_acl,
                blob: Box::default(),
                parent: NIL,
                pos: 0,
                list: NIL,
                child_count: 0,
            },
        );
        self.free.push(id);
        self.len -= 1;
        let data = node.data().map(Bytes::copy_from_slice);
        Detached { data, acl: node.acl, stat: node.stat }
    }

    /// Replaces the data of `id`, returning the old data.
    pub(crate) fn set_data(&mut self, id: NodeId, data: Option<&[u8]>) -> Option<Bytes> {
        let node = &mut self.nodes[id as usize];
        let old = node.data().map(Bytes::copy_from_slice);
        node.blob = make_blob(node.name_bytes(), data);
        old
    }
}

/// The index hash of an existing node.
fn key_hash(hasher: &DefaultHashBuilder, nodes: &[Node], id: NodeId) -> u64 {
    let n = &nodes[id as usize];
    hasher.hash_one((n.parent, n.name_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(data: Option<&[u8]>) -> Detached {
        Detached::new(data.map(Bytes::copy_from_slice), Arc::from(Vec::new()), PersistedStat::default())
    }

    fn store() -> NodeStore {
        let mut s = NodeStore::default();
        s.insert_root(value(Some(b"")));
        s
    }

    #[test]
    fn node_stays_small() {
        assert!(std::mem::size_of::<Node>() <= 112, "Node is {} bytes", std::mem::size_of::<Node>());
    }

    #[test]
    fn blob_keeps_name_and_data_apart_including_null_and_long_names() {
        let long = "x".repeat(300);
        for (name, data) in [("a", Some(&b"12"[..])), ("", None), (long.as_str(), Some(&b""[..])), ("n", None)] {
            let node = Node {
                stat: PersistedStat::default(),
                acl: Arc::from(Vec::new()),
                blob: make_blob(name.as_bytes(), data),
                parent: NIL,
                pos: 0,
                list: NIL,
                child_count: 0,
            };
            assert_eq!(node.name(), name);
            assert_eq!(node.data(), data);
        }
    }

    #[test]
    fn lookup_resolves_each_segment() {
        let mut s = store();
        let a = s.insert(ROOT, "a", value(Some(b"1")));
        let b = s.insert(a, "b", value(None));
        assert_eq!(s.lookup("/"), Some(ROOT));
        assert_eq!(s.lookup("/a"), Some(a));
        assert_eq!(s.lookup("/a/b"), Some(b));
        assert_eq!(s.lookup("/b"), None, "same name under another parent is not found");
        assert_eq!(s.lookup("/a/"), None);
        assert_eq!(s.lookup("a"), None);
        assert_eq!(s.get(b).data(), None);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn removal_keeps_sibling_positions_and_reuses_slots() {
        let mut s = store();
        let ids: Vec<NodeId> = (0..5).map(|i| s.insert(ROOT, &format!("c{i}"), value(Some(b"v")))).collect();
        let gone = s.remove(ids[1]);
        assert_eq!(gone.data.as_deref(), Some(&b"v"[..]));
        s.remove(ids[3]);
        let names: Vec<&str> = s.sorted_children(ROOT).into_iter().map(|id| s.get(id).name()).collect();
        assert_eq!(names, ["c0", "c2", "c4"]);
        assert_eq!(s.get(ROOT).child_count(), 3);
        for name in ["c0", "c2", "c4"] {
            let id = s.lookup(&format!("/{name}")).expect("still there");
            s.remove(id);
        }
        assert_eq!(s.children(ROOT), &[] as &[NodeId]);
        let again = s.insert(ROOT, "new", value(None));
        assert!(ids.contains(&again), "a freed slot is reused");
        assert_eq!(s.lookup("/c1"), None);
        assert_eq!(s.lookup("/new"), Some(again));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn set_data_keeps_the_name() {
        let mut s = store();
        let a = s.insert(ROOT, "alpha", value(Some(b"old")));
        let old = s.set_data(a, Some(b"newer"));
        assert_eq!(old.as_deref(), Some(&b"old"[..]));
        assert_eq!(s.get(a).name(), "alpha");
        assert_eq!(s.get(a).data(), Some(&b"newer"[..]));
        assert_eq!(s.lookup("/alpha"), Some(a));
    }
}
