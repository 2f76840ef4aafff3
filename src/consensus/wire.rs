//! The server-to-server wire format: length-prefixed postcard frames on one TCP
//! connection per peer pair.
//!
//! Every frame is a big-endian `u32` length followed by that many bytes of postcard. A
//! connection starts with a [`Hello`] from the dialing side; after it, the dialer sends
//! [`RequestFrame`]s and the listener answers with [`ResponseFrame`]s carrying the same
//! `id`, in any order, so several RPCs (a heartbeat, an append, forwarded writes) can be
//! in flight at once. Frames larger than [`MAX_FRAME`] are refused before any buffer is
//! allocated for them, and bytes that do not decode are an error, never a panic.

use std::io;

use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::ConsensusError;
use super::types::{self, NodeId, SnapshotData, SnapshotMeta, TypeConfig, Vote};
use crate::tree::txn::{Txn, TxnOutcome};

/// Largest frame accepted. Snapshots travel in [`SNAPSHOT_CHUNK`]-sized pieces and
/// append requests are cut to about [`APPEND_BYTES`], so frames stay far below this.
pub const MAX_FRAME: usize = 512 << 20;

/// Bytes of snapshot data per [`Request::SnapshotChunk`]. Small enough that heartbeats
/// on the same connection are never queued behind more than a few milliseconds of it.
pub const SNAPSHOT_CHUNK: usize = 1 << 20;

/// Soft limit of the txn payload in one append request: entries beyond it are sent by
/// the next request (there is always at least one entry per request).
pub const APPEND_BYTES: usize = 8 << 20;

/// Identifies a Roost raft connection and its protocol version ("roost/r1").
pub const MAGIC: u64 = 0x726f_6f73_742f_7231;

/// First frame on every connection, from the dialer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub magic: u64,
    /// The dialer's node id (for logs).
    pub from: NodeId,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestFrame {
    pub id: u64,
    pub body: Request,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseFrame {
    pub id: u64,
    pub body: Response,
}

/// What one node asks another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    /// A whole snapshot in one frame, installed by the receiver in one step. Still
    /// served for peers of an older version; this version sends chunks instead.
    Snapshot {
        vote: Vote,
        meta: SnapshotMeta,
        data: SnapshotData,
    },
    /// Txns a follower received from its clients, for the leader to order (in this order).
    Forward(Vec<Txn>),
    /// A read index for `sync` on a follower: the log index the leader's state machine
    /// must reach for a read to be linearizable.
    ReadIndex,
    /// Sessions that had client activity on the sender since its last report.
    Touch(Vec<i64>),
    /// Liveness and bootstrap check: is the receiver's raft state initialized?
    Probe,
    /// The receiver's last log index: followers compare logs after their leader died, so
    /// that only the most up-to-date one campaigns (see `failover`).
    LastLog,
    /// A client's reconfig, for the leader to carry out.
    Reconfig(super::membership::ReconfigCall),
    /// A piece of a snapshot: `bytes` belong at `offset` of the `total`-byte snapshot
    /// data of transfer `transfer`. The receiver stages the pieces per connection, in
    /// frame order; a piece that does not continue the staged data (or starts a new
    /// transfer at offset 0) is refused.
    SnapshotChunk {
        transfer: u64,
        offset: u64,
        total: u64,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Installs the staged snapshot data of `transfer` (all `len` bytes of it) with
    /// `meta`, as [`Request::Snapshot`] would; answered with [`Response::Snapshot`].
    SnapshotInstall {
        transfer: u64,
        len: u64,
        vote: Vote,
        meta: SnapshotMeta,
    },
    /// A client re-attached `session_id` to the sender (ZooKeeper's REVALIDATE): the
    /// leader renews it with `timeout_ms` and makes the sender its owner, after applying
    /// up to `applied` (the sender's last applied index). Answered with
    /// [`Response::Revalidate`].
    Revalidate {
        session_id: i64,
        timeout_ms: i32,
        applied: u64,
    },
    /// [`Request::Forward`] stamped with the term the follower sent it in: the leader
    /// appends these txns in that term or not at all ([`RemoteError::TermPassed`]), so
    /// once the follower has applied an entry of a later term, a txn it has not seen
    /// applied never will be, whoever leads (see `forward::settle_from_log`). Answered with
    /// [`Response::Forward`]. `Forward` is still served for peers of an older version.
    ForwardInTerm {
        term: u64,
        txns: Vec<Txn>,
    },
}

/// The answer to a [`Request`] of the same frame id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    Append(AppendEntriesResponse<TypeConfig>),
    Vote(VoteResponse<TypeConfig>),
    Snapshot(SnapshotResponse<TypeConfig>),
    /// One result per forwarded txn, in order.
    Forward(Vec<Result<Committed, RemoteError>>),
    ReadIndex(Result<u64, RemoteError>),
    Touched,
    Probe {
        initialized: bool,
    },
    /// The outcome of a reconfig (see `membership::ReconfigHandler`).
    Reconfig(Result<Committed, RemoteError>),
    /// The receiver could not serve the request at all.
    Failed(RemoteError),
    LastLog(Option<u64>),
    /// A [`Request::SnapshotChunk`] was staged; `staged` bytes of the transfer so far.
    ChunkStaged {
        staged: u64,
    },
    /// Whether the revalidated session is valid (false: expired or expiring).
    Revalidate(Result<bool, RemoteError>),
}

