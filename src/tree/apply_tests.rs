//! Tests of single-op `apply`: zxids, Stat rules, sequential names, error
//! precedence (reference §3.4), sessions, ephemerals, containers and TTLs.

use super::test_util::*;
use super::txn::{ChangeKind, OpResult, TxnOp};
use super::DataTree;
use crate::proto::types::{perms, Acl, CreateMode, ErrorCode, Id};

use CreateMode::*;

fn stat(h: &Harness, path: &str) -> crate::proto::types::Stat {
    h.tree.stat(path).unwrap_or_else(|| panic!("{path} missing"))
}

#[test]
fn fresh_tree_matches_zookeeper_boot() {
    let t = DataTree::new();
    assert_eq!(t.get_children("/", &[]).unwrap().0, vec!["zookeeper"]);
    assert_eq!(t.stat("/").unwrap().cversion, -1);
    assert_eq!(t.stat("/zookeeper").unwrap().cversion, -2);
    assert_eq!(t.stat("/zookeeper/quota").unwrap().cversion, 0);
    let mut children = t.get_children("/zookeeper", &[]).unwrap().0;
    children.sort();
    assert_eq!(children, vec!["config", "quota"]);
    assert_eq!(t.acl("/zookeeper/config").unwrap(), Acl::read_unsafe());
    assert_eq!(t.acl("/").unwrap(), Acl::open_unsafe());
    let s = t.stat("/zookeeper/config").unwrap();
    // aversion -1: ZooKeeper's boot-time setACL of the config node (cli_mt's `config` shows it).
    assert_eq!((s.czxid, s.mzxid, s.ctime, s.version, s.aversion, s.pzxid, s.data_length), (0, 0, 0, 0, -1, 0, 0));
    assert_eq!(t.get_data("/", &[]).unwrap().0.as_deref(), Some(&b""[..]));
    assert_eq!((t.node_count(), t.approximate_data_size(), t.last_zxid()), (4, 44, 0));
}

#[test]
fn zxid_rule_per_term_and_failures() {
    let mut h = Harness::new();
    // Two CreateSession txns in term 1.
    assert_eq!(h.tree.last_zxid(), (1 << 32) | 2);
    let (out, _) = h.apply_as(SID, create("/a", Persistent));
    assert_eq!(out.zxid, (1 << 32) | 3);
    let (out, changes) = h.apply_as(SID, create("/a", Persistent));
    assert_eq!((out.zxid, out.result, changes.len()), ((1 << 32) | 3, Err(ErrorCode::NodeExists), 0));
    h.term = 3;
    assert_eq!(h.apply_as(SID, create("/b", Persistent)).0.zxid, (3 << 32) | 1);
    // A stale (lower) term never moves the epoch backwards.
    h.term = 2;
    assert_eq!(h.apply_as(SID, create("/c", Persistent)).0.zxid, (3 << 32) | 2);
    assert_eq!(stat(&h, "/c").czxid, (3 << 32) | 2);
}

#[test]
fn cversion_and_pzxid_follow_child_creates_and_deletes() {
    let mut h = Harness::new();
    h.mk("/p");
    assert_eq!(stat(&h, "/").cversion, 0, "root goes from -1 to 0 on its first create");
    h.mk("/p/a");
    h.mk("/p/b");
    let zb = stat(&h, "/p/b").czxid;
    let p = stat(&h, "/p");
    assert_eq!((p.cversion, p.pzxid, p.num_children), (2, zb, 2));
    h.run(set_data("/p/b", Some(b"y"), -1)).unwrap();
    let p2 = stat(&h, "/p");
    assert_eq!((p2.cversion, p2.pzxid, p2.mzxid), (2, zb, p.mzxid), "child setData does not touch the parent");
    let (out, _) = h.apply_as(SID, delete("/p/a", -1));
    let p3 = stat(&h, "/p");
    assert_eq!((p3.cversion, p3.pzxid, p3.num_children), (3, out.zxid, 1));
    assert_eq!(p3.mzxid, p.mzxid);
}

