//! Snapshot encoding of the whole tree: nodes, data, ACLs, persisted stats,
//! sessions and the last zxid.
//!
//! Layout: `ROOSTSNP` magic, format version (u32 LE), crc32c of the body (u32
//! LE), body length (u64 LE), then a postcard body: a header with counts, the
//! distinct ACL lists (nodes refer to them by index, so a million nodes with the
//! same ACL cost one copy), the nodes in depth-first pre-order (a parent always
//! precedes its children, which lets loading rebuild child sets and catch
//! orphans), and the sessions. Ephemeral and reaping indexes are derived on load.
//! Decoding checks everything and returns an error on bad input, never panics.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::node::{NodeKind, PersistedStat, SharedAcl};
use super::path::{canonical, is_valid_segment, split_parent};
use super::store::{Detached, Node, NodeId, NodeStore, ROOT};
use super::{DataTree, SessionEntry};
use crate::proto::types::Acl;
#[cfg(test)]
use crate::proto::types::Id;

const MAGIC: &[u8; 8] = b"ROOSTSNP";
const FORMAT_VERSION: u32 = 1;
const ENVELOPE_LEN: usize = 8 + 4 + 4 + 8;

/// Why a snapshot could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is shorter than its header")]
    TooShort,
    #[error("not a roost snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u32),
    #[error("snapshot body length does not match the header")]
    LengthMismatch,
    #[error("snapshot checksum mismatch")]
    ChecksumMismatch,
    #[error("snapshot body is malformed: {0}")]
    Decode(#[from] postcard::Error),
    #[error("snapshot holds an invalid node path")]
    InvalidPath,
    #[error("snapshot holds the same node twice")]
    DuplicateNode,
    #[error("snapshot holds a node before (or without) its parent")]
    MissingParent,
    #[error("snapshot has no root node first")]
    MissingRoot,
    #[error("snapshot node refers to an unknown ACL list")]
    BadAclIndex,
    #[error("snapshot holds an invalid or duplicate session")]
    BadSession,
    #[error("snapshot has trailing bytes after its last record")]
    TrailingBytes,
}

#[derive(Serialize, Deserialize)]
struct Header {
    last_zxid: i64,
    acl_lists: u64,
    nodes: u64,
    sessions: u64,
}

#[derive(Serialize, Deserialize)]
struct NodeRecord<'a> {
    path: &'a str,
    acl: u32,
    #[serde(borrow)]
    data: Option<&'a [u8]>,
    stat: PersistedStat,
}

#[derive(Serialize, Deserialize)]
struct SessionRecord {
    id: i64,
    timeout_ms: i32,
    password: [u8; 16],
}

/// A total order on ACL lists by content (perms, scheme, id of each entry in turn).
fn acl_order(a: &[Acl], b: &[Acl]) -> std::cmp::Ordering {
    let key = |acl: &[Acl]| acl.iter().map(|e| (e.perms, e.id.scheme.clone(), e.id.id.clone())).collect::<Vec<_>>();
    key(a).cmp(&key(b))
}

/// Appends one postcard record. Encoding plain in-memory structs into a growable
/// Vec has no failure mode (all sequences have known lengths).
fn put<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    if let Ok(bytes) = postcard::to_extend(value, std::mem::take(out)) {
        *out = bytes;
    } else {
        unreachable!("postcard encoding into a Vec is infallible for snapshot records");
    }
}

fn take<'a, T: Deserialize<'a>>(input: &mut &'a [u8]) -> Result<T, SnapshotError> {
    let (value, rest) = postcard::take_from_bytes(input)?;
    *input = rest;
    Ok(value)
}