/// A forwarded txn's outcome and the index of the log entry that carried it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Committed {
    pub index: u64,
    pub outcome: TxnOutcome,
}

/// A [`ConsensusError`] as it travels between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum RemoteError {
    #[error("not the leader (current leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("outcome unknown after a leader change")]
    OutcomeUnknown { leader: Option<NodeId> },
    #[error("no quorum")]
    NoQuorum,
    #[error("remote consensus stopped")]
    Stopped,
    #[error("remote failure: {0}")]
    Failed(String),
    /// A forwarded txn stamped with a term this leader no longer leads in: not appended.
    #[error("forwarded in term {sent_term}, the leader is in term {term}: not appended")]
    TermPassed { sent_term: u64, term: u64 },
}

impl From<&ConsensusError> for RemoteError {
    fn from(e: &ConsensusError) -> Self {
        match e {
            ConsensusError::NotLeader { leader } => RemoteError::NotLeader { leader: *leader },
            ConsensusError::OutcomeUnknown { leader } => RemoteError::OutcomeUnknown { leader: *leader },
            ConsensusError::NoQuorum => RemoteError::NoQuorum,
            ConsensusError::Stopped => RemoteError::Stopped,
            ConsensusError::TermPassed { sent_term, term } => {
                RemoteError::TermPassed { sent_term: *sent_term, term: *term }
            }
            other => RemoteError::Failed(other.to_string()),
        }
    }
}

impl From<RemoteError> for ConsensusError {
    fn from(e: RemoteError) -> Self {
        match e {
            RemoteError::NotLeader { leader } => ConsensusError::NotLeader { leader },
            RemoteError::OutcomeUnknown { leader } => ConsensusError::OutcomeUnknown { leader },
            RemoteError::NoQuorum => ConsensusError::NoQuorum,
            // The remote node stopping is, for us, a lost request of unknown fate.
            RemoteError::Stopped => ConsensusError::OutcomeUnknown { leader: None },
            RemoteError::Failed(message) => ConsensusError::Remote { message },
            RemoteError::TermPassed { sent_term, term } => ConsensusError::TermPassed { sent_term, term },
        }
    }
}

/// Serializes `value` into one frame (length prefix included).
pub fn encode_frame<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let body = types::encode(value)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("frame of {} bytes too large", body.len())));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// postcard's tag of [`Request::Append`] (the first variant, a varint).
const APPEND_REQUEST_TAG: u8 = 0;

/// Serializes request `id` into one frame, as [`encode_frame`] of a [`RequestFrame`] would,
/// byte for byte. An append request's entries are copied from their cached encodings
/// ([`types::encode_entry_into`]): the leader encodes a batch once for its WAL and all its
/// followers, instead of once more per follower and request.
pub fn encode_request_frame(id: u64, body: Request) -> io::Result<Vec<u8>> {
    if let Request::Append(rpc) = &body {
        return encode_append_frame(id, rpc);
    }
    encode_frame(&RequestFrame { id, body })
}

fn encode_append_frame(id: u64, rpc: &AppendEntriesRequest<TypeConfig>) -> io::Result<Vec<u8>> {
    let invalid = |e: postcard::Error| io::Error::new(io::ErrorKind::InvalidData, e);
    // The length prefix is filled in at the end.
    let mut frame = vec![0u8; 4];
    frame = postcard::to_extend(&id, frame).map_err(invalid)?;
    frame.push(APPEND_REQUEST_TAG);
    frame = postcard::to_extend(&rpc.vote, frame).map_err(invalid)?;
    frame = postcard::to_extend(&rpc.prev_log_id, frame).map_err(invalid)?;
    frame = postcard::to_extend(&rpc.entries.len(), frame).map_err(invalid)?;
    for entry in &rpc.entries {
        types::encode_entry_into(entry, &mut frame)?;
    }
    frame = postcard::to_extend(&rpc.leader_commit, frame).map_err(invalid)?;
    let body_len = frame.len() - 4;
    if body_len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("frame of {body_len} bytes too large")));
    }
    frame[..4].copy_from_slice(&(body_len as u32).to_be_bytes());
    Ok(frame)
}

