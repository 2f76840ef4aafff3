//! Behaviour tests of the watch manager as a ZooKeeper client observes it.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::flags::{self, CHILD, DATA, PERSISTENT, RECURSIVE};
use super::manager::Counters;
use super::{ConnId, Fired, WatchManager};
use crate::proto::types::{EventType, WatcherType};
use crate::tree::txn::{Change, ChangeKind};

const KINDS: [ChangeKind; 4] =
    [ChangeKind::Created, ChangeKind::Deleted, ChangeKind::DataChanged, ChangeKind::ChildrenChanged];

fn change(path: &str, kind: ChangeKind) -> Change {
    Change { path: path.to_string(), kind, acl: Default::default(), stat: None, data: None }
}

fn fire(w: &mut WatchManager, path: &str, kind: ChangeKind) -> Fired {
    let mut fired = w.trigger(&change(path, kind));
    fired.conns.sort_unstable();
    fired
}

/// Both indexes agree and the counters match a recount.
fn assert_consistent(w: &WatchManager) {
    let mut expected = Counters::default();
    let mut pairs_by_path = HashSet::new();
    for (path, entry) in &w.by_path {
        assert!(!entry.conns.is_empty(), "empty entry kept for {path}");
        for (&conn, &bits) in &entry.conns {
            assert_ne!(bits, 0, "zero bits kept for {conn} on {path}");
            assert_eq!(entry.recursive.contains(&conn), bits & RECURSIVE != 0);
            expected.pairs += 1;
            expected.table_entries += flags::table_entries(bits);
            expected.recursive += usize::from(bits & RECURSIVE != 0);
            pairs_by_path.insert((conn, path.to_string()));
        }
        assert!(entry.recursive.iter().all(|c| entry.conns.contains_key(c)));
    }
    let mut pairs_by_conn = HashSet::new();
    for (&conn, paths) in &w.by_conn {
        assert!(!paths.is_empty(), "empty path set kept for {conn}");
        for path in paths {
            pairs_by_conn.insert((conn, path.to_string()));
        }
    }
    assert_eq!(pairs_by_path, pairs_by_conn);
    assert_eq!(w.counters, expected);
}

/// Where a single watch sits relative to the changed path `/p/c`.
#[derive(Debug, Clone, Copy)]
enum Holding {
    Data,
    Child,
    Persistent,
    RecursiveHere,
    RecursiveOnParent,
}

fn register(w: &mut WatchManager, holding: Holding, conn: ConnId) {
    match holding {
        Holding::Data => w.add_data_watch("/p/c", conn),
        Holding::Child => w.add_child_watch("/p/c", conn),
        Holding::Persistent => w.add_persistent("/p/c", conn),
        Holding::RecursiveHere => w.add_persistent_recursive("/p/c", conn),
        Holding::RecursiveOnParent => w.add_persistent_recursive("/p", conn),
    };
}

#[test]
fn trigger_matrix() {
    use ChangeKind::*;
    use Holding::*;
    // (change, holding, fires, watch survives)
    let rows = [
        (Created, Data, true, false),
        (Created, Child, false, true),
        (Created, Persistent, true, true),
        (Created, RecursiveHere, true, true),
        (Created, RecursiveOnParent, true, true),
        (Deleted, Data, true, false),
        (Deleted, Child, true, false),
        (Deleted, Persistent, true, true),
        (Deleted, RecursiveHere, true, true),
        (Deleted, RecursiveOnParent, true, true),
        (DataChanged, Data, true, false),
        (DataChanged, Child, false, true),
        (DataChanged, Persistent, true, true),
        (DataChanged, RecursiveHere, true, true),
        (DataChanged, RecursiveOnParent, true, true),
        (ChildrenChanged, Data, false, true),
        (ChildrenChanged, Child, true, false),
        (ChildrenChanged, Persistent, true, true),
        (ChildrenChanged, RecursiveHere, false, true),
        (ChildrenChanged, RecursiveOnParent, false, true),
    ];
    for (kind, holding, fires, survives) in rows {
        let mut w = WatchManager::new();
        register(&mut w, holding, 1);
        let fired = fire(&mut w, "/p/c", kind);
        let expected_event = match kind {
            Created => EventType::NodeCreated,
            Deleted => EventType::NodeDeleted,
            DataChanged => EventType::NodeDataChanged,
            ChildrenChanged => EventType::NodeChildrenChanged,
        };
        assert_eq!(fired.event, expected_event, "{kind:?} {holding:?}");
        let expected_conns: Vec<ConnId> = if fires { vec![1] } else { vec![] };
        assert_eq!(fired.conns, expected_conns, "{kind:?} {holding:?}");
        assert_eq!(w.watch_count(), usize::from(survives), "{kind:?} {holding:?}");
        assert_consistent(&w);
    }
}

