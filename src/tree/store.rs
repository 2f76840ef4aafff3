//! Where the znodes live: an arena of nodes with a hash index on (parent, name).
//!
//! Memory is the point of this layout; a million znodes should cost little more
//! than their data and stats. So:
//! - nodes sit in one `Vec` and refer to each other by `u32` index;
//! - a node's name and data are one blob in [`Blobs`]' packed pages, and no full
//!   path is stored anywhere: the index maps `(parent id, name)` to a node, and a
//!   path is resolved one segment at a time;
//! - child lists are unordered `Vec<u32>`s, and each child remembers its position
//!   in its parent's list, so create and delete stay O(1) under a parent with a
//!   million children. Whoever needs name order ([`NodeStore::sorted_children`])
//!   sorts when it asks; the replicas never depend on list order.

use bytes::Bytes;
use hashbrown::DefaultHashBuilder;
use std::hash::BuildHasher;

use super::blobs::{BlobRef, Blobs};
use super::cow::CowVec;
use super::index::ShardedIndex;
use super::node::{NodeKind, PersistedStat, SharedAcl};
use crate::proto::types::Stat;

/// Index of a node in the arena.
pub(crate) type NodeId = u32;
/// The root is always the first node.
pub(crate) const ROOT: NodeId = 0;
/// "No node" / "no list" marker.
const NIL: u32 = u32::MAX;
/// ZooKeeper's `DataNode` creates its child set with 8 buckets.
const ZK_MIN_TABLE_BITS: u8 = 3;

/// Java's `String.hashCode` of a UTF-8 name: over its UTF-16 code units.
fn java_string_hash(name: &[u8]) -> u32 {
    let step = |h: u32, unit: u32| h.wrapping_mul(31).wrapping_add(unit);
    // An ASCII byte is its own UTF-16 unit; the common case needs no decoding.
    if name.is_ascii() {
        return name.iter().fold(0, |h, &b| step(h, u32::from(b)));
    }
    String::from_utf8_lossy(name).encode_utf16().fold(0, |h, unit| step(h, u32::from(unit)))
}

/// `java.util.HashMap.hash`: the high half folded into the low half.
fn java_hash_map_spread(h: u32) -> u32 {
    h ^ (h >> 16)
}

/// The bucket of `name` in a child table of `mask + 1` buckets, as java.util.HashSet picks it.
fn bucket_of(name: &[u8], mask: u64) -> u32 {
    (u64::from(java_hash_map_spread(java_string_hash(name))) & mask) as u32
}

/// Marks null data in `Node::name_len`.
const NULL_DATA: u32 = 1 << 31;

/// A znode outside the tree: one about to be created, or one an undo entry holds.
#[derive(Debug, Clone)]
pub(crate) struct Detached {
    /// `None` is ZooKeeper's null data, distinct from empty data.
    pub data: Option<Bytes>,
    pub acl: SharedAcl,
    pub stat: PersistedStat,
}

impl Detached {
    pub(crate) fn new(data: Option<Bytes>, acl: SharedAcl, stat: PersistedStat) -> Self {
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

/// One znode in the tree: 96 bytes, plus its name and data in [`Blobs`].
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub stat: PersistedStat,
    pub acl: SharedAcl,
    /// The name, then the data.
    blob: BlobRef,
    /// Length of the name in `blob`, or'ed with NULL_DATA for null data.
    name_len: u32,
    parent: NodeId,
    /// Position in the parent's child list.
    pos: u32,
    /// The child list in [`NodeStore::lists`], or NIL while childless.
    list: u32,
    /// The number of children (low [`CHILD_COUNT_BITS`] bits) and, above it, log2 of the
    /// bucket count Apache ZooKeeper's child set of this node would have by now, less 3 (it
    /// starts at 8 and doubles past 3/4 full, never shrinking): the order of getChildren.
    /// Packed so that a node stays 96 bytes.
    children: u32,
}

/// Bits of `Node::children` that count children: 134 million under one node, far more than
/// any ZooKeeper can list.
const CHILD_COUNT_BITS: u32 = 27;
const CHILD_COUNT_MASK: u32 = (1 << CHILD_COUNT_BITS) - 1;

impl Node {
    fn name_len(&self) -> usize {
        (self.name_len & !NULL_DATA) as usize
    }

