//! Write requests: turning a decoded request into a replicated txn, and a
//! txn's outcome back into the reply the client expects.
//!
//! Checks that need no tree state (flags, the TTL switch) are made here, before
//! anything reaches the log; everything else is decided by `tree::apply`.

use crate::proto::request::Request;
use crate::proto::response::{encode_reply, ReplyHeader, Response};
use crate::proto::types::{CreateMode, ErrorCode, OpCode};
use crate::proto::MultiResult;
use crate::tree::txn::{OpResult, TxnOp, TxnOutcome};

/// Settings that change how writes are validated.
#[derive(Debug, Clone, Copy)]
pub struct WritePolicy {
    /// `zookeeper.extendedTypesEnabled`: TTL nodes.
    pub ttl_enabled: bool,
}

/// Maps one create-like request to a txn op.
fn create_op(op: OpCode, req: Request, policy: WritePolicy) -> Result<TxnOp, ErrorCode> {
    match req {
        Request::Create { path, data, acl, flags } => {
            let mode = CreateMode::from_flag(flags).ok_or(ErrorCode::BadArguments)?;
            // TTL modes need createTTL; a plain create has no ttl to validate.
            if mode.is_ttl() {
                return Err(ErrorCode::BadArguments);
            }
            let mode = if op == OpCode::CreateContainer { CreateMode::Container } else { mode };
            Ok(TxnOp::Create { path, data, acl, mode, ttl_ms: None })
        }
        Request::CreateTtl { path, data, acl, flags, ttl } => {
            if !policy.ttl_enabled {
                return Err(ErrorCode::Unimplemented);
            }
            let mode = CreateMode::from_flag(flags).ok_or(ErrorCode::BadArguments)?;
            if !mode.is_ttl() {
                return Err(ErrorCode::BadArguments);
            }
            Ok(TxnOp::Create { path, data, acl, mode, ttl_ms: Some(ttl) })
        }
        _ => Err(ErrorCode::MarshallingError),
    }
}

/// Maps a write request (or one sub-op of a multi) to a txn op.
pub fn to_txn_op(op: OpCode, req: Request, policy: WritePolicy) -> Result<TxnOp, ErrorCode> {
    match req {
        Request::Create { .. } | Request::CreateTtl { .. } => create_op(op, req, policy),
        Request::Delete { path, version } => Ok(TxnOp::Delete { path, version }),
        Request::SetData { path, data, version } => Ok(TxnOp::SetData { path, data, version }),
        Request::SetAcl { path, acl, version } => Ok(TxnOp::SetAcl { path, acl, version }),
        Request::Check { path, version } => Ok(TxnOp::Check { path, version }),
        Request::DeleteContainer { path } => Ok(TxnOp::DeleteContainer { path }),
        Request::Multi(ops) => {
            let mut txn_ops = Vec::with_capacity(ops.len());
            for (sub_op, sub_req) in ops {
                txn_ops.push(to_txn_op(sub_op, sub_req, policy)?);
            }
            Ok(TxnOp::Multi(txn_ops))
        }
        _ => Err(ErrorCode::MarshallingError),
    }
}

/// The opcodes of a multi's sub-ops, needed to shape its results (create vs create2).
pub fn multi_kinds(req: &Request) -> Vec<OpCode> {
    match req {
        Request::Multi(ops) => ops.iter().map(|(op, _)| *op).collect(),
        _ => Vec::new(),
    }
}

/// A multi whose sub-op was refused before reaching the log: ZooKeeper's pattern of
/// rolled-back (0) before the failing op and runtime-inconsistency (-2) after it.
pub fn refused_multi(count: usize, failed_at: usize, code: ErrorCode) -> Vec<MultiResult<'static>> {
    (0..count)
        .map(|i| match i.cmp(&failed_at) {
            std::cmp::Ordering::Less => MultiResult::Error(ErrorCode::Ok),
            std::cmp::Ordering::Equal => MultiResult::Error(code),
            std::cmp::Ordering::Greater => MultiResult::Error(ErrorCode::RuntimeInconsistency),
        })
        .collect()
}

/// Finds which sub-op of a multi fails the local checks, if any.
pub fn precheck_multi(req: &Request, policy: WritePolicy) -> Option<(usize, usize, ErrorCode)> {
    let Request::Multi(ops) = req else { return None };
    for (i, (op, sub)) in ops.iter().enumerate() {
        if let Err(code) = to_txn_op(*op, sub.clone(), policy) {
            return Some((ops.len(), i, code));
        }
    }
    None
}

