//! Snapshot files (`FileSnap`, `SerializeUtils.serializeSnapshot`, `DataTree.serialize`):
//! header, sessions, the ACL map, nodes in parent-first order up to the path `"/"`, then an
//! Adler-32 seal over every byte before it; 3.6+ add a digest record and a second seal, 3.9 the
//! last processed zxid and a third. Each seal is followed by the string `"/"`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::tree::{StatPersisted, ZkNode, ZkTree};
use super::ZkError;
use crate::proto::jute::{DecodeError, Reader, Writer};
use crate::proto::types::Acl;

const SNAP_MAGIC: i32 = 0x5A4B_534E; // "ZKSN"
const SNAP_VERSION: i32 = 2;
/// ACL map key of `OPEN_ACL_UNSAFE`, never stored in the map.
const OPEN_ACL_KEY: i64 = -1;

/// Parses a whole (decompressed) snapshot stream whose file name says `zxid`.
pub(super) fn parse(path: &Path, bytes: &[u8], zxid: i64) -> Result<ZkTree, ZkError> {
    let mut r = Reader::new(bytes);
    parse_with(&mut r, zxid).map_err(|what| ZkError::corrupt(path, r.position(), what))
}

fn parse_with(r: &mut Reader<'_>, zxid: i64) -> Result<ZkTree, String> {
    let e = |e: DecodeError| e.to_string();
    let magic = r.read_i32().map_err(e)?;
    if magic != SNAP_MAGIC {
        return Err(format!("not a ZooKeeper snapshot (magic 0x{magic:08x})"));
    }
    let version = r.read_i32().map_err(e)?;
    if version != SNAP_VERSION {
        return Err(format!("unsupported snapshot version {version}"));
    }
    r.read_i64().map_err(e)?; // dbid, unused
    let mut tree = ZkTree::with_last_zxid(zxid);

    let sessions = count(r, 12)?;
    for _ in 0..sessions {
        let id = r.read_i64().map_err(e)?;
        let timeout = r.read_i32().map_err(e)?;
        tree.insert_session(id, timeout);
    }

    let acl_entries = count(r, 12)?;
    let mut acls: HashMap<i64, Arc<Vec<Acl>>> = HashMap::new();
    for _ in 0..acl_entries {
        let key = r.read_i64().map_err(e)?;
        let list = r.read_acl_vec().map_err(e)?.ok_or_else(|| format!("ACL map entry {key} is null"))?;
        acls.insert(key, tree.intern_acl(list));
    }
    let open = tree.intern_acl(Acl::open_unsafe());

    loop {
        let path = r.read_string().map_err(e)?;
        if path == "/" {
            break;
        }
        let data = r.read_buffer().map_err(e)?;
        let key = r.read_i64().map_err(e)?;
        let acl = if key == OPEN_ACL_KEY {
            open.clone()
        } else {
            acls.get(&key).cloned().ok_or_else(|| format!("node {path:?} refers to ACL {key}, missing from the map"))?
        };
        let stat = StatPersisted {
            czxid: r.read_i64().map_err(e)?,
            mzxid: r.read_i64().map_err(e)?,
            ctime: r.read_i64().map_err(e)?,
            mtime: r.read_i64().map_err(e)?,
            version: r.read_i32().map_err(e)?,
            cversion: r.read_i32().map_err(e)?,
            aversion: r.read_i32().map_err(e)?,
            ephemeral_owner: r.read_i64().map_err(e)?,
            pzxid: r.read_i64().map_err(e)?,
        };
        tree.insert_loaded(path, ZkNode { data, acl, stat })?;
    }
    if tree.node("").is_none() {
        return Err("snapshot has no root node".into());
    }
    check_seal(r)?;
    // Trailers: ZxidDigest (3.6+) and lastProcessedZxid (3.9) each with a seal. Which are
    // present follows from the bytes left (zookeeper-disk-format.md §4.1); their contents
    // only matter for verification, which the seals give.
    while !r.is_empty() {
        if r.remaining() == 21 {
            r.read_i64().map_err(e)?; // lastProcessedZxid (3.9, digest disabled)
        } else {
            r.read_i64().map_err(e)?; // ZxidDigest: zxid, version, digest (a hex string in version 1)
            if r.read_i32().map_err(e)? >= 2 {
                r.read_i64().map_err(e)?;
            } else {
                r.read_ustring().map_err(e)?;
            }
        }
        check_seal(r)?;
    }
    Ok(tree)
}

