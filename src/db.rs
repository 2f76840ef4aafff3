//! Shared state of one server: the data tree, the watch manager and the live
//! connections, behind one lock order (tree, then watches, then connections).
//!
//! `Db` is the state machine the consensus layer drives: every committed batch
//! goes through [`Db::apply`] (via the `consensus::Apply` trait), which updates
//! the tree and pushes watch events to the affected connections *before* the
//! proposer learns the outcome. Reads take the tree's read lock and register
//! watches while holding it, so no apply can slip between a read and its watch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::consensus::{Apply, RestoreError};
use crate::proto::response::encode_notification;
use crate::proto::types::{perms, Acl, EventType, Id, KEEPER_STATE_SYNC_CONNECTED};
use crate::server::outbound::OutboundQueue;
pub use crate::state::feed::ChangeEvent;
use crate::state::feed::ChangeFeed;
use crate::tree::acl::check_acl;
use crate::tree::txn::{BatchOutcome, Change, ChangeKind, OpResult, Txn, TxnBatch, TxnOp};
use crate::tree::DataTree;
use crate::watch::{ConnId, WatchManager};

/// The server-side view of one live client connection.
#[derive(Debug)]
pub struct ConnHandle {
    pub session_id: AtomicI64,
    /// The connection's identities: `ip:<addr>` plus whatever auth packets added.
    pub auth: RwLock<Vec<Id>>,
    /// Replies and watch events on their way to the socket, with their byte bounds.
    pub out: OutboundQueue,
    /// Set once the client sent closeSession here: this connection answers the close
    /// and then closes itself, so applying the close must not cut it off first.
    pub closing: std::sync::atomic::AtomicBool,
}

/// The tree, the watches and the connections of one server.
pub struct Db {
    tree: RwLock<DataTree>,
    watches: Mutex<WatchManager>,
    conns: RwLock<HashMap<ConnId, Arc<ConnHandle>>>,
    /// session id -> the connection that currently owns it on this server.
    owners: Mutex<HashMap<i64, ConnId>>,
    /// Every applied change, for the HTTP layer (disabled while its port is off).
    feed: Arc<ChangeFeed>,
    /// The audit log (`audit.enable`): ephemerals removed with their session are audited on
    /// every member that applies the close, as ZooKeeper's DataTree does.
    audit: std::sync::OnceLock<Arc<crate::security::audit::AuditLog>>,
}

impl Default for Db {
    fn default() -> Self {
        Self::new()
    }
}

impl Db {
    pub fn new() -> Self {
        Db {
            tree: RwLock::new(DataTree::new()),
            watches: Mutex::new(WatchManager::new()),
            conns: RwLock::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
            feed: Arc::new(ChangeFeed::new()),
            audit: std::sync::OnceLock::new(),
        }
    }

    /// Turns on the audit of ephemerals removed with their session.
    pub fn set_audit(&self, log: Arc<crate::security::audit::AuditLog>) {
        let _ = self.audit.set(log);
    }

    fn audit_ephemerals(&self, session_id: i64, changes: &[Change]) {
        let Some(log) = self.audit.get() else { return };
        for change in changes.iter().filter(|c| c.kind == crate::tree::txn::ChangeKind::Deleted) {
            log.log_server(
                "ephemeralZNodeDeletionOnSessionCloseOrExpire",
                Some(session_id),
                Some(&change.path),
                crate::security::audit::AuditResult::Success,
            );
        }
    }

    /// The feed of applied changes for the HTTP port.
    pub fn change_feed(&self) -> Arc<ChangeFeed> {
        self.feed.clone()
    }