fn multi_result(kind: OpCode, r: &Result<OpResult, ErrorCode>) -> MultiResult<'_> {
    match r {
        Ok(OpResult::Created { path, stat }) => {
            if kind == OpCode::Create {
                MultiResult::Create { path }
            } else {
                MultiResult::Create2 { path, stat: *stat }
            }
        }
        Ok(OpResult::Deleted) => MultiResult::Delete,
        Ok(OpResult::Stat(stat)) => MultiResult::SetData(*stat),
        Ok(OpResult::Checked) => MultiResult::Check,
        Ok(_) => MultiResult::Error(ErrorCode::SystemError),
        Err(code) => MultiResult::Error(*code),
    }
}

/// Encodes the reply to a write of `op` from its txn outcome; returns the reply's
/// zxid and error code.
pub fn encode_outcome(
    out: &mut Vec<u8>,
    xid: i32,
    op: OpCode,
    multi_kinds: &[OpCode],
    outcome: &TxnOutcome,
) -> (i64, ErrorCode) {
    let zxid = outcome.zxid;
    let result = match &outcome.result {
        Err(code) => {
            encode_reply(out, &ReplyHeader { xid, zxid, err: code.as_i32() }, None);
            return (zxid, *code);
        }
        Ok(r) => r,
    };
    let body = match (op, result) {
        (OpCode::Create, OpResult::Created { path, .. }) => Response::Create { path },
        (_, OpResult::Created { path, stat }) => Response::Create2 { path, stat: *stat },
        (_, OpResult::Stat(stat)) => Response::Stat(*stat),
        (_, OpResult::Config { data, stat }) => Response::Reconfig { data, stat: *stat },
        (_, OpResult::Multi(results)) => Response::Multi(
            results
                .iter()
                .enumerate()
                .map(|(i, r)| multi_result(multi_kinds.get(i).copied().unwrap_or(OpCode::Create2), r))
                .collect(),
        ),
        _ => Response::Empty,
    };
    encode_reply(out, &ReplyHeader { xid, zxid, err: 0 }, Some(&body));
    (zxid, ErrorCode::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::types::{Acl, Stat};

    const POLICY: WritePolicy = WritePolicy { ttl_enabled: false };

    fn create(flags: i32) -> Request {
        Request::Create { path: "/a".into(), data: None, acl: Acl::open_unsafe(), flags }
    }

    #[test]
    fn unknown_create_flags_are_bad_arguments() {
        assert_eq!(to_txn_op(OpCode::Create, create(9), POLICY), Err(ErrorCode::BadArguments));
        assert_eq!(to_txn_op(OpCode::Create, create(5), POLICY), Err(ErrorCode::BadArguments));
    }

    #[test]
    fn ttl_is_unimplemented_unless_enabled() {
        let req = Request::CreateTtl { path: "/t".into(), data: None, acl: Acl::open_unsafe(), flags: 5, ttl: 100 };
        assert_eq!(to_txn_op(OpCode::CreateTtl, req.clone(), POLICY), Err(ErrorCode::Unimplemented));
        let on = WritePolicy { ttl_enabled: true };
        assert!(matches!(to_txn_op(OpCode::CreateTtl, req, on), Ok(TxnOp::Create { ttl_ms: Some(100), .. })));
    }

    #[test]
    fn multi_create_results_keep_the_request_opcode() {
        let stat = Stat { czxid: 7, ..Stat::default() };
        let outcome = TxnOutcome {
            zxid: 5,
            result: Ok(OpResult::Multi(vec![
                Ok(OpResult::Created { path: "/a".into(), stat }),
                Ok(OpResult::Created { path: "/b".into(), stat }),
            ])),
        };
        let mut got = Vec::new();
        let (zxid, err) = encode_outcome(&mut got, 9, OpCode::Multi, &[OpCode::Create, OpCode::Create2], &outcome);
        assert_eq!((zxid, err), (5, ErrorCode::Ok));
        let mut want = Vec::new();
        let results = vec![MultiResult::Create { path: "/a" }, MultiResult::Create2 { path: "/b", stat }];
        encode_reply(&mut want, &ReplyHeader { xid: 9, zxid: 5, err: 0 }, Some(&Response::Multi(results)));
        assert_eq!(got, want);
    }

    #[test]
    fn failed_writes_have_no_body() {
        let outcome = TxnOutcome { zxid: 3, result: Err(ErrorCode::NodeExists) };
        let mut got = Vec::new();
        encode_outcome(&mut got, 1, OpCode::Create, &[], &outcome);
        // 4-byte length + 16-byte header, nothing else.
        assert_eq!(got.len(), 20);
    }

    #[test]
    fn refused_multi_follows_the_rollback_pattern() {
        let r = refused_multi(3, 1, ErrorCode::BadArguments);
        assert_eq!(
            r,
            vec![
                MultiResult::Error(ErrorCode::Ok),
                MultiResult::Error(ErrorCode::BadArguments),
                MultiResult::Error(ErrorCode::RuntimeInconsistency)
            ]
        );
    }
}
