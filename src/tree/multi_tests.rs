//! Tests of atomic multi: pending-state visibility, one zxid, the
//! 0 / err / -2 result pattern and complete rollback.

use super::test_util::*;
use super::txn::{ChangeKind, OpResult, TxnOp};
use crate::proto::types::{Acl, CreateMode, ErrorCode};

use CreateMode::*;

fn results(r: Result<OpResult, ErrorCode>) -> Vec<Result<OpResult, ErrorCode>> {
    match r {
        Ok(OpResult::Multi(v)) => v,
        other => panic!("not a multi result: {other:?}"),
    }
}

#[test]
fn later_ops_see_earlier_ones_with_one_zxid() {
    let mut h = Harness::new();
    let (out, changes) = h.apply_as(SID, TxnOp::Multi(vec![create("/a", Persistent), create("/a/b", Persistent)]));
    let r = results(out.result);
    assert!(r.iter().all(Result::is_ok));
    assert_eq!(h.tree.last_zxid(), out.zxid);
    let a = h.tree.stat("/a").unwrap();
    let b = h.tree.stat("/a/b").unwrap();
    assert_eq!((a.czxid, b.czxid, a.pzxid), (out.zxid, out.zxid, out.zxid));
    assert_eq!((a.cversion, a.num_children), (1, 1));
    let order: Vec<_> = changes.iter().map(|c| (c.path.as_str(), c.kind)).collect();
    assert_eq!(
        order,
        vec![
            ("/a", ChangeKind::Created),
            ("/", ChangeKind::ChildrenChanged),
            ("/a/b", ChangeKind::Created),
            ("/a", ChangeKind::ChildrenChanged)
        ]
    );
}

#[test]
fn sequential_creates_in_one_multi_are_consecutive() {
    let mut h = Harness::new();
    h.mk("/q");
    let op = || create("/q/n-", PersistentSequential);
    let r = results(h.run(TxnOp::Multi(vec![op(), op(), check("/q", 0), set_data("/q", None, 0)])));
    let paths: Vec<_> = r
        .iter()
        .filter_map(|x| match x {
            Ok(OpResult::Created { path, .. }) => Some(path.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(paths, vec!["/q/n-0000000000", "/q/n-0000000001"]);
    assert_eq!(r[2], Ok(OpResult::Checked));
    assert!(matches!(r[3], Ok(OpResult::Stat(s)) if s.version == 1 && s.num_children == 2));
}

#[test]
fn failure_pattern_and_full_rollback() {
    let mut h = Harness::new();
    h.mk("/p");
    h.mk("/p/c");
    h.create("/p/s", PersistentSequential).unwrap();
    let before = h.tree.digest();
    let zxid = h.tree.last_zxid();
    let ops = vec![
        set_data("/p", Some(b"new"), -1),
        // Keeps CREATE and DELETE: later ops see the new ACL.
        set_acl("/p", vec![acl(31, "world", "anyone"), acl(1, "digest", "u:h")], -1),
        delete("/p/c", -1),
        create("/p/s", PersistentSequential),
        create("/x", Ephemeral),
        check("/p", 999),
        create("/y", Persistent),
        delete("/nothing", -1),
    ];
    let (out, changes) = h.apply_as(SID, TxnOp::Multi(ops));
    let r = results(out.result);
    let mut expect = vec![Err(ErrorCode::Ok); 5];
    expect.push(Err(ErrorCode::BadVersion));
    expect.extend([Err(ErrorCode::RuntimeInconsistency), Err(ErrorCode::RuntimeInconsistency)]);
    assert_eq!(r, expect);
    assert_eq!((out.zxid, h.tree.last_zxid()), (zxid, zxid));
    assert!(changes.is_empty());
    assert_eq!(h.tree.digest(), before, "every effect rolled back");
    assert!(h.tree.ephemerals(SID, "").is_empty());
    assert_eq!(h.tree.acl("/p").unwrap(), Acl::open_unsafe());
    assert_eq!(h.tree.stat("/p").unwrap().aversion, 0);
    // The sequence counter did not advance either.
    assert_eq!(h.create("/p/s", PersistentSequential).unwrap(), "/p/s0000000002");
}

#[test]
fn bad_transaction_like_kazoo() {
    // kazoo test_bad_transaction: [create /a, delete /missing] -> [RolledBack, NoNode].
    let mut h = Harness::new();
    let r = results(h.run(TxnOp::Multi(vec![create("/fresh", Persistent), delete("/missing", -1)])));
    assert_eq!(r, vec![Err(ErrorCode::Ok), Err(ErrorCode::NoNode)]);
    assert!(h.tree.stat("/fresh").is_none());
    // An ACL change earlier in the multi governs later ops.
    h.mk("/g");
    let ops = vec![set_acl("/g", Acl::read_unsafe(), -1), create("/g/c", Persistent)];
    assert_eq!(results(h.run(TxnOp::Multi(ops))), vec![Err(ErrorCode::Ok), Err(ErrorCode::NoAuth)]);
    let r = results(h.run(TxnOp::Multi(vec![create("/m/n", Persistent), create("/z", Persistent)])));
    assert_eq!(r, vec![Err(ErrorCode::NoNode), Err(ErrorCode::RuntimeInconsistency)]);
}

#[test]
fn create_then_delete_in_one_multi() {
    let mut h = Harness::new();
    let (out, ch) = h.apply_as(SID, TxnOp::Multi(vec![create("/t", Persistent), delete("/t", 0)]));
    assert!(results(out.result).iter().all(Result::is_ok));
    assert!(h.tree.stat("/t").is_none());
    assert_eq!(ch.iter().map(|c| c.kind).filter(|k| *k == ChangeKind::Deleted).count(), 1);
    let root = h.tree.stat("/").unwrap();
    assert_eq!((root.cversion, root.pzxid), (1, out.zxid));
}

#[test]
fn empty_multi_session_checks_and_forbidden_sub_ops() {
    let mut h = Harness::new();
    let z = h.tree.last_zxid();
    let (out, _) = h.apply_as(SID, TxnOp::Multi(vec![]));
    assert_eq!((results(out.result), out.zxid), (vec![], z + 1));
    let (out, _) = h.apply_as(DEAD, TxnOp::Multi(vec![check("/", -1), create("/a", Persistent)]));
    assert_eq!(results(out.result), vec![Err(ErrorCode::SessionExpired), Err(ErrorCode::RuntimeInconsistency)]);
    let nested = TxnOp::Multi(vec![check("/", -1), TxnOp::Multi(vec![])]);
    assert_eq!(results(h.run(nested)), vec![Err(ErrorCode::Ok), Err(ErrorCode::Unimplemented)]);
    let close = TxnOp::Multi(vec![TxnOp::CloseSession { session_id: SID }]);
    assert_eq!(results(h.run(close)), vec![Err(ErrorCode::Unimplemented)]);
    assert!(h.tree.session(SID).is_some());
    // Check failures inside a multi follow the check precedence.
    let r = results(h.run(TxnOp::Multi(vec![check("/bad/", 0)])));
    assert_eq!(r, vec![Err(ErrorCode::BadArguments)]);
    let r = results(h.run(TxnOp::Multi(vec![check("/none", 0)])));
    assert_eq!(r, vec![Err(ErrorCode::NoNode)]);
    h.run(create_acl("/w", vec![acl(2, "world", "anyone")])).unwrap();
    let r = results(h.run(TxnOp::Multi(vec![check("/w", 5)])));
    assert_eq!(r, vec![Err(ErrorCode::NoAuth)]);
}
