//! Loading data directories built here byte by byte the way ZooKeeper writes them.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::snapshot::SnapshotNode;
use super::txn::{CreateKind, TxnHeader, ZkTxn};
use super::*;
use crate::proto::types::{Acl, Id};

const SID: i64 = 0x0100_00a0_c73c_0000;
const T0: i64 = 1_700_000_000_000;

fn stat(czxid: i64, cversion: i32, owner: i64) -> StatPersisted {
    StatPersisted {
        czxid,
        mzxid: czxid,
        pzxid: czxid,
        ctime: T0,
        mtime: T0,
        cversion,
        ephemeral_owner: owner,
        ..Default::default()
    }
}

/// A snapshot at zxid 0x10: `/app` (persistent, 2 children created), `/app/e` (ephemeral of
/// SID), `/app/x`, a digest-ACL node, and the quota of `/app`.
fn base_snapshot() -> Vec<u8> {
    let open = Acl::open_unsafe();
    let digest = vec![Acl { perms: 31, id: Id::new("digest", "bob:abc=") }];
    let nodes = vec![
        SnapshotNode {
            path: "",
            data: Some(b""),
            acl: &open,
            stat: StatPersisted { cversion: 3, pzxid: 0x5, ..Default::default() },
        },
        SnapshotNode { path: "/app", data: Some(b"a"), acl: &open, stat: stat(0x2, 2, 0) },
        SnapshotNode { path: "/app/e", data: None, acl: &open, stat: stat(0x3, 0, SID) },
        SnapshotNode { path: "/app/x", data: Some(b"xx"), acl: &open, stat: stat(0x4, 0, 0) },
        SnapshotNode { path: "/secret", data: Some(&[0, 255]), acl: &digest, stat: stat(0x5, 0, 0) },
        SnapshotNode { path: "/zookeeper", data: Some(b""), acl: &open, stat: StatPersisted::default() },
        SnapshotNode { path: "/zookeeper/quota", data: Some(b""), acl: &open, stat: StatPersisted::default() },
        SnapshotNode { path: "/zookeeper/quota/app", data: None, acl: &open, stat: stat(0x6, 0, 0) },
        SnapshotNode {
            path: "/zookeeper/quota/app/zookeeper_limits",
            data: Some(b"count=10,bytes=-1"),
            acl: &open,
            stat: stat(0x7, 0, 0),
        },
        SnapshotNode {
            path: "/zookeeper/quota/app/zookeeper_stats",
            data: Some(b"count=1,bytes=0"),
            acl: &open,
            stat: stat(0x8, 0, 0),
        },
    ];
    let mut bytes = write_snapshot(&[(SID, 30_000)], nodes);
    // A 3.6+ digest trailer with its own (cumulative) seal, as 3.8 writes it.
    let mut w = crate::proto::jute::Writer::new(&mut bytes);
    w.write_i64(0x10);
    w.write_i32(2);
    w.write_i64(0x1234);
    let seal = adler2::adler32_slice(&bytes);
    let mut w = crate::proto::jute::Writer::new(&mut bytes);
    w.write_i64(i64::from(seal));
    w.write_str("/");
    bytes
}

fn header(zxid: i64, txn_type: i32, client_id: i64) -> TxnHeader {
    TxnHeader { client_id, cxid: 1, zxid, time: T0 + zxid, txn_type }
}

fn create(path: &str, pcv: i32) -> ZkTxn {
    ZkTxn::Create {
        path: path.into(),
        data: Some(path.as_bytes().to_vec()),
        acl: Acl::open_unsafe(),
        ephemeral: false,
        parent_cversion: pcv,
        kind: CreateKind::Plain,
    }
}