#[test]
fn close_session_deletes_ephemerals_in_one_zxid() {
    let mut h = Harness::new();
    h.mk("/p");
    h.create("/e1", Ephemeral).unwrap();
    h.create("/p/e2", Ephemeral).unwrap();
    h.apply_as(SID2, create("/p/other", Ephemeral)).0.result.unwrap();
    assert_eq!(stat(&h, "/e1").ephemeral_owner, SID);
    assert_eq!(h.tree.ephemerals(SID, "/"), vec!["/e1", "/p/e2"]);
    assert_eq!(h.tree.ephemerals(SID, "/p"), vec!["/p/e2"]);
    assert_eq!(h.tree.ephemerals(SID, "/e"), vec!["/e1"]);
    assert_eq!(h.tree.ephemeral_count(), 3);
    let p_before = stat(&h, "/p").cversion;

    let (out, changes) = h.apply_as(0, TxnOp::CloseSession { session_id: SID });
    assert_eq!(out.result, Ok(OpResult::SessionClosed));
    let kinds: Vec<_> = changes.iter().map(|c| (c.path.as_str(), c.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            ("/e1", ChangeKind::Deleted),
            ("/", ChangeKind::ChildrenChanged),
            ("/p/e2", ChangeKind::Deleted),
            ("/p", ChangeKind::ChildrenChanged)
        ]
    );
    let p = stat(&h, "/p");
    assert_eq!((p.cversion, p.pzxid), (p_before + 1, out.zxid));
    assert_eq!(stat(&h, "/").pzxid, out.zxid);
    assert!(h.tree.stat("/e1").is_none() && h.tree.stat("/p/other").is_some());
    assert!(h.tree.session(SID).is_none());
    assert!(h.tree.ephemerals(SID, "").is_empty());
    assert_eq!(h.tree.ephemeral_count(), 1);
    // The closed session can no longer write.
    assert_eq!(h.err(create("/z", Persistent)), ErrorCode::SessionExpired);
    let (out, _) = h.apply_as(0, TxnOp::CloseSession { session_id: SID });
    assert_eq!(out.result, Err(ErrorCode::SessionExpired));
}

#[test]
fn an_expiry_applies_only_in_the_term_of_the_leader_that_decided_it() {
    let mut h = Harness::new();
    h.create("/e", Ephemeral).unwrap();
    h.term = 3;
    // Decided by the leader of term 2, committed in an entry of term 3: a deposed leader's
    // decision, refused; the session and its ephemeral stay.
    let last = h.tree.last_zxid();
    let (out, changes) = h.apply_as(0, TxnOp::ExpireSession { session_id: SID, term: 2 });
    assert_eq!(out.result, Err(ErrorCode::SessionMoved));
    assert_eq!(out.zxid, last, "a refused expiry takes no zxid");
    assert!(changes.is_empty());
    assert!(h.tree.session(SID).is_some() && h.tree.stat("/e").is_some());
    // Decided and committed in term 3: the session ends as with a close.
    let (out, _) = h.apply_as(0, TxnOp::ExpireSession { session_id: SID, term: 3 });
    assert_eq!(out.result, Ok(OpResult::SessionClosed));
    assert!(h.tree.session(SID).is_none() && h.tree.stat("/e").is_none());
}

#[test]
fn session_table_rules() {
    let mut h = Harness::new();
    assert_eq!(h.tree.session(SID).map(|s| s.timeout_ms), Some(30_000));
    let dup = TxnOp::CreateSession { session_id: SID, timeout_ms: 1, password: [0; 16] };
    assert_eq!(h.apply_as(0, dup).0.result, Err(ErrorCode::BadArguments));
    for bad in [0, i64::MIN, 0xFF00_0000_0000_0005_u64 as i64] {
        let op = TxnOp::CreateSession { session_id: bad, timeout_ms: 1, password: [0; 16] };
        assert_eq!(h.apply_as(0, op).0.result, Err(ErrorCode::BadArguments), "{bad:#x}");
    }
    assert_eq!(h.tree.sessions().map(|(id, _)| id).collect::<Vec<_>>(), vec![SID, SID2]);
    assert_eq!(h.apply_as(DEAD, set_data("/", None, -1)).0.result, Err(ErrorCode::SessionExpired));
    // Server-internal txns (session 0) need no session, but cannot own ephemerals.
    assert!(h.apply_as(0, create("/internal", Persistent)).0.result.is_ok());
    assert_eq!(h.apply_as(0, create("/eph", Ephemeral)).0.result, Err(ErrorCode::SessionExpired));
}