impl TreeImage {
    /// The zxid of the last txn the image holds.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Encodes the tree as of the image.
    ///
    /// Written straight into the output buffer by one depth-first walk that keeps only
    /// the current path, so the only large allocation is the snapshot itself. Children
    /// come in the tree's list order (a replica's history decides it; loading keeps
    /// it, so a loaded snapshot encodes to the same bytes). ACL lists are numbered in
    /// content order, which equal trees share whatever their history.
    pub fn serialize(&self) -> Vec<u8> {
        let acl_lists = self.acl_lists_in_use();
        let acl_index: HashMap<*const Vec<Acl>, u32> =
            acl_lists.iter().enumerate().map(|(i, acl)| (Arc::as_ptr(acl), i as u32)).collect();

        let estimate = ENVELOPE_LEN + self.data_size as usize + self.nodes.len() * 64;
        let mut out = Vec::with_capacity(estimate);
        out.resize(ENVELOPE_LEN, 0); // filled in once the body's length and crc are known
        let header = Header {
            last_zxid: self.last_zxid,
            acl_lists: acl_lists.len() as u64,
            nodes: self.nodes.len() as u64,
            sessions: self.sessions.len() as u64,
        };
        put(&mut out, &header);
        for acl in &acl_lists {
            put(&mut out, &***acl);
        }
        self.nodes.walk_preorder(|path, node| {
            let acl = acl_index.get(&Arc::as_ptr(&node.acl)).copied().unwrap_or(0);
            put(&mut out, &NodeRecord { path, acl, data: self.nodes.data(node), stat: node.stat });
        });
        for (id, s) in &self.sessions {
            put(&mut out, &SessionRecord { id: *id, timeout_ms: s.timeout_ms, password: s.password });
        }

        let body_len = (out.len() - ENVELOPE_LEN) as u64;
        let crc = crc32c::crc32c(&out[ENVELOPE_LEN..]);
        out[..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&crc.to_le_bytes());
        out[16..24].copy_from_slice(&body_len.to_le_bytes());
        out
    }

    /// The distinct ACL lists nodes hold, sorted by content. Interning makes equal
    /// lists one `Arc`, so they are told apart by pointer, without hashing contents.
    fn acl_lists_in_use(&self) -> Vec<&SharedAcl> {
        let mut seen: HashMap<*const Vec<Acl>, &SharedAcl> = HashMap::new();
        self.nodes.walk_preorder(|_, node| {
            seen.entry(Arc::as_ptr(&node.acl)).or_insert(&node.acl);
        });
        let mut lists: Vec<&SharedAcl> = seen.into_values().collect();
        lists.sort_by(|a, b| acl_order(a, b));
        lists
    }
}

/// The tree as of one applied zxid, taken in microseconds (its nodes share memory with the
/// live tree until the tree writes them, see [`super::cow`]) and serialized afterwards,
/// while the tree goes on changing.
pub struct TreeImage {
    nodes: NodeStore,
    sessions: Vec<(i64, SessionEntry)>,
    last_zxid: i64,
    data_size: u64,
}

impl DataTree {
    /// The tree as it is now, for serializing without holding up writers.
    pub fn image(&self) -> TreeImage {
        TreeImage {
            nodes: self.nodes.frozen(),
            sessions: self.sessions.iter().map(|(id, s)| (*id, *s)).collect(),
            last_zxid: self.last_zxid,
            data_size: self.data_size,
        }
    }

    /// Encodes the whole tree (see [`TreeImage::serialize`]).
    pub fn serialize(&self) -> Vec<u8> {
        self.image().serialize()
    }

    /// Visits every node in depth-first pre-order (a parent before its children),
    /// with its full path.
    pub(super) fn walk_preorder<'a>(&'a self, visit: impl FnMut(&str, &'a Node)) {
        self.nodes.walk_preorder(visit)
    }

    /// Decodes a snapshot written by [`DataTree::serialize`], checking the
    /// envelope, checksum and tree structure.
    pub fn deserialize(bytes: &[u8]) -> Result<DataTree, SnapshotError> {
        let mut body = open_envelope(bytes)?;
        let header: Header = take(&mut body)?;
        let mut tree = DataTree::empty();
        tree.last_zxid = header.last_zxid;

        let mut acls: Vec<SharedAcl> = Vec::new();
        for _ in 0..header.acl_lists {
            let acl: Vec<Acl> = take(&mut body)?;
            acls.push(tree.acls.intern(acl));
        }
        // The header's count is only a hint: never reserve more than the body could hold.
        let plausible = usize::try_from(header.nodes).unwrap_or(usize::MAX).min(body.len() / 8);
        tree.nodes.reserve(plausible);
        let mut parent_cache = (String::new(), ROOT);
        for i in 0..header.nodes {
            let rec: NodeRecord<'_> = take(&mut body)?;
            let acl = acls.get(rec.acl as usize).ok_or(SnapshotError::BadAclIndex)?.clone();
            tree.load_node(i == 0, rec.path, rec.data, acl, rec.stat, &mut parent_cache)?;
        }
        if tree.nodes.is_empty() {
            return Err(SnapshotError::MissingRoot);
        }
        for _ in 0..header.sessions {
            let rec: SessionRecord = take(&mut body)?;
            let usable = matches!(NodeKind::from_owner(rec.id), NodeKind::Ephemeral(_));
            let entry = SessionEntry { timeout_ms: rec.timeout_ms, password: rec.password };
            if !usable || tree.sessions.insert(rec.id, entry).is_some() {
                return Err(SnapshotError::BadSession);
            }
        }
        if !body.is_empty() {
            return Err(SnapshotError::TrailingBytes);
        }
        Ok(tree)
    }