#[test]
fn unrelated_paths_do_not_fire() {
    let mut w = WatchManager::new();
    w.add_data_watch("/p", 1); // parent, one-shot
    w.add_child_watch("/p/c/d", 2); // child of the changed node
    w.add_persistent("/p", 3); // non-recursive on the parent
    w.add_persistent_recursive("/p/c/d", 4); // recursive below the change
    w.add_persistent_recursive("/p/cx", 5); // string prefix, not an ancestor
    w.add_persistent_recursive("/p/c/", 6); // not a normalized ancestor either
    for kind in [ChangeKind::Created, ChangeKind::Deleted, ChangeKind::DataChanged] {
        assert!(fire(&mut w, "/p/c", kind).is_empty(), "{kind:?}");
    }
    assert_eq!(w.watch_count(), 6);
}

#[test]
fn one_shot_fires_once_then_is_gone() {
    let mut w = WatchManager::new();
    assert!(w.add_data_watch("/a", 1));
    assert!(!w.add_data_watch("/a", 1), "one data watch per connection and path");
    assert_eq!(fire(&mut w, "/a", ChangeKind::DataChanged).conns, vec![1]);
    assert!(fire(&mut w, "/a", ChangeKind::DataChanged).is_empty());
    assert_eq!((w.connection_count(), w.path_count(), w.watch_count()), (0, 0, 0));
    assert_consistent(&w);
}

#[test]
fn persistent_watch_stays_for_every_event() {
    let mut w = WatchManager::new();
    w.add_persistent("/a", 1);
    for kind in KINDS.iter().chain(KINDS.iter()) {
        assert_eq!(fire(&mut w, "/a", *kind).conns, vec![1], "{kind:?}");
    }
    assert!(w.check("/a", 1, WatcherType::Persistent));
    assert_consistent(&w);
}

#[test]
fn recursive_reaches_all_descendants_but_never_children_changed() {
    let mut w = WatchManager::new();
    w.add_persistent_recursive("/a", 1);
    w.add_persistent_recursive("/", 2);
    for path in ["/a", "/a/b", "/a/b/c/d/e"] {
        for kind in [ChangeKind::Created, ChangeKind::DataChanged, ChangeKind::Deleted] {
            assert_eq!(fire(&mut w, path, kind).conns, vec![1, 2], "{path} {kind:?}");
        }
        assert!(fire(&mut w, path, ChangeKind::ChildrenChanged).is_empty(), "{path}");
    }
    assert_eq!(fire(&mut w, "/other", ChangeKind::Created).conns, vec![2]);
    assert!(fire(&mut w, "/", ChangeKind::ChildrenChanged).is_empty());
    assert_eq!(w.recursive_watch_count(), 2);
    assert_consistent(&w);
}

#[test]
fn delete_with_data_and_child_watch_sends_one_event() {
    let mut w = WatchManager::new();
    w.add_data_watch("/a", 1);
    w.add_child_watch("/a", 1);
    w.add_child_watch("/a", 2);
    let fired = fire(&mut w, "/a", ChangeKind::Deleted);
    assert_eq!(fired.event, EventType::NodeDeleted);
    assert_eq!(fired.conns, vec![1, 2]);
    assert_eq!(w.watch_count(), 0, "both one-shot watches are consumed");
    assert_consistent(&w);
}

#[test]
fn one_event_per_connection_across_all_matching_watches() {
    let mut w = WatchManager::new();
    w.add_data_watch("/a/b", 1);
    w.add_persistent("/a/b", 1);
    w.add_persistent_recursive("/a/b", 1);
    w.add_persistent_recursive("/a", 1);
    w.add_persistent_recursive("/", 1);
    w.add_persistent_recursive("/a", 2);
    w.add_persistent_recursive("/", 2);
    for kind in [ChangeKind::Created, ChangeKind::DataChanged, ChangeKind::Deleted] {
        assert_eq!(fire(&mut w, "/a/b", kind).conns, vec![1, 2], "{kind:?}");
    }
    assert_consistent(&w);
}