    /// Runs `f` with the tree read-locked.
    pub fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        f(&self.tree.read())
    }

    /// Runs `f` with the tree read-locked and the watch manager locked, for reads
    /// that register watches atomically with what they read.
    pub fn read_and_watch<R>(&self, f: impl FnOnce(&DataTree, &mut WatchManager) -> R) -> R {
        let tree = self.tree.read();
        let mut watches = self.watches.lock();
        f(&tree, &mut watches)
    }

    /// Runs `f` with the watch manager locked (no tree access).
    pub fn watches<R>(&self, f: impl FnOnce(&mut WatchManager) -> R) -> R {
        f(&mut self.watches.lock())
    }

    pub fn last_zxid(&self) -> i64 {
        self.tree.read().last_zxid()
    }

    // ---- connections ----------------------------------------------------

    pub fn register_conn(&self, id: ConnId, handle: Arc<ConnHandle>) {
        self.conns.write().insert(id, handle);
    }

    /// Forgets a closed connection and its watches.
    pub fn unregister_conn(&self, id: ConnId) {
        self.watches.lock().remove_connection(id);
        if let Some(h) = self.conns.write().remove(&id) {
            let sid = h.session_id.load(Ordering::Relaxed);
            let mut owners = self.owners.lock();
            if owners.get(&sid) == Some(&id) {
                owners.remove(&sid);
            }
        }
    }

    /// Makes `conn` the owner of `session_id` on this server, closing any older
    /// connection of the same session (ZooKeeper does the same on reconnect).
    pub fn claim_session(&self, session_id: i64, conn: ConnId) {
        let previous = self.owners.lock().insert(session_id, conn);
        if let Some(old) = previous.filter(|old| *old != conn) {
            if let Some(h) = self.conns.read().get(&old) {
                h.out.close();
            }
        }
    }

    pub fn conn(&self, id: ConnId) -> Option<Arc<ConnHandle>> {
        self.conns.read().get(&id).cloned()
    }

    pub fn conns(&self) -> Vec<(ConnId, Arc<ConnHandle>)> {
        let mut v: Vec<_> = self.conns.read().iter().map(|(k, v)| (*k, v.clone())).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// Sends one watch event to connections; with `acl`, only to those whose
    /// identities may READ the node (ZooKeeper filters triggered events this way;
    /// setWatches catch-up events are not filtered).
    pub fn deliver_event(&self, conns: &[ConnId], event: EventType, path: &str, acl: Option<&[Acl]>) {
        if conns.is_empty() {
            return;
        }
        let mut frame = Vec::with_capacity(32 + path.len());
        // ZooKeeper 3.8 sends -1 as the notification zxid.
        encode_notification(&mut frame, event, KEEPER_STATE_SYNC_CONNECTED, path, -1);
        let frame = bytes::Bytes::from(frame);
        // A node anyone may read needs no check per watcher.
        let everyone = acl.is_none_or(|acl| check_acl(acl, perms::READ, &[]));
        let table = self.conns.read();
        for conn in conns {
            let Some(h) = table.get(conn) else { continue };
            if let (false, Some(acl)) = (everyone, acl) {
                if !check_acl(acl, perms::READ, &h.auth.read()) {
                    continue;
                }
            }
            // A slow consumer is killed by `event` instead (its connection logs why).
            let _ = h.out.event(frame.clone());
        }
    }

    fn fire(&self, watches: &mut WatchManager, changes: &[Change]) {
        for change in changes {
            let fired = watches.trigger(change);
            self.deliver_event(&fired.conns, fired.event, &change.path, Some(&change.acl));
        }
    }

    /// Every watched path with its node's ACL (`None` where no node is), before a restore.
    fn watched_paths(&self, tree: &DataTree) -> Vec<(String, Option<Vec<Acl>>)> {
        let paths = self.watches.lock().by_path();
        paths
            .into_iter()
            .map(|(path, _)| {
                let acl = tree.acl(&path);
                (path, acl)
            })
            .collect()
    }

    /// A restore may have changed any node, so every watch fires as for a change of its
    /// path: NodeDataChanged and NodeChildrenChanged where the restored tree has the node,
    /// NodeDeleted where it does not (seen by those who could read it before). ZooKeeper
    /// drops its watches silently on restore; firing them tells clients to read again.
    /// Sessions the restored tree lacks are over: their connections here are closed and
    /// added to `closed` (their clients learn on reconnect that the session expired).
    fn after_restore(&self, tree: &DataTree, watched: Vec<(String, Option<Vec<Acl>>)>, closed: &mut Vec<i64>) {
        let mut watches = self.watches.lock();
        for (path, acl_before) in watched {
            // Only watches fire from these (the change feed does not replay a restore), so
            // they carry no stat or data.
            let change =
                |path: String, kind: ChangeKind, acl: Arc<Vec<Acl>>| Change { path, kind, acl, stat: None, data: None };
            let changes: Vec<Change> = match tree.acl(&path) {
                Some(acl) => {
                    let acl = Arc::new(acl);
                    vec![
                        change(path.clone(), ChangeKind::DataChanged, acl.clone()),
                        change(path, ChangeKind::ChildrenChanged, acl),
                    ]
                }
                None => vec![change(path, ChangeKind::Deleted, Arc::new(acl_before.unwrap_or_default()))],
            };
            self.fire(&mut watches, &changes);
        }
        drop(watches);
        let owners: Vec<i64> = self.owners.lock().keys().copied().collect();
        closed.extend(owners.into_iter().filter(|sid| tree.session(*sid).is_none()));
    }

    /// Closes the local connection of a session that the log just closed or expired,
    /// unless that connection asked for the close itself.
    fn close_session_conn(&self, session_id: i64) {
        let owner = self.owners.lock().remove(&session_id);
        if let Some(conn) = owner {
            if let Some(h) = self.conns.read().get(&conn) {
                if !h.closing.load(Ordering::Acquire) {
                    h.out.close();
                }
            }
        }
    }
}

