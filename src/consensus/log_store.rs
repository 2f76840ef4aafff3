//! openraft's log storage over `storage::wal` (entries) and `storage::meta` (vote,
//! purge point, committed id).
//!
//! # Design
//! * **One writer thread** owns every write: WAL appends, truncation, purge and meta
//!   saves arrive on one queue and are executed in queue order, which is exactly the
//!   "all write IO is serialized" rule of `RaftLogStorage`.
//! * **Group commit**: appends that queue up while an fsync runs are written together by
//!   the next `Wal::append` call (one fdatasync), and each append's `IOFlushed` fires
//!   only after that call returned, i.e. after its data is durable.
//! * **Readable before durable**: openraft requires appended entries to be readable the
//!   moment `append` returns. They are kept in an in-memory tail cache (`MemState::cache`)
//!   until flushed; the cache also keeps a bounded number of recent durable entries so
//!   apply and replication rarely touch the disk.
//! * **Purges leave the write path**: the writer only detaches purged segments from the WAL
//!   in memory; the purge point and the file deletions are written by
//!   [`super::log_purge::Purger`]'s thread, and `purge` returns without waiting for either.
//! * The `committed` log id is an optimization (it lets a restart re-apply up to it
//!   without waiting for a new commit), so it is saved lazily, at most every
//!   [`COMMITTED_SAVE_INTERVAL`], instead of costing an extra fsync per append.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

// tokio's clock: the system clock on the writer thread in production, the simulated one where
// tests/sim.rs runs the writer inline (which committed id a crash leaves on disk must not
// depend on real time there).
use tokio::time::Instant;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::log_purge::{Purger, KEY_PURGED};
use super::types::{self, Entry, LogId, TypeConfig, Vote};
use crate::storage::meta::MetaStore;
use crate::storage::wal::{Wal, WalOptions};

/// Recent durable entries kept in memory (entries not yet durable are always kept):
/// at most this many, and at most this many encoded bytes. An entry carries a batch of
/// up to `max_batch` txns, so a count alone would let the cache hold a large share of
/// all data written since the last purge. Decoded txns take about 2.5 times their
/// encoded size (massif: 16 MiB encoded held ~40 MB), and replication only needs the
/// recent tail (a lagging follower is served from the WAL), so the window is small.
const CACHE_ENTRIES: usize = 1024;
const CACHE_BYTES: usize = 2 << 20;
/// Upper bound of entries returned by one `limited_get_log_entries` call.
const MAX_READ_ENTRIES: u64 = 4096;
/// How often at most the committed log id is written to the meta store.
const COMMITTED_SAVE_INTERVAL: Duration = Duration::from_millis(200);

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";

fn storage_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> io::Error {
    io::Error::other(e)
}

