//! `TxnOp::Restore`: the whole tree replaced by a backup, identically on every replica.
//!
//! The backup is a snapshot in [`DataTree::serialize`]'s encoding. Decoding is
//! deterministic, so replicas that apply the same entry end with the same tree; bytes
//! that do not decode are refused everywhere alike and change nothing.

use super::txn::{Change, OpResult, TxnOutcome};
use super::{DataTree, CONFIG_PATH};
use crate::proto::types::ErrorCode;

impl DataTree {
    /// Replaces this tree by the one encoded in `snapshot` (see [`super::txn::TxnOp::Restore`]).
    /// Returns no changes: the caller fires the watches it holds, since any node may differ.
    pub(super) fn apply_restore(
        &mut self,
        term: u64,
        snapshot: &[u8],
        only_if_fresh: bool,
    ) -> (TxnOutcome, Vec<Change>) {
        let refuse = |tree: &DataTree, code| (TxnOutcome { zxid: tree.last_zxid, result: Err(code) }, Vec::new());
        if only_if_fresh && self.last_zxid != 0 {
            return refuse(self, ErrorCode::NodeExists);
        }
        let Ok(mut restored) = DataTree::deserialize(snapshot) else {
            return refuse(self, ErrorCode::BadArguments);
        };
        let backup_zxid = restored.last_zxid;
        // Zxids never go back: clients that saw this tree's zxids (or the backup's) must not be
        // refused for having seen a zxid newer than the server's.
        let zxid = self.next_zxid(term).max(backup_zxid.saturating_add(1));
        restored.adopt_config(self);
        restored.last_zxid = zxid;
        *self = restored;
        (TxnOutcome { zxid, result: Ok(OpResult::Restored { backup_zxid }) }, Vec::new())
    }

    /// Takes `/zookeeper/config` (data, stat and ACL) from `current`: the membership is this
    /// ensemble's, whatever ensemble the backup came from.
    fn adopt_config(&mut self, current: &DataTree) {
        let Some(source) = current.nodes.lookup(CONFIG_PATH).map(|id| current.nodes.get(id)) else { return };
        let data = current.nodes.data(source);
        let acl = self.acls.intern(source.acl.to_vec());
        let stat = source.stat;
        let Some(id) = self.nodes.lookup(CONFIG_PATH) else { return };
        let new_len = data.map_or(0, <[u8]>::len) as u64;
        let old_len = self.nodes.set_data(id, data).map_or(0, |d| d.len()) as u64;
        let node = self.nodes.get_mut(id);
        node.stat = stat;
        node.acl = acl;
        self.data_size = self.data_size - old_len + new_len;
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::txn::{Txn, TxnOp};
    use super::*;
    use crate::proto::types::{CreateMode, Id};

    fn restore_txn(snapshot: Vec<u8>, only_if_fresh: bool) -> Txn {
        Txn { session_id: 0, time_ms: 1, auth: vec![], op: TxnOp::Restore { snapshot, only_if_fresh } }
    }

    #[test]
    fn restore_replaces_the_tree_keeps_the_config_and_raises_the_zxid() {
        let mut backup = Harness::new();
        backup.term = 7;
        backup.mk("/kept");
        backup.create("/eph", CreateMode::Ephemeral).unwrap();
        let image = backup.tree.serialize();
        let backup_zxid = backup.tree.last_zxid();

        let mut live = Harness::new();
        live.mk("/gone");
        live.apply_as(0, TxnOp::InitConfig { members: "server.9=h:1:2:participant\n".into() });
        let config_before = (live.tree.stat(CONFIG_PATH), live.tree.acl(CONFIG_PATH));
        let (out, changes) = live.tree.apply(1, &restore_txn(image, false));
        assert_eq!(out.result, Ok(OpResult::Restored { backup_zxid }));
        assert!(changes.is_empty());
        assert!(out.zxid > backup_zxid, "zxid went back: {:x} <= {backup_zxid:x}", out.zxid);
        assert_eq!(live.tree.last_zxid(), out.zxid);
        assert!(live.tree.stat("/gone").is_none());
        assert_eq!(live.tree.stat("/kept"), backup.tree.stat("/kept"));
        assert_eq!(live.tree.session(SID), backup.tree.session(SID));
        assert_eq!(live.tree.ephemerals(SID, ""), vec!["/eph".to_string()]);
        assert_eq!((live.tree.stat(CONFIG_PATH), live.tree.acl(CONFIG_PATH)), config_before);
        let superuser = [Id::new("super", "")];
        let config = live.tree.get_data(CONFIG_PATH, &superuser).unwrap().0.unwrap();
        assert!(String::from_utf8_lossy(&config).contains("server.9="));
    }

    #[test]
    fn damaged_bytes_and_a_used_tree_with_only_if_fresh_change_nothing() {
        let mut backup = Harness::new();
        backup.mk("/x");
        let mut image = backup.tree.serialize();
        let last = image.len() - 1;
        image[last] ^= 1;

        let mut live = Harness::new();
        live.mk("/mine");
        let before = (live.tree.digest(), live.tree.last_zxid());
        let (out, _) = live.tree.apply(1, &restore_txn(image, false));
        assert_eq!(out.result, Err(ErrorCode::BadArguments));
        assert_eq!((live.tree.digest(), live.tree.last_zxid()), before);

        let (out, _) = live.tree.apply(1, &restore_txn(backup.tree.serialize(), true));
        assert_eq!(out.result, Err(ErrorCode::NodeExists));
        assert_eq!((live.tree.digest(), live.tree.last_zxid()), before);

        let mut fresh = DataTree::new();
        let (out, _) = fresh.apply(1, &restore_txn(backup.tree.serialize(), true));
        assert!(out.result.is_ok(), "{out:?}");
        assert!(fresh.stat("/x").is_some());
    }
}
