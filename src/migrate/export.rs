//! `roost export-zookeeper`: a stopped Roost node's state written as a ZooKeeper snapshot, the
//! way back.

use std::path::{Path, PathBuf};

use super::roost_dir::{self, RoostDirError};
use super::zk::{self, SnapshotNode};
use crate::tree::DataTree;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading the Roost data directory: {0}")]
    Source(#[from] RoostDirError),
    #[error("{dir} already holds ZooKeeper files; export only into a new or empty directory")]
    TargetNotEmpty { dir: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The outcome, for the command's summary.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub snapshot: PathBuf,
    pub nodes: usize,
    pub sessions: usize,
    pub last_zxid: i64,
    pub entries_applied: u64,
    pub entries_skipped: u64,
}

/// Reads the state under `roost_data_log_dir` (a stopped server's `dataLogDir`) and writes
/// `<zk_data_dir>/version-2/snapshot.<last zxid>`, plus `acceptedEpoch` and `currentEpoch`
/// (the zxid's epoch) that an ensemble member needs and a standalone server ignores.
pub fn export(
    roost_data_log_dir: &Path,
    zk_data_dir: &Path,
    progress: zk::Progress<'_>,
) -> Result<ExportSummary, ExportError> {
    let dir = zk::snap_dir_of(zk_data_dir);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    match std::fs::read_dir(&dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(ExportError::TargetNotEmpty { dir });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&dir)(e)),
    }
    let raft = roost_dir::raft_dir(roost_data_log_dir);
    progress(&format!("reading {}", raft.display()));
    let state = roost_dir::read(&raft)?;
    let tree = &state.tree;
    progress(&format!(
        "read {} znodes and {} sessions up to zxid 0x{:x}; writing the ZooKeeper snapshot",
        tree.node_count(),
        tree.session_count(),
        tree.last_zxid()
    ));
    let bytes = zookeeper_snapshot(tree);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let last_zxid = tree.last_zxid();
    let snapshot = dir.join(format!("snapshot.{:x}", last_zxid as u64));
    crate::storage::atomic::write_durably(&snapshot, &[&bytes]).map_err(|e| io(&snapshot)(std::io::Error::other(e)))?;
    let epoch = ((last_zxid as u64) >> 32).to_string();
    for name in ["acceptedEpoch", "currentEpoch"] {
        let path = dir.join(name);
        crate::storage::atomic::write_durably(&path, &[epoch.as_bytes()])
            .map_err(|e| io(&path)(std::io::Error::other(e)))?;
    }
    Ok(ExportSummary {
        snapshot,
        nodes: tree.node_count(),
        sessions: tree.session_count(),
        last_zxid,
        entries_applied: state.entries_applied,
        entries_skipped: state.entries_skipped,
    })
}

/// The tree as a ZooKeeper snapshot stream (root as `""`, parents first).
pub(crate) fn zookeeper_snapshot(tree: &DataTree) -> Vec<u8> {
    let sessions: Vec<(i64, i32)> = tree.sessions().map(|(id, s)| (id, s.timeout_ms)).collect();
    let mut nodes = Vec::with_capacity(tree.node_count());
    tree.for_each_node(|path, data, acl, s| {
        let path = if path == "/" { String::new() } else { path.to_string() };
        nodes.push((path, data.map(<[u8]>::to_vec), acl.to_vec(), s));
    });
    zk::write_snapshot(
        &sessions,
        nodes.iter().map(|(path, data, acl, stat)| SnapshotNode { path, data: data.as_deref(), acl, stat: *stat }),
    )
}
