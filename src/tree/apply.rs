//! `DataTree::apply`: validation and execution of every write, in log order.
//!
//! Each handler checks in exactly the order ZooKeeper's PrepRequestProcessor
//! does (the first failure is what the client sees) and only then mutates, so a
//! failed single op leaves the tree untouched. A multi runs its ops one after
//! another against the live tree and rolls the journal back on the first
//! failure, which gives "later ops see earlier ones" for free.

use bytes::Bytes;

use super::acl::{check_acl, fixup_acl};
use super::mutate::Journal;
use super::node::{NodeKind, PersistedStat, CONTAINER_OWNER, MAX_TTL_MS, TTL_MARK};
use super::path::{canonical, create_parent, delete_parent, validate_path};
use super::store::{Detached, Node, NodeId};
use super::txn::{Change, OpResult, Txn, TxnOp, TxnOutcome};
use super::{DataTree, CONFIG_PATH};
use crate::proto::types::{perms, Acl, CreateMode, ErrorCode, Id};

/// Per-txn context: who asks, and the journal of what happened.
struct Cx<'a> {
    session_id: i64,
    auth: &'a [Id],
    j: Journal,
}

type OpOutcome = Result<OpResult, ErrorCode>;

impl DataTree {
    /// Applies one committed txn. `term` is the consensus term of its log entry
    /// and becomes the zxid epoch. A txn that succeeds gets the next zxid; a
    /// failed one changes nothing, reports the current last zxid and no changes.
    /// A multi always reports `Ok(OpResult::Multi(..))`; whether it committed
    /// shows in its sub-results.
    pub fn apply(&mut self, term: u64, txn: &Txn) -> (TxnOutcome, Vec<Change>) {
        if let TxnOp::InitConfig { members } = &txn.op {
            return self.init_config(term, txn.time_ms, members);
        }
        if let TxnOp::Restore { snapshot, only_if_fresh } = &txn.op {
            return self.apply_restore(term, snapshot, *only_if_fresh);
        }
        let zxid = self.next_zxid(term);
        let mut cx = Cx { session_id: txn.session_id, auth: &txn.auth, j: Journal::new(zxid, txn.time_ms) };
        let (result, committed) = match &txn.op {
            TxnOp::Multi(ops) => self.apply_multi(&mut cx, ops),
            TxnOp::Check { .. } => (Err(ErrorCode::Unimplemented), false),
            TxnOp::CreateSession { session_id, timeout_ms, password } => {
                let r = self.create_session(*session_id, *timeout_ms, *password);
                let ok = r.is_ok();
                (r, ok)
            }
            TxnOp::CloseSession { session_id } => {
                let r = self.close_session(&mut cx.j, *session_id);
                let ok = r.is_ok();
                (r, ok)
            }
            TxnOp::ExpireSession { session_id, term: decided_in } => {
                // Refused when the deciding leader's term is not the entry's: that leader
                // was deposed before its decision reached the log.
                let r = if *decided_in == term {
                    self.close_session(&mut cx.j, *session_id)
                } else {
                    Err(ErrorCode::SessionMoved)
                };
                let ok = r.is_ok();
                (r, ok)
            }
            TxnOp::SetConfig { members } => {
                let r = self.op_set_config(&mut cx, members);
                let ok = r.is_ok();
                (r, ok)
            }
            op => {
                let r = self.apply_write(&mut cx, op);
                let ok = r.is_ok();
                (r, ok)
            }
        };
        if committed {
            self.last_zxid = zxid;
            (TxnOutcome { zxid, result }, cx.j.changes)
        } else {
            self.rollback(cx.j.undo);
            (TxnOutcome { zxid: self.last_zxid, result }, Vec::new())
        }
    }

    /// `(epoch << 32) | counter`: a new term starts a new epoch at counter 1.
    pub(super) fn next_zxid(&self, term: u64) -> i64 {
        let last = self.last_zxid as u64;
        let next = if (last >> 32) < term { (term << 32) | 1 } else { last.wrapping_add(1) };
        next as i64
    }

