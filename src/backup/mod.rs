//! Backup and restore of the whole tree (docs/BACKUP.md).
//!
//! A backup is the tree as of one zxid in Roost's snapshot encoding
//! ([`DataTree::serialize`]: every znode with its data, ACL and stat, the sessions, the last
//! zxid; a crc32c over the body). The HTTP port serves it (`/commands/snapshot`, see
//! `http::backup`) and takes it back (`/commands/restore`); `roost backup` and
//! `roost restore` drive those commands, and `roost restore --to DATA_DIR` seeds a fresh
//! data directory instead ([`seed`]).
//!
//! Every restore goes through the replicated log as one `TxnOp::Restore` entry, so all
//! members replace their tree with the same one at the same point of the log.

pub mod backup_cmd;
pub mod http_client;
pub mod restore_cmd;
pub mod seed;

use crate::consensus::{Consensus, ConsensusError};
use crate::http::RestoreReport;
use crate::proto::types::ErrorCode;
use crate::tree::snapshot::SnapshotError;
use crate::tree::txn::{OpResult, Txn, TxnOp};
use crate::tree::DataTree;

/// What a valid backup holds, from a full decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub last_zxid: i64,
    pub nodes: usize,
    pub sessions: usize,
}

/// Decodes a backup whole (envelope, checksum, tree structure): what a restore will install.
pub fn check_image(bytes: &[u8]) -> Result<ImageInfo, SnapshotError> {
    let tree = DataTree::deserialize(bytes)?;
    Ok(ImageInfo { last_zxid: tree.last_zxid(), nodes: tree.node_count(), sessions: tree.session_count() })
}

/// Why a restore through the log did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RestoreFailure {
    #[error("the restore could not go through the log: {0}")]
    Consensus(#[from] ConsensusError),
    #[error("the tree has applied transactions already, so a restore meant for a fresh ensemble was not applied")]
    NotFresh,
    #[error("every member refused the snapshot ({0:?}); nothing was changed")]
    Refused(ErrorCode),
    #[error("unexpected result of the restore: {0:?}")]
    Unexpected(OpResult),
}

/// Proposes `TxnOp::Restore` with `image` and waits until it is applied here.
/// `image` should have passed [`check_image`]: bytes that do not decode are refused by
/// every member alike, but only after travelling through the log.
pub async fn restore_through_log(
    consensus: &Consensus,
    image: Vec<u8>,
    only_if_fresh: bool,
) -> Result<RestoreReport, RestoreFailure> {
    let txn = Txn {
        session_id: 0,
        time_ms: crate::server::handshake::now_ms(),
        auth: Vec::new(),
        op: TxnOp::Restore { snapshot: image, only_if_fresh },
    };
    let outcome = consensus.propose(txn).await?;
    match outcome.result {
        Ok(OpResult::Restored { backup_zxid }) => Ok(RestoreReport { zxid: outcome.zxid, backup_zxid }),
        Ok(other) => Err(RestoreFailure::Unexpected(other)),
        Err(ErrorCode::NodeExists) if only_if_fresh => Err(RestoreFailure::NotFresh),
        Err(code) => Err(RestoreFailure::Refused(code)),
    }
}

/// Bytes as a short human figure (`12.3 MiB`), for progress lines.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Progress lines on stderr for long transfers: at most one a second, and one at the end.
pub struct Progress {
    what: &'static str,
    total: Option<u64>,
    started: std::time::Instant,
    last_line: std::time::Instant,
}

impl Progress {
    pub fn new(what: &'static str, total: Option<u64>) -> Progress {
        let now = std::time::Instant::now();
        Progress { what, total, started: now, last_line: now }
    }

    /// `done` bytes so far; prints a line if a second passed since the last one.
    pub fn update(&mut self, done: u64) {
        if self.last_line.elapsed() >= std::time::Duration::from_secs(1) {
            self.last_line = std::time::Instant::now();
            eprintln!("{}", self.line(done));
        }
    }

    /// The final line.
    pub fn finish(&self, done: u64) {
        eprintln!("{} in {:.1} s", self.line(done), self.started.elapsed().as_secs_f64());
    }

    fn line(&self, done: u64) -> String {
        match self.total.filter(|t| *t > 0) {
            Some(total) => format!(
                "{}: {} of {} ({}%)",
                self.what,
                human_bytes(done),
                human_bytes(total),
                done.saturating_mul(100) / total
            ),
            None => format!("{}: {}", self.what, human_bytes(done)),
        }
    }
}