    fn has_data(&self) -> bool {
        self.name_len & NULL_DATA == 0
    }

    pub(crate) fn data_len(&self) -> usize {
        if self.has_data() {
            self.blob.len().saturating_sub(self.name_len())
        } else {
            0
        }
    }

    /// log2 of the bucket count of ZooKeeper's child set of this node.
    fn child_table_bits(&self) -> u8 {
        ZK_MIN_TABLE_BITS + (self.children >> CHILD_COUNT_BITS) as u8
    }

    /// One more child; the bucket count doubles as java.util.HashMap's does once its size
    /// passes 3/4 of its buckets.
    fn add_child(&mut self) {
        self.children += 1;
        let count = u64::from(self.children & CHILD_COUNT_MASK);
        while count * 4 > 3u64 << self.child_table_bits() && self.child_table_bits() < 31 {
            self.children += 1 << CHILD_COUNT_BITS;
        }
    }

    pub(crate) fn child_count(&self) -> usize {
        (self.children & CHILD_COUNT_MASK) as usize
    }

    pub(crate) fn kind(&self) -> NodeKind {
        NodeKind::from_owner(self.stat.ephemeral_owner)
    }

    /// Whether a container or TTL node may be reaped at `now_ms`: no children,
    /// and either a container that once had a child or a TTL node whose last
    /// change is more than ttl old (`ContainerManager.getCandidates`).
    pub(crate) fn is_reap_due(&self, now_ms: i64) -> bool {
        self.child_count() == 0
            && match self.kind() {
                NodeKind::Container => self.stat.cversion > 0,
                NodeKind::Ttl(ttl) => now_ms.saturating_sub(self.stat.mtime) > ttl,
                _ => false,
            }
    }

    /// The client view (`DataNode.copyStat`).
    pub(crate) fn client_stat(&self) -> Stat {
        client_stat(&self.stat, self.child_count() as u32, self.data_len())
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

/// The `name_len` field for a name and data.
fn name_len_field(name: &[u8], data: Option<&[u8]>) -> u32 {
    // Paths come from packets of at most a few MiB, far below 2^31.
    let len = u32::try_from(name.len()).unwrap_or(u32::MAX) & !NULL_DATA;
    if data.is_none() {
        len | NULL_DATA
    } else {
        len
    }
}

/// The arena, the (parent, name) index and the child lists. The arena, the child lists
/// and the blobs share memory with a [`NodeStore::frozen`] copy until written.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeStore {
    nodes: CowVec<Node>,
    blobs: Blobs,
    /// Slots of deleted nodes, reused first.
    free: Vec<NodeId>,
    index: ShardedIndex,
    hasher: DefaultHashBuilder,
    lists: CowVec<Vec<NodeId>>,
    free_lists: Vec<u32>,
    len: usize,
}

impl NodeStore {
    /// Room for `nodes` nodes without reallocating (snapshot loading).
    pub(crate) fn reserve(&mut self, nodes: usize) {
        self.nodes.reserve(nodes.saturating_sub(self.nodes.len()));
        let NodeStore { index, nodes: arena, hasher, blobs, .. } = self;
        index.reserve(nodes.saturating_sub(index.len()), |&id| key_hash(hasher, blobs, arena, id));
    }

    /// A copy for reading the nodes (a snapshot's walk), taken in microseconds: it shares
    /// the arena, the child lists and the blob pages until this store writes them, and has
    /// no index (lookups by name find nothing in it).
    pub(crate) fn frozen(&self) -> NodeStore {
        NodeStore {
            nodes: self.nodes.clone(),
            blobs: self.blobs.frozen(),
            lists: self.lists.clone(),
            len: self.len,
            ..NodeStore::default()
        }
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
        self.child_hashed(self.hasher.hash_one((parent, name)), parent, name)
    }

