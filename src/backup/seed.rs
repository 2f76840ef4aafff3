//! A restore waiting in a fresh data directory: `roost restore --from FILE --to DATA_DIR`
//! writes the backup there as [`SEED_FILE`]; the server started on that directory
//! restores it through the log before it accepts clients ([`apply_pending`]), then renames
//! the file (`.applied`, or `.skipped` when the ensemble held data already).
//!
//! Seeding through the log instead of writing a snapshot file keeps one way in for every
//! restore: all members install the same tree at the same log position, and a member that
//! joins later gets it from the log or a snapshot like any other state. Several members
//! may hold the same seed; the restore is marked "only if fresh", so the first one applied
//! wins and the others change nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{check_image, restore_through_log, ImageInfo, RestoreFailure};
use crate::consensus::Consensus;
use crate::tree::snapshot::SnapshotError;

/// The pending restore's name in the data directory.
pub const SEED_FILE: &str = "restore-pending.roostsnap";

/// Why a data directory could not be seeded, or its seed not restored.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid Roost backup: {source}")]
    Damaged { path: PathBuf, source: SnapshotError },
    #[error("{path} holds server state already ({what}); restore into a fresh (empty) data directory, or restore online with `roost restore --server`")]
    NotFresh { path: PathBuf, what: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("restoring the pending backup {path}: {source}")]
    Restore { path: PathBuf, source: Box<RestoreFailure> },
}

/// Reads a backup file and decodes it whole.
pub fn read_backup(path: &Path) -> Result<(Vec<u8>, ImageInfo), SeedError> {
    let bytes = std::fs::read(path).map_err(|source| SeedError::Read { path: path.to_path_buf(), source })?;
    let info = check_image(&bytes).map_err(|source| SeedError::Damaged { path: path.to_path_buf(), source })?;
    Ok((bytes, info))
}

/// Raft state a server keeps under its data (or data log) directory: present means the
/// directory is not fresh.
fn server_state(dir: &Path) -> Option<String> {
    let raft = dir.join("raft");
    let entries = std::fs::read_dir(&raft).ok()?;
    entries.flatten().next().map(|e| format!("{} exists", e.path().display()))
}

/// Seeds `data_dir` (and `data_log_dir`, where the server keeps its log, when it differs)
/// with the backup at `backup`, after checking it whole. Refuses a directory that holds
/// server state or a seed already; changes nothing on any error.
pub fn write_seed(backup: &Path, data_dir: &Path, data_log_dir: &Path) -> Result<ImageInfo, SeedError> {
    for dir in [data_dir, data_log_dir] {
        if let Some(what) = server_state(dir) {
            return Err(SeedError::NotFresh { path: dir.to_path_buf(), what });
        }
    }
    let target = data_dir.join(SEED_FILE);
    if target.exists() {
        return Err(SeedError::NotFresh { path: data_dir.to_path_buf(), what: format!("{} exists", target.display()) });
    }
    let (bytes, info) = read_backup(backup)?;
    let write_err = |source| SeedError::Write { path: target.clone(), source };
    std::fs::create_dir_all(data_dir).map_err(write_err)?;
    crate::storage::atomic::write_durably(&target, &[&bytes])
        .map_err(|e| SeedError::Write { path: target.clone(), source: std::io::Error::other(e) })?;
    Ok(info)
}

/// Restores the seed of `data_dir`, if there is one, once this member is part of a working
/// ensemble (waiting up to `ready_timeout`). Called before the client port accepts anyone,
/// so no client write can come first on this member.
pub async fn apply_pending(
    data_dir: &Path,
    consensus: &Consensus,
    ready_timeout: Duration,
) -> Result<Option<ImageInfo>, SeedError> {
    let path = data_dir.join(SEED_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let (bytes, info) = read_backup(&path)?;
    tracing::info!(
        file = %path.display(),
        backup_zxid = format_args!("0x{:x}", info.last_zxid),
        nodes = info.nodes,
        "a backup waits to be restored; restoring it through the log once the ensemble is ready"
    );
    let restore_err = |source| SeedError::Restore { path: path.clone(), source: Box::new(source) };
    consensus.wait_ready(ready_timeout).await.map_err(|e| restore_err(RestoreFailure::Consensus(e)))?;
    let suffix = match restore_through_log(consensus, bytes, true).await {
        Ok(report) => {
            tracing::info!(zxid = format_args!("0x{:x}", report.zxid), "pending backup restored");
            "applied"
        }
        Err(RestoreFailure::NotFresh) => {
            tracing::warn!(
                file = %path.display(),
                "pending backup not restored: the ensemble had applied transactions already (another member's \
                 copy of the same seed, or data from before); the tree was left as it is"
            );
            "skipped"
        }
        Err(e) => return Err(restore_err(e)),
    };
    let done = crate::storage::atomic::with_suffix(&path, &format!(".{suffix}"));
    std::fs::rename(&path, &done).map_err(|source| SeedError::Write { path: done.clone(), source })?;
    Ok(Some(info))
}
