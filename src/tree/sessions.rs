//! The replicated sessions table and the ephemerals each session owns.
//!
//! Sessions live in the tree (not only on the leader) so that they survive
//! failover and restarts, and so that every replica deletes the same ephemerals
//! in the same `closeSession` txn.

use super::mutate::Journal;
use super::node::NodeKind;
use super::txn::OpResult;
use super::{DataTree, SessionEntry};
use crate::proto::types::ErrorCode;

impl DataTree {
    /// Every client write first needs a live session; 0 marks server-internal
    /// txns, which have none.
    pub(super) fn check_session(&self, session_id: i64) -> Result<(), ErrorCode> {
        if session_id == 0 || self.sessions.contains_key(&session_id) {
            Ok(())
        } else {
            Err(ErrorCode::SessionExpired)
        }
    }

    /// Registers a session. Ids that would read as a container or TTL marker in
    /// `ephemeralOwner` (0, `i64::MIN`, top byte 0xFF) and taken ids are refused.
    pub(super) fn create_session(
        &mut self,
        session_id: i64,
        timeout_ms: i32,
        password: [u8; 16],
    ) -> Result<OpResult, ErrorCode> {
        let usable = matches!(NodeKind::from_owner(session_id), NodeKind::Ephemeral(_));
        if !usable || self.sessions.contains_key(&session_id) {
            return Err(ErrorCode::BadArguments);
        }
        self.sessions.insert(session_id, SessionEntry { timeout_ms, password });
        Ok(OpResult::SessionCreated)
    }

    /// Closes or expires a session: all its ephemerals go in this one txn, in
    /// path order, each with NodeDeleted and the parent's NodeChildrenChanged.
    pub(super) fn close_session(&mut self, j: &mut Journal, session_id: i64) -> Result<OpResult, ErrorCode> {
        if self.sessions.remove(&session_id).is_none() {
            return Err(ErrorCode::SessionExpired);
        }
        let owned = self.ephemerals.remove(&session_id).unwrap_or_default();
        for path in owned {
            // Ephemerals never have children, so each delete is valid.
            self.delete_node(j, &path);
        }
        Ok(OpResult::SessionClosed)
    }

    /// The replicated entry of a live session.
    pub fn session(&self, session_id: i64) -> Option<SessionEntry> {
        self.sessions.get(&session_id).copied()
    }

    /// All live sessions, by id.
    pub fn sessions(&self) -> impl Iterator<Item = (i64, SessionEntry)> + '_ {
        self.sessions.iter().map(|(id, s)| (*id, *s))
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// getEphemerals: the session's ephemeral paths (sorted) that start with
    /// `prefix` as a plain string; an empty or `/` prefix (after trimming)
    /// means all of them.
    pub fn ephemerals(&self, session_id: i64, prefix: &str) -> Vec<String> {
        let Some(owned) = self.ephemerals.get(&session_id) else {
            return Vec::new();
        };
        let prefix = prefix.trim();
        let all = prefix.is_empty() || prefix == "/";
        owned.iter().filter(|p| all || p.starts_with(prefix)).map(|p| p.to_string()).collect()
    }
}
