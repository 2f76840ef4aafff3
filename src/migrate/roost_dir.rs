//! Roost's own data directory seen from outside a running server: writing one that holds a
//! given tree (an import), and reading the tree a stopped server left (an export).
//!
//! A node keeps its raft state in `<dataLogDir>/raft/` (`wal/`, `meta/`, `snap/`; see
//! `consensus::ConsensusConfig`). An imported directory is what a server leaves after a
//! snapshot and a log purge: one snapshot at log id `(term, 1)` whose metadata carries the
//! membership, the WAL purged up to it, and the vote and committed id in the meta store.
//! openraft starts from that like from any purged log, and a new leader sends the snapshot to
//! members that have nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::consensus::types::{self, Entry, LogId, Membership, RaftPeer, SnapshotMeta, StoredMembership, Vote};
use crate::consensus::Member;
use crate::storage::snap::SnapshotId;
use crate::storage::{MetaStore, SnapshotStore, Wal, WalOptions};
use crate::tree::DataTree;

/// The raft state directory of a node whose `dataLogDir` is `data_log_dir`.
pub fn raft_dir(data_log_dir: &Path) -> PathBuf {
    data_log_dir.join("raft")
}

/// Why a Roost data directory could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum RoostDirError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(Box<dyn std::error::Error + Send + Sync>),
    #[error("{dir}: no Roost snapshot (is this a Roost data directory?)")]
    NoSnapshot { dir: PathBuf },
    #[error("{what}: {source}")]
    Decode {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn store_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> RoostDirError {
    RoostDirError::Store(Box::new(e))
}

/// The raft membership an imported node starts with: every configured participant as a voter,
/// observers as learners (a standalone server: itself, with no address).
pub fn membership(me: u64, members: &[Member]) -> Result<Membership, RoostDirError> {
    let mut nodes = BTreeMap::new();
    let mut voters = BTreeSet::new();
    if members.is_empty() {
        nodes.insert(me, RaftPeer::default());
        voters.insert(me);
    }
    for m in members {
        nodes.insert(m.id, RaftPeer { raft_addr: m.raft_addr.clone() });
        if m.voter {
            voters.insert(m.id);
        }
    }
    Membership::new(vec![voters], nodes).map_err(store_err)
}

/// The raft term of the imported snapshot: one past the zxid epoch, so that the first leader's
/// term, and with it every new zxid (`(term << 32) | n`), is above the last imported zxid.
pub fn import_term(last_zxid: i64) -> u64 {
    ((last_zxid as u64) >> 32) + 1
}

/// Writes a fresh raft state directory holding `tree`. `raft` must not hold raft state yet.
pub fn write(raft: &Path, tree: &DataTree, me: u64, membership: Membership) -> Result<(), RoostDirError> {
    let term = import_term(tree.last_zxid());
    let log_id: LogId = types::log_id(term, 1);
    let meta =
        SnapshotMeta { last_log_id: Some(log_id), last_membership: StoredMembership::new(Some(log_id), membership) };
    let encode = |what: &str, bytes: std::io::Result<Vec<u8>>| {
        bytes.map_err(|e| RoostDirError::Decode { what: what.into(), source: Box::new(e) })
    };
    let snapshots = SnapshotStore::open(&raft.join("snap")).map_err(store_err)?;
    snapshots
        .save(
            &SnapshotId { term, index: log_id.index },
            &encode("snapshot meta", types::encode(&meta))?,
            &tree.serialize(),
        )
        .map_err(store_err)?;
    let mut wal = Wal::open(&raft.join("wal"), WalOptions::default()).map_err(store_err)?;
    wal.purge_to(log_id.index).map_err(store_err)?;
    let mut meta_store = MetaStore::open(&raft.join("meta")).map_err(store_err)?;
    meta_store.save("vote", &encode("vote", types::encode(&Vote::new(term, me)))?).map_err(store_err)?;
    let id = encode("log id", types::encode(&log_id))?;
    meta_store.save("purged", &id).map_err(store_err)?;
    meta_store.save("committed", &id).map_err(store_err)?;
    Ok(())
}

/// What a stopped node's directory holds: its tree, with every logged entry after the newest
/// snapshot applied.
pub struct StoredState {
    pub tree: DataTree,
    pub snapshot: LogId,
    /// Log entries applied on top of the snapshot.
    pub entries_applied: u64,
    /// Entries left out because they are not known to be committed (an ensemble member's tail).
    pub entries_skipped: u64,
}

/// Reads the tree a stopped node left in `raft`: the newest snapshot plus the log after it.
/// A single voter's durable entries are all committed; an ensemble member's log is applied up
/// to its saved committed id only.
pub fn read(raft: &Path) -> Result<StoredState, RoostDirError> {
    let snap_dir = raft.join("snap");
    if !snap_dir.is_dir() {
        return Err(RoostDirError::NoSnapshot { dir: raft.to_path_buf() });
    }
    let snapshots = SnapshotStore::open(&snap_dir).map_err(store_err)?;
    let stored = snapshots.latest().map_err(store_err)?.ok_or(RoostDirError::NoSnapshot { dir: snap_dir.clone() })?;
    let decode_err = |what: &str| {
        let what = format!("{}: {what}", snap_dir.display());
        move |e: Box<dyn std::error::Error + Send + Sync>| RoostDirError::Decode { what, source: e }
    };
    let meta: SnapshotMeta = types::decode(&stored.meta).map_err(|e| decode_err("snapshot meta")(Box::new(e)))?;
    let mut tree = DataTree::deserialize(&stored.data).map_err(|e| decode_err("snapshot")(Box::new(e)))?;
    let snapshot = meta.last_log_id.unwrap_or_else(|| types::log_id(0, 0));

    let wal = Wal::open(&raft.join("wal"), WalOptions::default()).map_err(store_err)?;
    let meta_store = MetaStore::open(&raft.join("meta")).map_err(store_err)?;
    let committed: Option<LogId> = match meta_store.load("committed").map_err(store_err)? {
        Some(bytes) => Some(types::decode(&bytes).map_err(|e| decode_err("committed id")(Box::new(e)))?),
        None => None,
    };
    let single_voter = meta.last_membership.membership().voter_ids().count() <= 1;
    let last = wal.last_index().unwrap_or(0);
    let upto = if single_voter { last } else { committed.map_or(0, |c| c.index).min(last) };
    let skipped = last.saturating_sub(upto.max(snapshot.index));
    let mut applied = 0;
    let mut next = snapshot.index + 1;
    while next <= upto {
        let chunk_end = (next + 1024).min(upto + 1);
        for (index, bytes) in wal.read_range(next, chunk_end).map_err(store_err)? {
            let entry: Entry =
                types::decode(&bytes).map_err(|e| decode_err(&format!("log entry {index}"))(Box::new(e)))?;
            if let openraft::EntryPayload::Normal(batch) = &entry.payload {
                let term = types::term_of(&entry.log_id);
                for txn in &batch.txns {
                    tree.apply(term, txn);
                }
            }
            applied += 1;
        }
        next = chunk_end;
    }
    if skipped > 0 {
        tracing::warn!(skipped, "log entries after the committed id were left out");
    }
    Ok(StoredState { tree, snapshot, entries_applied: applied, entries_skipped: skipped })
}
