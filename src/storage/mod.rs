//! Durable storage: the write-ahead log (`wal`), snapshot files (`snap`) and raft metadata
//! (`meta`), all storing opaque bytes for the consensus layer. Synchronous std file I/O: callers
//! run these on a blocking thread (`tokio::task::spawn_blocking` or a dedicated writer thread).
//!
//! Suggested layout under the data directory: `wal/`, `snap/`, `meta/`.

pub mod atomic;
pub mod meta;
pub mod snap;
pub mod wal;

pub use meta::{MetaError, MetaStore};
pub use snap::{SnapError, SnapshotId, SnapshotStore, StoredSnapshot};
pub use wal::{DetachedSegments, Wal, WalError, WalOptions};