    /// Runs the ops in order; on the first failure reports ZooKeeper's
    /// 0 / err / -2 pattern. The caller rolls back when `committed` is false.
    fn apply_multi(&mut self, cx: &mut Cx<'_>, ops: &[TxnOp]) -> (OpOutcome, bool) {
        let mut results = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            match self.apply_write(cx, op) {
                Ok(r) => results.push(Ok(r)),
                Err(code) => {
                    let mut pattern = vec![Err(ErrorCode::Ok); i];
                    pattern.push(Err(code));
                    pattern.resize(ops.len(), Err(ErrorCode::RuntimeInconsistency));
                    return (Ok(OpResult::Multi(pattern)), false);
                }
            }
        }
        (Ok(OpResult::Multi(results)), true)
    }

    /// The client writes that may also appear inside a multi.
    fn apply_write(&mut self, cx: &mut Cx<'_>, op: &TxnOp) -> OpOutcome {
        match op {
            TxnOp::Create { path, data, acl, mode, ttl_ms } => self.op_create(cx, path, data, acl, *mode, *ttl_ms),
            TxnOp::Delete { path, version } => self.op_delete(cx, path, *version),
            TxnOp::DeleteContainer { path } => self.op_delete_container(cx, path),
            TxnOp::SetData { path, data, version } => self.op_set_data(cx, path, data, *version),
            TxnOp::SetAcl { path, acl, version } => self.op_set_acl(cx, path, acl, *version),
            TxnOp::Check { path, version } => self.op_check(cx, path, *version),
            // Session ops and nested multis are not multi sub-ops.
            TxnOp::CreateSession { .. }
            | TxnOp::CloseSession { .. }
            | TxnOp::ExpireSession { .. }
            | TxnOp::Multi(_)
            | TxnOp::SetConfig { .. }
            | TxnOp::InitConfig { .. }
            | TxnOp::Restore { .. } => Err(ErrorCode::Unimplemented),
        }
    }

    /// An existing node the caller holds `perm` on: NoNode, then NoAuth.
    pub(super) fn node_with_perm(&self, path: &str, perm: i32, auth: &[Id]) -> Result<&Node, ErrorCode> {
        self.node_id_with_perm(path, perm, auth).map(|id| self.nodes.get(id))
    }

    /// [`Self::node_with_perm`] for callers that go on to the node's children.
    pub(super) fn node_id_with_perm(&self, path: &str, perm: i32, auth: &[Id]) -> Result<NodeId, ErrorCode> {
        let id = self.nodes.lookup(canonical(path)).ok_or(ErrorCode::NoNode)?;
        if check_acl(&self.nodes.get(id).acl, perm, auth) {
            Ok(id)
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    fn op_create(
        &mut self,
        cx: &mut Cx<'_>,
        path: &str,
        data: &Option<Vec<u8>>,
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: Option<i64>,
    ) -> OpOutcome {
        let owner = ephemeral_owner(mode, ttl_ms, cx.session_id)?;
        if mode.is_ephemeral() && cx.session_id == 0 {
            return Err(ErrorCode::SessionExpired);
        }
        self.check_session(cx.session_id)?;
        let parent_path = create_parent(path)?;
        let acl = fixup_acl(acl, cx.auth)?;
        let parent = self.node(parent_path).ok_or(ErrorCode::NoNode)?;
        if !check_acl(&parent.acl, perms::CREATE, cx.auth) {
            return Err(ErrorCode::NoAuth);
        }
        let final_path = if mode.is_sequential() {
            // `%010d` of the persisted counter; Rust pads negatives like Java.
            format!("{path}{:010}", parent.stat.cversion)
        } else {
            path.to_owned()
        };
        validate_path(&final_path)?;
        if self.node(&final_path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(parent.kind(), NodeKind::Ephemeral(_)) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let acl = self.acls.intern(acl);
        let stat = PersistedStat::created(cx.j.zxid, cx.j.time_ms, owner);
        let node = Detached::new(data.clone().map(Bytes::from), acl, stat);
        let stat = self.create_node(&mut cx.j, final_path.clone(), node);
        Ok(OpResult::Created { path: final_path, stat })
    }

    fn op_delete(&mut self, cx: &mut Cx<'_>, path: &str, version: i32) -> OpOutcome {
        self.check_session(cx.session_id)?;
        let parent_path = delete_parent(path)?;
        self.node_with_perm(parent_path, perms::DELETE, cx.auth)?;
        let node = self.node(path).ok_or(ErrorCode::NoNode)?;
        check_version(node.stat.version, version)?;
        if node.child_count() != 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.delete_node(&mut cx.j, path);
        Ok(OpResult::Deleted)
    }

    /// Server-side reaping: re-checks at apply time that the node is still a
    /// due container or TTL node, so a child created meanwhile wins the race.
    fn op_delete_container(&mut self, cx: &mut Cx<'_>, path: &str) -> OpOutcome {
        self.check_session(cx.session_id)?;
        delete_parent(path)?;
        let node = self.node(path).ok_or(ErrorCode::NoNode)?;
        if node.child_count() != 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if !node.is_reap_due(cx.j.time_ms) {
            return Err(ErrorCode::BadVersion);
        }
        self.delete_node(&mut cx.j, path);
        Ok(OpResult::Deleted)
    }

    fn op_set_data(&mut self, cx: &mut Cx<'_>, path: &str, data: &Option<Vec<u8>>, version: i32) -> OpOutcome {
        self.check_session(cx.session_id)?;
        validate_path(path)?;
        let node = self.node_with_perm(path, perms::WRITE, cx.auth)?;
        check_version(node.stat.version, version)?;
        let stat = self.set_node_data(&mut cx.j, path, data.clone().map(Bytes::from));
        Ok(OpResult::Stat(stat))
    }

    fn op_set_acl(&mut self, cx: &mut Cx<'_>, path: &str, acl: &[Acl], version: i32) -> OpOutcome {
        self.check_session(cx.session_id)?;
        validate_path(path)?;
        let acl = fixup_acl(acl, cx.auth)?;
        let node = self.node_with_perm(path, perms::ADMIN, cx.auth)?;
        check_version(node.stat.aversion, version)?;
        let acl = self.acls.intern(acl);
        let stat = self.set_node_acl(&mut cx.j, path, acl);
        Ok(OpResult::Stat(stat))
    }

    /// reconfig's SetDataTxn on `/zookeeper/config` (version -1, so the stat says -1).
    fn op_set_config(&mut self, cx: &mut Cx<'_>, members: &str) -> OpOutcome {
        self.check_session(cx.session_id)?;
        Ok(self.write_config(&mut cx.j, members))
    }

    /// [`TxnOp::InitConfig`]: the outcome carries the unchanged last zxid.
    fn init_config(&mut self, term: u64, time_ms: i64, members: &str) -> (TxnOutcome, Vec<Change>) {
        if !self.config_data().is_empty() {
            return (TxnOutcome { zxid: self.last_zxid, result: Err(ErrorCode::NodeExists) }, Vec::new());
        }
        let mut j = Journal::new((term << 32) as i64, time_ms);
        let result = self.write_config(&mut j, members);
        (TxnOutcome { zxid: self.last_zxid, result: Ok(result) }, j.changes)
    }

    /// `/zookeeper/config` becomes `members` then `version=<the journal's zxid>`; its data
    /// version is -1, as ZooKeeper's config writes (setData with version -1) leave it.
    fn write_config(&mut self, j: &mut Journal, members: &str) -> OpResult {
        let data = format!("{members}version={:x}", j.zxid).into_bytes();
        let stat = self.set_node_data(j, CONFIG_PATH, Some(Bytes::from(data.clone())));
        let stat = self.force_data_version(j, CONFIG_PATH, -1).unwrap_or(stat);
        OpResult::Config { data, stat }
    }

    fn op_check(&mut self, cx: &mut Cx<'_>, path: &str, version: i32) -> OpOutcome {
        self.check_session(cx.session_id)?;
        validate_path(path)?;
        let node = self.node_with_perm(path, perms::READ, cx.auth)?;
        check_version(node.stat.version, version)?;
        Ok(OpResult::Checked)
    }
}

/// `checkAndIncVersion`: -1 matches any version.
fn check_version(current: i32, expected: i32) -> Result<(), ErrorCode> {
    if expected == -1 || expected == current {
        Ok(())
    } else {
        Err(ErrorCode::BadVersion)
    }
}

/// The raw `ephemeralOwner` for a create, validating the TTL the way
/// `EphemeralType.validateTTL` does: TTL modes need `0 < ttl <= 2^40-1`, and a
/// non-TTL mode must not carry a non-negative ttl.
fn ephemeral_owner(mode: CreateMode, ttl_ms: Option<i64>, session_id: i64) -> Result<i64, ErrorCode> {
    if mode.is_ttl() {
        return match ttl_ms {
            Some(ttl) if ttl > 0 && ttl <= MAX_TTL_MS => Ok(TTL_MARK | ttl),
            _ => Err(ErrorCode::BadArguments),
        };
    }
    if matches!(ttl_ms, Some(ttl) if ttl >= 0) {
        return Err(ErrorCode::BadArguments);
    }
    Ok(if mode.is_container() {
        CONTAINER_OWNER
    } else if mode.is_ephemeral() {
        session_id
    } else {
        0
    })
}
