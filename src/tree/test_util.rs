//! Helpers shared by the tree's unit tests.

use super::txn::{Change, OpResult, Txn, TxnOp, TxnOutcome};
use super::DataTree;
use crate::proto::types::{Acl, CreateMode, ErrorCode, Id};

/// A live session most tests write with.
pub const SID: i64 = 0x0100_0000_0000_0001;
/// A second live session.
pub const SID2: i64 = 0x0200_0000_0000_0002;
/// A session id the tree has never seen.
pub const DEAD: i64 = 0x0300_0000_0000_0003;

/// Drives a tree through txns with a controllable term, clock and identity.
pub struct Harness {
    pub tree: DataTree,
    pub term: u64,
    pub time_ms: i64,
    pub auth: Vec<Id>,
}

impl Harness {
    /// A fresh tree with sessions `SID` and `SID2` open.
    pub fn new() -> Self {
        let mut h = Harness { tree: DataTree::new(), term: 1, time_ms: 1_000, auth: vec![] };
        for sid in [SID, SID2] {
            let op = TxnOp::CreateSession { session_id: sid, timeout_ms: 30_000, password: [7; 16] };
            h.apply_as(0, op).0.result.unwrap();
        }
        h
    }

    pub fn apply_as(&mut self, session_id: i64, op: TxnOp) -> (TxnOutcome, Vec<Change>) {
        let txn = Txn { session_id, time_ms: self.time_ms, auth: self.auth.clone(), op };
        self.tree.apply(self.term, &txn)
    }

    /// Applies as `SID` and returns the op result.
    pub fn run(&mut self, op: TxnOp) -> Result<OpResult, ErrorCode> {
        self.apply_as(SID, op).0.result
    }

    pub fn err(&mut self, op: TxnOp) -> ErrorCode {
        match self.run(op) {
            Err(e) => e,
            Ok(r) => panic!("expected an error, got {r:?}"),
        }
    }

    /// Creates a node and returns its final path.
    pub fn create(&mut self, path: &str, mode: CreateMode) -> Result<String, ErrorCode> {
        match self.run(create(path, mode))? {
            OpResult::Created { path, .. } => Ok(path),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn mk(&mut self, path: &str) {
        self.create(path, CreateMode::Persistent).unwrap();
    }
}

/// A create op with data `x` and OPEN_ACL_UNSAFE.
pub fn create(path: &str, mode: CreateMode) -> TxnOp {
    TxnOp::Create { path: path.into(), data: Some(b"x".to_vec()), acl: Acl::open_unsafe(), mode, ttl_ms: None }
}

/// A persistent create with `data` and OPEN_ACL_UNSAFE.
pub fn create_data(path: &str, data: &[u8]) -> TxnOp {
    TxnOp::Create {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: None,
    }
}

pub fn create_acl(path: &str, acl: Vec<Acl>) -> TxnOp {
    TxnOp::Create { path: path.into(), data: None, acl, mode: CreateMode::Persistent, ttl_ms: None }
}

pub fn create_ttl(path: &str, mode: CreateMode, ttl_ms: Option<i64>) -> TxnOp {
    TxnOp::Create { path: path.into(), data: None, acl: Acl::open_unsafe(), mode, ttl_ms }
}

pub fn delete(path: &str, version: i32) -> TxnOp {
    TxnOp::Delete { path: path.into(), version }
}

pub fn set_data(path: &str, data: Option<&[u8]>, version: i32) -> TxnOp {
    TxnOp::SetData { path: path.into(), data: data.map(<[u8]>::to_vec), version }
}

pub fn set_acl(path: &str, acl: Vec<Acl>, version: i32) -> TxnOp {
    TxnOp::SetAcl { path: path.into(), acl, version }
}

pub fn check(path: &str, version: i32) -> TxnOp {
    TxnOp::Check { path: path.into(), version }
}

pub fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl { perms, id: Id::new(scheme, id) }
}