    fn child_hashed(&self, hash: u64, parent: NodeId, name: &[u8]) -> Option<NodeId> {
        self.index.find(hash, |&id| {
            let n = &self.nodes[id as usize];
            n.parent == parent && self.name_bytes(n) == name
        })
    }

    /// The children of `id`, in no particular order.
    pub(crate) fn children(&self, id: NodeId) -> &[NodeId] {
        let list = self.nodes[id as usize].list;
        self.lists.get(list as usize).map_or(&[], Vec::as_slice)
    }

    /// The children of `id` in name order (byte order, as `String`'s `Ord`).
    pub(crate) fn sorted_children(&self, id: NodeId) -> Vec<NodeId> {
        let mut kids = self.children(id).to_vec();
        kids.sort_unstable_by(|&a, &b| self.name_bytes(self.get(a)).cmp(self.name_bytes(self.get(b))));
        kids
    }

    #[cfg(test)]
    pub(crate) fn children_in_zookeeper_order(&self, id: NodeId) -> Vec<NodeId> {
        let keyed = self.children_keyed_by_bucket(id, |child, _| child);
        self.zookeeper_order(id, &keyed).into_iter().map(|i| keyed[i as usize].3).collect()
    }

    /// The names of the children of `id` in ZooKeeper's order (see `zookeeper_order`), each as
    /// a 4-byte big-endian length and its bytes (the layout of a jute `ustring`, so the reply
    /// takes the buffer as it is), with their count.
    ///
    /// When the child list is in creation order (children are appended; only a delete moves
    /// one), the order inside each hash bucket is the list's, and the names are placed
    /// straight at their bucket's offset in the output: one pass over the nodes copying each
    /// name into a scratch buffer (read once, from all over the arena), one pass over that
    /// buffer writing each name to its place. Otherwise they are ordered through
    /// `zookeeper_order`. At a million children the direct placement needs a fifth of the
    /// memory and about half the time.
    pub(crate) fn child_names_in_zookeeper_order(&self, id: NodeId) -> (usize, Vec<u8>) {
        self.names_placed_in_buckets(id).unwrap_or_else(|| self.child_names_ordered_by_key(id))
    }

    /// The direct placement of [`Self::child_names_in_zookeeper_order`]; `None` when the list
    /// is not in creation order (or its table is far larger than it).
    fn names_placed_in_buckets(&self, id: NodeId) -> Option<(usize, Vec<u8>)> {
        let kids = self.children(id);
        if self.table_far_larger_than_list(id) {
            return None;
        }
        let mask = self.bucket_mask(id);
        let mut names = Vec::new();
        // (bucket, name length) per child, in list order.
        let mut placed: Vec<(u32, u32)> = Vec::with_capacity(kids.len());
        let mut previous: Option<(i64, &[u8])> = None;
        for &c in kids {
            let node = self.get(c);
            let name = self.name_bytes(node);
            let key = (node.stat.czxid, name);
            if previous.is_some_and(|p| p >= key) {
                return None; // not in creation order
            }
            previous = Some(key);
            placed.push((bucket_of(name, mask), u32::try_from(name.len()).unwrap_or(u32::MAX)));
            names.extend_from_slice(name);
        }
        let total = 4 * kids.len() + names.len();
        if u32::try_from(total).is_err() {
            return None;
        }
        let buckets = 1usize << self.nodes[id as usize].child_table_bits();
        // Each bucket's first byte in the output, then each name written there.
        let mut at = vec![0u32; buckets];
        for &(bucket, len) in &placed {
            at[bucket as usize] += 4 + len;
        }
        let mut sum = 0u32;
        for slot in at.iter_mut() {
            let size = *slot;
            *slot = sum;
            sum += size;
        }
        let mut out = vec![0u8; total];
        let mut from = 0usize;
        for &(bucket, len) in &placed {
            let (start, len) = (at[bucket as usize] as usize, len as usize);
            out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
            out[start + 4..start + 4 + len].copy_from_slice(&names[from..from + len]);
            at[bucket as usize] += 4 + len as u32;
            from += len;
        }
        Some((kids.len(), out))
    }