fn corrupt(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// In-memory view of the log, shared by the store, its readers and the writer thread.
struct MemState {
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
    /// Id of the last entry present (not purged); `None` if there is none.
    last_log: Option<LogId>,
    /// Contiguous entries ending at `last_log` (when non-empty).
    cache: VecDeque<Entry>,
    /// Encoded size of each cached entry (parallel to `cache`) and their sum.
    cache_sizes: VecDeque<usize>,
    cache_bytes: usize,
    /// One past the highest index known to be durable in the WAL (0: none).
    durable_end: u64,
    /// Bumped by every truncation, so a flush of entries that were truncated meanwhile
    /// does not mark their replacements durable.
    generation: u64,
}

impl MemState {
    fn cache_front(&self) -> Option<u64> {
        self.cache.front().map(|e| e.index())
    }

    fn push_back(&mut self, entry: Entry, size: usize) {
        self.cache.push_back(entry);
        self.cache_sizes.push_back(size);
        self.cache_bytes += size;
    }

    fn pop_front(&mut self) {
        self.cache.pop_front();
        self.cache_bytes -= self.cache_sizes.pop_front().unwrap_or(0);
    }

    fn pop_back(&mut self) {
        self.cache.pop_back();
        self.cache_bytes -= self.cache_sizes.pop_back().unwrap_or(0);
    }

    /// Drops the oldest cached entries that are durable and applied (`applied`: the
    /// last applied index), down to the cache bounds. Entries still to be applied stay:
    /// the state machine reads them next, and one batch can exceed the byte bound.
    fn evict(&mut self, applied: u64) {
        while self.cache.len() > CACHE_ENTRIES || self.cache_bytes > CACHE_BYTES {
            match self.cache.front() {
                Some(e) if e.index() < self.durable_end && e.index() <= applied => self.pop_front(),
                _ => break,
            }
        }
    }
}

struct Shared {
    wal: Mutex<Wal>,
    mem: Mutex<MemState>,
    /// The state machine's last applied index, once [`LogStore::track_applied`] set it.
    applied: std::sync::OnceLock<tokio::sync::watch::Receiver<u64>>,
    /// Number of `Wal::append` calls (one fdatasync each), for stats and tests.
    wal_writes: AtomicU64,
    /// Puts purges on disk off the writer thread.
    purger: Purger,
}

/// Commands executed, in order, by the writer thread.
enum Cmd {
    Append {
        records: Vec<(u64, Vec<u8>)>,
        generation: u64,
        callback: IOFlushed<TypeConfig>,
    },
    SaveMeta {
        key: &'static str,
        bytes: Vec<u8>,
        done: oneshot::Sender<io::Result<()>>,
    },
    Truncate {
        from: u64,
        done: oneshot::Sender<io::Result<()>>,
    },
    /// Fire and forget: the purge is in memory already (see `LogStore::purge`).
    Purge {
        upto: u64,
        purged: Vec<u8>,
    },
    Committed(Vec<u8>),
    Shutdown(oneshot::Sender<()>),
}

/// The openraft log store.
pub struct LogStore {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Cmd>,
    #[cfg(feature = "sim")]
    inline: Arc<sim::InlineWriter>,
}

/// Stops the writer thread once the store is no longer used; see [`WriterHandle::shutdown`].
pub struct WriterHandle {
    tx: mpsc::Sender<Cmd>,
    join: Mutex<Option<JoinHandle<()>>>,
    #[cfg(feature = "sim")]
    inline: Arc<sim::InlineWriter>,
}

impl WriterHandle {
    /// Flushes the pending committed id and waits for the writer thread to exit.
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Cmd::Shutdown(done)).is_ok() {
            #[cfg(feature = "sim")]
            self.inline.pump();
            let _ = wait.await;
        }
        let join = self.join.lock().take();
        if let Some(join) = join {
            let _ = tokio::task::spawn_blocking(move || join.join()).await;
        }
    }
}

impl LogStore {
    /// Keeps cached entries until the state machine applied them (see `MemState::evict`).
    pub fn track_applied(&self, applied: tokio::sync::watch::Receiver<u64>) {
        let _ = self.shared.applied.set(applied);
    }

    /// Opens (or creates) the WAL and meta store in `dir`, recovers the log bounds and
    /// starts the writer thread. A WAL that does not line up with the saved purge point,
    /// or entries that do not decode, are reported as errors.
    pub fn open(dir: &Path) -> io::Result<(LogStore, WriterHandle)> {
        Self::open_with(dir, WalOptions::default())
    }