    /// Adds one decoded node after checking it fits the tree built so far.
    /// `parent_cache` remembers the previous record's parent: in pre-order, siblings
    /// come one after another, so most records skip the parent lookup.
    fn load_node(
        &mut self,
        first: bool,
        path: &str,
        data: Option<&[u8]>,
        acl: SharedAcl,
        stat: PersistedStat,
        parent_cache: &mut (String, NodeId),
    ) -> Result<(), SnapshotError> {
        if first != (path == "/") {
            return Err(SnapshotError::MissingRoot);
        }
        let data_len = data.map_or(0, <[u8]>::len);
        if first {
            self.nodes.insert_root(Detached::new(data.map(Bytes::copy_from_slice), acl, stat));
        } else {
            // The parent is in the tree, so it was valid: checking the last segment
            // makes the whole path valid (a full check per node costs more than the rest
            // of loading it).
            let (parent, name) = split_parent(path).ok_or(SnapshotError::InvalidPath)?;
            if !is_valid_segment(name) {
                return Err(SnapshotError::InvalidPath);
            }
            let parent = canonical(parent);
            let parent_id = if parent == parent_cache.0 {
                parent_cache.1
            } else {
                let id = self.nodes.lookup(parent).ok_or(SnapshotError::MissingParent)?;
                parent_cache.0.clear();
                parent_cache.0.push_str(parent);
                parent_cache.1 = id;
                id
            };
            self.nodes.try_insert(parent_id, name, data, acl, stat).map_err(|_| SnapshotError::DuplicateNode)?;
        }
        self.index_add(path, stat.ephemeral_owner, data_len);
        Ok(())
    }

    /// Visits every node, parents first, with what a snapshot of another format needs: path,
    /// data, ACL and the persisted stat (an export to ZooKeeper's files).
    pub(crate) fn for_each_node(&self, mut visit: impl FnMut(&str, Option<&[u8]>, &[Acl], PersistedStat)) {
        self.walk_preorder(|path, node| visit(path, self.nodes.data(node), &node.acl, node.stat));
    }
}

/// Builds a tree node by node from another system's state (an import of ZooKeeper's files),
/// with the checks snapshot loading makes: the root first, every parent before its children,
/// no node twice, sessions with usable ids.
pub(crate) struct TreeBuilder {
    tree: DataTree,
    parent_cache: (String, NodeId),
}

impl TreeBuilder {
    pub(crate) fn new() -> TreeBuilder {
        TreeBuilder { tree: DataTree::empty(), parent_cache: (String::new(), ROOT) }
    }

    /// Adds a node; the first one must be the root, `/`.
    pub(crate) fn add_node(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: Vec<Acl>,
        stat: PersistedStat,
    ) -> Result<(), SnapshotError> {
        let first = self.tree.nodes.is_empty();
        let acl = self.tree.acls.intern(acl);
        self.tree.load_node(first, path, data, acl, stat, &mut self.parent_cache)
    }

    pub(crate) fn add_session(&mut self, id: i64, entry: SessionEntry) -> Result<(), SnapshotError> {
        let usable = matches!(NodeKind::from_owner(id), NodeKind::Ephemeral(_));
        if !usable || self.tree.sessions.insert(id, entry).is_some() {
            return Err(SnapshotError::BadSession);
        }
        Ok(())
    }

