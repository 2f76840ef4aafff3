//! The watch kinds one connection can hold on one path, as bits, and the tables
//! that map changes and `WatcherType`s onto them.
//!
//! ZooKeeper keeps two tables (`dataWatches`, `childWatches`) and, since 3.9
//! (ZOOKEEPER-4466), a per-(connection, path) set of modes in each. Roost folds both
//! tables into one bit set per (connection, path):
//!
//! | bit | ZooKeeper equivalent |
//! |---|---|
//! | [`DATA`] | STANDARD mode in `dataWatches` (getData / exists) |
//! | [`CHILD`] | STANDARD mode in `childWatches` (getChildren) |
//! | [`PERSISTENT`] | PERSISTENT mode, present in both tables |
//! | [`RECURSIVE`] | PERSISTENT_RECURSIVE mode, `dataWatches` only |

use crate::proto::types::{EventType, WatcherType};
use crate::tree::txn::ChangeKind;

/// One-shot data watch (getData, exists).
pub const DATA: u8 = 1;
/// One-shot child watch (getChildren, getChildren2).
pub const CHILD: u8 = 2;
/// addWatch PERSISTENT: exact path, all four event types, never removed by firing.
pub const PERSISTENT: u8 = 4;
/// addWatch PERSISTENT_RECURSIVE: path and descendants, no NodeChildrenChanged.
pub const RECURSIVE: u8 = 8;
/// Every kind.
pub const ALL: u8 = DATA | CHILD | PERSISTENT | RECURSIVE;

/// The one-shot kinds; these are what firing removes.
pub const ONE_SHOT: u8 = DATA | CHILD;

/// What a change does to the watches registered on its own path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    /// The event sent.
    pub event: EventType,
    /// Kinds on the exact path that receive it.
    pub fires: u8,
    /// Kinds on the exact path that are consumed by it.
    pub consumes: u8,
    /// Whether persistent-recursive watches on ancestors receive it.
    pub reaches_ancestors: bool,
}

/// The trigger matrix (`DataTree.createNode / deleteNode / setData`, 3.9).
///
/// * A data-table event (created, data changed) reaches DATA, PERSISTENT and
///   RECURSIVE holders and consumes DATA.
/// * NodeDeleted is sent through both tables; ZooKeeper suppresses the second
///   delivery, so each holder gets one event. It consumes DATA and CHILD.
/// * NodeChildrenChanged goes through the child table only, which never holds
///   RECURSIVE: recursive watches never see it, on the path or above.
pub fn effect(kind: ChangeKind) -> Effect {
    let data_table = DATA | PERSISTENT | RECURSIVE;
    let child_table = CHILD | PERSISTENT;
    match kind {
        ChangeKind::Created => {
            Effect { event: EventType::NodeCreated, fires: data_table, consumes: DATA, reaches_ancestors: true }
        }
        ChangeKind::DataChanged => {
            Effect { event: EventType::NodeDataChanged, fires: data_table, consumes: DATA, reaches_ancestors: true }
        }
        ChangeKind::Deleted => Effect {
            event: EventType::NodeDeleted,
            fires: data_table | child_table,
            consumes: ONE_SHOT,
            reaches_ancestors: true,
        },
        ChangeKind::ChildrenChanged => Effect {
            event: EventType::NodeChildrenChanged,
            fires: child_table,
            consumes: CHILD,
            reaches_ancestors: false,
        },
    }
}

/// The kinds a checkWatches / removeWatches `WatcherType` selects, as in
/// ZooKeeper 3.9 `DataTree.containsWatcher` / `DataTree.removeWatch`:
///
/// * `Data` and `Children` select only the **one-shot** watch of that table
///   (`WatcherMode.STANDARD`). A persistent watch is not a "data watch" for these
///   calls: removeWatches(Data) on a path holding only a persistent watch answers
///   NoWatcher and leaves it in place. (3.8 kept one mode per table, so there the
///   call removed whatever the table held; 3.9 changed this with ZOOKEEPER-4466.)
/// * `Persistent` and `PersistentRecursive` select that mode only.
/// * `Any` selects every kind the connection holds on the path.
pub fn selected_by(kind: WatcherType) -> u8 {
    match kind {
        WatcherType::Children => CHILD,
        WatcherType::Data => DATA,
        WatcherType::Persistent => PERSISTENT,
        WatcherType::PersistentRecursive => RECURSIVE,
        WatcherType::Any => ALL,
    }
}

/// How many entries these bits occupy in ZooKeeper's two tables: the number
/// `mntr`'s `zk_watch_count` (`dataWatches.size() + childWatches.size()`) counts.
pub fn table_entries(bits: u8) -> usize {
    let in_data = bits & (DATA | PERSISTENT | RECURSIVE) != 0;
    let in_child = bits & (CHILD | PERSISTENT) != 0;
    usize::from(in_data) + usize::from(in_child)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recursive_never_sees_children_changed() {
        let e = effect(ChangeKind::ChildrenChanged);
        assert_eq!(e.fires & RECURSIVE, 0);
        assert!(!e.reaches_ancestors);
    }

    #[test]
    fn firing_never_consumes_persistent_modes() {
        for k in [ChangeKind::Created, ChangeKind::Deleted, ChangeKind::DataChanged, ChangeKind::ChildrenChanged] {
            assert_eq!(effect(k).consumes & (PERSISTENT | RECURSIVE), 0, "{k:?}");
        }
    }

    #[test]
    fn table_entries_counts_persistent_in_both_tables() {
        assert_eq!(table_entries(PERSISTENT), 2);
        assert_eq!(table_entries(RECURSIVE), 1);
        assert_eq!(table_entries(DATA | CHILD), 2);
        assert_eq!(table_entries(DATA | RECURSIVE), 1);
        assert_eq!(table_entries(0), 0);
    }
}
