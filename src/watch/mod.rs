//! Watch registrations per connection and the trigger matrix.
//!
//! A [`WatchManager`] is the server-side registry of ZooKeeper watches: one-shot
//! data and child watches, persistent and persistent-recursive watches, each held
//! at most once per (connection, path, kind) and shared by all client-side
//! watchers of that connection. Semantics follow ZooKeeper 3.9 (modes on one path
//! coexist, ZOOKEEPER-4466); see `flags` for the matrix.
//!
//! The module is pure bookkeeping: no IO, no locking, no ACL checks. The apply
//! loop calls [`WatchManager::trigger`] for each `tree::txn::Change` under the tree
//! write lock, filters the returned connections by READ on the change's ACL and
//! queues the notifications; reads register under the read lock.

mod flags;
mod hash;
mod manager;
mod path;
mod set_watches;
mod stats;

#[cfg(test)]
mod tests;

/// Identifies one client connection on this server. Watches belong to connections,
/// not sessions: a session that reconnects elsewhere restores them via SetWatches.
pub type ConnId = u64;

pub use manager::{Fired, WatchManager};
pub use set_watches::SetWatchesLists;
pub use stats::WatchSummary;