    fn open_with(dir: &Path, wal_options: WalOptions) -> io::Result<(LogStore, WriterHandle)> {
        let wal = Wal::open(&dir.join("wal"), wal_options).map_err(storage_err)?;
        let meta = MetaStore::open(&dir.join("meta")).map_err(storage_err)?;
        let load = |key: &str| -> io::Result<Option<Vec<u8>>> { meta.load(key).map_err(storage_err) };
        let vote: Option<Vote> = load(KEY_VOTE)?.map(|b| types::decode(&b)).transpose()?;
        let last_purged: Option<LogId> = load(KEY_PURGED)?.map(|b| types::decode(&b)).transpose()?;
        let mut committed: Option<LogId> = load(KEY_COMMITTED)?.map(|b| types::decode(&b)).transpose()?;

        let purged_index = last_purged.map(|l| l.index);
        let next_after_purge = purged_index.map_or(0, |i| i + 1);
        let mut last_log = last_purged;
        if let (Some(first), Some(last)) = (wal.first_index(), wal.last_index()) {
            if first > next_after_purge && last >= next_after_purge {
                return Err(corrupt(format!(
                    "log hole: WAL starts at {first} but entries after {purged_index:?} are expected"
                )));
            }
            if last >= next_after_purge {
                let bytes = wal
                    .read(last)
                    .map_err(storage_err)?
                    .ok_or_else(|| corrupt(format!("WAL reports last index {last} but cannot read it")))?;
                let entry: Entry = types::decode(&bytes)?;
                if entry.index() != last {
                    return Err(corrupt(format!("WAL record {last} holds entry {}", entry.index())));
                }
                last_log = Some(entry.log_id());
            }
        }
        if committed.map(|c| c.index) > last_log.map(|l| l.index) {
            // Cannot happen with a healthy store (committed <= flushed); be conservative.
            tracing::warn!(?committed, ?last_log, "saved committed id is beyond the log; ignoring it");
            committed = None;
        }

        let mem = MemState {
            vote,
            committed,
            last_purged,
            last_log,
            cache: VecDeque::new(),
            cache_sizes: VecDeque::new(),
            cache_bytes: 0,
            durable_end: last_log.map_or(0, |l| l.index + 1),
            generation: 0,
        };
        let shared = Arc::new(Shared {
            wal: Mutex::new(wal),
            mem: Mutex::new(mem),
            applied: std::sync::OnceLock::new(),
            wal_writes: AtomicU64::new(0),
            purger: Purger::start(MetaStore::open(&dir.join("meta")).map_err(storage_err)?)?,
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer { shared: shared.clone(), meta, committed: None, committed_saved_at: Instant::now() };
        #[cfg(not(feature = "sim"))]
        {
            let join = std::thread::Builder::new().name("raft-log-writer".into()).spawn(move || writer.run(rx))?;
            let handle = WriterHandle { tx: tx.clone(), join: Mutex::new(Some(join)) };
            Ok((LogStore { shared, tx }, handle))
        }
        #[cfg(feature = "sim")]
        {
            let inline = Arc::new(sim::InlineWriter::new(writer, rx));
            let handle = WriterHandle { tx: tx.clone(), join: Mutex::new(None), inline: inline.clone() };
            Ok((LogStore { shared, tx, inline }, handle))
        }
    }

    /// How many group-commit WAL writes (fdatasyncs) were made so far.
    pub fn wal_writes(&self) -> u64 {
        self.shared.wal_writes.load(Ordering::Relaxed)
    }

    fn send(&self, cmd: Cmd) -> io::Result<()> {
        self.tx.send(cmd).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "raft log writer stopped"))?;
        #[cfg(feature = "sim")]
        self.inline.pump();
        Ok(())
    }

    /// Queues a command that replies, and waits for its result.
    async fn call(&self, make: impl FnOnce(oneshot::Sender<io::Result<()>>) -> Cmd) -> io::Result<()> {
        let (done, wait) = oneshot::channel();
        self.send(make(done))?;
        wait.await.map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "raft log writer stopped"))?
    }
}

/// The writer thread's state.
struct Writer {
    shared: Arc<Shared>,
    meta: MetaStore,
    /// Committed id not yet written to the meta store.
    committed: Option<Vec<u8>>,
    committed_saved_at: Instant,
}

/// Appends waiting for one group-commit WAL write.
#[derive(Default)]
struct PendingAppends {
    records: Vec<(u64, Vec<u8>)>,
    /// (generation, last index) of each append, to mark durability afterwards.
    marks: Vec<(u64, u64)>,
    callbacks: Vec<IOFlushed<TypeConfig>>,
}

