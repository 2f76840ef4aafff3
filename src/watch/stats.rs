//! Read-only views for the four-letter words `wchs`, `wchc`, `wchp` and `mntr`.
//!
//! ZooKeeper builds these from its data-watch table alone, so a connection holding
//! only child watches is invisible in `wchs`/`wchc`/`wchp` there. Roost reports
//! every watch kind instead: one entry per (connection, path) whatever the kinds.
//! `mntr`'s `zk_watch_count`, which ZooKeeper computes over both tables, is
//! reproduced exactly by [`WatchManager::table_watch_count`].

use std::fmt;

use super::manager::WatchManager;
use super::ConnId;

/// The `wchs` numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchSummary {
    pub connections: usize,
    pub paths: usize,
    pub watches: usize,
}

impl fmt::Display for WatchSummary {
    /// ZooKeeper's text without the trailing newline the 4lw adds:
    /// `<n> connections watching <m> paths\nTotal watches:<k>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} connections watching {} paths\nTotal watches:{}", self.connections, self.paths, self.watches)
    }
}

impl WatchManager {
    /// Connections holding at least one watch.
    pub fn connection_count(&self) -> usize {
        self.by_conn.len()
    }

    /// Paths with at least one watch.
    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }

    /// (connection, path) pairs with at least one watch of any kind.
    pub fn watch_count(&self) -> usize {
        self.counters.pairs
    }

    /// What ZooKeeper's `mntr` reports as `zk_watch_count`: entries in its data
    /// table plus entries in its child table (a persistent watch counts twice, a
    /// data and a child watch of one connection on one path count twice).
    pub fn table_watch_count(&self) -> usize {
        self.counters.table_entries
    }

    /// Number of persistent-recursive watches; while 0, triggering never looks at
    /// ancestors.
    pub fn recursive_watch_count(&self) -> usize {
        self.counters.recursive
    }

    pub fn summary(&self) -> WatchSummary {
        WatchSummary { connections: self.connection_count(), paths: self.path_count(), watches: self.watch_count() }
    }

    /// `wchc`: each connection with its watched paths, both sorted. The caller maps
    /// connection ids to session ids for printing.
    pub fn by_connection(&self) -> Vec<(ConnId, Vec<String>)> {
        let mut out: Vec<(ConnId, Vec<String>)> = self
            .by_conn
            .iter()
            .map(|(&conn, paths)| {
                let mut paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
                paths.sort_unstable();
                (conn, paths)
            })
            .collect();
        out.sort_unstable_by_key(|(conn, _)| *conn);
        out
    }

    /// `wchp`: each watched path with its connections, both sorted.
    pub fn by_path(&self) -> Vec<(String, Vec<ConnId>)> {
        let mut out: Vec<(String, Vec<ConnId>)> = self
            .by_path
            .iter()
            .map(|(path, entry)| {
                let mut conns: Vec<ConnId> = entry.conns.keys().copied().collect();
                conns.sort_unstable();
                (path.to_string(), conns)
            })
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_text_matches_zookeeper() {
        let s = WatchSummary { connections: 2, paths: 3, watches: 4 };
        assert_eq!(s.to_string(), "2 connections watching 3 paths\nTotal watches:4");
    }

    #[test]
    fn counts_one_entry_per_connection_and_path() {
        let mut w = WatchManager::new();
        w.add_data_watch("/a", 1);
        w.add_child_watch("/a", 1);
        w.add_persistent("/a", 1);
        w.add_child_watch("/b", 1);
        w.add_data_watch("/a", 2);
        assert_eq!(w.summary(), WatchSummary { connections: 2, paths: 2, watches: 3 });
        // data table: (1,/a) (2,/a); child table: (1,/a) (1,/b)
        assert_eq!(w.table_watch_count(), 4);
    }

    #[test]
    fn listings_are_sorted() {
        let mut w = WatchManager::new();
        w.add_data_watch("/z", 9);
        w.add_data_watch("/a", 9);
        w.add_child_watch("/m", 3);
        w.add_persistent_recursive("/a", 3);
        assert_eq!(
            w.by_connection(),
            vec![(3, vec!["/a".to_string(), "/m".to_string()]), (9, vec!["/a".to_string(), "/z".to_string()]),]
        );
        assert_eq!(
            w.by_path(),
            vec![("/a".to_string(), vec![3, 9]), ("/m".to_string(), vec![3]), ("/z".to_string(), vec![9])]
        );
    }
}
