//! A connection's outbound queue: replies and watch events waiting for the socket.
//!
//! The queue itself is an unbounded channel, because its two producers must never block
//! on each other: the responder (replies, in request order) and the apply loop (watch
//! events, which must not wait for any one client). What bounds it is the byte count kept
//! beside it, per kind:
//! - **replies**: the responder calls [`OutboundQueue::wait_room`] before it answers the
//!   next request, so at most [`Limits::reply_bytes`] plus one reply are queued; a client
//!   that stops reading stops being answered, and (through the connection's request
//!   bound) stops being read;
//! - **events**: a client whose unsent events pass [`Limits::event_bytes`] is a slow
//!   consumer; the connection is *killed*: the writer stops at once (even in the middle
//!   of a write the client is not reading), the reader stops, and the reason is logged.
//!
//! [`Limits`]: super::flow::Limits

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

/// What a connection's writer task receives.
#[derive(Debug)]
pub enum Outbound {
    /// A reply frame (length-prefixed), counted against the reply budget.
    Reply(Bytes),
    /// A watch event's frame. Shared bytes: one event goes to every watcher without a copy each.
    Event(Bytes),
    /// Flush what came before, then close the socket.
    Close,
    /// Sent by [`OutboundQueue::kill`]: wakes a writer waiting for frames, which then
    /// sees the kill flag and stops.
    Killed,
}

/// The producer side, kept in the connection's `ConnHandle`.
#[derive(Debug)]
pub struct OutboundQueue {
    tx: mpsc::UnboundedSender<Outbound>,
    state: Arc<QueueState>,
}

#[derive(Debug)]
struct QueueState {
    reply_bytes: AtomicUsize,
    event_bytes: AtomicUsize,
    event_limit: usize,
    /// Signalled by the writer after each write, for [`OutboundQueue::wait_room`].
    drained: Notify,
    killed: AtomicBool,
    kill: Notify,
    kill_reason: Mutex<Option<&'static str>>,
}

/// The writer's side: frames in order, and the kill signal.
pub struct OutboundReceiver {
    rx: mpsc::UnboundedReceiver<Outbound>,
    state: Arc<QueueState>,
}

impl OutboundQueue {
    /// A queue whose connection is killed once more than `event_limit` bytes of events wait.
    pub fn new(event_limit: usize) -> (OutboundQueue, OutboundReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(QueueState {
            reply_bytes: AtomicUsize::new(0),
            event_bytes: AtomicUsize::new(0),
            event_limit,
            drained: Notify::new(),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            kill_reason: Mutex::new(None),
        });
        (OutboundQueue { tx, state: state.clone() }, OutboundReceiver { rx, state })
    }

    /// Queues a reply. The responder bounds these with [`wait_room`](Self::wait_room).
    pub fn reply(&self, frame: Bytes) {
        let len = frame.len();
        self.state.reply_bytes.fetch_add(len, Ordering::AcqRel);
        if self.tx.send(Outbound::Reply(frame)).is_err() {
            // The writer is gone: nothing will ever drain these bytes.
            self.state.reply_bytes.fetch_sub(len, Ordering::AcqRel);
        }
    }

    /// Queues a watch event; kills the connection instead when the client has left too
    /// many events unread. Returns false when the event was not queued.
    pub fn event(&self, frame: Bytes) -> bool {
        if self.is_killed() {
            return false;
        }
        let len = frame.len();
        let queued = self.state.event_bytes.fetch_add(len, Ordering::AcqRel) + len;
        if queued > self.state.event_limit {
            self.state.event_bytes.fetch_sub(len, Ordering::AcqRel);
            self.kill("slow consumer: too many unread watch events");
            return false;
        }
        if self.tx.send(Outbound::Event(frame)).is_err() {
            self.state.event_bytes.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Asks the writer to flush what is queued and close.
    pub fn close(&self) {
        let _ = self.tx.send(Outbound::Close);
    }

    /// Closes the connection now, dropping whatever is queued. The first reason is kept.
    pub fn kill(&self, reason: &'static str) {
        let mut first = self.state.kill_reason.lock();
        if first.is_none() {
            *first = Some(reason);
        }
        drop(first);
        self.state.killed.store(true, Ordering::Release);
        self.state.kill.notify_waiters();
        self.state.drained.notify_waiters();
        let _ = self.tx.send(Outbound::Killed);
    }

    pub fn is_killed(&self) -> bool {
        self.state.is_killed()
    }

    /// Why the connection was killed, if it was.
    pub fn kill_reason(&self) -> Option<&'static str> {
        *self.state.kill_reason.lock()
    }

    /// Resolves once the connection is killed.
    pub async fn killed(&self) {
        self.state.killed().await
    }

    /// Waits until fewer than `limit` reply bytes are queued (or the connection is killed).
    pub async fn wait_room(&self, limit: usize) {
        loop {
            let drained = self.state.drained.notified();
            if self.state.reply_bytes.load(Ordering::Acquire) < limit || self.is_killed() {
                return;
            }
            drained.await;
        }
    }

    /// Reply and event bytes not yet written to the socket.
    pub fn queued_bytes(&self) -> (usize, usize) {
        (self.state.reply_bytes.load(Ordering::Acquire), self.state.event_bytes.load(Ordering::Acquire))
    }
}

impl QueueState {
    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    async fn killed(&self) {
        loop {
            let kill = self.kill.notified();
            if self.is_killed() {
                return;
            }
            kill.await;
        }
    }