#[test]
fn modes_on_one_path_coexist() {
    let mut w = WatchManager::new();
    assert!(w.add_data_watch("/a", 1));
    assert!(w.add_child_watch("/a", 1));
    assert!(w.add_persistent("/a", 1));
    assert!(w.add_persistent_recursive("/a", 1));
    assert!(!w.add_persistent("/a", 1));
    assert_eq!(w.watch_count(), 1);
    assert_eq!(w.table_watch_count(), 2);

    // setData consumes the data watch only.
    assert_eq!(fire(&mut w, "/a", ChangeKind::DataChanged).conns, vec![1]);
    assert!(!w.check("/a", 1, WatcherType::Data));
    assert!(w.check("/a", 1, WatcherType::Children));
    assert!(w.check("/a", 1, WatcherType::Persistent));
    assert!(w.check("/a", 1, WatcherType::PersistentRecursive));

    // Removing the persistent mode leaves the recursive one and the child watch.
    assert!(w.remove("/a", 1, WatcherType::Persistent));
    assert!(w.check("/a", 1, WatcherType::PersistentRecursive));
    assert_eq!(fire(&mut w, "/a", ChangeKind::ChildrenChanged).conns, vec![1]);
    // The child watch is consumed; recursive ignores children changes.
    assert!(fire(&mut w, "/a", ChangeKind::ChildrenChanged).is_empty());
    assert_eq!(fire(&mut w, "/a", ChangeKind::DataChanged).conns, vec![1]);
    assert_consistent(&w);
}

#[test]
fn check_uses_the_3_9_meaning_of_each_type() {
    let mut w = WatchManager::new();
    w.add_persistent("/p", 1);
    w.add_persistent_recursive("/r", 1);
    w.add_data_watch("/d", 1);
    w.add_child_watch("/c", 1);
    let expect = [
        ("/p", [false, false, true, true, false]),
        ("/r", [false, false, true, false, true]),
        ("/d", [false, true, true, false, false]),
        ("/c", [true, false, true, false, false]),
        ("/none", [false; 5]),
    ];
    let types = [
        WatcherType::Children,
        WatcherType::Data,
        WatcherType::Any,
        WatcherType::Persistent,
        WatcherType::PersistentRecursive,
    ];
    for (path, row) in expect {
        for (ty, want) in types.iter().zip(row) {
            assert_eq!(w.check(path, 1, *ty), want, "{path} {ty:?}");
        }
        assert!(!w.check(path, 2, WatcherType::Any), "other connection, {path}");
    }
}

#[test]
fn remove_reports_no_watcher_cases() {
    let mut w = WatchManager::new();
    w.add_persistent("/a", 1);
    // Data / Children select one-shot watches only: a persistent watch stays.
    assert!(!w.remove("/a", 1, WatcherType::Data));
    assert!(!w.remove("/a", 1, WatcherType::Children));
    assert!(!w.remove("/a", 1, WatcherType::PersistentRecursive));
    assert!(!w.remove("/a", 2, WatcherType::Any), "another connection's watch");
    assert!(!w.remove("/b", 1, WatcherType::Any), "unwatched path");
    assert!(w.check("/a", 1, WatcherType::Persistent));

    w.add_data_watch("/a", 1);
    w.add_child_watch("/a", 1);
    assert!(w.remove("/a", 1, WatcherType::Data));
    assert!(!w.remove("/a", 1, WatcherType::Data), "already removed");
    assert!(w.check("/a", 1, WatcherType::Children));
    assert!(w.remove("/a", 1, WatcherType::Children));
    assert!(w.check("/a", 1, WatcherType::Persistent));

    w.add_data_watch("/a", 1);
    w.add_persistent_recursive("/a", 1);
    assert!(w.remove("/a", 1, WatcherType::Any));
    assert!(!w.remove("/a", 1, WatcherType::Any));
    assert_eq!((w.connection_count(), w.path_count(), w.watch_count()), (0, 0, 0));
    assert_eq!(w.recursive_watch_count(), 0);
    assert_consistent(&w);
}