#[test]
fn stat_rules_for_data_and_acl() {
    let mut h = Harness::new();
    h.time_ms = 5_000;
    let zc = match h.run(create("/n", Persistent)).unwrap() {
        OpResult::Created { stat, .. } => stat,
        r => panic!("{r:?}"),
    };
    assert_eq!((zc.ctime, zc.mtime, zc.version, zc.data_length, zc.czxid), (5_000, 5_000, 0, 1, zc.mzxid));
    assert_eq!(zc.pzxid, zc.czxid);
    h.time_ms = 6_000;
    let s1 = match h.run(set_data("/n", Some(b"x"), 0)).unwrap() {
        OpResult::Stat(s) => s,
        r => panic!("{r:?}"),
    };
    assert_eq!((s1.version, s1.mtime, s1.ctime), (1, 6_000, 5_000), "identical data still bumps version");
    assert_eq!(stat(&h, "/n"), s1, "write stat equals later read stat");
    h.time_ms = 7_000;
    let s2 = match h.run(set_acl("/n", Acl::read_unsafe(), 0)).unwrap() {
        OpResult::Stat(s) => s,
        r => panic!("{r:?}"),
    };
    assert_eq!((s2.aversion, s2.mzxid, s2.mtime, s2.version), (1, s1.mzxid, 6_000, 1));
    // Null and empty data stay distinct; both have length 0.
    h.mk("/m");
    h.run(set_data("/m", None, -1)).unwrap();
    let (d, s) = h.tree.get_data("/m", &[]).unwrap();
    assert_eq!((d, s.data_length), (None, 0));
    h.run(set_data("/m", Some(b""), -1)).unwrap();
    assert_eq!(h.tree.get_data("/m", &[]).unwrap().0.as_deref(), Some(&b""[..]));
}

#[test]
fn changes_carry_the_right_acl_in_op_order() {
    let mut h = Harness::new();
    h.run(create_acl("/p", vec![acl(perms::ALL, "world", "anyone")])).unwrap();
    let child_acl = vec![acl(perms::READ, "digest", "u:h"), acl(perms::CREATE, "world", "anyone")];
    let (_, ch) = h.apply_as(SID, create_acl("/p/c", child_acl.clone()));
    assert_eq!(ch.len(), 2);
    assert_eq!((ch[0].path.as_str(), ch[0].kind, ch[0].acl.as_slice()), ("/p/c", ChangeKind::Created, &child_acl[..]));
    let open = Acl::open_unsafe();
    assert_eq!((ch[1].path.as_str(), ch[1].kind, ch[1].acl.as_slice()), ("/p", ChangeKind::ChildrenChanged, &open[..]));
    let (_, ch) = h.apply_as(SID, set_data("/p", None, -1));
    assert_eq!((ch.len(), ch[0].kind), (1, ChangeKind::DataChanged));
    let (_, ch) = h.apply_as(SID, set_acl("/p", Acl::open_unsafe(), -1));
    assert!(ch.is_empty(), "setACL fires nothing");
    let (_, ch) = h.apply_as(SID, delete("/p/c", -1));
    let kinds: Vec<_> = ch.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, vec![ChangeKind::Deleted, ChangeKind::ChildrenChanged]);
    assert_eq!(*ch[0].acl, child_acl);
}

