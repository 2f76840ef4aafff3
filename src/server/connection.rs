//! Reading length-prefixed frames (bounded by `jute.maxbuffer`) from a client socket;
//! the writing side is [`super::outbound`].

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

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
