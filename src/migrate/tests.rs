//! ZooKeeper files -> Roost tree -> Roost data directory -> ZooKeeper snapshot, end to end.

use super::zk::{self, SnapshotNode, StatPersisted};
use super::{export, import, roost_dir};
use crate::proto::types::{Acl, Id};
use crate::tree::CONFIG_PATH;

const SID: i64 = 0x0100_00a0_c73c_0001;

fn stat(czxid: i64, cversion: i32, owner: i64) -> StatPersisted {
    StatPersisted {
        czxid,
        mzxid: czxid + 1,
        pzxid: czxid + 2,
        ctime: 1000 + czxid,
        mtime: 2000 + czxid,
        version: 3,
        cversion,
        aversion: 2,
        ephemeral_owner: owner,
    }
}

/// A ZooKeeper data dir at zxid 0x5_0000_0020 (epoch 5) with every node kind.
fn zk_dir() -> tempfile::TempDir {
    let open = Acl::open_unsafe();
    let read_only = Acl::read_unsafe();
    let ip = vec![Acl { perms: 1, id: Id::new("ip", "10.0.0.0/8") }, Acl { perms: 31, id: Id::new("digest", "u:x=") }];
    let root = StatPersisted { cversion: 5, pzxid: 0x5_0000_0010, ..Default::default() };
    let nodes = vec![
        SnapshotNode { path: "", data: Some(b""), acl: &open, stat: root },
        SnapshotNode { path: "/p", data: Some(b"persistent"), acl: &ip, stat: stat(0x5_0000_0001, 7, 0) },
        SnapshotNode { path: "/p/seq0000000006", data: None, acl: &open, stat: stat(0x5_0000_0002, 0, 0) },
        SnapshotNode { path: "/p/eph", data: Some(&[0, 1, 2, 255]), acl: &open, stat: stat(0x5_0000_0003, 0, SID) },
        SnapshotNode { path: "/c", data: Some(b""), acl: &open, stat: stat(0x5_0000_0004, 0, i64::MIN) },
        SnapshotNode {
            path: "/t",
            data: Some(b"ttl"),
            acl: &open,
            stat: stat(0x5_0000_0005, 0, (0xFF00_0000_0000_0000_u64 as i64) | 5000),
        },
        SnapshotNode { path: "/zookeeper", data: Some(b""), acl: &open, stat: StatPersisted::default() },
        SnapshotNode {
            path: "/zookeeper/config",
            data: Some(b"server.1=a:1:2\nversion=100000000"),
            acl: &read_only,
            stat: StatPersisted { aversion: -1, ..Default::default() },
        },
        SnapshotNode { path: "/zookeeper/quota", data: Some(b""), acl: &open, stat: StatPersisted::default() },
    ];
    let bytes = zk::write_snapshot(&[(SID, 12_000)], nodes);
    let dir = tempfile::tempdir().unwrap();
    let snaps = zk::snap_dir_of(dir.path());
    std::fs::create_dir_all(&snaps).unwrap();
    std::fs::write(snaps.join("snapshot.500000020"), bytes).unwrap();
    dir
}

#[test]
fn imported_tree_serves_zookeeper_stats_and_sessions() {
    let dir = zk_dir();
    let (zk_tree, _) = zk::load(dir.path(), None, &mut |_| {}).unwrap();
    let tree = import::to_roost_tree(&zk_tree).unwrap();
    assert_eq!(tree.last_zxid(), 0x5_0000_0020);
    let p = tree.stat("/p").unwrap();
    assert_eq!(
        (p.czxid, p.mzxid, p.pzxid, p.ctime, p.mtime),
        (0x5_0000_0001, 0x5_0000_0002, 0x5_0000_0003, 1000 + 0x5_0000_0001, 2000 + 0x5_0000_0001)
    );
    assert_eq!((p.version, p.aversion, p.num_children), (3, 2, 2));
    assert_eq!(p.cversion, 2 * 7 - 2, "clients see 2*cversion - numChildren");
    assert_eq!(tree.stat("/p/eph").unwrap().ephemeral_owner, SID);
    assert_eq!(tree.stat("/c").unwrap().ephemeral_owner, 0, "clients see 0 for containers, as from ZooKeeper");
    assert_eq!(tree.acl("/p").unwrap()[0].id, Id::new("ip", "10.0.0.0/8"));
    let session = tree.session(SID).unwrap();
    assert_eq!(session.timeout_ms, 12_000);
    assert_eq!(session.password, zk::zookeeper_password(SID));
    assert_eq!(tree.ephemerals(SID, "/"), vec!["/p/eph".to_string()]);
    // /zookeeper/config is the fresh, empty one (an ensemble writes its own membership there).
    assert_eq!(tree.stat(CONFIG_PATH), crate::tree::DataTree::new().stat(CONFIG_PATH));
}

#[test]
fn import_writes_a_data_dir_that_reads_back_and_exports_to_the_same_snapshot() {
    let dir = zk_dir();
    let target = tempfile::tempdir().unwrap();
    let plan = import::ImportPlan {
        zk_data_dir: dir.path().to_path_buf(),
        zk_log_dir: None,
        target: target.path().join("roost"),
        me: 1,
        members: Vec::new(),
    };
    let summary = import::import(&plan, &mut |_| {}).unwrap();
    assert_eq!((summary.nodes, summary.sessions, summary.last_zxid), (9, 1, 0x5_0000_0020));
    // A second import into the same place is refused.
    assert!(matches!(import::import(&plan, &mut |_| {}), Err(import::ImportError::TargetNotEmpty { .. })));

    let state = roost_dir::read(&roost_dir::raft_dir(&plan.target)).unwrap();
    assert_eq!(state.snapshot, crate::consensus::types::log_id(6, 1), "term = epoch + 1");
    assert_eq!(state.tree.last_zxid(), 0x5_0000_0020);

    let out = tempfile::tempdir().unwrap();
    let exported = export::export(&plan.target, out.path(), &mut |_| {}).unwrap();
    assert_eq!(exported.snapshot.file_name().unwrap(), "snapshot.500000020");
    let epoch = std::fs::read_to_string(zk::snap_dir_of(out.path()).join("currentEpoch")).unwrap();
    assert_eq!(epoch, "5");
    let (back, _) = zk::load(out.path(), None, &mut |_| {}).unwrap();
    let (original, _) = zk::load(dir.path(), None, &mut |_| {}).unwrap();
    assert_eq!(back.sessions(), original.sessions());
    for (path, node) in original.nodes_parent_first() {
        if path == CONFIG_PATH {
            continue;
        }
        assert_eq!(back.node(path), Some(node), "{path:?}");
    }
    assert_eq!(back.node_count(), original.node_count());
    assert!(matches!(
        export::export(&plan.target, out.path(), &mut |_| {}),
        Err(export::ExportError::TargetNotEmpty { .. })
    ));
}