/// Each change carries the stat and data of its own moment (the change feed shows them
/// without reading the tree again), also for two writes to one node in one multi.
#[test]
fn changes_carry_the_stat_and_data_of_the_change() {
    let mut h = Harness::new();
    let (out, ch) = h.apply_as(SID, create("/d", Persistent));
    let created = ch[0].stat.expect("a created node has a stat");
    assert_eq!((created.czxid, created.version), (out.zxid, 0));
    let root = ch[1].stat.expect("the parent's stat");
    assert_eq!((root.pzxid, root.num_children), (out.zxid, stat(&h, "/").num_children));
    let (_, ch) = h.apply_as(SID, TxnOp::Multi(vec![set_data("/d", Some(b"1"), -1), set_data("/d", Some(b"2"), -1)]));
    let seen: Vec<_> = ch.iter().map(|c| (c.data.as_deref(), c.stat.map(|s| (s.version, s.data_length)))).collect();
    assert_eq!(seen, [(Some(&b"1"[..]), Some((1, 1))), (Some(&b"2"[..]), Some((2, 1)))]);
    let (_, ch) = h.apply_as(SID, delete("/d", -1));
    assert_eq!((ch[0].stat, ch[0].data.as_ref()), (None, None));
    assert_eq!(ch[1].stat.map(|s| s.num_children), Some(stat(&h, "/").num_children));
}

#[test]
fn sequential_names_come_from_the_persisted_counter() {
    let mut h = Harness::new();
    h.mk("/folder");
    assert_eq!(h.create("/folder/a", PersistentSequential).unwrap(), "/folder/a0000000000");
    assert_eq!(h.create("/folder/a", EphemeralSequential).unwrap(), "/folder/a0000000001");
    assert_eq!(h.create("/folder/", PersistentSequential).unwrap(), "/folder/0000000002");
    h.run(delete("/folder/0000000002", -1)).unwrap();
    // A hand-made name that the next sequential create would produce.
    h.mk("/folder/a0000000004");
    assert_eq!(h.create("/folder/a", PersistentSequential), Err(ErrorCode::NodeExists));
    assert_eq!(h.create("/folder/b", PersistentSequential).unwrap(), "/folder/b0000000004");
    // Counter overflow renders like Java's %010d.
    h.mk("/o");
    h.tree.node_mut("/o").unwrap().stat.cversion = i32::MAX;
    assert_eq!(h.create("/o/x", PersistentSequential).unwrap(), "/o/x2147483647");
    assert_eq!(h.create("/o/x", PersistentSequential).unwrap(), "/o/x-2147483648");
    h.tree.node_mut("/o").unwrap().stat.cversion = -5;
    assert_eq!(h.create("/o/y", PersistentSequential).unwrap(), "/o/y-000000005");
}

#[test]
fn create_error_precedence() {
    let mut h = Harness::new();
    let no_create = vec![acl(perms::ALL & !perms::CREATE, "world", "anyone")];
    h.run(create_acl("/locked", no_create)).unwrap();
    h.mk("/locked2");
    h.create("/eph", Ephemeral).unwrap();
    let bad_acl = vec![acl(31, "foo", "bar")];
    let create_bad_acl =
        |p: &str| TxnOp::Create { path: p.into(), data: None, acl: bad_acl.clone(), mode: Persistent, ttl_ms: None };
    // Bad ttl before the session check.
    assert_eq!(h.apply_as(DEAD, create_ttl("/t", PersistentWithTtl, None)).0.result, Err(ErrorCode::BadArguments));
    assert_eq!(h.apply_as(DEAD, create_ttl("/t", Persistent, Some(5))).0.result, Err(ErrorCode::BadArguments));
    // Session before the path.
    assert_eq!(h.apply_as(DEAD, create("noslash", Persistent)).0.result, Err(ErrorCode::SessionExpired));
    // No '/' or a NUL before the ACL.
    assert_eq!(h.err(create_bad_acl("noslash")), ErrorCode::BadArguments);
    assert_eq!(h.err(create_bad_acl("/a\0")), ErrorCode::BadArguments);
    // ACL before the parent.
    assert_eq!(h.err(create_bad_acl("/missing/x")), ErrorCode::InvalidAcl);
    assert_eq!(h.err(create_acl("/missing/x", vec![])), ErrorCode::InvalidAcl);
    // Parent missing before validatePath.
    assert_eq!(h.err(create("/missing/x/", Persistent)), ErrorCode::NoNode);
    // No CREATE on the parent before validatePath and exists.
    assert_eq!(h.err(create("/locked/", Persistent)), ErrorCode::NoAuth);
    // validatePath (after the suffix) before exists.
    assert_eq!(h.err(create("/locked2/", Persistent)), ErrorCode::BadArguments);
    assert_eq!(h.err(create("/locked2/.", Persistent)), ErrorCode::BadArguments);
    assert_eq!(h.err(create("/b\x1e", Persistent)), ErrorCode::BadArguments);
    assert_eq!(h.err(create("/b\u{1F600}", Persistent)), ErrorCode::BadArguments);
    assert_eq!(h.err(create("/", Persistent)), ErrorCode::NodeExists);
    assert_eq!(h.err(create("/locked2", Persistent)), ErrorCode::NodeExists);
    assert_eq!(h.err(create("/eph", Persistent)), ErrorCode::NodeExists);
    assert_eq!(h.err(create("/eph/c", Persistent)), ErrorCode::NoChildrenForEphemerals);
    assert_eq!(h.err(create("/eph/c", EphemeralSequential)), ErrorCode::NoChildrenForEphemerals);
    // Children under /zookeeper are fine.
    h.mk("/zookeeper/mine");
}

