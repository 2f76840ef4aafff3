//! Errors of the consensus layer. openraft's own error types stay inside this module:
//! callers see only these variants.

use std::io;

use openraft::errors::{ClientWriteError, Fatal, LinearizableReadError, RaftError};

use super::types::{NodeId, TypeConfig};

/// A boxed underlying cause, kept for logs and `source()` chains.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the application state could not be replaced by a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The snapshot bytes do not decode.
    #[error("corrupt snapshot")]
    Corrupt(#[source] Cause),
    /// The snapshot was written by an incompatible format version.
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u32),
}

#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// This node cannot order writes or serve linearizable reads; `leader` is the
    /// current leader if known.
    #[error("not the leader (current leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// The proposal's entry was appended but then replaced when this node followed a new
    /// leader: it may or may not have been committed.
    #[error("proposal discarded by a leader change; its outcome is unknown")]
    OutcomeUnknown { leader: Option<NodeId> },
    /// A forwarded write that its leader did not commit in the term it was sent in (the
    /// leader was replaced, or started a new term, first): it is not in the log and never
    /// will be.
    #[error("not committed: leader {leader} left the write's term before it reached a quorum")]
    NotCommitted { leader: NodeId, txn: Box<crate::tree::txn::Txn> },
    /// A forwarded txn that reached the leader after the term it was sent in: the leader
    /// refused it without appending it (see `wire::Request::ForwardInTerm`).
    #[error("forwarded in term {sent_term}, the leader is in term {term}: not appended")]
    TermPassed { sent_term: u64, term: u64 },
    /// A quorum could not be reached.
    #[error("no quorum")]
    NoQuorum,
    /// The raft node stopped because of a storage error or a bug; it must be restarted.
    #[error("consensus stopped fatally")]
    Fatal(#[source] Cause),
    /// The consensus layer was shut down.
    #[error("consensus is shut down")]
    Stopped,
    /// Opening, reading or writing the log, meta data or snapshots failed
    /// (including corrupt files found at startup).
    #[error("consensus storage error")]
    Storage(#[from] io::Error),
    /// The newest snapshot could not be restored into the application.
    #[error("snapshot restore failed")]
    Restore(#[from] RestoreError),
    /// The quorum port could not be bound.
    #[error("cannot listen on quorum address {addr}: {source}")]
    Listen { addr: String, source: io::Error },
    /// The raft settings are invalid (e.g. election timeout min >= max).
    #[error("invalid consensus configuration")]
    Config(#[source] Cause),
    /// Startup did not reach a leader and a recovered state in time.
    #[error("timed out waiting for a leader and log recovery")]
    StartupTimeout,
    /// The leader could not be reached; the request was not sent (safe to retry).
    #[error("leader {leader} is unreachable")]
    LeaderUnreachable { leader: NodeId },
    /// The leader committed the write but this node did not apply it in time.
    #[error("timed out waiting for log index {index} to be applied locally")]
    ApplyTimeout { index: u64 },
    /// Another node reported a failure it could not classify.
    #[error("remote node failed: {message}")]
    Remote { message: String },
    /// A membership change was refused or did not complete.
    #[error("membership change failed: {0}")]
    Membership(String),
    /// The state machine answered a batch with the wrong number of outcomes (a bug in `Apply`).
    #[error("apply returned {got} outcomes for a batch of {expected} txns")]
    OutcomeCountMismatch { expected: usize, got: usize },
}

impl ConsensusError {
    /// A copy for handing one failure to several callers (causes that cannot be
    /// cloned are kept as text).
    pub fn duplicate(&self) -> ConsensusError {
        match self {
            ConsensusError::NotLeader { leader } => ConsensusError::NotLeader { leader: *leader },
            ConsensusError::OutcomeUnknown { leader } => ConsensusError::OutcomeUnknown { leader: *leader },
            ConsensusError::NotCommitted { leader, txn } => {
                ConsensusError::NotCommitted { leader: *leader, txn: txn.clone() }
            }
            ConsensusError::TermPassed { sent_term, term } => {
                ConsensusError::TermPassed { sent_term: *sent_term, term: *term }
            }
            ConsensusError::NoQuorum => ConsensusError::NoQuorum,
            ConsensusError::Stopped => ConsensusError::Stopped,
            ConsensusError::StartupTimeout => ConsensusError::StartupTimeout,
            ConsensusError::LeaderUnreachable { leader } => ConsensusError::LeaderUnreachable { leader: *leader },
            ConsensusError::ApplyTimeout { index } => ConsensusError::ApplyTimeout { index: *index },
            ConsensusError::Remote { message } => ConsensusError::Remote { message: message.clone() },
            ConsensusError::Membership(message) => ConsensusError::Membership(message.clone()),
            ConsensusError::OutcomeCountMismatch { expected, got } => {
                ConsensusError::OutcomeCountMismatch { expected: *expected, got: *got }
            }
            other => ConsensusError::Fatal(other.to_string().into()),
        }
    }
}

impl From<Fatal<TypeConfig>> for ConsensusError {
    fn from(e: Fatal<TypeConfig>) -> Self {
        match e {
            Fatal::Stopped => ConsensusError::Stopped,
            other => ConsensusError::Fatal(Box::new(other)),
        }
    }
}

impl From<&ClientWriteError<TypeConfig>> for ConsensusError {
    fn from(e: &ClientWriteError<TypeConfig>) -> Self {
        match e {
            ClientWriteError::ForwardToLeader(f) => ConsensusError::NotLeader { leader: f.leader_id },
            ClientWriteError::LogEntryDiscarded(f) => ConsensusError::OutcomeUnknown { leader: f.leader_id },
            // Only membership changes and conditional writes produce these; `propose`
            // issues neither, so reaching here is an internal error.
            other => ConsensusError::Fatal(Box::new(other.clone())),
        }
    }
}

impl From<RaftError<TypeConfig, LinearizableReadError<TypeConfig>>> for ConsensusError {
    fn from(e: RaftError<TypeConfig, LinearizableReadError<TypeConfig>>) -> Self {
        match e {
            RaftError::APIError(LinearizableReadError::ForwardToLeader(f)) => {
                ConsensusError::NotLeader { leader: f.leader_id }
            }
            RaftError::APIError(LinearizableReadError::QuorumNotEnough(_)) => ConsensusError::NoQuorum,
            RaftError::Fatal(f) => f.into(),
        }
    }
}