/// A count followed by records of at least `min_record` bytes each: refuses counts the
/// remaining bytes cannot hold, before anything is reserved.
fn count(r: &mut Reader<'_>, min_record: usize) -> Result<usize, String> {
    let n = r.read_i32().map_err(|e| e.to_string())?;
    if n < 0 || n as usize > r.remaining() / min_record {
        return Err(format!("impossible count {n}"));
    }
    Ok(n as usize)
}

/// `SnapStream.checkSealIntegrity`: the stored value must equal Adler-32 of every byte before it.
fn check_seal(r: &mut Reader<'_>) -> Result<(), String> {
    let expected = adler2::adler32_slice(&r.whole()[..r.position()]);
    // Read ahead on a copy, so that a mismatch is reported at the seal's own offset.
    let mut ahead = r.clone();
    let stored = ahead.read_i64().map_err(|e| format!("seal: {e}"))?;
    if stored != i64::from(expected) {
        return Err(format!("checksum seal mismatch (stored 0x{stored:x}, computed 0x{expected:x})"));
    }
    *r = ahead;
    let slash = r.read_ustring().map_err(|e| format!("seal: {e}"))?;
    if slash.as_deref() != Some("/") {
        return Err("seal is not followed by \"/\"".into());
    }
    Ok(())
}

/// Input for [`write_snapshot`]: one node, parents before children, the root as `""`.
pub struct SnapshotNode<'a> {
    pub path: &'a str,
    pub data: Option<&'a [u8]>,
    pub acl: &'a [Acl],
    pub stat: StatPersisted,
}

/// Writes a snapshot stream (uncompressed) that ZooKeeper 3.5-3.9 loads: header, sessions,
/// the ACL map, the nodes in the order given, `"/"` and the seal. No digest trailer: every
/// reader stops at the end of the stream (§9 of the format reference).
pub fn write_snapshot<'a>(sessions: &[(i64, i32)], nodes: impl IntoIterator<Item = SnapshotNode<'a>>) -> Vec<u8> {
    let nodes: Vec<SnapshotNode<'a>> = nodes.into_iter().collect();
    let mut keys: HashMap<&[Acl], i64> = HashMap::new();
    let mut map: Vec<&[Acl]> = Vec::new();
    for node in &nodes {
        keys.entry(node.acl).or_insert_with(|| {
            map.push(node.acl);
            map.len() as i64
        });
    }
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.write_i32(SNAP_MAGIC);
    w.write_i32(SNAP_VERSION);
    w.write_i64(-1);
    w.write_i32(sessions.len() as i32);
    for (id, timeout) in sessions {
        w.write_i64(*id);
        w.write_i32(*timeout);
    }
    w.write_i32(map.len() as i32);
    for (i, acl) in map.iter().enumerate() {
        w.write_i64(i as i64 + 1);
        w.write_acl_vec(acl);
    }
    for node in &nodes {
        w.write_str(node.path);
        w.write_buffer(node.data);
        w.write_i64(keys[node.acl]);
        let s = &node.stat;
        for v in [s.czxid, s.mzxid, s.ctime, s.mtime] {
            w.write_i64(v);
        }
        for v in [s.version, s.cversion, s.aversion] {
            w.write_i32(v);
        }
        w.write_i64(s.ephemeral_owner);
        w.write_i64(s.pzxid);
    }
    w.write_str("/");
    let seal = adler2::adler32_slice(&out);
    let mut w = Writer::new(&mut out);
    w.write_i64(i64::from(seal));
    w.write_str("/");
    out
}