/// Reads one frame's payload. `Ok(None)` on a clean end of stream before a frame starts.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("peer frame of {len} bytes exceeds {max}")));
    }
    // Grow while reading instead of trusting the length for one big allocation.
    let mut buf = Vec::with_capacity(len.min(1 << 20));
    let got = r.take(len as u64).read_to_end(&mut buf).await?;
    if got != len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer frame truncated"));
    }
    Ok(Some(buf))
}

/// Reads and decodes one frame; end of stream is `UnexpectedEof`.
pub async fn read_value<R: AsyncRead + Unpin, T: serde::de::DeserializeOwned>(r: &mut R) -> io::Result<T> {
    match read_frame(r, MAX_FRAME).await? {
        Some(bytes) => types::decode(&bytes),
        None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed the connection")),
    }
}

/// Encodes and writes one frame.
pub async fn write_value<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, value: &T) -> io::Result<()> {
    let frame = encode_frame(value)?;
    w.write_all(&frame).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::types::log_id;
    use crate::tree::txn::{OpResult, TxnOp};

    #[tokio::test]
    async fn frames_round_trip() {
        let req = RequestFrame {
            id: 9,
            body: Request::Forward(vec![Txn {
                session_id: 1,
                time_ms: 2,
                auth: vec![],
                op: TxnOp::Delete { path: "/x".into(), version: 3 },
            }]),
        };
        let bytes = encode_frame(&req).unwrap();
        let back: RequestFrame = read_value(&mut bytes.as_slice()).await.unwrap();
        assert_eq!(back.id, 9);
        assert!(matches!(back.body, Request::Forward(ref t) if t.len() == 1 && t[0].session_id == 1));

        let vote = VoteRequest::<TypeConfig>::new(Vote::new(3, 2), Some(log_id(2, 7)));
        let bytes = encode_frame(&RequestFrame { id: 1, body: Request::Vote(vote.clone()) }).unwrap();
        let back: RequestFrame = read_value(&mut bytes.as_slice()).await.unwrap();
        assert!(matches!(back.body, Request::Vote(v) if v == vote));

        let resp = ResponseFrame {
            id: 4,
            body: Response::Forward(vec![
                Ok(Committed { index: 5, outcome: TxnOutcome { zxid: 8, result: Ok(OpResult::SessionCreated) } }),
                Err(RemoteError::NotLeader { leader: Some(2) }),
            ]),
        };
        let bytes = encode_frame(&resp).unwrap();
        let back: ResponseFrame = read_value(&mut bytes.as_slice()).await.unwrap();
        match back.body {
            Response::Forward(v) => {
                assert_eq!(v[0].as_ref().unwrap().index, 5);
                assert_eq!(v[1], Err(RemoteError::NotLeader { leader: Some(2) }));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// An append request framed from its entries' cached encodings is byte for byte the
    /// frame a plain encoding gives (a peer of any version reads it), with and without a
    /// previous log id, a commit and entries.
    #[tokio::test]
    async fn append_frames_made_from_cached_entries_match_plain_frames() {
        let entries = crate::consensus::types::tests::sample_entries();
        for (prev, commit, entries) in [
            (None, None, vec![]),
            (Some(log_id(3, 8)), Some(log_id(3, 7)), entries.clone()),
            (Some(log_id(1 << 40, 1 << 60)), None, entries[..1].to_vec()),
        ] {
            let rpc = AppendEntriesRequest::<TypeConfig> {
                vote: Vote::new_committed(1 << 35, 2),
                prev_log_id: prev,
                entries,
                leader_commit: commit,
            };
            let id = 1 << 45;
            let plain = encode_frame(&RequestFrame { id, body: Request::Append(rpc.clone()) }).unwrap();
            let framed = encode_request_frame(id, Request::Append(rpc.clone())).unwrap();
            assert_eq!(framed, plain);
            let back: RequestFrame = read_value(&mut framed.as_slice()).await.unwrap();
            match back.body {
                Request::Append(r) => assert_eq!(
                    (r.vote, r.prev_log_id, r.entries, r.leader_commit),
                    (rpc.vote, rpc.prev_log_id, rpc.entries, rpc.leader_commit)
                ),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn oversized_and_garbage_frames_are_errors() {
        let mut huge = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        huge.extend_from_slice(&[0; 16]);
        assert!(read_frame(&mut huge.as_slice(), MAX_FRAME).await.is_err());

        let mut garbage = 3u32.to_be_bytes().to_vec();
        garbage.extend_from_slice(&[0xff, 0xff, 0xff]);
        assert!(read_value::<_, RequestFrame>(&mut garbage.as_slice()).await.is_err());

        let mut truncated = 10u32.to_be_bytes().to_vec();
        truncated.extend_from_slice(&[1, 2]);
        assert!(read_frame(&mut truncated.as_slice(), MAX_FRAME).await.is_err());

        let empty: &[u8] = &[];
        assert!(read_frame(&mut &*empty, MAX_FRAME).await.unwrap().is_none());
    }
}
