//! The raft transport, server side: the quorum-port listener.
//!
//! Each accepted connection must open with a [`wire::Hello`]; then every request frame is
//! answered with a response frame of the same id. Raft RPCs and read-index calls are
//! served concurrently (each in its own task), so a slow snapshot install does not hold
//! up heartbeats. Forwarded writes are *queued* in frame order before the next frame is
//! read, which keeps a follower's writes in the order it sent them; only the wait for
//! their commit runs in the background. Snapshot chunks are staged in frame order too,
//! per connection; the install of a complete snapshot runs in the background. A frame
//! that does not decode closes the connection (the peer redials); nothing a peer sends
//! can panic this node.

use std::sync::Arc;
use std::time::Duration;

use super::net::{self, TcpListener, TcpStream};
use openraft::async_runtime::WatchReceiver;
use openraft::ReadPolicy;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};

use super::batcher::Proposal;
use super::error::ConsensusError;
use super::failover;
use super::heard_commits::HeardCommits;
use super::types::{self, NodeId, Snapshot};
use super::wire::{self, Hello, RemoteError, Request, RequestFrame, Response, ResponseFrame};
use super::Core;

/// How long a new connection may take to introduce itself.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts peer connections until the task is aborted.
pub async fn serve(listener: TcpListener, core: Arc<Core>) {
    loop {
        match listener.accept().await {
            Ok((sock, remote)) => {
                let _ = sock.set_nodelay(true);
                let core = core.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_conn(sock, core).await {
                        tracing::debug!(%remote, error = %e, "raft peer connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "raft accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_conn(sock: TcpStream, core: Arc<Core>) -> std::io::Result<()> {
    let remote = sock.peer_addr().ok();
    // Reads on this member ask the kernel whether a leader's notices wait on this socket.
    let socket = net::duplicate_descriptor(&sock);
    let transport = core.peers.transport().clone();
    let accepted = transport.accept(sock).await?;
    let (mut rd, wr) = (accepted.reader, accepted.writer);
    let hello: Hello = tokio::time::timeout(HELLO_TIMEOUT, wire::read_value(&mut rd))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    if hello.magic != wire::MAGIC {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a roost raft peer"));
    }
    // Nothing a connection sends is acted on before it is bound to the member it claims to be.
    if let Err(why) =
        transport.authorize(accepted.certificate.as_ref(), hello.from, core.peers.address_of(hello.from).as_deref())
    {
        tracing::warn!(?remote, claimed = hello.from, "peer connection refused: {why}");
        return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, why));
    }
    tracing::debug!(peer = hello.from, "raft peer connected");
    let (mut rd, registration) = core.heard_commits.register(hello.from, socket, rd);
    let link = registration.link().clone();

    let (out, mut responses) = mpsc::unbounded_channel::<ResponseFrame>();
    let writer = tokio::spawn(async move {
        let mut wr = BufWriter::new(wr);
        while let Some(frame) = responses.recv().await {
            let bytes = match wire::encode_frame(&frame) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot encode a raft response");
                    continue;
                }
            };
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
            if responses.is_empty() && wr.flush().await.is_err() {
                return;
            }
        }
    });

    let mut staged: Option<Staged> = None;
    let result = async {
        loop {
            let frame: RequestFrame = wire::read_value(&mut rd).await?;
            let id = frame.id;
            match frame.body {
                // Chunks are staged inline, in frame order; only the install runs apart.
                Request::SnapshotChunk { transfer, offset, total, bytes } => {
                    let body = match stage(&mut staged, transfer, offset, total, &bytes) {
                        Ok(n) => Response::ChunkStaged { staged: n },
                        Err(why) => {
                            tracing::warn!(peer = hello.from, transfer, offset, "snapshot chunk refused: {why}");
                            Response::Failed(RemoteError::Failed(why))
                        }
                    };
                    let _ = out.send(ResponseFrame { id, body });
                }
                Request::SnapshotInstall { transfer, len, vote, meta } => match take_staged(&mut staged, transfer, len)
                {
                    Ok(data) => {
                        let (core, out) = (core.clone(), out.clone());
                        tokio::spawn(async move {
                            let body = handle(
                                &core,
                                hello.from,
                                Request::Snapshot { vote, meta, data: types::snapshot_data(data) },
                            )
                            .await;
                            let _ = out.send(ResponseFrame { id, body });
                        });
                    }
                    Err(why) => {
                        tracing::warn!(peer = hello.from, transfer, "snapshot install refused: {why}");
                        let _ = out.send(ResponseFrame { id, body: Response::Failed(RemoteError::Failed(why)) });
                    }
                },
                Request::Forward(txns) => forward_in_order(&core, hello.from, None, txns, id, &out).await,
                Request::ForwardInTerm { term, txns } => {
                    forward_in_order(&core, hello.from, Some(term), txns, id, &out).await
                }
                other => {
                    if let Request::Append(rpc) = &other {
                        // Here, before the task hop: a client read on this member from now on
                        // waits for the announced commit (see `heard_commits`).
                        core.heard_commits.announced(rpc);
                    }
                    let core = core.clone();
                    let out = out.clone();
                    tokio::spawn(async move {
                        let body = handle(&core, hello.from, other).await;
                        let _ = out.send(ResponseFrame { id, body });
                    });
                }
            }
            link.frame_handled();
        }
    }
    .await;
    drop(registration);
    // The leader's connection closing may mean its process died: check and campaign now,
    // not after the writer has drained (requests still being handled hold it open).
    tokio::spawn(failover::peer_disconnected(core.clone(), hello.from));
    drop(out);
    let _ = writer.await;
    result
}

/// Snapshot data received on one connection and not yet installed.
struct Staged {
    transfer: u64,
    total: u64,
    data: Vec<u8>,
}

/// Most memory reserved up front for a snapshot transfer (it grows past this as the
/// chunks arrive); a bogus `total` cannot make the node allocate much at once.
const MAX_RESERVE: u64 = 256 << 20;

/// Adds one chunk to the staged transfer; returns the bytes staged so far. A chunk at
/// offset 0 starts a transfer (dropping any earlier, unfinished one); any other chunk
/// must continue the staged transfer exactly.
fn stage(staged: &mut Option<Staged>, transfer: u64, offset: u64, total: u64, bytes: &[u8]) -> Result<u64, String> {
    if offset == 0 {
        let reserve = usize::try_from(total.min(MAX_RESERVE)).unwrap_or(0);
        *staged = Some(Staged { transfer, total, data: Vec::with_capacity(reserve) });
    }
    let Some(s) = staged.as_mut() else {
        return Err(format!("chunk at {offset} of transfer {transfer} without its start"));
    };
    let end = offset.checked_add(bytes.len() as u64);
    if s.transfer != transfer || s.total != total || s.data.len() as u64 != offset || end.is_none_or(|e| e > total) {
        let why = format!(
            "chunk {offset}+{} of transfer {transfer} ({total} bytes) does not continue transfer {} at {} of {}",
            bytes.len(),
            s.transfer,
            s.data.len(),
            s.total
        );
        *staged = None;
        return Err(why);
    }
    s.data.extend_from_slice(bytes);
    Ok(s.data.len() as u64)
}

/// Takes the complete data of `transfer` (`len` bytes) out of the staging area.
fn take_staged(staged: &mut Option<Staged>, transfer: u64, len: u64) -> Result<Vec<u8>, String> {
    match staged.take() {
        Some(s) if s.transfer == transfer && s.total == len && s.data.len() as u64 == len => Ok(s.data),
        Some(s) => Err(format!(
            "transfer {transfer} of {len} bytes does not match the staged transfer {} ({} of {} bytes)",
            s.transfer,
            s.data.len(),
            s.total
        )),
        None if len == 0 => Ok(Vec::new()),
        None => Err(format!("transfer {transfer} of {len} bytes was not staged")),
    }
}

type Wait = oneshot::Receiver<Result<wire::Committed, ConsensusError>>;

/// Queues txns forwarded by member `from` (sent in `sent_term`, if stamped) with this
/// node's batcher, in frame order, before the next frame is read; answers with each txn's
/// outcome in the background.
async fn forward_in_order(
    core: &Core,
    from: NodeId,
    sent_term: Option<u64>,
    txns: Vec<crate::tree::txn::Txn>,
    id: u64,
    out: &mpsc::UnboundedSender<ResponseFrame>,
) {
    let mut waits: Vec<Wait> = Vec::with_capacity(txns.len());
    for txn in txns {
        let (reply, wait) = oneshot::channel();
        let proposal = Proposal { txn, reply, from: Some(from), sent_term };
        if let Err(mpsc::error::SendError(p)) = core.proposals.send(proposal).await {
            let _ = p.reply.send(Err(ConsensusError::Stopped));
        }
        waits.push(wait);
    }
    let out = out.clone();
    tokio::spawn(async move {
        let mut results = Vec::with_capacity(waits.len());
        for w in waits {
            let r = match w.await {
                Ok(Ok(c)) => Ok(c),
                Ok(Err(e)) => Err(RemoteError::from(&e)),
                Err(_) => Err(RemoteError::Stopped),
            };
            results.push(r);
        }
        let _ = out.send(ResponseFrame { id, body: Response::Forward(results) });
    });
}

/// Whether a request of member `from` carrying `vote` comes from the leader this member
/// follows: the leader it knows, with the very vote it has granted (committed). A deposed
/// leader's older vote, or a candidate's, does not count.
fn is_from_followed_leader(
    metrics: &openraft::RaftMetrics<types::TypeConfig>,
    from: NodeId,
    vote: &types::Vote,
) -> bool {
    metrics.current_leader == Some(from) && metrics.vote == *vote && vote.is_committed()
}

/// Serves one request of member `from`.
async fn handle(core: &Core, from: NodeId, req: Request) -> Response {
    let stopped = || Response::Failed(RemoteError::Stopped);
    match req {
        Request::Append(rpc) => {
            let announcement = HeardCommits::announcement(&rpc);
            // The leader this member follows has reached it, now: say so before the append
            // is answered. The answer waits for the WAL's fsync, which can take seconds
            // behind a gigabyte of snapshot writeback (10M znodes); counted only at the
            // answer, the contact went stale, `has_quorum` turned false, and the member
            // closed every client connection while its leader was talking to it.
            if is_from_followed_leader(&core.raft.metrics().borrow_watched(), from, &rpc.vote) {
                core.heard_from_leader();
            }
            match core.raft.append_entries(rpc).await {
                Ok(resp) => {
                    core.heard_commits.answered(&resp, announcement);
                    // Also at the answer: the first append of a newly elected leader arrives
                    // before this member's metrics name that leader.
                    if !matches!(resp, openraft::raft::AppendEntriesResponse::HigherVote(_)) {
                        core.heard_from_leader();
                    }
                    Response::Append(resp)
                }
                Err(_) => stopped(),
            }
        }
        Request::Vote(rpc) => core.raft.vote(rpc).await.map_or_else(|_| stopped(), Response::Vote),
        Request::PreVote(rpc) => core.raft.pre_vote(rpc).await.map_or_else(|_| stopped(), Response::Vote),
        Request::Snapshot { vote, meta, data } => {
            core.raft.install_full_snapshot(vote, Snapshot { meta, snapshot: data }).await.map_or_else(
                |_| stopped(),
                |resp| {
                    core.heard_from_leader();
                    Response::Snapshot(resp)
                },
            )
        }
        Request::ReadIndex => match core.raft.get_read_linearizer(ReadPolicy::ReadIndex).await {
            Ok(linearizer) => Response::ReadIndex(Ok(linearizer.read_log_id().index())),
            Err(e) => Response::ReadIndex(Err(RemoteError::from(&ConsensusError::from(e)))),
        },
        Request::Touch(ids) => {
            core.touch_sessions(&ids);
            Response::Touched
        }
        Request::Probe => match core.raft.is_initialized().await {
            Ok(initialized) => Response::Probe { initialized },
            Err(_) => stopped(),
        },
        Request::LastLog => Response::LastLog(core.raft.metrics().borrow_watched().last_log_index),
        Request::Reconfig(call) => super::membership::serve_forwarded(core, from, call).await,
        Request::Revalidate { session_id, timeout_ms, applied } => {
            super::owners::serve_revalidate(core, from, session_id, timeout_ms, applied).await
        }
        Request::Forward(_)
        | Request::ForwardInTerm { .. }
        | Request::SnapshotChunk { .. }
        | Request::SnapshotInstall { .. } => Response::Failed(RemoteError::Failed("handled inline".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::types::Vote;

    /// Only an append of the leader this member follows, in the term it granted, counts as
    /// leader contact before it is answered.
    #[test]
    fn only_the_followed_leader_counts_as_contact_on_arrival() {
        let mut m = openraft::RaftMetrics::<types::TypeConfig>::new_initial(3);
        m.current_leader = Some(1);
        m.vote = Vote::new_committed(4, 1);
        assert!(is_from_followed_leader(&m, 1, &Vote::new_committed(4, 1)));
        assert!(!is_from_followed_leader(&m, 2, &Vote::new_committed(4, 1)), "another member");
        assert!(!is_from_followed_leader(&m, 1, &Vote::new_committed(3, 1)), "a deposed term");
        assert!(!is_from_followed_leader(&m, 1, &Vote::new(4, 1)), "a candidate's vote");
        m.current_leader = None;
        assert!(!is_from_followed_leader(&m, 1, &Vote::new_committed(4, 1)), "no leader known");
    }

    #[test]
    fn chunks_are_staged_in_order_and_taken_whole() {
        let mut staged = None;
        assert_eq!(stage(&mut staged, 7, 0, 5, b"ab"), Ok(2));
        assert_eq!(stage(&mut staged, 7, 2, 5, b"cde"), Ok(5));
        assert_eq!(take_staged(&mut staged, 7, 5).unwrap(), b"abcde");
        assert!(staged.is_none());
        // An empty snapshot has no chunks.
        assert_eq!(take_staged(&mut staged, 8, 0).unwrap(), b"");
    }

    #[test]
    fn gaps_foreign_transfers_and_overruns_are_refused() {
        let mut staged = None;
        assert!(stage(&mut staged, 1, 3, 9, b"x").is_err(), "no start");
        stage(&mut staged, 1, 0, 4, b"ab").unwrap();
        assert!(stage(&mut staged, 1, 3, 4, b"c").is_err(), "gap");
        assert!(staged.is_none(), "a refused chunk drops the transfer");
        stage(&mut staged, 1, 0, 4, b"ab").unwrap();
        assert!(stage(&mut staged, 2, 2, 4, b"cd").is_err(), "another transfer");
        stage(&mut staged, 1, 0, 4, b"ab").unwrap();
        assert!(stage(&mut staged, 1, 2, 4, b"cde").is_err(), "past the total");
        stage(&mut staged, 1, 0, 4, b"ab").unwrap();
        assert!(take_staged(&mut staged, 1, 4).is_err(), "incomplete");
        assert!(take_staged(&mut staged, 1, 4).is_err(), "not staged");
        // A new transfer at offset 0 replaces an unfinished one.
        stage(&mut staged, 1, 0, 4, b"ab").unwrap();
        stage(&mut staged, 2, 0, 2, b"xy").unwrap();
        assert_eq!(take_staged(&mut staged, 2, 2).unwrap(), b"xy");
    }
}