#[test]
fn delete_error_precedence() {
    let mut h = Harness::new();
    let no_delete = vec![acl(perms::ALL & !perms::DELETE, "world", "anyone")];
    h.run(create_acl("/locked", no_delete)).unwrap();
    h.mk("/locked/c");
    h.mk("/p");
    h.mk("/p/c");
    h.mk("/p/c/g");
    assert_eq!(h.apply_as(DEAD, delete("/", -1)).0.result, Err(ErrorCode::SessionExpired));
    for special in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config", "noslash", "/p\0"] {
        assert_eq!(h.err(delete(special, -1)), ErrorCode::BadArguments, "{special:?}");
    }
    assert_eq!(h.err(delete("/missing/x", 5)), ErrorCode::NoNode);
    assert_eq!(h.err(delete("/locked/c", 99)), ErrorCode::NoAuth, "parent DELETE before version");
    assert_eq!(h.err(delete("/locked/none", -1)), ErrorCode::NoAuth, "parent DELETE before NoNode");
    assert_eq!(h.err(delete("/p/none", 99)), ErrorCode::NoNode);
    assert_eq!(h.err(delete("/p/", -1)), ErrorCode::NoNode);
    assert_eq!(h.err(delete("/p/c", 99)), ErrorCode::BadVersion, "version before NotEmpty");
    assert_eq!(h.err(delete("/p/c", 0)), ErrorCode::NotEmpty);
    h.run(delete("/p/c/g", 0)).unwrap();
    h.run(delete("/p/c", 0)).unwrap();
    // Another session's ephemeral can be deleted.
    h.apply_as(SID2, create("/e", Ephemeral)).0.result.unwrap();
    h.run(delete("/e", -1)).unwrap();
    assert!(h.tree.ephemerals(SID2, "").is_empty());
}

#[test]
fn set_data_set_acl_check_error_precedence() {
    let mut h = Harness::new();
    let read_only = Acl::read_unsafe();
    h.run(create_acl("/ro", read_only)).unwrap();
    h.mk("/n");
    assert_eq!(h.apply_as(DEAD, set_data("bad", None, -1)).0.result, Err(ErrorCode::SessionExpired));
    assert_eq!(h.err(set_data("/missing/", None, -1)), ErrorCode::BadArguments);
    assert_eq!(h.err(set_data("/missing", None, -1)), ErrorCode::NoNode);
    assert_eq!(h.err(set_data("/ro", None, 42)), ErrorCode::NoAuth);
    assert_eq!(h.err(set_data("/n", None, 42)), ErrorCode::BadVersion);
    h.run(set_data("/", Some(b"root"), -1)).unwrap();

    assert_eq!(h.apply_as(DEAD, set_acl("bad", vec![], -1)).0.result, Err(ErrorCode::SessionExpired));
    assert_eq!(h.err(set_acl("/missing/", vec![], -1)), ErrorCode::BadArguments);
    assert_eq!(h.err(set_acl("/missing", vec![], -1)), ErrorCode::InvalidAcl, "InvalidAcl before NoNode");
    assert_eq!(h.err(set_acl("/missing", Acl::open_unsafe(), -1)), ErrorCode::NoNode);
    assert_eq!(h.err(set_acl("/ro", Acl::open_unsafe(), 42)), ErrorCode::NoAuth);
    assert_eq!(h.err(set_acl("/n", Acl::open_unsafe(), 1)), ErrorCode::BadVersion);
    h.run(set_acl("/n", Acl::open_unsafe(), 0)).unwrap();
    assert_eq!(h.err(set_acl("/n", Acl::open_unsafe(), 0)), ErrorCode::BadVersion, "checked against aversion");

    assert_eq!(h.err(check("/n", 0)), ErrorCode::Unimplemented, "top-level check");
}