impl Writer {
    #[cfg_attr(feature = "sim", allow(dead_code))]
    fn run(mut self, rx: mpsc::Receiver<Cmd>) {
        loop {
            let first = match rx.recv_timeout(COMMITTED_SAVE_INTERVAL) {
                Ok(cmd) => cmd,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.save_committed(false);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            // Take everything that queued up while the previous batch was written.
            let mut cmds = vec![first];
            cmds.extend(rx.try_iter());
            if self.handle(cmds) {
                break;
            }
        }
        self.finish();
    }

    /// Carries out one batch of commands; true once told to shut down.
    fn handle(&mut self, cmds: Vec<Cmd>) -> bool {
        let mut pending = PendingAppends::default();
        let mut stop = None;
        for cmd in cmds {
            match cmd {
                Cmd::Append { records, generation, callback } => {
                    if let Some(last) = records.last() {
                        pending.marks.push((generation, last.0));
                    }
                    pending.records.extend(records);
                    pending.callbacks.push(callback);
                }
                Cmd::Committed(bytes) => self.committed = Some(bytes),
                Cmd::Shutdown(done) => stop = Some(done),
                other => {
                    self.flush(std::mem::take(&mut pending));
                    self.execute(other);
                }
            }
        }
        self.flush(pending);
        self.save_committed(false);
        if let Some(done) = stop {
            self.save_committed(true);
            let _ = done.send(());
            return true;
        }
        false
    }

    fn finish(&mut self) {
        self.save_committed(true);
        self.shared.purger.stop();
    }

    /// Writes the queued appends with one WAL call (one fdatasync), then reports them.
    fn flush(&mut self, pending: PendingAppends) {
        if pending.callbacks.is_empty() {
            return;
        }
        let refs: Vec<(u64, &[u8])> = pending.records.iter().map(|(i, b)| (*i, b.as_slice())).collect();
        let result = if refs.is_empty() {
            Ok(())
        } else {
            self.shared.wal_writes.fetch_add(1, Ordering::Relaxed);
            self.shared.wal.lock().append(&refs)
        };
        match result {
            Ok(()) => {
                let mut mem = self.shared.mem.lock();
                for (generation, last) in pending.marks {
                    if generation == mem.generation && last + 1 > mem.durable_end {
                        mem.durable_end = last + 1;
                    }
                }
                let applied = self.shared.applied.get().map_or(u64::MAX, |rx| *rx.borrow());
                mem.evict(applied);
                drop(mem);
                for cb in pending.callbacks {
                    cb.io_completed(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "raft log append failed");
                let msg = e.to_string();
                for cb in pending.callbacks {
                    cb.io_completed(Err(io::Error::other(msg.clone())));
                }
            }
        }
    }

    fn execute(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::SaveMeta { key, bytes, done } => {
                let _ = done.send(self.meta.save(key, &bytes).map_err(storage_err));
            }
            Cmd::Truncate { from, done } => {
                // Rare (a new leader overwrote our tail): let the files catch up first, so
                // the truncation never races a purge's marker.
                self.shared.purger.settle();
                let _ = done.send(self.shared.wal.lock().truncate_from(from).map_err(storage_err));
            }
            Cmd::Purge { upto, purged } => self.purge(upto, purged),
            Cmd::Append { .. } | Cmd::Committed(_) | Cmd::Shutdown(_) => {}
        }
    }

    /// Detaches the purged segments and hands them to the purger; a purge that empties the
    /// log (after a snapshot install) is written here, as the next append may start past a
    /// gap. A failure is logged: the log then keeps entries in front, which is harmless, and
    /// a failed WAL write poisons the WAL, which fails the next append.
    fn purge(&mut self, upto: u64, purged: Vec<u8>) {
        let empties = self.shared.wal.lock().purge_empties(upto);
        let result = if empties {
            self.shared.purger.purge_now(&purged, &self.shared.wal, upto)
        } else {
            match self.shared.wal.lock().detach_to(upto) {
                Ok(Some(segments)) => {
                    self.shared.purger.submit(purged, segments);
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(storage_err(e)),
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, upto, "raft log purge failed");
        }
    }

    /// Writes the latest committed id if it changed and (unless `force`) the last write
    /// is old enough.
    fn save_committed(&mut self, force: bool) {
        if !force && self.committed_saved_at.elapsed() < COMMITTED_SAVE_INTERVAL {
            return;
        }
        if let Some(bytes) = self.committed.take() {
            if let Err(e) = self.meta.save(KEY_COMMITTED, &bytes) {
                tracing::warn!(error = %e, "failed to save the committed log id");
            }
            self.committed_saved_at = Instant::now();
        }
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let mem = self.shared.mem.lock();
        Ok(LogState { last_purged_log_id: mem.last_purged, last_log_id: mem.last_log })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader { shared: self.shared.clone() }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let bytes = types::encode(vote)?;
        self.call(|done| Cmd::SaveMeta { key: KEY_VOTE, bytes, done }).await?;
        self.shared.mem.lock().vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.shared.mem.lock().committed = committed;
        if let Some(c) = committed {
            self.send(Cmd::Committed(types::encode(&c)?))?;
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.shared.mem.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let records =
            entries.iter().map(|e| Ok((e.index(), types::encode_entry(e)?))).collect::<io::Result<Vec<_>>>()?;
        let generation = {
            let mut mem = self.shared.mem.lock();
            for (entry, (_, record)) in entries.into_iter().zip(&records) {
                let expected = mem.last_log.map_or(0, |l| l.index + 1);
                if entry.index() != expected && mem.last_log.is_some() {
                    return Err(corrupt(format!("append of {} would leave a hole after {expected}", entry.index())));
                }
                mem.last_log = Some(entry.log_id());
                mem.push_back(entry, record.len());
            }
            mem.generation
        };
        self.send(Cmd::Append { records, generation, callback })
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |l| l.index + 1);
        {
            let mut mem = self.shared.mem.lock();
            while mem.cache.back().is_some_and(|e| e.index() >= from) {
                mem.pop_back();
            }
            mem.generation += 1;
            mem.durable_end = mem.durable_end.min(from);
            // Truncating after a point beyond the end is a no-op.
            if mem.last_log.map(|l| l.index) >= Some(from) {
                mem.last_log = match last_log_id {
                    Some(l) if mem.last_purged.map(|p| p.index) < Some(l.index) => Some(l),
                    _ => mem.last_purged,
                };
            }
        }
        self.call(|done| Cmd::Truncate { from, done }).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let purged = types::encode(&log_id)?;
        {
            let mut mem = self.shared.mem.lock();
            while mem.cache.front().is_some_and(|e| e.index() <= log_id.index) {
                mem.pop_front();
            }
            mem.last_purged = Some(log_id);
            if mem.last_log.map(|l| l.index) < Some(log_id.index) {
                mem.last_log = Some(log_id);
            }
        }
        // The files follow in queue order; nothing waits for them (see `Writer::purge`).
        self.send(Cmd::Purge { upto: log_id.index, purged })
    }
}

/// Reads the log for openraft's apply and replication tasks.
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl LogReader {
    /// Returns the entries in `[start, end)` that the log contains, without holes.
    async fn read(&self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        let (start, end, cached, wal_end) = {
            let mem = self.shared.mem.lock();
            let start = start.max(mem.last_purged.map_or(0, |l| l.index + 1));
            let end = end.min(mem.last_log.map_or(0, |l| l.index + 1));
            if start >= end {
                return Ok(Vec::new());
            }
            let front = mem.cache_front().unwrap_or(end).clamp(start, end);
            let cached: Vec<Entry> =
                mem.cache.iter().filter(|e| e.index() >= front && e.index() < end).cloned().collect();
            (start, end, cached, front)
        };
        let mut out = if start < wal_end {
            let shared = self.shared.clone();
            let records = super::net::blocking(move || shared.wal.lock().read_range(start, wal_end))
                .await?
                .map_err(storage_err)?;
            records.iter().map(|(_, bytes)| types::decode::<Entry>(bytes)).collect::<io::Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        out.extend(cached);
        if out.is_empty() && self.shared.mem.lock().last_purged.is_some_and(|p| p.index + 1 >= end) {
            // The whole range was purged while it was being read: tolerated at the front.
            return Ok(out);
        }
        check_contiguous(&out, start, end)?;
        Ok(out)
    }
}

/// Entries must be consecutive and may only miss a prefix (purged meanwhile).
fn check_contiguous(entries: &[Entry], start: u64, end: u64) -> io::Result<()> {
    let Some(first) = entries.first() else {
        return Err(corrupt(format!("log entries [{start}, {end}) are missing")));
    };
    for (offset, entry) in entries.iter().enumerate() {
        if entry.index() != first.index() + offset as u64 {
            return Err(corrupt(format!("log hole before entry {} in [{start}, {end})", entry.index())));
        }
    }
    let last = first.index() + entries.len() as u64 - 1;
    if last + 1 != end {
        return Err(corrupt(format!("log entries ({last}, {end}) are missing")));
    }
    Ok(())
}

fn range_to_bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = range_to_bounds(&range);
        self.read(start, end).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.shared.mem.lock().vote)
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<Entry>, io::Error> {
        self.read(start, end.min(start.saturating_add(MAX_READ_ENTRIES))).await
    }
}

/// Under the simulator (tests/sim.rs) the writer has no thread: each command is carried out
/// at once, on the task that sent it, by the same code the thread runs. A real thread would
/// finish its fsync at a moment of real time, i.e. at a varying point of simulated time,
/// and the simulator would have to wait for it after every step.
#[cfg(feature = "sim")]
mod sim {
    use super::*;