    /// [`Self::child_names_in_zookeeper_order`] for any child list: keyed, ordered, then
    /// written out. Each name is copied into one buffer when its node is first read: a second
    /// pass in the new order would fetch the nodes and their blobs again from all over the
    /// arena (at 300,000 children, most of the cost of a getChildren was those cache misses).
    fn child_names_ordered_by_key(&self, id: NodeId) -> (usize, Vec<u8>) {
        let count = self.children(id).len();
        let mut names = Vec::new();
        let keyed = self.children_keyed_by_bucket(id, |_, name| {
            let start = names.len();
            names.extend_from_slice(name);
            start..names.len()
        });
        let mut out = Vec::with_capacity(4 * count + names.len());
        for i in self.zookeeper_order(id, &keyed) {
            let name = names.get(keyed[i as usize].3.clone()).unwrap_or_default();
            out.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(name);
        }
        (count, out)
    }

    /// The order (indexes into `keyed`, from `children_keyed_by_bucket`) in which Apache
    /// ZooKeeper's getChildren lists the children of `id`. Some tools and their tests depend
    /// on this order, although ZooKeeper does not promise it. ZooKeeper
    /// keeps a node's children in a `java.util.HashSet` created with 8 buckets and lists its
    /// iteration order: by bucket (the name's Java `String.hashCode`, spread as HashMap
    /// spreads it, modulo the bucket count), and within a bucket in insertion order, which
    /// is creation order here (czxid; children created by one multi share it and keep name
    /// order). Two things are not reproduced: the order inside a bucket of 8 or more names
    /// in a table of 64 buckets or more (HashMap turns those into trees), and a restarted
    /// ZooKeeper, whose sets are rebuilt from its snapshot.
    ///
    /// The buckets are counted out (O(n), a bucket holds less than one name on average) unless
    /// the table is far larger than the list (children were deleted: ZooKeeper's set never
    /// shrinks), where a sort is cheaper.
    fn zookeeper_order<T>(&self, id: NodeId, keyed: &[(u32, i64, &[u8], T)]) -> Vec<u32> {
        let key = |i: u32| (keyed[i as usize].0, keyed[i as usize].1, keyed[i as usize].2);
        let mut order: Vec<u32> = (0..keyed.len() as u32).collect();
        if self.table_far_larger_than_list(id) {
            order.sort_unstable_by_key(|&i| key(i));
            return order;
        }
        let buckets = 1usize << self.nodes[id as usize].child_table_bits();
        // Start of each bucket's run in the output, then each child placed in its bucket's run.
        let mut starts = vec![0u32; buckets + 1];
        for k in keyed {
            starts[k.0 as usize + 1] += 1;
        }
        for b in 0..buckets {
            starts[b + 1] += starts[b];
        }
        let mut next = starts.clone();
        for (i, k) in keyed.iter().enumerate() {
            order[next[k.0 as usize] as usize] = i as u32;
            next[k.0 as usize] += 1;
        }
        for run in starts.windows(2).filter(|w| w[1] - w[0] > 1) {
            order[run[0] as usize..run[1] as usize].sort_unstable_by_key(|&i| key(i));
        }
        order
    }