#[test]
fn removed_watch_no_longer_fires_but_others_do() {
    let mut w = WatchManager::new();
    w.add_data_watch("/a", 1);
    w.add_data_watch("/a", 2);
    assert!(w.remove("/a", 1, WatcherType::Data));
    assert_eq!(fire(&mut w, "/a", ChangeKind::DataChanged).conns, vec![2]);
}

#[test]
fn remove_connection_cleans_every_index() {
    let mut w = WatchManager::new();
    for conn in 1..=3 {
        w.add_data_watch("/a", conn);
        w.add_child_watch("/a", conn);
        w.add_persistent("/b", conn);
        w.add_persistent_recursive("/", conn);
    }
    w.add_data_watch("/only-4", 4);
    assert_eq!(w.remove_connection(1), 3);
    assert_eq!(w.remove_connection(1), 0, "second close is a no-op");
    assert_eq!(w.connection_count(), 3);
    assert_consistent(&w);
    for conn in 2..=4 {
        w.remove_connection(conn);
    }
    assert_eq!((w.connection_count(), w.path_count(), w.watch_count()), (0, 0, 0));
    assert_eq!((w.table_watch_count(), w.recursive_watch_count()), (0, 0));
    assert!(w.by_connection().is_empty() && w.by_path().is_empty());
    for kind in KINDS {
        assert!(fire(&mut w, "/a", kind).is_empty());
    }
    assert_consistent(&w);
}

#[test]
fn ten_thousand_watchers_on_one_path() {
    let mut w = WatchManager::new();
    for conn in 0..10_000 {
        w.add_data_watch("/hot", conn);
    }
    assert_eq!(w.watch_count(), 10_000);
    let fired = w.trigger(&change("/hot", ChangeKind::DataChanged));
    assert_eq!(fired.conns.len(), 10_000);
    let unique: HashSet<ConnId> = fired.conns.iter().copied().collect();
    assert_eq!(unique.len(), 10_000);
    assert_eq!((w.connection_count(), w.path_count(), w.watch_count()), (0, 0, 0));
    assert_consistent(&w);
}

#[test]
fn ten_thousand_persistent_watchers_stay() {
    let mut w = WatchManager::new();
    for conn in 0..10_000 {
        w.add_persistent("/hot", conn);
    }
    w.add_persistent_recursive("/", 10_000);
    for _ in 0..3 {
        assert_eq!(w.trigger(&change("/hot", ChangeKind::DataChanged)).conns.len(), 10_001);
    }
    assert_eq!(w.watch_count(), 10_001);
}

/// Random operations keep both indexes and the counters in step.
#[test]
fn random_operations_keep_indexes_consistent() {
    let paths = ["/", "/a", "/a/b", "/a/b/c", "/x"];
    let types = [
        WatcherType::Children,
        WatcherType::Data,
        WatcherType::Any,
        WatcherType::Persistent,
        WatcherType::PersistentRecursive,
    ];
    let mut rng = StdRng::seed_from_u64(7);
    let mut w = WatchManager::new();
    for _ in 0..5_000 {
        let path = paths[rng.random_range(0..paths.len())];
        let conn = rng.random_range(0..4u64);
        match rng.random_range(0..8) {
            0 => {
                w.add_data_watch(path, conn);
            }
            1 => {
                w.add_child_watch(path, conn);
            }
            2 => {
                w.add_persistent(path, conn);
            }
            3 => {
                w.add_persistent_recursive(path, conn);
            }
            4 => {
                w.remove(path, conn, types[rng.random_range(0..types.len())]);
            }
            5 => {
                w.remove_connection(conn);
            }
            _ => {
                let kind = KINDS[rng.random_range(0..KINDS.len())];
                let fired = w.trigger(&change(path, kind));
                let unique: HashSet<ConnId> = fired.conns.iter().copied().collect();
                assert_eq!(unique.len(), fired.conns.len(), "duplicate recipient");
            }
        }
        assert_consistent(&w);
    }
}

#[test]
fn bits_constants_are_distinct() {
    assert_eq!(DATA | CHILD | PERSISTENT | RECURSIVE, flags::ALL);
    assert_eq!(flags::ALL.count_ones(), 4);
}