    fn written(&self, replies: usize, events: usize) {
        self.event_bytes.fetch_sub(events, Ordering::AcqRel);
        // Only the responder waits, and only for reply room: a write of events alone (a
        // watch fan-out's every write) need not take the waiters' lock.
        if replies > 0 {
            self.reply_bytes.fetch_sub(replies, Ordering::AcqRel);
            self.drained.notify_waiters();
        }
    }
}

/// How many queued bytes the writer gathers before one write.
const COALESCE_LIMIT: usize = 256 * 1024;

/// Drains the queue into the socket, coalescing queued frames into one `write_all`, until
/// the queue closes, an [`Outbound::Close`] arrives or the connection is killed.
/// `on_frames` is told how many frames each write carried.
pub async fn write_loop<W: AsyncWrite + Unpin>(mut sock: W, mut queue: OutboundReceiver, on_frames: impl Fn(u64)) {
    let state = queue.state.clone();
    // Grows to what the connection's traffic needs: an idle session's pings take a few
    // bytes, where 64 KiB up front was most of what 100,000 idle sessions cost.
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // An idle writer waits on the queue alone: a kill reaches it as `Outbound::Killed`
        // (registering with the kill signal around every wait cost two locks per watch event
        // of a fan-out). A kill while busy is seen here, at the next frame, and one while a
        // write is blocked by the select around that write.
        let first = queue.rx.recv().await;
        if state.is_killed() {
            return;
        }
        let Some(first) = first else { break };
        let (mut replies, mut events, mut frames) = (0usize, 0usize, 0u64);
        let mut close = false;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Outbound::Reply(f) => {
                    buf.extend_from_slice(&f);
                    replies += f.len();
                    frames += 1;
                }
                Outbound::Event(f) => {
                    buf.extend_from_slice(&f);
                    events += f.len();
                    frames += 1;
                }
                Outbound::Close => close = true,
                Outbound::Killed => return,
            }
            if !close && buf.len() < COALESCE_LIMIT {
                next = queue.rx.try_recv().ok();
            }
        }
        if !buf.is_empty() {
            let mut write = std::pin::pin!(sock.write_all(&buf));
            // Most writes fit the socket buffer and finish in this first poll.
            let written = match futures::FutureExt::now_or_never(write.as_mut()) {
                Some(r) => r,
                None => tokio::select! {
                    biased;
                    () = state.killed() => return,
                    r = write => r,
                },
            };
            if written.is_err() {
                break;
            }
            buf.clear();
            if buf.capacity() > 4 * COALESCE_LIMIT {
                buf = Vec::new(); // let one huge reply's buffer go
            }
            on_frames(frames);
        }
        state.written(replies, events);
        if close {
            break;
        }
    }
    let _ = sock.flush().await;
    let _ = sock.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn events_past_the_limit_kill_the_connection_and_stop_a_blocked_writer() {
        let (queue, rx) = OutboundQueue::new(100);
        // A socket nobody reads: the writer blocks in write_all once the pipe is full.
        let (client, server) = tokio::io::duplex(64);
        let writer = tokio::spawn(write_loop(server, rx, |_| {}));
        assert!(queue.event(Bytes::from(vec![1u8; 60])));
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The first event is in the writer's buffer, not counted any more only once written;
        // keep adding until the limit trips.
        let mut accepted = 0;
        while queue.event(Bytes::from(vec![2u8; 60])) {
            accepted += 1;
            assert!(accepted < 10, "the event limit never tripped");
        }
        assert!(queue.is_killed());
        assert_eq!(queue.kill_reason(), Some("slow consumer: too many unread watch events"));
        tokio::time::timeout(Duration::from_secs(5), writer).await.expect("writer stopped").expect("no panic");
        drop(client);
    }

    /// A writer with nothing to write stops as soon as its connection is killed, and
    /// closes the socket, without being given another frame.
    #[tokio::test]
    async fn an_idle_writer_stops_when_its_connection_is_killed() {
        let (queue, rx) = OutboundQueue::new(1 << 20);
        let (mut client, server) = tokio::io::duplex(1024);
        let writer = tokio::spawn(write_loop(server, rx, |_| {}));
        queue.reply(Bytes::from_static(b"hello"));
        let mut got = [0u8; 5];
        tokio::io::AsyncReadExt::read_exact(&mut client, &mut got).await.expect("reply");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!writer.is_finished());
        queue.kill("test");
        tokio::time::timeout(Duration::from_secs(5), writer).await.expect("writer stopped").expect("no panic");
        let mut rest = Vec::new();
        let read = tokio::io::AsyncReadExt::read_to_end(&mut client, &mut rest).await;
        assert!(read.is_ok() && rest.is_empty(), "{read:?} {rest:?}");
    }

    #[tokio::test]
    async fn wait_room_returns_once_the_writer_drained_the_replies() {
        let (queue, rx) = OutboundQueue::new(1 << 20);
        let (mut client, server) = tokio::io::duplex(16);
        let writer = tokio::spawn(write_loop(server, rx, |_| {}));
        queue.reply(Bytes::from(vec![7u8; 1000]));
        // Nothing reads yet: the room stays closed.
        let waited = tokio::time::timeout(Duration::from_millis(100), queue.wait_room(500)).await;
        assert!(waited.is_err(), "room opened although nothing was read");
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut client, &mut sink).await;
            sink.len()
        });
        tokio::time::timeout(Duration::from_secs(5), queue.wait_room(500)).await.expect("room after the read");
        assert_eq!(queue.queued_bytes(), (0, 0));
        queue.close();
        writer.await.expect("writer");
        assert_eq!(reader.await.expect("reader"), 1000);
    }
}
