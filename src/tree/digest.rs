//! An order-independent fingerprint of the whole tree, to check that replicas
//! (or a tree and its snapshot) hold the same state.
//!
//! Each node and session is hashed on its own with a fixed-key hash (FNV-1a,
//! then a 64-bit finaliser) and the results are added, so map iteration order
//! does not matter and the value is stable across processes.

use super::store::Node;
use super::{DataTree, SessionEntry};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A tiny streaming FNV-1a hasher with length-prefixed variable fields.
struct Fnv(u64);

impl Fnv {
    fn new(tag: u8) -> Self {
        let mut h = Fnv(FNV_OFFSET);
        h.bytes(&[tag]);
        h
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }
    fn field(&mut self, bytes: &[u8]) {
        self.u64(bytes.len() as u64);
        self.bytes(bytes);
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    /// splitmix64's finaliser, so that summing hashes does not cancel structure.
    fn finish(self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn node_hash(path: &str, node: &Node, data: Option<&[u8]>) -> u64 {
    let mut h = Fnv::new(1);
    h.field(path.as_bytes());
    let s = &node.stat;
    for v in [s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime, s.ephemeral_owner] {
        h.u64(v as u64);
    }
    for v in [s.version, s.cversion, s.aversion] {
        h.u64(v as u64);
    }
    h.u64(node.child_count() as u64);
    match data {
        None => h.bytes(&[0]),
        Some(d) => {
            h.bytes(&[1]);
            h.field(d);
        }
    }
    h.u64(node.acl.len() as u64);
    for a in node.acl.iter() {
        h.u64(a.perms as u64);
        h.field(a.id.scheme.as_bytes());
        h.field(a.id.id.as_bytes());
    }
    h.finish()
}

fn session_hash(id: i64, s: &SessionEntry) -> u64 {
    let mut h = Fnv::new(2);
    h.u64(id as u64);
    h.u64(s.timeout_ms as u64);
    h.bytes(&s.password);
    h.finish()
}

impl DataTree {
    /// Order-independent hash of every path, stat, data and ACL, the sessions
    /// table and the last zxid. Equal trees give equal digests on any replica.
    pub fn digest(&self) -> u64 {
        let mut nodes = 0u64;
        self.walk_preorder(|p, n| nodes = nodes.wrapping_add(node_hash(p, n, self.nodes.data(n))));
        let sessions = self.sessions.iter().fold(0u64, |acc, (id, s)| acc.wrapping_add(session_hash(*id, s)));
        let mut h = Fnv::new(3);
        h.u64(nodes);
        h.u64(sessions);
        h.u64(self.last_zxid as u64);
        h.finish()
    }
}