    pub(crate) fn finish(mut self, last_zxid: i64) -> Result<DataTree, SnapshotError> {
        if self.tree.nodes.is_empty() {
            return Err(SnapshotError::MissingRoot);
        }
        self.tree.last_zxid = last_zxid;
        Ok(self.tree)
    }
}

/// Checks magic, version, length and checksum; returns the body.
fn open_envelope(bytes: &[u8]) -> Result<&[u8], SnapshotError> {
    if bytes.len() < ENVELOPE_LEN {
        return Err(SnapshotError::TooShort);
    }
    let (head, body) = bytes.split_at(ENVELOPE_LEN);
    let (crc, len) = read_envelope(head)?;
    if len != body.len() as u64 {
        return Err(SnapshotError::LengthMismatch);
    }
    if crc32c::crc32c(body) != crc {
        return Err(SnapshotError::ChecksumMismatch);
    }
    Ok(body)
}

/// The body's checksum and length from an envelope's first [`ENVELOPE_LEN`] bytes, after
/// checking the magic and the version.
fn read_envelope(head: &[u8]) -> Result<(u32, u64), SnapshotError> {
    if head.len() < ENVELOPE_LEN {
        return Err(SnapshotError::TooShort);
    }
    if &head[..8] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let word = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    let version = word(8);
    if version != FORMAT_VERSION {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&head[16..24]);
    Ok((word(12), u64::from_le_bytes(len_bytes)))
}

/// Checks a snapshot's envelope (magic, version, length, checksum) while its bytes stream
/// past, holding nothing but the envelope: for a backup being downloaded or written to a
/// file. The tree structure itself is checked by [`DataTree::deserialize`] at restore.
#[derive(Debug, Default)]
pub struct StreamCheck {
    head: Vec<u8>,
    /// Expected crc and length of the body, once the envelope is in.
    expected: Option<(u32, u64)>,
    crc: u32,
    body_len: u64,
}

