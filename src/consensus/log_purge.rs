//! The log purge's file work, on a thread of its own.
//!
//! openraft's core awaits `RaftLogStorage::purge` inline, and the log writer thread runs the
//! appends every write waits for. Putting a purge on disk takes several fsyncs (the purge point
//! in the meta store, the WAL's marker, the directory after the segment removal), so neither
//! may do it: the writer only detaches the purged segments from the WAL in memory
//! ([`Wal::detach_to`]) and hands them here. This thread then saves the purge point, then
//! writes the marker and deletes the files ([`DetachedSegments::remove`]); that order keeps the
//! meta store's purge point at or beyond the WAL's, which `LogStore::open` checks.
//!
//! The queue is one slot: purges that arrive while one is on disk fold into the slot
//! (the newest purge point, every detached file), so it stays bounded by the files that exist
//! and the writer never waits for this thread. The rare purge that empties the log (after a
//! snapshot install) runs inline through [`Purger::purge_now`], after anything pending.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::storage::meta::MetaStore;
use crate::storage::wal::{DetachedSegments, Wal};

/// Key of the purge point in the meta store.
pub(super) const KEY_PURGED: &str = "purged";

/// How long the thread sleeps between checks for a stop when no purge arrives.
#[cfg_attr(feature = "sim", allow(dead_code))]
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// A purge waiting to be put on disk.
struct Pending {
    /// The encoded purge point (a `LogId`) to save in the meta store.
    purged: Vec<u8>,
    segments: DetachedSegments,
}

#[derive(Default)]
struct Slot {
    pending: Option<Pending>,
    stop: bool,
}

struct Inner {
    slot: Mutex<Slot>,
    wake: Condvar,
    /// Held while a purge is written; the meta store saves only the purge point.
    disk: Mutex<MetaStore>,
}

/// Hands detached segments to the purge thread; see the module docs.
pub(super) struct Purger {
    inner: Arc<Inner>,
    join: Mutex<Option<JoinHandle<()>>>,
}

impl Purger {
    /// Starts the purge thread. `meta` must be a store of the log's meta directory that only
    /// this purger uses for [`KEY_PURGED`].
    pub(super) fn start(meta: MetaStore) -> io::Result<Purger> {
        let inner = Arc::new(Inner { slot: Mutex::new(Slot::default()), wake: Condvar::new(), disk: Mutex::new(meta) });
        // Under the simulator, purges are written inline (see `submit`): no thread whose
        // progress depends on real time.
        #[cfg(feature = "sim")]
        return Ok(Purger { inner, join: Mutex::new(None) });
        #[cfg(not(feature = "sim"))]
        {
            let thread = inner.clone();
            let join = std::thread::Builder::new().name("raft-log-purge".into()).spawn(move || thread.run())?;
            Ok(Purger { inner, join: Mutex::new(Some(join)) })
        }
    }

    /// Queues a purge without waiting: it folds into one already waiting.
    pub(super) fn submit(&self, purged: Vec<u8>, segments: DetachedSegments) {
        let mut slot = self.inner.slot.lock();
        match &mut slot.pending {
            Some(pending) => {
                pending.purged = purged;
                pending.segments.merge(segments);
            }
            None => slot.pending = Some(Pending { purged, segments }),
        }
        drop(slot);
        self.inner.wake.notify_one();
        #[cfg(feature = "sim")]
        self.settle();
    }

    /// Puts anything pending on disk, then runs a purge through `Wal::purge_to` on this thread.
    /// For purges that empty the log: their marker must not be overtaken by an older one.
    pub(super) fn purge_now(&self, purged: &[u8], wal: &Mutex<Wal>, upto: u64) -> io::Result<()> {
        let mut meta = self.inner.disk.lock();
        self.inner.write_pending(&mut meta);
        meta.save(KEY_PURGED, purged).map_err(io::Error::other)?;
        wal.lock().purge_to(upto).map_err(io::Error::other)
    }

    /// Waits until no purge is pending or being written (the log's files then match memory).
    pub(super) fn settle(&self) {
        let mut meta = self.inner.disk.lock();
        self.inner.write_pending(&mut meta);
    }

    /// Finishes the pending purge and stops the thread.
    pub(super) fn stop(&self) {
        self.inner.slot.lock().stop = true;
        self.inner.wake.notify_one();
        let join = self.join.lock().take();
        if let Some(join) = join {
            let _ = join.join();
        }
    }

    /// Holds the purge thread's disk lock: purges queue up behind it (for tests).
    #[cfg(test)]
    pub(super) fn block(&self) -> parking_lot::MutexGuard<'_, MetaStore> {
        self.inner.disk.lock()
    }

    /// Whether a purge is waiting for the thread (for tests).
    #[cfg(test)]
    pub(super) fn has_pending(&self) -> bool {
        self.inner.slot.lock().pending.is_some()
    }
}

impl Drop for Purger {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Inner {
    #[cfg_attr(feature = "sim", allow(dead_code))]
    fn run(&self) {
        loop {
            {
                let mut slot = self.slot.lock();
                if slot.pending.is_none() && !slot.stop {
                    self.wake.wait_for(&mut slot, IDLE_WAIT);
                }
                if slot.pending.is_none() {
                    if slot.stop {
                        return;
                    }
                    continue;
                }
            }
            // Taken under the disk lock, so `purge_now` cannot write a newer marker in
            // between and see it overwritten by this older one.
            let mut meta = self.disk.lock();
            self.write_pending(&mut meta);
        }
    }

    /// Writes the pending purge, if any. The caller holds the disk lock.
    fn write_pending(&self, meta: &mut MetaStore) {
        let Some(Pending { purged, segments }) = self.slot.lock().pending.take() else { return };
        let first_index = segments.first_index();
        // A failure leaves the files of an earlier purge point, which the next start accepts
        // (the log then starts earlier); the next purge writes a newer point anyway.
        if let Err(e) = meta.save(KEY_PURGED, &purged) {
            tracing::error!(error = %e, first_index, "could not save the log's purge point; purged files stay");
            return;
        }
        if let Err(e) = segments.remove() {
            tracing::error!(error = %e, first_index, "could not delete purged log segments");
        }
    }
}
