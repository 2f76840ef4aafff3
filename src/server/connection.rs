//! Framed IO on a client socket: read length-prefixed frames (bounded by
//! `jute.maxbuffer`), and a writer task that drains a connection's outbound queue,
//! coalescing queued frames into one `write_all`.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::db::Outbound;
use crate::proto::frame::{parse_frame, FrameError};

/// Why reading from a connection stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("client closed the connection")]
    Closed,
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
}

/// Reads whole frames from a socket half.
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    max_len: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max_len: usize) -> Self {
        FrameReader { inner, buf: BytesMut::with_capacity(16 * 1024), max_len }
    }

    /// Waits until at least `n` bytes are buffered (for the four-letter-word check).
    /// Returns false if the peer closed first.
    pub async fn fill_at_least(&mut self, n: usize) -> Result<bool, ReadError> {
        while self.buf.len() < n {
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The buffered bytes not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    pub fn consume(&mut self, n: usize) {
        self.buf.advance(n.min(self.buf.len()));
    }

    /// Returns the next frame's payload.
    pub async fn next_frame(&mut self) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some((consumed, payload)) = parse_frame(&self.buf, self.max_len)? {
                let payload = payload.to_vec();
                self.buf.advance(consumed);
                return Ok(payload);
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return Err(ReadError::Closed);
            }
        }
    }

    /// Reads whatever else the client sends, for `stmk`-style commands. Best effort.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// How many queued bytes the writer gathers before one write.
const COALESCE_LIMIT: usize = 256 * 1024;

/// Drains `rx` into the socket until the queue closes or an [`Outbound::Close`] arrives.
/// Returns the number of frames written.
pub async fn write_loop<W: AsyncWrite + Unpin>(
    mut sock: W,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    on_frames: impl Fn(u64),
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    'outer: while let Some(first) = rx.recv().await {
        let mut close = false;
        let mut frames = 0u64;
        match first {
            Outbound::Frame(f) => {
                buf.extend_from_slice(&f);
                frames += 1;
            }
            Outbound::Close => close = true,
        }
        while !close && buf.len() < COALESCE_LIMIT {
            match rx.try_recv() {
                Ok(Outbound::Frame(f)) => {
                    buf.extend_from_slice(&f);
                    frames += 1;
                }
                Ok(Outbound::Close) => close = true,
                Err(_) => break,
            }
        }
        if !buf.is_empty() {
            if sock.write_all(&buf).await.is_err() {
                break 'outer;
            }
            buf.clear();
            on_frames(frames);
        }
        if close {
            break;
        }
    }
    let _ = sock.flush().await;
    let _ = sock.shutdown().await;
}