#[test]
fn super_bypasses_and_digest_matches() {
    let mut h = Harness::new();
    let bob = super::acl::digest_id("bob:pw");
    h.auth = vec![Id::new("ip", "127.0.0.1"), Id::new("digest", bob.clone())];
    h.run(create_acl("/b", vec![acl(perms::ALL, "auth", "")])).unwrap();
    assert_eq!(h.tree.acl("/b").unwrap(), vec![acl(perms::ALL, "digest", &bob)]);
    h.auth = vec![Id::new("ip", "127.0.0.1")];
    assert_eq!(h.err(create_acl("/c", vec![acl(perms::ALL, "auth", "")])), ErrorCode::InvalidAcl);
    assert_eq!(h.err(set_data("/b", None, -1)), ErrorCode::NoAuth);
    assert_eq!(h.tree.get_data("/b", &h.auth), Err(ErrorCode::NoAuth));
    h.auth = vec![Id::new("digest", super::acl::digest_id("super:test")), Id::new("super", "")];
    h.run(set_data("/b", None, -1)).unwrap();
    assert!(h.tree.get_data("/b", &h.auth).is_ok());
    assert_eq!(h.err(set_acl("/b", vec![acl(31, "super", "")], -1)), ErrorCode::InvalidAcl);
}

#[test]
fn reads_and_acl_masking() {
    let mut h = Harness::new();
    let bob = Id::new("digest", super::acl::digest_id("bob:pw"));
    let node_acl = vec![acl(perms::ALL, "digest", &bob.id), acl(perms::READ, "world", "anyone")];
    h.run(create_acl("/s", node_acl.clone())).unwrap();
    let (masked, _) = h.tree.get_acl("/s", &[]).unwrap();
    assert_eq!(masked, vec![acl(perms::ALL, "digest", "bob:x"), acl(perms::READ, "world", "anyone")]);
    assert_eq!(h.tree.get_acl("/s", std::slice::from_ref(&bob)).unwrap().0, node_acl);
    h.run(create_acl("/hidden", vec![acl(perms::ALL, "digest", &bob.id)])).unwrap();
    assert_eq!(h.tree.get_acl("/hidden", &[]), Err(ErrorCode::NoAuth));
    assert_eq!(h.tree.exists("/hidden", &[]), Err(ErrorCode::NoAuth));
    assert_eq!(h.tree.get_children("/hidden", &[]), Err(ErrorCode::NoAuth));
    assert_eq!(h.tree.all_children_number("/hidden", &[]), Err(ErrorCode::NoAuth));
    assert_eq!(h.tree.exists("/nope", &[]), Err(ErrorCode::NoNode));
    assert_eq!(h.tree.exists("/nope\0", &[]), Err(ErrorCode::BadArguments));
    assert_eq!(h.tree.get_data("/bad//path", &[]), Err(ErrorCode::NoNode));
    for p in ["/a", "/a/c", "/a/b", "/a/b/x"] {
        h.mk(p);
    }
    assert_eq!(h.tree.get_children("/a", &[]).unwrap().0, vec!["b", "c"]);
    assert_eq!(h.tree.all_children_number("/a", &[]).unwrap(), 3);
    // "/" counts /zookeeper, quota and config too: 3 + /s + /hidden + 4 under /a.
    assert_eq!(h.tree.all_children_number("/", &[]).unwrap(), 9);
    assert_eq!(h.tree.get_children("", &[]).unwrap().0.len(), 4, "\"\" is the root");
}

