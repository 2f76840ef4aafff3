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
use tokio::sync::{broadcast, mpsc};

use crate::consensus::{Apply, RestoreError};
use crate::proto::response::encode_notification;
use crate::proto::types::{perms, Acl, EventType, Id, Stat, KEEPER_STATE_SYNC_CONNECTED};
use crate::tree::acl::check_acl;
use crate::tree::txn::{BatchOutcome, Change, ChangeKind, OpResult, TxnBatch, TxnOp};
use crate::tree::DataTree;
use crate::watch::{ConnId, WatchManager};

/// What a connection's writer task receives.
#[derive(Debug)]
pub enum Outbound {
    /// A complete, length-prefixed frame. Shared bytes: one watch event's frame goes to
    /// every watcher without a copy each.
    Frame(bytes::Bytes),
    /// Flush what came before, then close the socket.
    Close,
}

/// One applied change, as the HTTP layer's live views and WebSocket stream see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    pub zxid: i64,
    pub path: String,
    pub kind: ChangeKind,
    /// The node's stat after the change; `None` once deleted.
    pub stat: Option<Stat>,
    /// The node's data after the change; `None` once deleted.
    pub data: Option<Vec<u8>>,
    /// Who may see it: the node's ACL (the parent's for ChildrenChanged).
    pub acl: Vec<Acl>,
}

/// Changes kept for a slow change-feed subscriber before it starts losing them. The
/// one subscriber is the HTTP hub's task, which drains it at once; the channel keeps
/// every slot's last event alive, so a larger capacity is memory held for nothing.
const CHANGE_FEED_CAPACITY: usize = 4 * 1024;

/// The server-side view of one live client connection.
#[derive(Debug)]
pub struct ConnHandle {
    pub session_id: AtomicI64,
    /// The connection's identities: `ip:<addr>` plus whatever auth packets added.
    pub auth: RwLock<Vec<Id>>,
    pub out: mpsc::UnboundedSender<Outbound>,
}

impl ConnHandle {
    pub fn send(&self, msg: Outbound) {
        // A closed receiver means the connection is already going away; nothing to do.
        let _ = self.out.send(msg);
    }
}

/// The tree, the watches and the connections of one server.
pub struct Db {
    tree: RwLock<DataTree>,
    watches: Mutex<WatchManager>,
    conns: RwLock<HashMap<ConnId, Arc<ConnHandle>>>,
    /// session id -> the connection that currently owns it on this server.
    owners: Mutex<HashMap<i64, ConnId>>,
    /// Every applied change, for the HTTP layer.
    changes: broadcast::Sender<ChangeEvent>,
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
            changes: broadcast::channel(CHANGE_FEED_CAPACITY).0,
        }
    }

    /// Subscribes to every change applied from now on, in zxid order.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<ChangeEvent> {
        self.changes.subscribe()
    }

    fn publish(&self, tree: &DataTree, zxid: i64, changes: &[Change]) {
        if self.changes.receiver_count() == 0 {
            return;
        }
        for c in changes {
            let (stat, data) = match c.kind {
                ChangeKind::Deleted => (None, None),
                _ => (tree.stat(&c.path), tree.get_data(&c.path, &[Id::new("super", "")]).ok().and_then(|(d, _)| d.map(|b| b.to_vec()))),
            };
            let _ = self.changes.send(ChangeEvent { zxid, path: c.path.clone(), kind: c.kind, stat, data, acl: c.acl.clone() });
        }
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
                h.send(Outbound::Close);
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
            h.send(Outbound::Frame(frame.clone()));
        }
    }

    fn fire(&self, watches: &mut WatchManager, changes: &[Change]) {
        for change in changes {
            let fired = watches.trigger(change);
            self.deliver_event(&fired.conns, fired.event, &change.path, Some(&change.acl));
        }
    }

    /// Closes the local connection of a session that the log just closed or expired.
    fn close_session_conn(&self, session_id: i64) {
        let owner = self.owners.lock().remove(&session_id);
        if let Some(conn) = owner {
            if let Some(h) = self.conns.read().get(&conn) {
                h.send(Outbound::Close);
            }
        }
    }
}

impl Apply for Db {
    fn apply(&self, term: u64, _index: u64, batch: &TxnBatch) -> BatchOutcome {
        let mut outcomes = Vec::with_capacity(batch.txns.len());
        let mut closed = Vec::new();
        {
            let mut tree = self.tree.write();
            for txn in &batch.txns {
                let (outcome, changes) = tree.apply(term, txn);
                if !changes.is_empty() {
                    let mut watches = self.watches.lock();
                    self.fire(&mut watches, &changes);
                    drop(watches);
                    self.publish(&tree, outcome.zxid, &changes);
                }
                // An expiry (issued by the server, session 0) closes the session's socket here;
                // a client's own closeSession is answered first and closed by its connection.
                if let (TxnOp::CloseSession { session_id }, Ok(OpResult::SessionClosed)) = (&txn.op, &outcome.result) {
                    if txn.session_id == 0 {
                        closed.push(*session_id);
                    }
                }
                outcomes.push(outcome);
            }
        }
        for sid in closed {
            self.close_session_conn(sid);
        }
        BatchOutcome { outcomes }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.tree.read().serialize()
    }

    fn restore(&self, data: &[u8]) -> Result<(), RestoreError> {
        let tree = DataTree::deserialize(data).map_err(|e| RestoreError::Corrupt(Box::new(e)))?;
        *self.tree.write() = tree;
        Ok(())
    }
}