    pub(super) struct InlineWriter {
        state: Mutex<Option<(Writer, mpsc::Receiver<Cmd>)>>,
    }

    impl InlineWriter {
        pub(super) fn new(writer: Writer, rx: mpsc::Receiver<Cmd>) -> InlineWriter {
            InlineWriter { state: Mutex::new(Some((writer, rx))) }
        }

        /// Carries out every queued command (as one batch, as the thread would).
        pub(super) fn pump(&self) {
            let mut state = self.state.lock();
            let Some((writer, rx)) = state.as_mut() else { return };
            let cmds: Vec<Cmd> = rx.try_iter().collect();
            if !cmds.is_empty() && writer.handle(cmds) {
                if let Some((mut writer, _)) = state.take() {
                    writer.finish();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use openraft::type_config::TypeConfigExt;

    use super::*;

    fn blank(term: u64, index: u64) -> Entry {
        Entry::new_blank(types::log_id(term, index))
    }

    /// Appends queued while the WAL is busy share one write, and no callback fires
    /// before its entries are on disk; entries are readable right after `append`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::await_holding_lock)] // holding the WAL lock is the point: it stalls the writer
    async fn queued_appends_are_group_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, writer) = LogStore::open(dir.path()).unwrap();
        let mut reader = store.get_log_reader().await;

        let shared = store.shared.clone();
        let busy = shared.wal.lock(); // simulate a long fsync
        let mut flushed = Vec::new();
        for i in 0..50 {
            let (tx, rx) = TypeConfig::oneshot();
            store.append([blank(1, i)], IOFlushed::signal(tx)).await.unwrap();
            flushed.push(rx);
        }
        assert_eq!(reader.try_get_log_entries(0..50).await.unwrap().len(), 50, "readable before durable");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(flushed[49].try_recv().is_err(), "callback fired before the write");
        drop(busy);
        for rx in flushed {
            rx.await.unwrap().unwrap();
        }
        assert!(store.wal_writes() <= 2, "50 queued appends took {} writes", store.wal_writes());
        writer.shutdown().await;
        drop((store, reader));

        // Everything is durable: a reopened store sees all 50 entries.
        let (mut store, writer) = LogStore::open(dir.path()).unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(types::log_id(1, 49)));
        let mut reader = store.get_log_reader().await;
        assert_eq!(
            reader.try_get_log_entries(10..20).await.unwrap(),
            (10..20).map(|i| blank(1, i)).collect::<Vec<_>>()
        );
        writer.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vote_purge_and_truncate_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, writer) = LogStore::open(dir.path()).unwrap();
            for i in 0..20 {
                let (tx, rx) = TypeConfig::oneshot();
                store.append([blank(1, i)], IOFlushed::signal(tx)).await.unwrap();
                rx.await.unwrap().unwrap();
            }
            store.save_vote(&Vote::new_committed(3, 1)).await.unwrap();
            store.purge(types::log_id(1, 4)).await.unwrap();
            store.truncate_after(Some(types::log_id(1, 14))).await.unwrap();
            writer.shutdown().await;
        }
        let (mut store, writer) = LogStore::open(dir.path()).unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(types::log_id(1, 4)));
        assert_eq!(state.last_log_id, Some(types::log_id(1, 14)));
        let mut reader = store.get_log_reader().await;
        assert_eq!(reader.read_vote().await.unwrap(), Some(Vote::new_committed(3, 1)));
        let entries = reader.try_get_log_entries(0..100).await.unwrap();
        assert_eq!(entries.first().map(|e| e.index()), Some(5));
        assert_eq!(entries.len(), 10);
        writer.shutdown().await;
    }

    /// Small segments, so that purges detach whole segment files.
    fn small_segments() -> WalOptions {
        WalOptions { segment_size: 256, preallocate: 0 }
    }

    async fn append_durably(store: &mut LogStore, range: std::ops::Range<u64>) {
        for i in range {
            let (tx, rx) = TypeConfig::oneshot();
            store.append([blank(1, i)], IOFlushed::signal(tx)).await.unwrap();
            rx.await.unwrap().unwrap();
        }
    }

    /// The first index of each segment file of the WAL.
    fn segment_starts(dir: &Path) -> Vec<u64> {
        let names = std::fs::read_dir(dir.join("wal")).unwrap().map(|e| e.unwrap().file_name());
        names.filter_map(|n| n.to_str()?.strip_suffix(".seg")?.parse().ok()).collect()
    }

    fn segment_files(dir: &Path) -> usize {
        segment_starts(dir).len()
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &to.join(entry.file_name()));
            } else {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }

    /// A purge returns and later appends become durable while the purge's file work cannot
    /// run at all (its thread is held): appends never wait for a purge. The files as they
    /// are meanwhile (a crash image) open with the log starting earlier; once the purge
    /// thread runs, the purge point and the segment deletions reach the disk.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::await_holding_lock)] // holding the purge thread's lock is the point
    async fn appends_go_on_while_a_purge_waits_for_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, writer) = LogStore::open_with(dir.path(), small_segments()).unwrap();
        append_durably(&mut store, 0..40).await;
        let files_before = segment_files(dir.path());
        assert!(files_before >= 4, "{files_before} segments");

        let shared = store.shared.clone();
        let held = shared.purger.block();
        store.purge(types::log_id(1, 29)).await.unwrap();
        append_durably(&mut store, 40..60).await;
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(types::log_id(1, 29)));
        assert_eq!(state.last_log_id, Some(types::log_id(1, 59)));
        assert!(store.shared.purger.has_pending(), "the purge's file work ran although its thread was held");
        assert!(segment_files(dir.path()) >= files_before, "segments were deleted on the write path");

        // kill -9 now: the purge point never reached the disk, every entry is still there.
        let image = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), image.path());
        {
            let (mut crashed, crashed_writer) = LogStore::open_with(image.path(), small_segments()).unwrap();
            let state = crashed.get_log_state().await.unwrap();
            assert_eq!(state.last_purged_log_id, None);
            assert_eq!(state.last_log_id, Some(types::log_id(1, 59)));
            let mut reader = crashed.get_log_reader().await;
            assert_eq!(reader.try_get_log_entries(0..60).await.unwrap().len(), 60);
            crashed_writer.shutdown().await;
        }

        drop(held);
        store.shared.purger.settle();
        assert!(!store.shared.purger.has_pending());
        let starts = segment_starts(dir.path());
        assert!(!starts.contains(&0), "purged segments are still on disk: {starts:?}");
        assert_eq!(starts.len(), shared.wal.lock().segment_count());
        writer.shutdown().await;
        drop(store);
        let (mut store, writer) = LogStore::open_with(dir.path(), small_segments()).unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(types::log_id(1, 29)));
        assert_eq!(state.last_log_id, Some(types::log_id(1, 59)));
        let mut reader = store.get_log_reader().await;
        let entries = reader.try_get_log_entries(0..60).await.unwrap();
        assert_eq!(entries.first().map(|e| e.index()), Some(30));
        assert_eq!(entries.len(), 30);
        writer.shutdown().await;
    }

    /// Purges queued behind a held purge thread fold into one; a purge that empties the log
    /// (a snapshot install) writes them first, so its marker is the one on disk, and the
    /// log then continues past the gap.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::await_holding_lock)] // holding the purge thread's lock is the point
    async fn a_purge_that_empties_the_log_lands_after_pending_ones() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, writer) = LogStore::open_with(dir.path(), small_segments()).unwrap();
            append_durably(&mut store, 0..40).await;
            let shared = store.shared.clone();
            let held = shared.purger.block();
            store.purge(types::log_id(1, 9)).await.unwrap();
            store.purge(types::log_id(1, 19)).await.unwrap();
            drop(held);
            store.purge(types::log_id(1, 99)).await.unwrap();
            append_durably(&mut store, 100..110).await;
            writer.shutdown().await;
        }
        assert!(segment_starts(dir.path()).iter().all(|&first| first >= 100), "{:?}", segment_starts(dir.path()));
        let (mut store, writer) = LogStore::open_with(dir.path(), small_segments()).unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(types::log_id(1, 99)));
        assert_eq!(state.last_log_id, Some(types::log_id(1, 109)));
        let mut reader = store.get_log_reader().await;
        let entries = reader.try_get_log_entries(0..200).await.unwrap();
        assert_eq!(entries.iter().map(|e| e.index()).collect::<Vec<_>>(), (100..110).collect::<Vec<_>>());
        writer.shutdown().await;
    }
}
