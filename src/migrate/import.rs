//! `roost import-zookeeper`: a ZooKeeper `dataDir` in, a Roost data directory out.

use std::path::{Path, PathBuf};

use super::roost_dir::{self, RoostDirError};
use super::zk::{self, LoadReport, ZkError, ZkTree};
use crate::consensus::Member;
use crate::proto::types::Acl;
use crate::tree::{DataTree, PersistedStat, SessionEntry, SnapshotError, TreeBuilder, CONFIG_PATH};

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading ZooKeeper's files: {0}")]
    ZooKeeper(#[from] ZkError),
    #[error("{dir} is not empty; import only into a new or empty directory (it would overwrite a server's state)")]
    TargetNotEmpty { dir: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("node {path:?} cannot be stored: {source}")]
    Node {
        path: String,
        #[source]
        source: SnapshotError,
    },
    #[error("session 0x{id:x} cannot be stored: {source}")]
    Session {
        id: i64,
        #[source]
        source: SnapshotError,
    },
    #[error("writing the Roost data directory: {0}")]
    Target(#[from] RoostDirError),
}

/// What to import and where.
#[derive(Debug, Clone)]
pub struct ImportPlan {
    /// ZooKeeper's `dataDir` (holding `version-2/`).
    pub zk_data_dir: PathBuf,
    /// ZooKeeper's `dataLogDir`, when it differs.
    pub zk_log_dir: Option<PathBuf>,
    /// The Roost server's `dataLogDir` (its raft state goes to `raft/` inside).
    pub target: PathBuf,
    /// This server's id.
    pub me: u64,
    /// The ensemble's members (empty: standalone).
    pub members: Vec<Member>,
}

/// The outcome, for the command's summary.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    pub load: LoadReport,
    pub nodes: usize,
    pub sessions: usize,
    pub last_zxid: i64,
}

/// Refuses a target that holds anything but `myid`: an import never overwrites a server's state.
fn check_target_is_empty(dir: &Path) -> Result<(), ImportError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            // An ensemble member's `myid` may be there already.
            let holds_state = entries.flatten().any(|e| e.file_name() != "myid");
            if holds_state {
                return Err(ImportError::TargetNotEmpty { dir: dir.to_path_buf() });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ImportError::Io { path: dir.to_path_buf(), source }),
    }
}

/// Runs an import, reporting each step to `progress`.
pub fn import(plan: &ImportPlan, progress: zk::Progress<'_>) -> Result<ImportSummary, ImportError> {
    check_target_is_empty(&plan.target)?;
    let started = std::time::Instant::now();
    let (zk_tree, load) = zk::load(&plan.zk_data_dir, plan.zk_log_dir.as_deref(), progress)?;
    progress(&format!(
        "read {} znodes and {} sessions up to zxid 0x{:x} ({} txns replayed) in {:.1} s",
        zk_tree.node_count(),
        zk_tree.sessions().len(),
        zk_tree.last_zxid(),
        load.txns_replayed,
        started.elapsed().as_secs_f64()
    ));
    let tree = to_roost_tree(&zk_tree)?;
    let (nodes, sessions, last_zxid) = (tree.node_count(), tree.session_count(), tree.last_zxid());
    drop(zk_tree);
    progress(&format!("writing {}", roost_dir::raft_dir(&plan.target).display()));
    std::fs::create_dir_all(&plan.target).map_err(|source| ImportError::Io { path: plan.target.clone(), source })?;
    let membership = roost_dir::membership(plan.me, &plan.members)?;
    roost_dir::write(&roost_dir::raft_dir(&plan.target), &tree, plan.me, membership)?;
    Ok(ImportSummary { load, nodes, sessions, last_zxid })
}

/// Roost's tree holding what ZooKeeper's holds: every node with its persisted stat, data and
/// ACL; the sessions with their timeouts and the passwords ZooKeeper derives for them; the
/// last zxid. `/zookeeper/config` is left as a fresh Roost has it (an ensemble writes its own
/// membership there, ZooKeeper does the same after a sync), empty and read-only.
pub(crate) fn to_roost_tree(zk_tree: &ZkTree) -> Result<DataTree, ImportError> {
    type Record<'a> = (&'a str, Option<&'a [u8]>, Vec<Acl>, PersistedStat);
    let mut records: Vec<Record<'_>> = Vec::with_capacity(zk_tree.node_count() + 3);
    for (zk_path, node) in zk_tree.nodes_parent_first() {
        let path = if zk_path.is_empty() { "/" } else { zk_path };
        if path == CONFIG_PATH {
            continue;
        }
        let stat = node.stat;
        records.push((path, node.data.as_deref(), node.acl.to_vec(), stat));
    }
    // The system nodes a fresh Roost tree has and ZooKeeper's may lack (3.4 has no
    // /zookeeper/config; it is never imported, see above).
    let fresh = DataTree::new();
    let mut system = Vec::new();
    fresh.for_each_node(|path, data, acl, stat| {
        system.push((path.to_string(), data.map(<[u8]>::to_vec), acl.to_vec(), stat));
    });
    for (path, data, acl, stat) in &system {
        if path == CONFIG_PATH || (path != "/" && zk_tree.node(path).is_none()) {
            records.push((path, data.as_deref(), acl.clone(), *stat));
        }
    }
    records.sort_by(|a, b| a.0.cmp(b.0));

    let mut builder = TreeBuilder::new();
    for (path, data, acl, stat) in records {
        builder
            .add_node(path, data, acl, stat)
            .map_err(|source| ImportError::Node { path: path.to_string(), source })?;
    }
    for (&id, &timeout_ms) in zk_tree.sessions() {
        let entry = SessionEntry { timeout_ms, password: zk::zookeeper_password(id) };
        builder.add_session(id, entry).map_err(|source| ImportError::Session { id, source })?;
    }
    builder.finish(zk_tree.last_zxid()).map_err(|source| ImportError::Node { path: "/".into(), source })
}
