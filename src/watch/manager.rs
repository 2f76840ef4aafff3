//! The watch registry of one server: registration, triggering, checkWatches /
//! removeWatches and connection cleanup.
//!
//! Two indexes are kept in step:
//! * `by_path`: path -> (connection -> kind bits), plus the subset of connections
//!   holding a persistent-recursive watch there. Triggering reads one entry.
//! * `by_conn`: connection -> paths, so closing a connection touches only its own
//!   paths (ZooKeeper's `watch2Paths`).
//!
//! Paths are `Arc<str>` shared by both indexes, so a watch costs one path
//! allocation however many connections hold it.
//!
//! Nothing here does IO or ACL checks: the caller (the apply loop, under the tree
//! lock) filters the returned connections by READ on `Change::acl` and queues the
//! notifications. Registration of a connection that is already closed must be
//! prevented by the caller (ZooKeeper ignores addWatch on a stale cnxn).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::proto::types::{AddWatchMode, EventType, WatcherType};
use crate::tree::txn::{Change, ChangeKind};

use super::flags::{self, Effect, CHILD, DATA, PERSISTENT, RECURSIVE};
use super::hash::{ConnMap, ConnSet};
use super::path::ancestors;
use super::ConnId;

/// A path shared between the two indexes.
pub(super) type PathKey = Arc<str>;

/// The watches registered on one path.
#[derive(Debug, Default)]
pub(super) struct PathWatches {
    /// Kind bits (see [`flags`]) per connection; never holds a 0 entry.
    pub(super) conns: ConnMap<u8>,
    /// Connections whose bits include RECURSIVE. Kept apart so that matching a
    /// change below this path does not scan the (possibly thousands of) one-shot
    /// holders here.
    pub(super) recursive: ConnSet,
}

/// Running totals, updated on every change of a (connection, path) bit set so
/// that the stats and the "any recursive watch at all?" test are O(1).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counters {
    /// (connection, path) pairs with at least one kind.
    pub(super) pairs: usize,
    /// Entries ZooKeeper's two tables would hold (`mntr` watch_count).
    pub(super) table_entries: usize,
    /// (connection, path) pairs holding RECURSIVE.
    pub(super) recursive: usize,
}

impl Counters {
    fn transition(&mut self, old: u8, new: u8) {
        self.pairs = self.pairs + usize::from(new != 0) - usize::from(old != 0);
        self.table_entries = self.table_entries + flags::table_entries(new) - flags::table_entries(old);
        self.recursive = self.recursive + usize::from(new & RECURSIVE != 0) - usize::from(old & RECURSIVE != 0);
    }
}

/// The connections one change notifies.
///
/// All recipients of one change get the same event type and the same path (the
/// change's own path, also for recursive watches set on an ancestor), so the
/// result is grouped: one event, many connections, each at most once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub event: EventType,
    /// Unordered, without duplicates.
    pub conns: Vec<ConnId>,
}

impl Fired {
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}

/// All watches of one server. See the module docs.
#[derive(Debug, Default)]
pub struct WatchManager {
    pub(super) by_path: HashMap<PathKey, PathWatches>,
    pub(super) by_conn: ConnMap<HashSet<PathKey>>,
    pub(super) counters: Counters,
}