    /// Each child of `id` with its bucket in ZooKeeper's child set, its czxid, its name and
    /// its payload.
    fn children_keyed_by_bucket<T>(
        &self,
        id: NodeId,
        mut payload: impl FnMut(NodeId, &[u8]) -> T,
    ) -> Vec<(u32, i64, &[u8], T)> {
        let mask = self.bucket_mask(id);
        self.children(id)
            .iter()
            .map(|&c| {
                let node = self.get(c);
                let name = self.name_bytes(node);
                (bucket_of(name, mask), node.stat.czxid, name, payload(c, name))
            })
            .collect()
    }

    /// The mask that picks a name's bucket in the child table of `id`.
    fn bucket_mask(&self, id: NodeId) -> u64 {
        (1u64 << self.nodes[id as usize].child_table_bits()) - 1
    }

    /// Children were deleted until the table (which never shrinks, as ZooKeeper's) is far
    /// larger than the list: counting its buckets out would cost more than sorting the list.
    fn table_far_larger_than_list(&self, id: NodeId) -> bool {
        (1usize << self.nodes[id as usize].child_table_bits()) > 4 * self.children(id).len() + 1024
    }

    fn name_bytes(&self, node: &Node) -> &[u8] {
        self.blobs.get(node.blob).get(..node.name_len()).unwrap_or_default()
    }

    /// The last path segment of `node` (`""` for the root).
    pub(crate) fn name(&self, node: &Node) -> &str {
        std::str::from_utf8(self.name_bytes(node)).unwrap_or_default()
    }

    /// The data of `node`; `None` is ZooKeeper's null data.
    pub(crate) fn data<'a>(&'a self, node: &Node) -> Option<&'a [u8]> {
        if node.has_data() {
            Some(self.blobs.get(node.blob).get(node.name_len()..).unwrap_or_default())
        } else {
            None
        }
    }

    /// Stores a node's name and data as one blob.
    fn blob(&mut self, name: &[u8], data: Option<&[u8]>) -> (BlobRef, u32) {
        (self.blobs.alloc(&[name, data.unwrap_or_default()]), name_len_field(name, data))
    }

    /// Installs the root of an empty store.
    pub(crate) fn insert_root(&mut self, value: Detached) -> NodeId {
        debug_assert!(self.is_empty());
        self.nodes.clear();
        self.free.clear();
        let (blob, name_len) = self.blob(b"", value.data.as_deref());
        let node =
            Node { stat: value.stat, acl: value.acl, blob, name_len, parent: NIL, pos: 0, list: NIL, children: 0 };
        self.nodes.push(node);
        self.len = 1;
        ROOT
    }

    /// Adds `value` as the child `name` of `parent`, which must not have one by that name.
    pub(crate) fn insert(&mut self, parent: NodeId, name: &str, value: Detached) -> NodeId {
        let Detached { data, acl, stat } = value;
        match self.try_insert(parent, name, data.as_deref(), acl, stat) {
            Ok(id) | Err(id) => id,
        }
    }

    /// Adds a child `name` of `parent` from borrowed data (snapshot loading, without
    /// an intermediate copy); `Err` with the existing child if the name is taken.
    pub(crate) fn try_insert(
        &mut self,
        parent: NodeId,
        name: &str,
        data: Option<&[u8]>,
        acl: SharedAcl,
        stat: PersistedStat,
    ) -> Result<NodeId, NodeId> {
        let hash = self.hasher.hash_one((parent, name.as_bytes()));
        if let Some(existing) = self.child_hashed(hash, parent, name.as_bytes()) {
            return Err(existing);
        }
        let list = self.list_of(parent);
        let pos = self.lists[list as usize].len() as u32;
        let (blob, name_len) = self.blob(name.as_bytes(), data);
        let node = Node { stat, acl, blob, name_len, parent, pos, list: NIL, children: 0 };
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
        self.nodes[parent as usize].add_child();
        let NodeStore { index, nodes, hasher, blobs, .. } = self;
        index.insert_unique(hash, id, |&other| key_hash(hasher, blobs, nodes, other));
        self.len += 1;
        Ok(id)
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
        let hash = key_hash(&self.hasher, &self.blobs, &self.nodes, id);
        self.index.remove(hash, |&other| other == id);
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
        self.nodes[parent as usize].children -= 1;
        // A free slot keeps a shared ACL (no allocation) until it is reused.
        let placeholder_acl = SharedAcl::clone(&self.nodes[ROOT as usize].acl);
        let node = std::mem::replace(
            &mut self.nodes[id as usize],
            Node {
                stat: PersistedStat::default(),
                acl: placeholder_acl,
                blob: BlobRef::default(),
                name_len: 0,
                parent: NIL,
                pos: 0,
                list: NIL,
                children: 0,
            },
        );
        self.free.push(id);
        self.len -= 1;
        let data = self.data(&node).map(Bytes::copy_from_slice);
        self.blobs.free(node.blob);
        Detached { data, acl: node.acl, stat: node.stat }
    }

