//! SetWatches / SetWatches2 (opcodes 101 / 105): restoring a reconnecting client's
//! watches on this server, with catch-up events for what it missed
//! (`DataTree.setWatches`).

use crate::proto::types::{EventType, Stat};

use super::flags::{CHILD, DATA, PERSISTENT, RECURSIVE};
use super::manager::WatchManager;
use super::ConnId;

/// The lists of one SetWatches(2) request. SetWatches (101) leaves the last two
/// empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetWatchesLists<'a> {
    /// The last zxid the client saw; changes after it produce catch-up events.
    pub relative_zxid: i64,
    /// getData watches.
    pub data: &'a [String],
    /// exists watches set on a missing node.
    pub exist: &'a [String],
    /// getChildren watches.
    pub child: &'a [String],
    pub persistent: &'a [String],
    pub recursive: &'a [String],
}

impl WatchManager {
    /// Re-registers a reconnected client's watches for `conn`, or fires them at once
    /// when the node moved on while the client was away:
    ///
    /// | list | node missing | node present | |
    /// |---|---|---|---|
    /// | data | NodeDeleted | mzxid > rel: NodeDataChanged | else re-register |
    /// | exist | re-register | NodeCreated (whatever the zxid) | |
    /// | child | NodeDeleted | pzxid > rel: NodeChildrenChanged | else re-register |
    /// | persistent, recursive | re-register, no events | re-register, no events | |
    ///
    /// A watch that fires is not registered (it was one-shot). `lookup` returns the
    /// node's current Stat, `None` if absent. Events are returned in list order
    /// (data, exist, child) and carry the list's path.
    ///
    /// ACLs: ZooKeeper delivers these catch-up events without any ACL check (they
    /// go through `ServerCnxn.process(event)` with a null ACL, which skips the
    /// READ check), and registers without checks too. For parity the caller should
    /// queue them as they are, with notification zxid -1, before answering the
    /// request (reply xid -8).
    pub fn set_watches(
        &mut self,
        conn: ConnId,
        lists: &SetWatchesLists<'_>,
        lookup: impl Fn(&str) -> Option<Stat>,
    ) -> Vec<(EventType, String)> {
        let rel = lists.relative_zxid;
        let mut events = Vec::new();
        let mut fire_or_add = |this: &mut Self, path: &String, event: Option<EventType>, kind: u8| match event {
            Some(event) => events.push((event, path.clone())),
            None => {
                this.add(path, conn, kind);
            }
        };
        for path in lists.data {
            let event = match lookup(path) {
                None => Some(EventType::NodeDeleted),
                Some(stat) if stat.mzxid > rel => Some(EventType::NodeDataChanged),
                Some(_) => None,
            };
            fire_or_add(self, path, event, DATA);
        }
        for path in lists.exist {
            let event = lookup(path).map(|_| EventType::NodeCreated);
            fire_or_add(self, path, event, DATA);
        }
        for path in lists.child {
            let event = match lookup(path) {
                None => Some(EventType::NodeDeleted),
                Some(stat) if stat.pzxid > rel => Some(EventType::NodeChildrenChanged),
                Some(_) => None,
            };
            fire_or_add(self, path, event, CHILD);
        }
        for path in lists.persistent {
            fire_or_add(self, path, None, PERSISTENT);
        }
        for path in lists.recursive {
            fire_or_add(self, path, None, RECURSIVE);
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::proto::types::WatcherType;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// /old: mzxid 5, pzxid 5. /new: mzxid 20, pzxid 30.
    fn tree() -> impl Fn(&str) -> Option<Stat> {
        let mut nodes = HashMap::new();
        nodes.insert("/old".to_string(), Stat { mzxid: 5, pzxid: 5, ..Stat::default() });
        nodes.insert("/new".to_string(), Stat { mzxid: 20, pzxid: 30, ..Stat::default() });
        move |p: &str| nodes.get(p).copied()
    }

    #[test]
    fn data_list_rows() {
        let mut w = WatchManager::new();
        let data = strings(&["/gone", "/new", "/old"]);
        let lists = SetWatchesLists { relative_zxid: 10, data: &data, ..Default::default() };
        let events = w.set_watches(1, &lists, tree());
        assert_eq!(
            events,
            vec![(EventType::NodeDeleted, "/gone".to_string()), (EventType::NodeDataChanged, "/new".to_string()),]
        );
        assert!(w.check("/old", 1, WatcherType::Data));
        assert!(!w.check("/gone", 1, WatcherType::Any));
        assert!(!w.check("/new", 1, WatcherType::Any));
        assert_eq!(w.watch_count(), 1);
    }

    #[test]
    fn data_list_equal_zxid_is_not_a_change() {
        let mut w = WatchManager::new();
        let data = strings(&["/new"]);
        let lists = SetWatchesLists { relative_zxid: 20, data: &data, ..Default::default() };
        assert!(w.set_watches(1, &lists, tree()).is_empty());
        assert!(w.check("/new", 1, WatcherType::Data));
    }

    #[test]
    fn exist_list_rows() {
        let mut w = WatchManager::new();
        let exist = strings(&["/gone", "/old"]);
        // relative zxid far in the future: NodeCreated fires regardless.
        let lists = SetWatchesLists { relative_zxid: 1000, exist: &exist, ..Default::default() };
        let events = w.set_watches(1, &lists, tree());
        assert_eq!(events, vec![(EventType::NodeCreated, "/old".to_string())]);
        assert!(w.check("/gone", 1, WatcherType::Data));
        assert!(!w.check("/old", 1, WatcherType::Any));
    }

    #[test]
    fn child_list_rows() {
        let mut w = WatchManager::new();
        let child = strings(&["/gone", "/new", "/old"]);
        // /new: mzxid 20 <= 25 but pzxid 30 > 25, so the child row must use pzxid.
        let lists = SetWatchesLists { relative_zxid: 25, child: &child, ..Default::default() };
        let events = w.set_watches(1, &lists, tree());
        assert_eq!(
            events,
            vec![(EventType::NodeDeleted, "/gone".to_string()), (EventType::NodeChildrenChanged, "/new".to_string()),]
        );
        assert!(w.check("/old", 1, WatcherType::Children));
        assert!(!w.check("/old", 1, WatcherType::Data));
        assert_eq!(w.watch_count(), 1);
    }

    #[test]
    fn persistent_lists_always_register_without_events() {
        let mut w = WatchManager::new();
        let persistent = strings(&["/gone", "/new"]);
        let recursive = strings(&["/gone", "/old"]);
        let lists =
            SetWatchesLists { relative_zxid: 0, persistent: &persistent, recursive: &recursive, ..Default::default() };
        assert!(w.set_watches(7, &lists, tree()).is_empty());
        assert!(w.check("/gone", 7, WatcherType::Persistent));
        assert!(w.check("/new", 7, WatcherType::Persistent));
        assert!(w.check("/gone", 7, WatcherType::PersistentRecursive));
        assert!(w.check("/old", 7, WatcherType::PersistentRecursive));
        assert_eq!(w.recursive_watch_count(), 2);
    }
}