/// Txns from 0xd (inside the fuzzy range: some already in the snapshot) to 0x1a.
fn log_entries() -> Vec<(TxnHeader, ZkTxn)> {
    vec![
        // Before the snapshot: skipped.
        (header(0xd, 1, SID), create("/old", 1)),
        // Already in the snapshot (fuzzy): NodeExists, parent cversion stays.
        (header(0x11, 1, SID), create("/app/x", 2)),
        (header(0x12, 15, SID), create("/app/y", 3)),
        (header(0x13, 5, SID), ZkTxn::SetData { path: "/app".into(), data: Some(b"v1".to_vec()), version: 1 }),
        (header(0x14, 7, SID), ZkTxn::SetAcl { path: "/app/y".into(), acl: Acl::read_unsafe(), version: 1 }),
        // A delete of a node the snapshot does not have still moves the parent's pzxid.
        (header(0x15, 2, SID), ZkTxn::Delete { path: "/app/gone".into() }),
        (header(0x16, -10, 0x77), ZkTxn::CreateSession { timeout_ms: 5000 }),
        (
            header(0x17, 19, 0x77),
            ZkTxn::Create {
                path: "/c".into(),
                data: None,
                acl: Acl::open_unsafe(),
                ephemeral: false,
                parent_cversion: 4,
                kind: CreateKind::Container,
            },
        ),
        (
            header(0x18, 21, 0x77),
            ZkTxn::Create {
                path: "/t".into(),
                data: Some(vec![]),
                acl: Acl::open_unsafe(),
                ephemeral: false,
                parent_cversion: 5,
                kind: CreateKind::Ttl(60_000),
            },
        ),
        // A failed multi: nothing of it applies.
        (header(0x19, 14, 0x77), ZkTxn::Multi(vec![(1, create("/m1", 6)), (-1, ZkTxn::Error { code: -110 })])),
        // A committed one.
        (
            header(0x1a, 14, 0x77),
            ZkTxn::Multi(vec![(1, create("/m2", 6)), (13, ZkTxn::Check { path: "/app".into(), version: 2 })]),
        ),
        (header(0x1b, -1, 0x77), ZkTxn::Error { code: -101 }),
        // SID closes: its ephemeral goes.
        (header(0x1c, -11, SID), ZkTxn::CloseSession { paths: Some(vec!["/app/e".into()]) }),
    ]
}

struct DataDir {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl DataDir {
    fn new(snapshot_name: &str, snapshot: &[u8], logs: &[(&str, Vec<u8>)]) -> DataDir {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let dir = snap_dir_of(&root);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(snapshot_name), snapshot).unwrap();
        for (name, bytes) in logs {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        DataDir { _tmp: tmp, root }
    }

    fn file(&self, name: &str) -> PathBuf {
        snap_dir_of(&self.root).join(name)
    }

    fn load(&self) -> Result<(ZkTree, LoadReport), ZkError> {
        load(&self.root, None, &mut |_| {})
    }
}

fn standard() -> DataDir {
    let log = txnlog::build(&log_entries(), 4096);
    DataDir::new("snapshot.10", &base_snapshot(), &[("log.1", txnlog::build(&[], 0)), ("log.d", log)])
}

fn check_standard_result(tree: &ZkTree) {
    assert_eq!(tree.last_zxid(), 0x1c);
    let app = tree.node("/app").unwrap();
    assert_eq!(app.data.as_deref(), Some(&b"v1"[..]));
    assert_eq!((app.stat.version, app.stat.mzxid, app.stat.mtime), (1, 0x13, T0 + 0x13));
    assert_eq!(app.stat.cversion, 3, "the re-create of /app/x did not count, /app/y did");
    assert_eq!({ app.stat.pzxid }, 0x1c, "the close deleted /app/e");
    assert!(tree.node("/app/e").is_none());
    assert!(tree.node("/old").is_none(), "txns before the snapshot are not replayed");
    let y = tree.node("/app/y").unwrap();
    assert_eq!((y.stat.czxid, y.stat.aversion), (0x12, 1));
    assert_eq!(*y.acl, Acl::read_unsafe());
    assert_eq!({ tree.node("/c").unwrap().stat.ephemeral_owner }, i64::MIN);
    assert_eq!({ tree.node("/t").unwrap().stat.ephemeral_owner }, (0xFF00_0000_0000_0000_u64 as i64) | 60_000);
    assert!(tree.node("/m1").is_none(), "a failed multi changes nothing");
    assert_eq!({ tree.node("/m2").unwrap().stat.czxid }, 0x1a);
    let root = tree.node("").unwrap();
    assert_eq!((root.stat.cversion, root.stat.pzxid), (6, 0x1a));
    assert_eq!(tree.sessions().iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), vec![(0x77, 5000)]);
    let secret = tree.node("/secret").unwrap();
    assert_eq!(secret.acl[0].id.scheme, "digest");
    assert_eq!(secret.data.as_deref(), Some(&[0u8, 255][..]));
    // /app holds /app, /app/x, /app/y: 3 nodes, 2 + 2 + 6 bytes.
    let stats = tree.node("/zookeeper/quota/app/zookeeper_stats").unwrap();
    assert_eq!(stats.data.as_deref(), Some(&b"count=3,bytes=10"[..]));
}

