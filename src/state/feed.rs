//! The change feed of the HTTP port: recent applied changes, for `since_zxid` replay, and
//! the same changes live to the WebSocket clients.
//!
//! The replica publishes each applied batch here after it released the tree's write lock
//! ([`ChangeFeed::publish`]). An event is the change itself: its path moves in, its data and
//! ACL are shared with the write and the tree, so publishing copies no node data. While the
//! HTTP port is off the feed is disabled and publishing returns at once; while no WebSocket
//! client is connected it only keeps the newest events for replay (no copies, no wake-ups).
//!
//! Appending to the ring and sending to live clients happen under one lock, and a client
//! takes its receiver and starting cursor under the same lock ([`ChangeFeed::join`]), so
//! replay (ring, up to the cursor) plus live events (after it) have no gap and no
//! duplicate. The live channel's capacity bounds how far a client may lag: a lagging
//! client is a slow consumer and gets disconnected.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::proto::types::{Acl, Stat};
use crate::tree::txn::ChangeKind;

/// One applied change, as the HTTP layer's live views and WebSocket stream see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    pub zxid: i64,
    pub path: String,
    pub kind: ChangeKind,
    /// The node's stat right after the change (the parent's for ChildrenChanged); `None`
    /// once deleted.
    pub stat: Option<Stat>,
    /// The data the change wrote (Created, DataChanged); `None` otherwise.
    pub data: Option<Bytes>,
    /// Who may see it: the node's ACL with the change (the parent's for ChildrenChanged; for
    /// a node deleted by the txn, its ACL when it was deleted). A multi is one step: there it
    /// is the ACL after the whole txn.
    pub acl: Arc<Vec<Acl>>,
    /// Encodings a consumer makes once for all its clients (see [`EncodingCache`]).
    pub encodings: EncodingCache,
}

/// The encodings of one event that a consumer serving many clients makes once and shares
/// (the WebSocket stream's JSON, without and with the data): under a write load, encoding
/// each event again for each subscriber was most of the feed's cost. A clone starts
/// empty, so an event altered through `..ev.clone()` never carries the original's encoding.
#[derive(Default)]
pub struct EncodingCache([std::sync::OnceLock<Arc<str>>; 2]);

impl EncodingCache {
    /// The encoding `with_data` (or without), made by `encode` the first time it is asked for.
    pub fn get_or_encode(&self, with_data: bool, encode: impl FnOnce() -> Arc<str>) -> Arc<str> {
        self.0[usize::from(with_data)].get_or_init(encode).clone()
    }
}

impl Clone for EncodingCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// A cache is not part of what an event is.
impl PartialEq for EncodingCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for EncodingCache {}

impl std::fmt::Debug for EncodingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncodingCache")
    }
}

/// The outcome of a replay request.
#[derive(Debug)]
pub enum Replay {
    /// Events after `since` up to the client's cursor, oldest first.
    Events(Vec<Arc<ChangeEvent>>),
    /// `since` is older than the ring: the client must reload its state.
    TooOld,
}

struct Ring {
    events: VecDeque<Arc<ChangeEvent>>,
    /// Events kept for replay; 0 while disabled.
    capacity: usize,
    /// Events with a zxid <= floor may be missing from the ring.
    floor: i64,
    /// The zxid of the newest event seen (or the start zxid).
    last: i64,
    live: broadcast::Sender<Arc<ChangeEvent>>,
}

