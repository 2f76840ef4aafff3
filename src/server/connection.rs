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

/// What a connection's read buffer starts with (a ConnectRequest is 48 bytes).
const INITIAL_READ_BUFFER: usize = 1024;

/// Reads whole frames from a socket half.
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    max_len: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max_len: usize) -> Self {
        // Small at first: an idle session (most of 100,000) never needs more, and a busy
        // one grows it by doubling on its first reads.
        FrameReader { inner, buf: BytesMut::with_capacity(INITIAL_READ_BUFFER), max_len }
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
            if self.buf.len() == self.buf.capacity() {
                // Full: make room for at least as much again (`read_buf` alone would ask
                // for 64 bytes, and a pipelining client would be read 64 bytes a call).
                self.buf.reserve(self.buf.len().max(INITIAL_READ_BUFFER));
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn frame(len: usize, fill: u8) -> Vec<u8> {
        let mut f = (len as u32).to_be_bytes().to_vec();
        f.extend(std::iter::repeat_n(fill, len));
        f
    }

    /// The buffer starts at 1 KiB: frames far larger than that, and bursts of pipelined
    /// small ones, still come out whole and in order, and the buffer grows for a burst
    /// instead of being read a few bytes at a time.
    #[tokio::test]
    async fn frames_larger_than_the_first_buffer_and_long_bursts_arrive_whole() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut sent = frame(300_000, 7);
        for i in 0..2000 {
            sent.extend(frame(40, (i % 251) as u8));
        }
        sent.extend(frame(5000, 9));
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client
        });
        let mut reader = FrameReader::new(server, 1 << 20);
        assert_eq!(reader.next_frame().await.unwrap(), vec![7; 300_000]);
        for i in 0..2000 {
            assert_eq!(reader.next_frame().await.unwrap(), vec![(i % 251) as u8; 40], "frame {i}");
        }
        assert_eq!(reader.next_frame().await.unwrap(), vec![9; 5000]);
        assert!(reader.buf.capacity() >= 5000);
        let _client = writer.await.unwrap();
    }

    #[tokio::test]
    async fn an_idle_connection_keeps_the_small_buffer() {
        let (mut client, server) = tokio::io::duplex(4096);
        client.write_all(&frame(44, 1)).await.unwrap();
        let mut reader = FrameReader::new(server, 1 << 20);
        assert_eq!(reader.next_frame().await.unwrap().len(), 44);
        assert!(reader.buf.capacity() <= INITIAL_READ_BUFFER, "{}", reader.buf.capacity());
    }
}
