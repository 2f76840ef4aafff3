//! The raft transport, server side: the quorum-port listener.
//!
//! Each accepted connection must open with a [`wire::Hello`]; then every request frame is
//! answered with a response frame of the same id. Raft RPCs and read-index calls are
//! served concurrently (each in its own task), so a slow snapshot install does not hold
//! up heartbeats. Forwarded writes are *queued* in frame order before the next frame is
//! read, which keeps a follower's writes in the order it sent them; only the wait for
//! their commit runs in the background. A frame that does not decode closes the
//! connection (the peer redials); nothing a peer sends can panic this node.

use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::ReadPolicy;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use super::batcher::Proposal;
use super::failover;
use super::error::ConsensusError;
use super::types::Snapshot;
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
    let (mut rd, wr) = sock.into_split();
    let hello: Hello = tokio::time::timeout(HELLO_TIMEOUT, wire::read_value(&mut rd))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    if hello.magic != wire::MAGIC {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a roost raft peer"));
    }
    tracing::debug!(peer = hello.from, "raft peer connected");

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

    let result = async {
        loop {
            let frame: RequestFrame = wire::read_value(&mut rd).await?;
            let id = frame.id;
            match frame.body {
                Request::Forward(txns) => {
                    let waits = enqueue(&core, txns).await;
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
                other => {
                    let core = core.clone();
                    let out = out.clone();
                    tokio::spawn(async move {
                        let body = handle(&core, other).await;
                        let _ = out.send(ResponseFrame { id, body });
                    });
                }
            }
        }
    }
    .await;
    drop(out);
    let _ = writer.await;
    // The leader's connection closing may mean its process died: check and campaign now.
    tokio::spawn(failover::peer_disconnected(core.clone(), hello.from));
    result
}

type Wait = oneshot::Receiver<Result<wire::Committed, ConsensusError>>;

/// Queues forwarded txns with this node's batcher, in order.
async fn enqueue(core: &Core, txns: Vec<crate::tree::txn::Txn>) -> Vec<Wait> {
    let mut waits = Vec::with_capacity(txns.len());
    for txn in txns {
        let (reply, wait) = oneshot::channel();
        if let Err(mpsc::error::SendError(p)) = core.proposals.send(Proposal { txn, reply, forwarded: true }).await {
            let _ = p.reply.send(Err(ConsensusError::Stopped));
        }
        waits.push(wait);
    }
    waits
}

async fn handle(core: &Core, req: Request) -> Response {
    let stopped = || Response::Failed(RemoteError::Stopped);
    match req {
        Request::Append(rpc) => match core.raft.append_entries(rpc).await {
            Ok(resp) => {
                if !matches!(resp, openraft::raft::AppendEntriesResponse::HigherVote(_)) {
                    core.heard_from_leader();
                }
                Response::Append(resp)
            }
            Err(_) => stopped(),
        },
        Request::Vote(rpc) => core.raft.vote(rpc).await.map_or_else(|_| stopped(), Response::Vote),
        Request::PreVote(rpc) => core.raft.pre_vote(rpc).await.map_or_else(|_| stopped(), Response::Vote),
        Request::Snapshot { vote, meta, data } => core
            .raft
            .install_full_snapshot(vote, Snapshot { meta, snapshot: data })
            .await
            .map_or_else(|_| stopped(), |resp| {
                core.heard_from_leader();
                Response::Snapshot(resp)
            }),
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
        Request::Reconfig(call) => super::membership::serve_forwarded(core, call).await,
        Request::Forward(_) => Response::Failed(RemoteError::Failed("forward handled inline".into())),
    }
}