impl StreamCheck {
    /// Feeds the next bytes. Fails as soon as the envelope or the length is wrong.
    pub fn update(&mut self, mut bytes: &[u8]) -> Result<(), SnapshotError> {
        if self.expected.is_none() {
            let need = (ENVELOPE_LEN - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..need]);
            bytes = &bytes[need..];
            if self.head.len() < ENVELOPE_LEN {
                return Ok(());
            }
            self.expected = Some(read_envelope(&self.head)?);
        }
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.body_len += bytes.len() as u64;
        match self.expected {
            Some((_, len)) if self.body_len > len => Err(SnapshotError::LengthMismatch),
            _ => Ok(()),
        }
    }

    /// After the last bytes: whether the whole snapshot was there and its checksum matched.
    pub fn finish(&self) -> Result<(), SnapshotError> {
        let (crc, len) = self.expected.ok_or(SnapshotError::TooShort)?;
        if self.body_len != len {
            return Err(SnapshotError::LengthMismatch);
        }
        if self.crc != crc {
            return Err(SnapshotError::ChecksumMismatch);
        }
        Ok(())
    }

    /// Bytes seen so far, envelope included.
    pub fn bytes_seen(&self) -> u64 {
        self.head.len() as u64 + self.body_len
    }

    /// The snapshot's total size as its envelope announces it, once the envelope is in.
    pub fn expected_size(&self) -> Option<u64> {
        self.expected.map(|(_, len)| len + ENVELOPE_LEN as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::txn::TxnOp;
    use super::*;
    use crate::proto::types::CreateMode::*;

    /// A tree with every kind of node, null and empty data, shared and
    /// digest ACLs, sessions with ephemerals, and a non-zero zxid.
    fn populated() -> DataTree {
        let mut h = Harness::new();
        h.mk("/a");
        h.mk("/a/b");
        h.create("/a/seq", PersistentSequential).unwrap();
        h.create("/e", Ephemeral).unwrap();
        h.apply_as(SID2, create("/a/e2", EphemeralSequential)).0.result.unwrap();
        h.create("/c", Container).unwrap();
        h.run(create_ttl("/t", PersistentWithTtl, Some(1234))).unwrap();
        h.run(create_acl("/secret", vec![acl(31, "digest", "bob:abc="), acl(1, "ip", "10.0.0.0/8")])).unwrap();
        h.run(set_data("/a", None, -1)).unwrap();
        h.run(set_data("/a/b", Some(b""), -1)).unwrap();
        h.run(delete("/a/b", -1)).unwrap();
        h.run(set_data("/zookeeper/quota", Some(&[0, 255, 7]), -1)).unwrap();
        h.tree
    }

    #[test]
    fn round_trip_is_exact() {
        let tree = populated();
        let bytes = tree.serialize();
        let back = DataTree::deserialize(&bytes).unwrap();
        assert_eq!(back.digest(), tree.digest());
        assert_eq!(back.serialize(), bytes);
        assert_eq!(back.last_zxid(), tree.last_zxid());
        assert_eq!(back.node_count(), tree.node_count());
        assert_eq!(back.approximate_data_size(), tree.approximate_data_size());
        assert_eq!(back.ephemerals(SID2, ""), tree.ephemerals(SID2, ""));
        assert_eq!(back.reapable(i64::MAX), tree.reapable(i64::MAX));
        for p in ["/", "/a", "/a/b", "/e", "/c", "/t", "/secret", "/zookeeper", "/zookeeper/config"] {
            assert_eq!(back.stat(p), tree.stat(p), "{p}");
            assert_eq!(back.acl(p), tree.acl(p), "{p}");
            assert_eq!(back.get_data(p, &[Id::new("super", "")]).ok(), tree.get_data(p, &[Id::new("super", "")]).ok());
        }
        assert_eq!(back.get_data("/a", &[]).unwrap().0, None);
        assert_eq!(back.session(SID), tree.session(SID));
    }

    /// An image shares the tree's memory until the tree writes it: writes after the image
    /// (data set in place, nodes created into freed slots and new chunks, nodes and whole
    /// child lists deleted, big data given its own page) must not show in it.
    #[test]
    fn an_image_is_the_tree_as_it_was_when_taken() {
        let mut h = Harness::new();
        h.tree = populated();
        h.mk("/many");
        for i in 0..3000 {
            h.run(create_data(&format!("/many/n{i}"), &[i as u8; 40])).unwrap();
        }
        h.run(create_data("/big", &vec![9u8; 10_000])).unwrap();
        let before = h.tree.serialize();
        let image = h.tree.image();
        for i in (0..3000).step_by(7) {
            h.run(set_data(&format!("/many/n{i}"), Some(&[0xee; 40]), -1)).unwrap();
        }
        for i in (1..3000).step_by(5) {
            h.run(delete(&format!("/many/n{i}"), -1)).unwrap();
        }
        for i in 0..1500 {
            h.run(create_data(&format!("/many/m{i}"), &[1u8; 40])).unwrap();
        }
        h.run(set_data("/big", Some(&vec![3u8; 20_000]), -1)).unwrap();
        h.run(delete("/big", -1)).unwrap();
        h.run(set_data("/", Some(b"root"), -1)).unwrap();
        assert_ne!(h.tree.serialize(), before);
        assert_eq!(image.serialize(), before, "the image changed with the tree");
        assert_eq!(image.last_zxid(), DataTree::deserialize(&before).unwrap().last_zxid());
    }

    #[test]
    fn restored_tree_keeps_working() {
        let mut tree = DataTree::deserialize(&populated().serialize()).unwrap();
        let seq = TxnOp::Create {
            path: "/a/seq".into(),
            data: None,
            acl: Acl::open_unsafe(),
            mode: PersistentSequential,
            ttl_ms: None,
        };
        let txn = |op| crate::tree::txn::Txn { session_id: SID, time_ms: 1, auth: vec![], op };
        let (out, _) = tree.apply(1, &txn(seq));
        assert!(
            matches!(out.result, Ok(crate::tree::txn::OpResult::Created { ref path, .. }) if path.ends_with("0000000003"))
        );
        let (out, changes) = tree.apply(1, &txn(TxnOp::CloseSession { session_id: SID }));
        assert!(out.result.is_ok());
        assert_eq!(changes[0].path, "/e", "the ephemerals index was rebuilt");
        assert!(tree.stat("/e").is_none());
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        let good = populated().serialize();
        assert!(matches!(DataTree::deserialize(&[]), Err(SnapshotError::TooShort)));
        assert!(matches!(DataTree::deserialize(&[0u8; 64]), Err(SnapshotError::BadMagic)));
        for cut in 0..good.len() {
            assert!(DataTree::deserialize(&good[..cut]).is_err(), "prefix {cut}");
        }
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        assert!(matches!(DataTree::deserialize(&flipped), Err(SnapshotError::ChecksumMismatch)));
        let mut version = good.clone();
        version[8] = 9;
        assert!(matches!(DataTree::deserialize(&version), Err(SnapshotError::UnsupportedVersion(9))));
        // Bodies with a valid envelope but random content exercise the decoder.
        let mut seed = 0x1234_5678_9abc_def0u64;
        for len in 0..400usize {
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            assert!(DataTree::deserialize(&envelope(&body)).is_err(), "random body of {len} bytes");
        }
    }

    #[test]
    fn structural_errors_are_detected() {
        let header = |nodes: u64| Header { last_zxid: 0, acl_lists: 1, nodes, sessions: 0 };
        let node = |path: &'static str, acl: u32| NodeRecord { path, acl, data: None, stat: PersistedStat::default() };
        let build = |nodes: &[NodeRecord<'_>]| {
            let mut body = Vec::new();
            put(&mut body, &header(nodes.len() as u64));
            put(&mut body, &Acl::open_unsafe());
            for n in nodes {
                put(&mut body, n);
            }
            envelope(&body)
        };
        assert!(DataTree::deserialize(&build(&[node("/", 0), node("/a", 0)])).is_ok());
        let cases: [Case<'_>; 5] = [
            (&[], |e| matches!(e, SnapshotError::MissingRoot)),
            (&[node("/a", 0)], |e| matches!(e, SnapshotError::MissingRoot)),
            (&[node("/", 0), node("/x/y", 0)], |e| matches!(e, SnapshotError::MissingParent)),
            (&[node("/", 0), node("/a", 0), node("/a", 0)], |e| matches!(e, SnapshotError::DuplicateNode)),
            (&[node("/", 0), node("/a", 7)], |e| matches!(e, SnapshotError::BadAclIndex)),
        ];
        for (nodes, want) in cases {
            let err = DataTree::deserialize(&build(nodes)).expect_err("must fail");
            assert!(want(&err), "{err:?}");
        }
        let bad_path = build(&[node("/", 0), node("/a/", 0)]);
        assert!(matches!(DataTree::deserialize(&bad_path), Err(SnapshotError::InvalidPath)));
    }

    #[test]
    fn the_stream_check_agrees_with_a_full_decode() {
        let good = populated().serialize();
        let check = |bytes: &[u8], piece: usize| -> Result<(), SnapshotError> {
            let mut c = StreamCheck::default();
            for chunk in bytes.chunks(piece) {
                c.update(chunk)?;
            }
            c.finish()
        };
        for piece in [1, 7, 24, 4096] {
            assert!(check(&good, piece).is_ok());
        }
        assert!(matches!(check(&good[..good.len() - 1], 5), Err(SnapshotError::LengthMismatch)));
        assert!(matches!(check(&good[..10], 5), Err(SnapshotError::TooShort)));
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(check(&longer, 5), Err(SnapshotError::LengthMismatch)));
        for at in [0, 9, 30, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            assert!(check(&bad, 3).is_err(), "flip at {at}");
            assert!(DataTree::deserialize(&bad).is_err(), "flip at {at}");
        }
    }

    /// Scale check (run with `--ignored`): 200k nodes apply, snapshot and
    /// restore to the same digest.
    #[test]
    #[ignore]
    fn large_tree_round_trip() {
        let mut h = Harness::new();
        for i in 0..200 {
            h.mk(&format!("/d{i}"));
            for j in 0..1000 {
                h.mk(&format!("/d{i}/n{j}"));
            }
        }
        let start = std::time::Instant::now();
        let bytes = h.tree.serialize();
        let back = DataTree::deserialize(&bytes).unwrap();
        eprintln!("{} nodes, {} bytes, round trip {:?}", back.node_count(), bytes.len(), start.elapsed());
        assert_eq!(back.digest(), h.tree.digest());
    }

    /// Nodes to encode, and the error they must produce.
    type Case<'a> = (&'a [NodeRecord<'a>], fn(&SnapshotError) -> bool);

    fn envelope(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(body);
        out
    }
}
