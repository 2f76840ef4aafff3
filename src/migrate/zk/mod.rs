//! Apache ZooKeeper's on-disk files: reading a `dataDir` (snapshots and transaction logs) into
//! the tree ZooKeeper would serve after a restart, and writing a snapshot ZooKeeper loads.
//!
//! Pure file formats and ZooKeeper's load semantics, nothing of Roost's own state: [`load`]
//! picks the newest snapshot (plain, `.gz` or `.snappy`), verifies its Adler-32 seals, replays
//! every logged txn after it with ZooKeeper's idempotent rules (snapshots are fuzzy), and then
//! drops ephemerals of sessions that are gone, as `ZooKeeperServer.loadData` does.
//! The formats are described in `zookeeper-disk-format.md` of the shared references.
//!
//! A damaged file is an error naming the file and the offset ([`ZkError::Corrupt`]). A log
//! whose last record is torn (zero length, cut short, no `B` trailer) ends there, as
//! ZooKeeper's `FileTxnIterator` ends it; a checksum mismatch is fatal, as it is there.

mod files;
mod password;
pub mod snapshot;
mod stream;
mod tree;
mod txn;
mod txnlog;

use std::path::{Path, PathBuf};

pub use files::{log_dir_of, snap_dir_of};
pub use password::zookeeper_password;
pub use snapshot::{write_snapshot, SnapshotNode};
pub use tree::{StatPersisted, ZkNode, ZkTree};

/// Why a ZooKeeper data directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file whose bytes are not what ZooKeeper writes; `offset` is where reading failed
    /// (in the decompressed stream for a compressed snapshot).
    #[error("{path}: corrupt at offset {offset}: {what}")]
    Corrupt { path: PathBuf, offset: u64, what: String },
    #[error("no ZooKeeper snapshot in {dir} (expected version-2/snapshot.<zxid>)")]
    NoSnapshot { dir: PathBuf },
}

impl ZkError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ZkError + '_ {
        move |source| ZkError::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn corrupt(path: &Path, offset: usize, what: impl Into<String>) -> ZkError {
        ZkError::Corrupt { path: path.to_path_buf(), offset: offset as u64, what: what.into() }
    }
}

/// What loading did, for progress output and the import report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub snapshot: PathBuf,
    pub snapshot_zxid: i64,
    pub logs: Vec<PathBuf>,
    /// Txns with a zxid above the snapshot's, applied.
    pub txns_replayed: u64,
    /// Logs that ended in a torn record (the tail was ignored, as ZooKeeper does).
    pub torn_logs: Vec<(PathBuf, u64)>,
    /// Ephemerals deleted because their session was gone (`loadData`'s clean-up).
    pub orphans_removed: u64,
}

/// How often (in txns) a long replay reports progress.
const PROGRESS_EVERY: u64 = 250_000;

/// Progress callback: a short description of the step just started.
pub type Progress<'a> = &'a mut dyn FnMut(&str);

/// Reads ZooKeeper's state from `data_dir` (snapshots) and `log_dir` (transaction logs,
/// `dataLogDir`; the same directory when `None`). Both are the configured directories, the
/// ones that contain `version-2/`.
pub fn load(data_dir: &Path, log_dir: Option<&Path>, progress: Progress<'_>) -> Result<(ZkTree, LoadReport), ZkError> {
    let snap_dir = snap_dir_of(data_dir);
    let log_dir = log_dir_of(log_dir.unwrap_or(data_dir));
    let snapshot = files::newest_snapshot(&snap_dir)?.ok_or_else(|| ZkError::NoSnapshot { dir: snap_dir.clone() })?;
    progress(&format!("reading snapshot {}", snapshot.path.display()));
    let bytes = stream::read_snapshot_stream(&snapshot.path)?;
    let mut tree = snapshot::parse(&snapshot.path, &bytes, snapshot.zxid)?;
    drop(bytes);
    let mut report =
        LoadReport { snapshot: snapshot.path.clone(), snapshot_zxid: snapshot.zxid, ..LoadReport::default() };
    for log in files::logs_after(&log_dir, snapshot.zxid)? {
        progress(&format!("replaying {}", log.display()));
        let file = txnlog::read(&log)?;
        for record in &file.records {
            if record.header.zxid <= snapshot.zxid {
                continue; // before the snapshot: its effect is in it
            }
            let entry = txn::decode(&log, record)?;
            tree.replay(&record.header, &entry);
            report.txns_replayed += 1;
            if report.txns_replayed % PROGRESS_EVERY == 0 {
                progress(&format!("replayed {} txns (zxid 0x{:x})", report.txns_replayed, record.header.zxid));
            }
        }
        if let Some(offset) = file.torn_at {
            report.torn_logs.push((log.clone(), offset));
        }
        report.logs.push(log);
    }
    report.orphans_removed = tree.remove_orphan_ephemerals();
    tree.recompute_quota_stats();
    Ok((tree, report))
}

#[cfg(test)]
mod tests;