    /// Visits every node in depth-first pre-order (a parent before its children),
    /// with its full path. Memory: one path buffer and one child cursor per level.
    pub(crate) fn walk_preorder<'a>(&'a self, mut visit: impl FnMut(&str, &'a Node)) {
        if self.is_empty() {
            return;
        }
        visit("/", self.get(ROOT));
        let mut path = String::new();
        // (children, next one to visit, length of their parent's path in `path`)
        let mut stack: Vec<(&[NodeId], usize, usize)> = vec![(self.children(ROOT), 0, 0)];
        while let Some((children, next, base)) = stack.last_mut() {
            let Some(&id) = children.get(*next) else {
                stack.pop();
                continue;
            };
            *next += 1;
            path.truncate(*base);
            path.push('/');
            let node = self.get(id);
            path.push_str(self.name(node));
            visit(&path, node);
            if node.child_count() > 0 {
                stack.push((self.children(id), 0, path.len()));
            }
        }
    }

    /// Replaces the data of `id`, returning the old data.
    pub(crate) fn set_data(&mut self, id: NodeId, data: Option<&[u8]>) -> Option<Bytes> {
        let node = &self.nodes[id as usize];
        let old = self.data(node).map(Bytes::copy_from_slice);
        let (old_blob, name_len) = (node.blob, node.name_len());
        // Copy the name out first: the new blob may reuse the old slot.
        let name = self.name_bytes(node).to_vec();
        self.blobs.free(old_blob);
        let (blob, name_len_field) = self.blob(&name[..name_len], data);
        let node = &mut self.nodes[id as usize];
        node.blob = blob;
        node.name_len = name_len_field;
        old
    }
}