/// The feed's events for one applied txn, made of its changes without copying node data.
/// A multi is one atomic step (no client sees a state between its ops), so who may see any
/// of its changes is decided by the node's ACL after the whole txn: checking the ACL of an
/// op's moment instead would show the data of a `[setData, setACL]` multi to callers the
/// new ACL locks out. A node gone by the end of a multi shows no data and keeps the ACL it
/// had at the change.
fn feed_events(tree: &DataTree, txn: &Txn, zxid: i64, changes: Vec<Change>, out: &mut Vec<ChangeEvent>) {
    let multi = matches!(txn.op, TxnOp::Multi(_));
    out.extend(changes.into_iter().map(|c| {
        let mut event = ChangeEvent {
            zxid,
            path: c.path,
            kind: c.kind,
            stat: c.stat,
            data: c.data,
            acl: c.acl,
            encodings: Default::default(),
        };
        if multi {
            match tree.shared_acl(&event.path) {
                Some(acl) => event.acl = acl,
                None => event.data = None,
            }
        }
        event
    }));
}

impl Apply for Db {
    fn apply(&self, term: u64, _index: u64, batch: &TxnBatch) -> BatchOutcome {
        let mut outcomes = Vec::with_capacity(batch.txns.len());
        let mut closed = Vec::new();
        let feed = self.feed.is_enabled();
        let mut events = Vec::new();
        {
            let mut tree = self.tree.write();
            for txn in &batch.txns {
                let restoring = matches!(txn.op, TxnOp::Restore { .. });
                let watched = if restoring { self.watched_paths(&tree) } else { Vec::new() };
                let (outcome, changes) = tree.apply(term, txn);
                if restoring && outcome.result.is_ok() {
                    self.after_restore(&tree, watched, &mut closed);
                }
                if !changes.is_empty() {
                    let mut watches = self.watches.lock();
                    self.fire(&mut watches, &changes);
                }
                // A closed session's connection on this server is closed here, wherever the
                // close came from (an expiry, or the client's closeSession through another
                // member), as ZooKeeper does: the client then learns on reconnect that the
                // session expired. The connection that sent the closeSession is skipped in
                // `close_session_conn`: it answers first and closes itself.
                if let (Some(session_id), Ok(OpResult::SessionClosed)) = (txn.op.ended_session(), &outcome.result) {
                    self.audit_ephemerals(session_id, &changes);
                    closed.push(session_id);
                }
                if feed {
                    feed_events(&tree, txn, outcome.zxid, changes, &mut events);
                }
                outcomes.push(outcome);
            }
        }
        // In apply order: only this (the state machine's) task applies.
        self.feed.publish(events);
        for sid in closed {
            self.close_session_conn(sid);
        }
        BatchOutcome { outcomes }
    }

    fn freeze(&self) -> crate::consensus::FrozenState {
        // Microseconds under the read lock; the serialization runs without it.
        let image = self.tree.read().image();
        Box::new(move || image.serialize())
    }

    fn restore(&self, data: &[u8]) -> Result<(), RestoreError> {
        let tree = DataTree::deserialize(data).map_err(|e| RestoreError::Corrupt(Box::new(e)))?;
        *self.tree.write() = tree;
        Ok(())
    }
}