/// See the module docs.
pub struct ChangeFeed {
    enabled: AtomicBool,
    ring: Mutex<Ring>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl ChangeFeed {
    /// A disabled feed: nothing is kept until [`ChangeFeed::enable`].
    pub fn new() -> ChangeFeed {
        let ring = Ring { events: VecDeque::new(), capacity: 0, floor: 0, last: 0, live: broadcast::channel(1).0 };
        ChangeFeed { enabled: AtomicBool::new(false), ring: Mutex::new(ring) }
    }

    /// Starts keeping the last `capacity` events (history begins after `start_zxid`) and lets
    /// live clients lag by up to `live_queue` events. Called by the HTTP port's router; a
    /// second router on the same feed keeps the history and clients of the first.
    pub fn enable(&self, capacity: usize, live_queue: usize, start_zxid: i64) {
        let mut ring = self.ring.lock();
        if self.is_enabled() {
            ring.capacity = ring.capacity.max(capacity.max(1));
            return;
        }
        ring.events.clear();
        ring.capacity = capacity.max(1);
        ring.floor = start_zxid;
        ring.last = start_zxid;
        ring.live = broadcast::channel(live_queue.max(1)).0;
        self.enabled.store(true, Ordering::Release);
    }

    /// Whether anything is kept (the replica skips building events otherwise).
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Appends applied changes, in zxid order, and passes them to connected clients.
    pub fn publish(&self, events: Vec<ChangeEvent>) {
        if events.is_empty() || !self.is_enabled() {
            return;
        }
        let mut ring = self.ring.lock();
        let live = ring.live.receiver_count() > 0;
        for event in events {
            let event = Arc::new(event);
            ring.last = ring.last.max(event.zxid);
            if live {
                // A client that is too far behind notices by itself (it lags).
                let _ = ring.live.send(event.clone());
            }
            ring.events.push_back(event);
        }
        while ring.events.len() > ring.capacity {
            if let Some(old) = ring.events.pop_front() {
                ring.floor = old.zxid;
            }
        }
    }

    /// The zxid of the newest event published. A page read after this call shows every
    /// change up to it, so a stream that subscribes later with it as `since_zxid` misses
    /// nothing in between (it may see a few changes the page already shows, harmlessly).
    pub fn last_zxid(&self) -> i64 {
        self.ring.lock().last
    }

    /// A receiver for live events and the zxid it starts after (the client's cursor).
    pub fn join(&self) -> (broadcast::Receiver<Arc<ChangeEvent>>, i64) {
        let ring = self.ring.lock();
        (ring.live.subscribe(), ring.last)
    }

    /// Events with `since < zxid <= upto`, or `TooOld` if some may be missing.
    pub fn replay(&self, since: i64, upto: i64) -> Replay {
        let ring = self.ring.lock();
        // Changes of one multi share a zxid: if the floor event's zxid equals `since`,
        // siblings with the same zxid were evicted too, which the client already saw.
        if since < ring.floor {
            return Replay::TooOld;
        }
        Replay::Events(ring.events.iter().filter(|e| e.zxid > since && e.zxid <= upto).cloned().collect())
    }

    /// How many events are kept for replay.
    pub fn capacity(&self) -> usize {
        self.ring.lock().capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_encoded_once_and_an_altered_copy_encodes_afresh() {
        let ev = event(1, b"secret");
        assert_eq!(&*ev.encodings.get_or_encode(true, || "with secret".into()), "with secret");
        assert_eq!(&*ev.encodings.get_or_encode(true, || "again".into()), "with secret");
        assert_eq!(&*ev.encodings.get_or_encode(false, || "without".into()), "without");
        // A replay that strips the data must not send the encoding made with it.
        let stripped = ChangeEvent { data: None, ..ev.clone() };
        assert_eq!(&*stripped.encodings.get_or_encode(true, || "fresh".into()), "fresh");
    }

    fn event(zxid: i64, data: &'static [u8]) -> ChangeEvent {
        ChangeEvent {
            zxid,
            path: "/a".into(),
            kind: ChangeKind::DataChanged,
            stat: None,
            data: Some(Bytes::from_static(data)),
            acl: Arc::default(),
            encodings: EncodingCache::default(),
        }
    }

    #[test]
    fn a_disabled_feed_keeps_nothing() {
        let feed = ChangeFeed::new();
        feed.publish(vec![event(1, b"x")]);
        assert!(matches!(feed.replay(0, i64::MAX), Replay::Events(e) if e.is_empty()));
    }

    /// Events are kept for replay while nobody listens; a client joining later gets the
    /// ring up to its cursor and everything after it live; an evicted past is `TooOld`.
    #[test]
    fn replay_then_live_without_gap_and_bounded_history() {
        let feed = ChangeFeed::new();
        feed.enable(3, 8, 10);
        feed.publish(vec![event(11, b"1"), event(12, b"2")]);
        let (mut rx, cursor) = feed.join();
        assert_eq!(cursor, 12);
        feed.publish(vec![event(13, b"3")]);
        let Replay::Events(past) = feed.replay(10, cursor) else { panic!("ring holds the history") };
        assert_eq!(past.iter().map(|e| e.zxid).collect::<Vec<_>>(), [11, 12]);
        assert_eq!(rx.try_recv().unwrap().zxid, 13);
        // The data is the write's buffer, not a copy.
        let shared = Bytes::from(vec![7u8; 64]);
        feed.publish(vec![ChangeEvent { data: Some(shared.clone()), ..event(14, b"") }]);
        let live = rx.try_recv().unwrap();
        assert_eq!(live.data.as_ref().map(|d| d.as_ptr()), Some(shared.as_ptr()));
        // Capacity 3: 11 was evicted, so a replay from 10 may miss it; from 11 it may not.
        assert!(matches!(feed.replay(10, 14), Replay::TooOld));
        assert!(matches!(feed.replay(11, 14), Replay::Events(e) if e.len() == 3));
    }
}