/// The index hash of an existing node.
fn key_hash(hasher: &DefaultHashBuilder, blobs: &Blobs, nodes: &CowVec<Node>, id: NodeId) -> u64 {
    let n = &nodes[id as usize];
    let name = blobs.get(n.blob).get(..n.name_len()).unwrap_or_default();
    hasher.hash_one((n.parent, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(data: Option<&[u8]>) -> Detached {
        Detached::new(data.map(Bytes::copy_from_slice), SharedAcl::default(), PersistedStat::default())
    }

    fn store() -> NodeStore {
        let mut s = NodeStore::default();
        s.insert_root(value(Some(b"")));
        s
    }

    /// The reference order: children keyed by (bucket, czxid, name), by a comparison sort.
    fn sorted_by_bucket<T>(mut keyed: Vec<(u32, i64, &[u8], T)>) -> Vec<T> {
        keyed.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        keyed.into_iter().map(|(.., t)| t).collect()
    }

    /// The names `child_names_in_zookeeper_order` lists, decoded.
    fn names_listed(s: &NodeStore, id: NodeId) -> Vec<String> {
        let (count, bytes) = s.child_names_in_zookeeper_order(id);
        let mut names = Vec::new();
        let mut rest = bytes.as_slice();
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let (name, tail) = tail.split_at(u32::from_be_bytes(*len) as usize);
            names.push(String::from_utf8(name.to_vec()).unwrap());
            rest = tail;
        }
        assert_eq!(names.len(), count);
        names
    }

    fn names_of(s: &NodeStore, ids: &[NodeId]) -> Vec<String> {
        ids.iter().map(|&c| s.name(s.get(c)).to_string()).collect()
    }

    /// Children in creation order are placed straight into their buckets; the result is
    /// the reference order, with czxid ties (one multi) in name order, and so it stays when
    /// a delete has moved a child (then they are ordered by key).
    #[test]
    fn names_in_creation_order_are_placed_directly_in_the_reference_order() {
        let mut s = store();
        let dir = s.insert(ROOT, "dir", value(Some(b"")));
        let kids: Vec<NodeId> = (0..20_000)
            .map(|i| {
                let mut v = value(None);
                v.stat.czxid = 100 + i / 3; // three children per "multi", in name order
                s.insert(dir, &format!("q{i:06}-\u{e9}"), v)
            })
            .collect();
        let reference = |s: &NodeStore| names_of(s, &sorted_by_bucket(s.children_keyed_by_bucket(dir, |c, _| c)));
        assert!(s.names_placed_in_buckets(dir).is_some());
        assert_eq!(names_listed(&s, dir), reference(&s));
        s.remove(kids[7]);
        assert!(s.names_placed_in_buckets(dir).is_none());
        assert_eq!(names_listed(&s, dir), reference(&s), "after a delete moved the last child");
        // A tie on czxid listed against name order (not how a multi creates them): by key.
        let (t, p) = with_children(&[]);
        let mut t = t;
        for name in ["b", "a"] {
            let mut v = value(None);
            v.stat.czxid = 5;
            t.insert(p, name, v);
        }
        let expected = names_of(&t, &sorted_by_bucket(t.children_keyed_by_bucket(p, |c, _| c)));
        assert!(t.names_placed_in_buckets(p).is_none());
        assert_eq!(names_listed(&t, p), expected);
        let empty = t.insert(ROOT, "empty", value(None));
        assert_eq!(names_listed(&t, empty), Vec::<String>::new());
    }

    /// The names as getChildren lists them, checked against the id order.
    fn names_in_zookeeper_order(s: &NodeStore, id: NodeId) -> Vec<String> {
        let names = names_listed(s, id);
        assert_eq!(names, names_of(s, &s.children_in_zookeeper_order(id)));
        names
    }

    /// Children created one by one (czxid 1, 2, ...) under a fresh node.
    fn with_children(names: &[&str]) -> (NodeStore, NodeId) {
        let mut s = store();
        let parent = s.insert(ROOT, "p", value(None));
        for (i, name) in names.iter().enumerate() {
            let mut v = value(None);
            v.stat.czxid = i as i64 + 1;
            s.insert(parent, name, v);
        }
        (s, parent)
    }

    /// The counted-out order is the sorted one, for a list that fills its table and for
    /// one whose table outgrew it (most children deleted).
    #[test]
    fn zookeeper_order_by_counting_equals_the_sorted_order() {
        let mut s = store();
        let dir = s.insert(ROOT, "dir", value(Some(b"")));
        let kids: Vec<NodeId> = (0..5000)
            .map(|i| {
                let mut v = value(Some(b""));
                v.stat.czxid = i64::from(i % 7); // ties on czxid: names decide
                s.insert(dir, &format!("n{}-\u{e9}{i}", i * 7919 % 5000), v)
            })
            .collect();
        let sorted = |s: &NodeStore| sorted_by_bucket(s.children_keyed_by_bucket(dir, |c, _| c));
        assert_eq!(s.children_in_zookeeper_order(dir), sorted(&s));
        assert_eq!(names_listed(&s, dir), names_of(&s, &sorted(&s)), "a shuffled list: ordered by key");
        for &k in &kids[10..] {
            s.remove(k);
        }
        assert_eq!(s.children(dir).len(), 10);
        assert_eq!(s.children_in_zookeeper_order(dir), sorted(&s));
    }

    #[test]
    fn java_hashes_match_the_jvm() {
        // String.hashCode values as a JVM computes them.
        assert_eq!(java_string_hash(b""), 0);
        assert_eq!(java_string_hash(b"one") as i32, 110182);
        assert_eq!(java_string_hash(b"zookeeper") as i32, 1_600_681_804);
        // Non-ASCII names hash their UTF-16 units: U+00E9 and a surrogate pair.
        assert_eq!(java_string_hash("\u{e9}".as_bytes()), 0xe9);
        assert_eq!(java_string_hash("\u{1F600}".as_bytes()), 0xD83D * 31 + 0xDE00);
    }

    #[test]
    fn children_come_in_apache_zookeepers_order() {
        // Orders Apache ZooKeeper 3.8.0 answered on this machine for these creation orders.
        let (s, p) = with_children(&["one", "two", "valid", "invalid"]);
        assert_eq!(names_in_zookeeper_order(&s, p), ["valid", "invalid", "two", "one"]);
        let (s, p) = with_children(&["one", "two"]);
        assert_eq!(names_in_zookeeper_order(&s, p), ["two", "one"]);
        let (s, p) = with_children(&["valid", "invalid"]);
        assert_eq!(names_in_zookeeper_order(&s, p), ["valid", "invalid"]);
    }

    #[test]
    fn the_child_table_grows_like_a_java_hash_set_and_never_shrinks() {
        let names: Vec<String> = (0..13).map(|i| format!("c{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (mut s, p) = with_children(&refs[..6]);
        assert_eq!(s.get(p).child_table_bits(), 3, "6 fit in 8 buckets");
        let (s7, p7) = with_children(&refs[..7]);
        assert_eq!(s7.get(p7).child_table_bits(), 4, "the 7th doubles the table");
        let (s13, p13) = with_children(&refs);
        assert_eq!(s13.get(p13).child_table_bits(), 5);
        for name in &refs[6..] {
            s.insert(p, name, value(None));
        }
        for name in &refs[1..] {
            let id = s.lookup(&format!("/p/{name}")).expect("child");
            s.remove(id);
        }
        assert_eq!(s.get(p).child_table_bits(), 5, "deleting children keeps the table");
    }

    #[test]
    fn node_stays_small() {
        assert!(std::mem::size_of::<Node>() <= 96, "Node is {} bytes", std::mem::size_of::<Node>());
    }

    #[test]
    fn name_and_data_come_back_apart_including_null_and_long_names() {
        let mut s = store();
        let long = "x".repeat(300);
        for (name, data) in
            [("a", Some(&b"12"[..])), ("e", Some(&b""[..])), (long.as_str(), Some(&b"d"[..])), ("n", None)]
        {
            let id = s.insert(ROOT, name, value(data));
            let node = s.get(id);
            assert_eq!(s.name(node), name);
            assert_eq!(s.data(node), data);
            assert_eq!(node.data_len(), data.map_or(0, <[u8]>::len));
        }
        assert_eq!(s.data(s.get(ROOT)), Some(&b""[..]));
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
        assert_eq!(s.data(s.get(b)), None);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn removal_keeps_sibling_positions_and_reuses_slots() {
        let mut s = store();
        let ids: Vec<NodeId> = (0..5).map(|i| s.insert(ROOT, &format!("c{i}"), value(Some(b"v")))).collect();
        let gone = s.remove(ids[1]);
        assert_eq!(gone.data.as_deref(), Some(&b"v"[..]));
        s.remove(ids[3]);
        let names: Vec<&str> = s.sorted_children(ROOT).into_iter().map(|id| s.name(s.get(id))).collect();
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
        assert_eq!(s.name(s.get(a)), "alpha");
        assert_eq!(s.data(s.get(a)), Some(&b"newer"[..]));
        assert_eq!(s.lookup("/alpha"), Some(a));
    }
}