#[test]
fn containers_and_ttl_nodes() {
    let mut h = Harness::new();
    h.create("/c", Container).unwrap();
    assert_eq!(stat(&h, "/c").ephemeral_owner, 0);
    assert!(h.tree.reapable(i64::MAX).is_empty(), "a never-used container stays");
    h.create("/c/kid", Ephemeral).unwrap();
    assert!(h.tree.reapable(i64::MAX).is_empty(), "non-empty");
    h.run(delete("/c/kid", -1)).unwrap();
    assert_eq!(h.tree.reapable(0), vec!["/c"]);

    h.time_ms = 10_000;
    h.run(create_ttl("/t", PersistentWithTtl, Some(500))).unwrap();
    assert_eq!(stat(&h, "/t").ephemeral_owner, 0);
    assert!(!h.tree.reapable(10_500).contains(&"/t".to_string()));
    assert!(h.tree.reapable(10_501).contains(&"/t".to_string()));
    h.time_ms = 10_400;
    h.run(set_data("/t", Some(b"touch"), -1)).unwrap();
    assert!(!h.tree.reapable(10_501).contains(&"/t".to_string()), "setData moves mtime");
    assert_eq!(h.run(create_ttl("/t2", PersistentSequentialWithTtl, Some(MAX))).map(|_| ()), Ok(()));
    for bad in [Some(0), Some(-1), Some(MAX + 1), None] {
        assert_eq!(h.err(create_ttl("/t3", PersistentWithTtl, bad)), ErrorCode::BadArguments, "{bad:?}");
    }
    // Containers and TTL parents may have children.
    h.mk("/t/child");
    h.run(delete("/t/child", -1)).unwrap();

    // DeleteContainer re-checks at apply time.
    h.mk("/plain");
    h.time_ms = 10_800;
    let reap = |p: &str| TxnOp::DeleteContainer { path: p.into() };
    assert_eq!(h.apply_as(0, reap("/plain")).0.result, Err(ErrorCode::BadVersion));
    assert_eq!(h.apply_as(0, reap("/t")).0.result, Err(ErrorCode::BadVersion), "not due yet");
    assert_eq!(h.apply_as(0, reap("/gone")).0.result, Err(ErrorCode::NoNode));
    h.mk("/c/again");
    assert_eq!(h.apply_as(0, reap("/c")).0.result, Err(ErrorCode::NotEmpty));
    h.run(delete("/c/again", -1)).unwrap();
    let (out, ch) = h.apply_as(0, reap("/c"));
    assert_eq!(out.result, Ok(OpResult::Deleted));
    assert_eq!(ch.iter().map(|c| c.kind).collect::<Vec<_>>(), vec![ChangeKind::Deleted, ChangeKind::ChildrenChanged]);
    h.time_ms = 11_000;
    assert_eq!(h.apply_as(0, reap("/t")).0.result, Ok(OpResult::Deleted));
    assert!(h.tree.reapable(i64::MAX).iter().all(|p| p.starts_with("/t2")));
}

const MAX: i64 = super::MAX_TTL_MS;

#[test]
fn data_size_and_counts_track_changes() {
    let mut h = Harness::new();
    let base = h.tree.approximate_data_size();
    h.mk("/abc"); // 4 + 1
    assert_eq!(h.tree.approximate_data_size(), base + 5);
    h.run(set_data("/abc", Some(b"12345"), -1)).unwrap();
    assert_eq!(h.tree.approximate_data_size(), base + 9);
    h.run(delete("/abc", -1)).unwrap();
    assert_eq!((h.tree.approximate_data_size(), h.tree.node_count()), (base, 4));
}

