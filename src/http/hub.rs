//! The event hub between the backend's change feed and the WebSocket clients.
//!
//! One task reads the backend feed, appends each event to a bounded ring buffer (for
//! `since_zxid` replay) and rebroadcasts it. Appending and rebroadcasting happen under
//! one lock, and a socket takes its receiver and its starting cursor under the same
//! lock, so replay (ring, up to the cursor) plus live events (after it) have no gap and
//! no duplicate. The broadcast capacity bounds how far a socket may lag: a lagging
//! socket is a slow consumer and gets disconnected.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::backend::{Backend, ChangeEvent};

/// What the hub broadcasts.
#[derive(Debug, Clone)]
pub enum HubMsg {
    Event(Arc<ChangeEvent>),
    /// The hub itself lost events (it lagged behind the backend): every client must resync.
    Resync,
}

struct Ring {
    events: VecDeque<Arc<ChangeEvent>>,
    /// Events with a zxid <= floor may be missing from the ring.
    floor: i64,
    /// The zxid of the newest event seen (or the start zxid).
    last: i64,
}

/// Ring buffer + rebroadcast.
pub struct Hub {
    ring: Arc<Mutex<Ring>>,
    tx: broadcast::Sender<HubMsg>,
    capacity: usize,
}

/// The outcome of a replay request.
#[derive(Debug)]
pub enum Replay {
    /// Events after `since` up to the socket's cursor, oldest first.
    Events(Vec<Arc<ChangeEvent>>),
    /// `since` is older than the ring: the client must reload its state.
    TooOld,
}

impl Hub {
    /// Starts the feeding task on the current tokio runtime.
    pub fn start(backend: Arc<dyn Backend>, capacity: usize, queue: usize) -> Hub {
        let start = backend.last_zxid();
        let ring = Arc::new(Mutex::new(Ring { events: VecDeque::new(), floor: start, last: start }));
        let (tx, _) = broadcast::channel(queue.max(1));
        let mut feed = backend.subscribe();
        let (ring2, tx2) = (ring.clone(), tx.clone());
        let cap = capacity.max(1);
        tokio::spawn(async move {
            loop {
                match feed.recv().await {
                    Ok(ev) => {
                        let mut r = ring2.lock();
                        let ev = Arc::new(ev);
                        r.last = r.last.max(ev.zxid);
                        r.events.push_back(ev.clone());
                        while r.events.len() > cap {
                            if let Some(old) = r.events.pop_front() {
                                r.floor = old.zxid;
                            }
                        }
                        // No receivers is fine.
                        let _ = tx2.send(HubMsg::Event(ev));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let mut r = ring2.lock();
                        r.events.clear();
                        r.floor = r.last;
                        let _ = tx2.send(HubMsg::Resync);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Hub { ring, tx, capacity: cap }
    }

    /// A receiver for live messages and the zxid it starts after (the socket's cursor).
    pub fn join(&self) -> (broadcast::Receiver<HubMsg>, i64) {
        let r = self.ring.lock();
        (self.tx.subscribe(), r.last)
    }

    /// Events with `since < zxid <= upto`, or `TooOld` if some may be missing.
    pub fn replay(&self, since: i64, upto: i64) -> Replay {
        let r = self.ring.lock();
        // Changes of one multi share a zxid: if the floor event's zxid equals `since`,
        // siblings with the same zxid were evicted too, which the client already saw.
        if since < r.floor {
            return Replay::TooOld;
        }
        Replay::Events(r.events.iter().filter(|e| e.zxid > since && e.zxid <= upto).cloned().collect())
    }

    /// How many events the ring keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}