impl WatchManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// One-shot data watch, as left by getData and exists. The caller decides when
    /// to register: exists registers on NoNode too, getData only on success.
    /// Returns false if this connection already had one on the path.
    pub fn add_data_watch(&mut self, path: &str, conn: ConnId) -> bool {
        self.add(path, conn, DATA)
    }

    /// One-shot child watch, as left by a successful getChildren / getChildren2.
    pub fn add_child_watch(&mut self, path: &str, conn: ConnId) -> bool {
        self.add(path, conn, CHILD)
    }

    /// addWatch PERSISTENT: the exact path, every event type, until removed.
    pub fn add_persistent(&mut self, path: &str, conn: ConnId) -> bool {
        self.add(path, conn, PERSISTENT)
    }

    /// addWatch PERSISTENT_RECURSIVE: the path and all descendants, created /
    /// deleted / data changed only, until removed.
    pub fn add_persistent_recursive(&mut self, path: &str, conn: ConnId) -> bool {
        self.add(path, conn, RECURSIVE)
    }

    /// addWatch with its wire mode.
    pub fn add_watch(&mut self, path: &str, conn: ConnId, mode: AddWatchMode) -> bool {
        match mode {
            AddWatchMode::Persistent => self.add_persistent(path, conn),
            AddWatchMode::PersistentRecursive => self.add_persistent_recursive(path, conn),
        }
    }

    /// checkWatches: whether `conn` holds a watch of `kind` on `path`, with the
    /// 3.9 meaning of each [`WatcherType`] (see [`flags::selected_by`]: `Data` and
    /// `Children` mean the one-shot watch only). False -> the server answers NoWatcher.
    pub fn check(&self, path: &str, conn: ConnId, kind: WatcherType) -> bool {
        self.bits(path, conn) & flags::selected_by(kind) != 0
    }

    /// removeWatches: drops `conn`'s watches of `kind` on `path` (the whole
    /// server-side watch; every client watcher sharing it is gone). Returns whether
    /// anything was removed; false -> the server answers NoWatcher. Sends nothing:
    /// the client raises the *WatchRemoved events itself.
    pub fn remove(&mut self, path: &str, conn: ConnId, kind: WatcherType) -> bool {
        let mask = flags::selected_by(kind);
        let (old, _) = self.modify(path, conn, |bits| bits & !mask);
        old & mask != 0
    }

    /// Drops every watch of a closed connection; returns how many paths it watched.
    /// Cost is proportional to that connection's own watches.
    pub fn remove_connection(&mut self, conn: ConnId) -> usize {
        let Some(paths) = self.by_conn.remove(&conn) else {
            return 0;
        };
        for path in &paths {
            let Some(entry) = self.by_path.get_mut(&**path) else {
                continue;
            };
            if let Some(bits) = entry.conns.remove(&conn) {
                self.counters.transition(bits, 0);
            }
            entry.recursive.remove(&conn);
            if entry.conns.is_empty() {
                self.by_path.remove(&**path);
            }
        }
        paths.len()
    }

    /// Fires the watches one tree change reaches and consumes the one-shot ones
    /// among them. The event path is `change.path`. The caller still has to drop
    /// the connections that lack READ on `change.acl` and to queue the events.
    pub fn trigger(&mut self, change: &Change) -> Fired {
        self.trigger_path(&change.path, change.kind)
    }

    /// [`trigger`](Self::trigger) without a `Change` value.
    ///
    /// Cost: one hash lookup plus one step per watcher on `path`; ancestors are
    /// visited only for data-table events and only while some persistent-recursive
    /// watch exists anywhere.
    pub fn trigger_path(&mut self, path: &str, kind: ChangeKind) -> Fired {
        let effect = flags::effect(kind);
        let mut conns = Vec::new();
        self.fire_exact(path, effect, &mut conns);
        if effect.reaches_ancestors && self.counters.recursive > 0 {
            self.fire_ancestors(path, &mut conns);
        }
        Fired { event: effect.event, conns }
    }

    /// The watch kinds (bits of [`flags`]) `conn` holds on `path`.
    pub(super) fn bits(&self, path: &str, conn: ConnId) -> u8 {
        self.by_path.get(path).and_then(|entry| entry.conns.get(&conn)).copied().unwrap_or(0)
    }

    pub(super) fn add(&mut self, path: &str, conn: ConnId, kind: u8) -> bool {
        let (old, new) = self.modify(path, conn, |bits| bits | kind);
        old != new
    }

    /// Holders on the exact path: each matching connection is notified once and
    /// loses the kinds the change consumes.
    fn fire_exact(&mut self, path: &str, effect: Effect, out: &mut Vec<ConnId>) {
        let Some(entry) = self.by_path.get_mut(path) else {
            return;
        };
        let counters = &mut self.counters;
        let mut emptied = Vec::new();
        entry.conns.retain(|&conn, bits| {
            if *bits & effect.fires == 0 {
                return true;
            }
            out.push(conn);
            let new = *bits & !effect.consumes;
            counters.transition(*bits, new);
            *bits = new;
            if new == 0 {
                emptied.push(conn);
            }
            new != 0
        });
        // Firing never consumes RECURSIVE, so `entry.recursive` is still right.
        if entry.conns.is_empty() {
            self.by_path.remove(path);
        }
        for conn in emptied {
            self.unindex(conn, path);
        }
    }

    /// Persistent-recursive holders on proper ancestors, skipping connections
    /// already notified for this change.
    fn fire_ancestors(&self, path: &str, out: &mut Vec<ConnId>) {
        // Built only once an ancestor actually has recursive holders.
        let mut seen: Option<ConnSet> = None;
        for ancestor in ancestors(path) {
            let Some(entry) = self.by_path.get(ancestor) else {
                continue;
            };
            if entry.recursive.is_empty() {
                continue;
            }
            let seen = seen.get_or_insert_with(|| out.iter().copied().collect());
            for &conn in &entry.recursive {
                if seen.insert(conn) {
                    out.push(conn);
                }
            }
        }
    }

    /// Applies `op` to the bits `conn` holds on `path`, keeping both indexes and
    /// the counters in step. Returns (old, new) bits.
    fn modify(&mut self, path: &str, conn: ConnId, op: impl FnOnce(u8) -> u8) -> (u8, u8) {
        let old = self.bits(path, conn);
        let new = op(old);
        if old == new {
            return (old, new);
        }
        self.counters.transition(old, new);
        if old == 0 {
            let key = match self.by_path.get_key_value(path) {
                Some((key, _)) => Arc::clone(key),
                None => PathKey::from(path),
            };
            self.by_conn.entry(conn).or_default().insert(Arc::clone(&key));
            let entry = self.by_path.entry(key).or_default();
            entry.conns.insert(conn, new);
            if new & RECURSIVE != 0 {
                entry.recursive.insert(conn);
            }
            return (old, new);
        }
        // old != 0, so the entry exists.
        let Some(entry) = self.by_path.get_mut(path) else {
            return (old, new);
        };
        if new & RECURSIVE == 0 {
            entry.recursive.remove(&conn);
        } else {
            entry.recursive.insert(conn);
        }
        if new != 0 {
            entry.conns.insert(conn, new);
            return (old, new);
        }
        entry.conns.remove(&conn);
        if entry.conns.is_empty() {
            self.by_path.remove(path);
        }
        self.unindex(conn, path);
        (old, new)
    }

    /// Forgets that `conn` watches `path` in the per-connection index.
    fn unindex(&mut self, conn: ConnId, path: &str) {
        if let Some(paths) = self.by_conn.get_mut(&conn) {
            paths.remove(path);
            if paths.is_empty() {
                self.by_conn.remove(&conn);
            }
        }
    }
}