#[test]
fn same_txns_give_same_digest() {
    let run = || {
        let mut h = Harness::new();
        h.mk("/a");
        h.create("/a/s", PersistentSequential).unwrap();
        h.create("/e", Ephemeral).unwrap();
        h.create("/c", Container).unwrap();
        h.run(set_data("/a", None, -1)).unwrap();
        h.run(set_acl("/a", Acl::read_unsafe(), -1)).unwrap();
        h.apply_as(0, TxnOp::CloseSession { session_id: SID2 }).0.result.unwrap();
        h.tree
    };
    let (a, b) = (run(), run());
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.serialize(), b.serialize());
    let mut c = run();
    let txn = super::txn::Txn { session_id: SID, time_ms: 1, auth: vec![], op: set_data("/c", None, -1) };
    c.apply(1, &txn).0.result.unwrap();
    assert_ne!(a.digest(), c.digest());
}

#[test]
fn set_config_installs_the_text_with_its_zxid_as_version() {
    let mut h = Harness::new();
    let members = "server.1=h:1:2:participant\nserver.2=h:3:4:participant\n".to_string();
    let (out, changes) = h.apply_as(SID, TxnOp::SetConfig { members: members.clone() });
    let Ok(OpResult::Config { data, stat }) = out.result else { panic!("{out:?}") };
    assert_eq!(String::from_utf8(data.clone()).unwrap(), format!("{members}version={:x}", out.zxid));
    // ZooKeeper's reconfig SetDataTxn carries version -1, which becomes the stat's version.
    assert_eq!((stat.version, stat.mzxid, stat.data_length), (-1, out.zxid, data.len() as i32));
    assert_eq!(h.tree.config_data(), &data[..]);
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0].path.as_str(), changes[0].kind), ("/zookeeper/config", ChangeKind::DataChanged));
    // Only the super user (or an ACL granting WRITE) may change it; clients read it.
    assert!(!h.tree.may_write_config(&[Id::new("ip", "127.0.0.1")]));
    assert!(h.tree.may_write_config(&[Id::new("super", "")]));
    // A txn from a session that is gone changes nothing.
    let before = h.tree.last_zxid();
    let (out, changes) = h.apply_as(999, TxnOp::SetConfig { members });
    assert_eq!((out.result, out.zxid, changes.len()), (Err(ErrorCode::SessionExpired), before, 0));
}

#[test]
fn init_config_takes_no_zxid_and_is_versioned_by_its_epoch() {
    let mut h = Harness::new();
    h.term = 2;
    h.time_ms = 5_000;
    let before = h.tree.last_zxid();
    let members = "server.1=h:1:2:participant\n".to_string();
    let (out, changes) = h.apply_as(0, TxnOp::InitConfig { members: members.clone() });
    let Ok(OpResult::Config { data, stat }) = out.result else { panic!("{out:?}") };
    // ZooKeeper 3.8 on a fresh ensemble: version=100000000 in epoch 1 (here epoch 2),
    // czxid/ctime/pzxid 0, mzxid = the version, data version and aversion -1.
    assert_eq!(String::from_utf8(data).unwrap(), format!("{members}version=200000000"));
    assert_eq!((stat.czxid, stat.ctime, stat.pzxid), (0, 0, 0));
    assert_eq!((stat.mzxid, stat.mtime, stat.version, stat.aversion), (0x2_0000_0000, 5_000, -1, -1));
    assert_eq!((out.zxid, h.tree.last_zxid()), (before, before), "no zxid consumed");
    assert_eq!(changes.len(), 1);
    // The first client write of the epoch still gets counter 1.
    let (out, _) = h.apply_as(SID, set_data("/zookeeper/quota", None, -1));
    assert_eq!(out.zxid, 0x2_0000_0001);
    // A second initial config (a leader racing an installed one) changes nothing.
    let (out, changes) = h.apply_as(0, TxnOp::InitConfig { members: "server.9=h:1:2:participant\n".into() });
    assert_eq!((out.result, changes.len()), (Err(ErrorCode::NodeExists), 0));
    assert!(String::from_utf8_lossy(&h.tree.config_data()).starts_with("server.1="));
}