#[test]
fn snapshot_plus_logs_replay_with_zookeeper_rules() {
    let dir = standard();
    let (tree, report) = dir.load().unwrap();
    check_standard_result(&tree);
    assert_eq!(report.snapshot_zxid, 0x10);
    assert_eq!(report.txns_replayed, 12);
    assert_eq!(report.logs.len(), 1, "log.1 ends before the snapshot; log.d spans it");
    assert!(report.torn_logs.is_empty());
}

#[test]
fn compressed_snapshots_load_the_same() {
    let log = txnlog::build(&log_entries(), 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&base_snapshot()).unwrap();
    let gz = gz.finish().unwrap();
    for (name, bytes) in
        [("snapshot.10.gz", gz), ("snapshot.10.snappy", stream::snappy_java_literals(&base_snapshot()))]
    {
        let dir = DataDir::new(name, &bytes, &[("log.d", log.clone())]);
        let (tree, _) = dir.load().unwrap_or_else(|e| panic!("{name}: {e}"));
        check_standard_result(&tree);
    }
}

#[test]
fn a_torn_last_entry_ends_the_log() {
    let entries = log_entries();
    let full = txnlog::build(&entries, 0);
    let without_last = txnlog::build(&entries[..entries.len() - 1], 0);
    for cut in [without_last.len() + 5, full.len() - 1] {
        let mut torn = full[..cut].to_vec();
        torn.resize(torn.len() + 100, 0); // preallocated zeros after the torn write
        let dir = DataDir::new("snapshot.10", &base_snapshot(), &[("log.d", torn)]);
        let (tree, report) = dir.load().unwrap();
        assert_eq!(tree.last_zxid(), 0x1b, "cut at {cut}");
        assert!(tree.node("/app/e").is_some(), "the close was torn off");
        assert_eq!(report.torn_logs, vec![(dir.file("log.d"), without_last.len() as u64)]);
    }
}

fn expect_corrupt(result: Result<(ZkTree, LoadReport), ZkError>, file: &Path, offset: u64) -> String {
    match result {
        Err(e @ ZkError::Corrupt { .. }) => {
            let ZkError::Corrupt { path, offset: at, .. } = &e else { unreachable!() };
            assert_eq!((path.as_path(), *at), (file, offset), "{e}");
            let text = e.to_string();
            assert!(text.contains(&file.display().to_string()) && text.contains(&format!("offset {offset}")), "{text}");
            text
        }
        other => panic!("expected a corruption error, got {:?}", other.map(|(_, r)| r)),
    }
}

#[test]
fn a_damaged_log_entry_is_refused_with_file_and_offset() {
    let entries = log_entries();
    let log = txnlog::build(&entries, 64);
    let second_entry = txnlog::build(&entries[..1], 0).len();
    let mut bad = log.clone();
    bad[second_entry + 12 + 40] ^= 0x01; // inside the payload of the entry for 0x11
    let dir = DataDir::new("snapshot.10", &base_snapshot(), &[("log.d", bad)]);
    let text = expect_corrupt(dir.load(), &dir.file("log.d"), second_entry as u64);
    assert!(text.contains("checksum"), "{text}");
}

#[test]
fn a_damaged_snapshot_is_refused_with_file_and_offset() {
    let good = base_snapshot();
    let mut bad = good.clone();
    bad[60] ^= 0x20; // inside the ACL map: only the seal notices
    let dir = DataDir::new("snapshot.10", &bad, &[]);
    let seal_at = good.len() - (8 + 5) - (8 + 4 + 8) - (8 + 5);
    let text = expect_corrupt(dir.load(), &dir.file("snapshot.10"), seal_at as u64);
    assert!(text.contains("seal"), "{text}");

    let mut structural = good.clone();
    structural[4..8].copy_from_slice(&7i32.to_be_bytes());
    let dir = DataDir::new("snapshot.10", &structural, &[]);
    expect_corrupt(dir.load(), &dir.file("snapshot.10"), 8);

    // No usable snapshot at all.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(load(empty.path(), None, &mut |_| {}), Err(ZkError::NoSnapshot { .. })));
}

#[test]
fn every_prefix_and_flip_fails_cleanly() {
    let good = base_snapshot();
    let without_digest = good.len() - (8 + 4 + 8) - (8 + 5);
    for cut in 0..good.len() {
        // Without the optional digest trailer the snapshot is still complete.
        let result = snapshot::parse(Path::new("s"), &good[..cut], 0x10);
        assert_eq!(result.is_ok(), cut == without_digest, "prefix {cut}");
    }
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x04;
        assert!(snapshot::parse(Path::new("s"), &bad, 0x10).is_err(), "flip at {at}");
    }
    let log = txnlog::build(&log_entries(), 0);
    for cut in 0..log.len() {
        // Never a panic; a cut log is either torn or (inside the file header) corrupt.
        let _ = txnlog::parse(Path::new("l"), &log[..cut]);
    }
}

#[test]
fn orphan_ephemerals_are_dropped_and_the_parent_pzxid_moves() {
    // Snapshot where SID's session is gone from the session table but /app/e remains.
    let mut snap = base_snapshot();
    // Rewrite with no sessions: build again.
    let open = Acl::open_unsafe();
    let nodes = vec![
        SnapshotNode {
            path: "",
            data: Some(b""),
            acl: &open,
            stat: StatPersisted { cversion: 1, ..Default::default() },
        },
        SnapshotNode { path: "/app", data: None, acl: &open, stat: stat(0x2, 1, 0) },
        SnapshotNode { path: "/app/e", data: None, acl: &open, stat: stat(0x3, 0, SID) },
    ];
    snap.clear();
    snap.extend(write_snapshot(&[], nodes));
    let dir = DataDir::new("snapshot.9", &snap, &[]);
    let (tree, report) = dir.load().unwrap();
    assert_eq!(report.orphans_removed, 1);
    assert!(tree.node("/app/e").is_none());
    assert_eq!({ tree.node("/app").unwrap().stat.pzxid }, 0x9);
}

#[test]
fn logs_kept_in_a_separate_data_log_dir_are_replayed() {
    let snaps = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(snap_dir_of(snaps.path())).unwrap();
    std::fs::create_dir_all(log_dir_of(logs.path())).unwrap();
    std::fs::write(snap_dir_of(snaps.path()).join("snapshot.10"), base_snapshot()).unwrap();
    std::fs::write(log_dir_of(logs.path()).join("log.d"), txnlog::build(&log_entries(), 0)).unwrap();
    let (tree, report) = load(snaps.path(), Some(logs.path()), &mut |_| {}).unwrap();
    check_standard_result(&tree);
    assert_eq!(report.logs, vec![log_dir_of(logs.path()).join("log.d")]);
}
