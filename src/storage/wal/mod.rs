//! Segmented write-ahead log for raft entries (opaque payloads keyed by log index).
//!
//! # On-disk layout
//! ```text
//! <dir>/00000000000000000001.seg   segment named by the index of its first record (20 digits)
//! <dir>/00000000000001048577.seg   ... a new one is started once the current one reaches
//!                                  WalOptions::segment_size
//! <dir>/first-index                purge marker: u64 LE, written with atomic::write_atomic
//! ```
//! Records are framed as described in [`encoder`]: `[crc32c][len][index][batch_pos][payload]`.
//! Indexes are consecutive within and across segments; a gap is corruption.
//!
//! # Durability
//! [`Wal::append`] writes the whole batch with one `pwrite` per touched segment followed by one
//! `fdatasync` per touched segment (one in the common case: group commit, callers batch), and
//! fsyncs the directory when it creates a segment. A segment is synced before the next one is
//! created, so only the last segment can ever hold unacknowledged bytes.
//!
//! The last segment is extended with zeros ahead of its records
//! ([`WalOptions::preallocate`]), so most appends do not change the file size and their
//! `fdatasync` writes data only. Zeros after the last record are room, not damage; a segment is
//! cut back to its records before the next segment is created.
//!
//! # Purge marker
//! `purge_to(i)` first persists `first-index = i + 1` (atomically, durable), then deletes the
//! segments that hold only entries `<= i`. Entries below the marker that share a segment with
//! live entries stay on disk but are hidden. On open, segments wholly below the marker are
//! deleted (finishing an interrupted purge) without being validated.
//!
//! [`Wal::detach_to`] splits a purge in two so that the file work can leave the write path:
//! the log forgets the purged segments in memory at once, and [`DetachedSegments::remove`]
//! writes the marker and deletes the files later, on another thread, in the order above.
//!
//! # Recovery on open
//! See [`repair`]: a damaged tail of the last segment that was never acknowledged is cut off
//! with a warning; anything else (damage in an earlier segment, a valid later batch after damaged
//! bytes, an index gap) is [`WalError::Corrupt`] and the log refuses to open.
//!
//! # Failures
//! After an I/O error in a mutating call the in-memory view may disagree with the disk (and after
//! a failed fsync the page cache cannot be trusted), so the `Wal` becomes poisoned: every further
//! mutating call returns [`WalError::Poisoned`] and the caller must reopen (i.e. restart).

#[cfg(test)]
mod crash_tests;
mod decoder;
mod encoder;
mod repair;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::atomic::{self, AtomicError};
pub use decoder::Fault as RecordFault;
pub use encoder::MAX_PAYLOAD;

/// The page size the page cache is dropped in (4 KiB; a larger real page only means a
/// partial page stays cached).
const PAGE: u64 = 4096;
/// Synced records are dropped from the page cache this much at a time (one `fadvise` per MiB
/// written, not per append).
const DROP_STEP: u64 = 1024 * 1024;

/// Default segment rotation size: 8 MiB. A purge deletes whole segments, and deleting a
/// file competes with the appends' fdatasync for the disk in proportion to its size: with
/// 64 MiB segments, snapshots every 0.5 s under a set flood took set p99.9 from 11-15 ms
/// (snapshots off) to 17-21 ms; with 8 MiB, 13-14.5 ms (bench/snapshot-cycle, docs/BENCHMARKS.md).
pub const DEFAULT_SEGMENT_SIZE: u64 = 8 * 1024 * 1024;

/// Default preallocation step: the last segment is extended with zeros this much at a time.
pub const DEFAULT_PREALLOCATE: u64 = 512 * 1024;

const MARKER_FILE: &str = "first-index";
const SEGMENT_SUFFIX: &str = ".seg";
const SEGMENT_DIGITS: usize = 20;

/// Tuning knobs for [`Wal::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// Start a new segment once the current one would exceed this many bytes. A single record
    /// larger than this gets a segment of its own.
    pub segment_size: u64,
    /// Extend the last segment with zeros this many bytes at a time (0: never). An append
    /// that stays inside the written file does not change its size, so its `fdatasync` has no
    /// inode to write: one device write per sync instead of two (ZooKeeper preallocates its
    /// log files for the same reason).
    pub preallocate: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_size: DEFAULT_SEGMENT_SIZE, preallocate: DEFAULT_PREALLOCATE }
    }
}

/// What exactly is wrong in a corrupt log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptKind {
    /// A damaged record in a segment that is not the last one (it was synced before later
    /// segments were written, so this is lost acknowledged data).
    DamagedRecord { fault: RecordFault },
    /// A damaged record in the last segment followed by a valid record of a later append.
    DamagedBeforeValid { fault: RecordFault, next_offset: u64, next_index: u64 },
    /// A valid record with an unexpected index.
    IndexMismatch { expected: u64, found: u64 },
    /// A segment does not start where the previous one ended.
    Gap { expected: u64, found: u64 },
    /// A record that validated at open no longer does when read back.
    ReadBack { index: u64 },
}

impl fmt::Display for CorruptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CorruptKind::DamagedRecord { fault } => {
                write!(f, "{fault:?} record in a sealed (non-last) segment")
            }
            CorruptKind::DamagedBeforeValid { fault, next_offset, next_index } => write!(
                f,
                "{fault:?} record followed by valid entry {next_index} (at offset {next_offset}) \
                 from a later append, so acknowledged data is damaged"
            ),
            CorruptKind::IndexMismatch { expected, found } => {
                write!(f, "record has index {found}, expected {expected}")
            }
            CorruptKind::Gap { expected, found } => {
                write!(f, "index gap: segment starts at {found}, previous one ends before {expected}")
            }
            CorruptKind::ReadBack { index } => {
                write!(f, "entry {index} failed its checksum when read back")
            }
        }
    }
}

/// Errors of [`Wal`]. I/O errors and corruption name the file involved.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "WAL corrupt in {segment} at offset {offset}: {kind}; refusing to use this log \
         (restore this node's data from a peer)"
    )]
    Corrupt { segment: PathBuf, offset: u64, kind: CorruptKind },
    #[error("WAL append out of order: expected index {expected}, got {got}")]
    NonContiguous { expected: u64, got: u64 },
    #[error("WAL entry {index} has a {len}-byte payload, above the {max}-byte limit")]
    TooLarge { index: u64, len: usize, max: usize },
    #[error("WAL purge marker {path} is not an 8-byte index")]
    BadMarker { path: PathBuf },
    #[error("WAL file operation failed: {0}")]
    File(#[from] AtomicError),
    #[error("WAL is unusable after an earlier failed write or sync; restart to recover")]
    Poisoned,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.to_path_buf(), source }
}

/// One segment file and the offset of every record in it.
#[derive(Debug)]
struct Segment {
    first_index: u64,
    path: PathBuf,
    file: File,
    /// `offsets[k]` = start of the record with index `first_index + k`.
    offsets: Vec<u64>,
    /// End of the last record.
    len: u64,
    /// File length: `len` plus the zeros preallocated after it (last segment only).
    allocated: u64,
    /// The synced bytes below this offset were dropped from the page cache.
    uncached_below: u64,
}

impl Segment {
    /// Index one past the last record.
    fn next_index(&self) -> u64 {
        self.first_index + self.offsets.len() as u64
    }

    fn last_index(&self) -> Option<u64> {
        self.next_index().checked_sub(1).filter(|_| !self.offsets.is_empty())
    }

    /// Open and validate a segment, repairing a torn tail if it is the last one.
    fn load(path: PathBuf, first_index: u64, is_last: bool) -> Result<Segment, WalError> {
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io_err(&path))?;
        let mut buf = Vec::new();
        (&file).read_to_end(&mut buf).map_err(io_err(&path))?;
        let scan = decoder::scan(&buf, first_index);
        let corrupt = |offset, kind| WalError::Corrupt { segment: path.clone(), offset, kind };
        match scan.stop {
            None => {}
            Some(decoder::Stop::WrongIndex { offset, expected, found }) => {
                return Err(corrupt(offset, CorruptKind::IndexMismatch { expected, found }));
            }
            Some(decoder::Stop::Bad { offset, fault }) if !is_last => {
                return Err(corrupt(offset, CorruptKind::DamagedRecord { fault }));
            }
            // Zeros from the valid end to the end of the file: space preallocated for appends.
            Some(decoder::Stop::Bad { offset, .. })
                if buf.get(offset as usize..).is_some_and(|tail| tail.iter().all(|b| *b == 0)) => {}
            Some(decoder::Stop::Bad { offset, fault }) => {
                let expected = first_index + scan.offsets.len() as u64;
                match repair::classify_tail(&buf, offset as usize, expected) {
                    repair::Verdict::Torn => {
                        repair::cut_tail(&file, &path, offset, buf.len() as u64, fault).map_err(io_err(&path))?;
                        buf.truncate(offset as usize);
                    }
                    repair::Verdict::Corrupt { offset: next_offset, index } => {
                        let kind = CorruptKind::DamagedBeforeValid { fault, next_offset, next_index: index };
                        return Err(corrupt(offset, kind));
                    }
                }
            }
        }
        let allocated = buf.len() as u64;
        let mut segment = Segment {
            first_index,
            path,
            file,
            offsets: scan.offsets,
            len: scan.valid_len,
            allocated,
            uncached_below: 0,
        };
        segment.drop_synced_pages();
        Ok(segment)
    }

    /// Drops the whole pages of synced records from the page cache, a step at a time.
    ///
    /// The log is written once and read back only at a start or by a follower that lags
    /// beyond the entry cache, so keeping it cached only grows the page cache by the write
    /// rate. That growth is not free: each new page of cache is memory the kernel must find
    /// (and, in a VM that reports free pages to its host, memory the host must fault in,
    /// which made appends 5x slower on the test machine when nothing purged the log).
    /// Dropped pages are reused by the next appends. The page holding the end of the last
    /// record stays cached, so an append never reads a page back from the disk.
    fn drop_synced_pages(&mut self) {
        let whole_pages_end = self.len / PAGE * PAGE;
        if whole_pages_end < self.uncached_below + DROP_STEP {
            return;
        }
        let len = std::num::NonZeroU64::new(whole_pages_end - self.uncached_below);
        // Advice only: should it fail, the pages stay cached and nothing else changes.
        let _ = rustix::fs::fadvise(&self.file, self.uncached_below, len, rustix::fs::Advice::DontNeed);
        self.uncached_below = whole_pages_end;
    }

    /// Makes room for `more` bytes after the last record by writing zeros up to the next
    /// multiple of `step` (the caller syncs). No-op when they fit already or `step` is 0.
    fn preallocate(&mut self, more: u64, step: u64) -> Result<(), WalError> {
        let need = self.len + more;
        if step == 0 || need <= self.allocated {
            return Ok(());
        }
        let target = need.div_ceil(step) * step;
        write_zeros(&self.file, self.allocated, target - self.allocated).map_err(io_err(&self.path))?;
        self.allocated = target;
        Ok(())
    }

    /// Cuts the preallocated zeros off (durably), before this segment stops being the last.
    fn seal(&mut self) -> Result<(), WalError> {
        if self.allocated > self.len {
            self.file.set_len(self.len).map_err(io_err(&self.path))?;
            self.file.sync_all().map_err(io_err(&self.path))?;
            self.allocated = self.len;
        }
        Ok(())
    }

    /// Read and verify records `k0..k1` (positions within this segment) with one pread.
    fn read_records(&self, k0: usize, k1: usize, out: &mut Vec<(u64, Vec<u8>)>) -> Result<(), WalError> {
        let start = self.offsets[k0];
        let end = self.offsets.get(k1).copied().unwrap_or(self.len);
        let mut buf = vec![0u8; (end - start) as usize];
        self.file.read_exact_at(&mut buf, start).map_err(io_err(&self.path))?;
        let mut pos = 0usize;
        for k in k0..k1 {
            let index = self.first_index + k as u64;
            let bad = || WalError::Corrupt {
                segment: self.path.clone(),
                offset: self.offsets[k],
                kind: CorruptKind::ReadBack { index },
            };
            let rec = decoder::decode(&buf[pos..]).map_err(|_| bad())?;
            if rec.header.index != index {
                return Err(bad());
            }
            out.push((index, rec.payload.to_vec()));
            pos += rec.size;
        }
        Ok(())
    }
}

/// Encoded records bound for one segment during an append.
struct Chunk {
    /// `Some(first index)` when this chunk starts a new segment.
    new_segment: Option<u64>,
    buf: Vec<u8>,
    /// Absolute start offset of each record in the segment.
    offsets: Vec<u64>,
}

/// The write-ahead log. Not internally synchronized: wrap it in a lock; reads take `&self`.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    /// Non-empty segments in index order; the last one receives appends.
    segments: Vec<Segment>,
    /// Entries below this index are purged (hidden even while their segment survives).
    purged_below: u64,
    poisoned: bool,
}

impl Wal {
    /// Open (creating if needed) the log in `dir`, validating every segment and repairing a torn
    /// tail. Fails with [`WalError::Corrupt`] rather than opening a damaged log.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal, WalError> {
        atomic::ensure_dir(dir)?;
        let purged_below = load_marker(dir)?;
        let mut found = list_segments(dir)?;
        // Finish an interrupted purge without validating segments nobody will read again.
        let mut dir_dirty = false;
        while found.len() >= 2 && found[1].0 <= purged_below {
            let (_, path) = found.remove(0);
            fs::remove_file(&path).map_err(io_err(&path))?;
            dir_dirty = true;
        }
        let count = found.len();
        let mut segments: Vec<Segment> = Vec::with_capacity(count);
        for (i, (first, path)) in found.into_iter().enumerate() {
            if let Some(prev) = segments.last() {
                if first != prev.next_index() {
                    let kind = CorruptKind::Gap { expected: prev.next_index(), found: first };
                    return Err(WalError::Corrupt { segment: path, offset: 0, kind });
                }
            }
            segments.push(Segment::load(path, first, i + 1 == count)?);
        }
        // A crash right after creating a segment (or a torn first record) leaves it empty.
        if segments.last().is_some_and(|s| s.offsets.is_empty()) {
            if let Some(seg) = segments.pop() {
                tracing::warn!(segment = %seg.path.display(), "WAL: removing empty last segment");
                fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
                dir_dirty = true;
            }
        }
        if dir_dirty {
            atomic::fsync_dir(dir)?;
        }
        let mut wal = Wal { dir: dir.to_path_buf(), opts, segments, purged_below, poisoned: false };
        wal.remove_purged_prefix()?;
        Ok(wal)
    }

    /// The lowest readable index, `None` when the log is empty.
    pub fn first_index(&self) -> Option<u64> {
        self.segments.first().map(|s| s.first_index.max(self.purged_below))
    }

    /// The highest stored index, `None` when the log is empty.
    pub fn last_index(&self) -> Option<u64> {
        self.segments.last().and_then(Segment::last_index)
    }

    /// Bytes of log data on disk (valid segment contents; excludes the tiny marker file).
    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Number of segment files (for stats and tests).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The directory holding this log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Durably append `entries` (index, payload). The first index must be `last_index() + 1`, or
    /// anything when the log is empty; indexes must be consecutive. Returns after the data is
    /// fdatasync'ed: one sync per touched segment, normally exactly one.
    pub fn append(&mut self, entries: &[(u64, &[u8])]) -> Result<(), WalError> {
        self.check_usable()?;
        let Some(&(start, _)) = entries.first() else { return Ok(()) };
        let mut expected = self.last_index().map_or(start, |l| l.saturating_add(1));
        for &(index, payload) in entries {
            if index != expected {
                return Err(WalError::NonContiguous { expected, got: index });
            }
            if payload.len() > MAX_PAYLOAD {
                return Err(WalError::TooLarge { index, len: payload.len(), max: MAX_PAYLOAD });
            }
            expected = expected.saturating_add(1);
        }
        let chunks = self.plan(entries);
        self.guarded(|wal| {
            if wal.segments.is_empty() && start < wal.purged_below {
                // Restarting below an old purge point: lower the marker first so a restart
                // does not hide the new entries.
                wal.store_marker(start)?;
            }
            chunks.into_iter().try_for_each(|c| wal.write_chunk(c))
        })
    }

    /// The payload at `index`, `None` if it is outside `first_index()..=last_index()`.
    pub fn read(&self, index: u64) -> Result<Option<Vec<u8>>, WalError> {
        Ok(self.read_range(index, index.saturating_add(1))?.pop().map(|(_, p)| p))
    }

    /// All stored entries with `from <= index < to_exclusive`, clipped to the stored range, in
    /// index order. Every index in the clipped range is returned (never a partial or empty
    /// result for a non-empty overlap); each record is checksum-verified as it is read.
    pub fn read_range(&self, from: u64, to_exclusive: u64) -> Result<Vec<(u64, Vec<u8>)>, WalError> {
        let (Some(first), Some(last)) = (self.first_index(), self.last_index()) else {
            return Ok(Vec::new());
        };
        let from = from.max(first);
        let to = to_exclusive.min(last.saturating_add(1));
        if from >= to {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity((to - from).min(1 << 16) as usize);
        let mut si = self.segments.partition_point(|s| s.first_index <= from) - 1;
        let mut index = from;
        while index < to {
            let seg = &self.segments[si];
            let k0 = (index - seg.first_index) as usize;
            let k1 = (to.min(seg.next_index()) - seg.first_index) as usize;
            seg.read_records(k0, k1, &mut out)?;
            index = seg.first_index + k1 as u64;
            si += 1;
        }
        Ok(out)
    }

    /// Durably delete every entry with index `>= index` (raft log conflict). Later segments are
    /// removed last-first (each removal made durable) before the containing segment is cut, so a
    /// crash part-way leaves a contiguous prefix.
    pub fn truncate_from(&mut self, index: u64) -> Result<(), WalError> {
        self.check_usable()?;
        if self.last_index().is_none_or(|last| index > last) {
            return Ok(());
        }
        self.guarded(|wal| {
            while wal.segments.last().is_some_and(|s| s.first_index >= index) {
                if let Some(seg) = wal.segments.pop() {
                    fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
                    atomic::fsync_dir(&wal.dir)?;
                }
            }
            if let Some(seg) = wal.segments.last_mut() {
                let k = (index - seg.first_index) as usize;
                if let Some(&at) = seg.offsets.get(k) {
                    seg.file.set_len(at).map_err(io_err(&seg.path))?;
                    seg.file.sync_all().map_err(io_err(&seg.path))?;
                    seg.offsets.truncate(k);
                    seg.len = at;
                    seg.allocated = at;
                }
            }
            // Only purged entries left (index <= purge point): the log is empty.
            wal.remove_purged_prefix()
        })
    }

    /// Logically drop every entry `<= index` (persisting the new first index before returning)
    /// and delete segments holding only such entries. `index` may be past `last_index()`
    /// (e.g. after installing a snapshot): the log becomes empty and the next append may start
    /// anywhere.
    pub fn purge_to(&mut self, index: u64) -> Result<(), WalError> {
        self.check_usable()?;
        let new_first = index.saturating_add(1);
        if new_first <= self.purged_below {
            return Ok(());
        }
        self.guarded(|wal| {
            wal.store_marker(new_first)?;
            wal.remove_purged_prefix()
        })
    }

    /// Whether purging every entry `<= index` would leave the log empty.
    pub fn purge_empties(&self, index: u64) -> bool {
        self.last_index().is_none_or(|last| last <= index)
    }

    /// The in-memory half of `purge_to(index)`, for a purge that leaves entries behind
    /// ([`Wal::purge_empties`] is false; otherwise use `purge_to`): hides every entry `<= index`
    /// and takes the segments holding only such entries out of the log, without touching a
    /// file. The caller puts the purge on disk with [`DetachedSegments::remove`], on any
    /// thread and while appends go on, since no append can depend on it: the surviving
    /// segments follow the detached ones, so a crash before (or during) the removal leaves a
    /// contiguous log that merely starts earlier. Returns `None` when there is nothing to do.
    /// A purge that would empty the log is done in full here (`purge_to`): the next append
    /// may then start past a gap, so the marker must be on disk first; the caller must have
    /// removed earlier detached segments before, or their older marker could land last.
    pub fn detach_to(&mut self, index: u64) -> Result<Option<DetachedSegments>, WalError> {
        self.check_usable()?;
        let new_first = index.saturating_add(1);
        if new_first <= self.purged_below {
            return Ok(None);
        }
        if self.purge_empties(index) {
            self.purge_to(index)?;
            return Ok(None);
        }
        self.purged_below = new_first;
        let doomed = self.segments.iter().take_while(|s| s.next_index() <= new_first).count();
        let paths = self.segments.drain(..doomed).map(|s| s.path).collect();
        Ok(Some(DetachedSegments { dir: self.dir.clone(), first_index: new_first, paths }))
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        Ok(())
    }

    /// Run a mutation; an I/O failure poisons the log (see module docs).
    fn guarded(&mut self, f: impl FnOnce(&mut Wal) -> Result<(), WalError>) -> Result<(), WalError> {
        let result = f(self);
        if let Err(e) = &result {
            tracing::error!(error = %e, dir = %self.dir.display(), "WAL write failed; log is now poisoned");
            self.poisoned = true;
        }
        result
    }

    fn store_marker(&mut self, first: u64) -> Result<(), WalError> {
        write_marker(&self.dir, first)?;
        self.purged_below = first;
        Ok(())
    }

    /// Delete leading segments whose entries are all below the purge marker.
    fn remove_purged_prefix(&mut self) -> Result<(), WalError> {
        let doomed = self.segments.iter().take_while(|s| s.next_index() <= self.purged_below).count();
        if doomed == 0 {
            return Ok(());
        }
        for seg in self.segments.drain(..doomed) {
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
        }
        atomic::fsync_dir(&self.dir)?;
        Ok(())
    }

    /// Split `entries` into per-segment encoded chunks, rotating at `segment_size`.
    fn plan(&self, entries: &[(u64, &[u8])]) -> Vec<Chunk> {
        let (mut fill, mut count) = self.segments.last().map_or((0, 0), |s| (s.len, s.offsets.len()));
        let first_new = self.segments.is_empty().then_some(entries.first().map_or(0, |e| e.0));
        let mut chunks = vec![Chunk { new_segment: first_new, buf: Vec::new(), offsets: Vec::new() }];
        for (pos, &(index, payload)) in entries.iter().enumerate() {
            let size = encoder::record_size(payload.len());
            if count > 0 && fill + size > self.opts.segment_size {
                chunks.push(Chunk { new_segment: Some(index), buf: Vec::new(), offsets: Vec::new() });
                fill = 0;
                count = 0;
            }
            let chunk = chunks.last_mut().expect("chunks starts non-empty");
            chunk.offsets.push(fill);
            let batch_pos = u32::try_from(pos).unwrap_or(u32::MAX);
            encoder::encode_into(&mut chunk.buf, index, batch_pos, payload);
            fill += size;
            count += 1;
        }
        chunks.retain(|c| !c.buf.is_empty());
        chunks
    }

    /// Write one chunk and fdatasync it; creates (and makes durable) a new segment if needed.
    fn write_chunk(&mut self, chunk: Chunk) -> Result<(), WalError> {
        if let Some(first_index) = chunk.new_segment {
            // Only the last segment may end in zeros: seal the current one first, so a
            // crash cannot leave zeros in a segment that is no longer the last.
            if let Some(prev) = self.segments.last_mut() {
                prev.seal()?;
            }
            let path = segment_path(&self.dir, first_index);
            let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path).map_err(io_err(&path))?;
            atomic::fsync_dir(&self.dir)?;
            // Should the write below fail, the log is poisoned, and reopening removes an
            // empty last segment.
            self.segments.push(Segment {
                first_index,
                path,
                file,
                offsets: Vec::new(),
                len: 0,
                allocated: 0,
                uncached_below: 0,
            });
        }
        let step = self.opts.preallocate;
        let Some(seg) = self.segments.last_mut() else {
            return Err(WalError::Poisoned);
        };
        let len = chunk.buf.len() as u64;
        seg.preallocate(len, step)?;
        seg.file.write_all_at(&chunk.buf, seg.len).map_err(io_err(&seg.path))?;
        seg.file.sync_data().map_err(io_err(&seg.path))?;
        seg.offsets.extend_from_slice(&chunk.offsets);
        seg.len += len;
        seg.allocated = seg.allocated.max(seg.len);
        seg.drop_synced_pages();
        Ok(())
    }
}

/// What [`Wal::detach_to`] took out of the log and is not yet off the disk: the new first
/// index and the segment files below it, oldest first.
#[derive(Debug)]
pub struct DetachedSegments {
    dir: PathBuf,
    first_index: u64,
    paths: Vec<PathBuf>,
}

impl DetachedSegments {
    /// Folds a later purge of the same log into this one (purges only move forward).
    pub fn merge(&mut self, later: DetachedSegments) {
        self.first_index = self.first_index.max(later.first_index);
        self.paths.extend(later.paths);
    }

    /// The first index the log keeps once this purge is on disk.
    pub fn first_index(&self) -> u64 {
        self.first_index
    }

    /// Puts the purge on disk: the marker first (durably), then the files, oldest first, and
    /// the directory. Each crash state opens: before the marker the log just starts earlier;
    /// after it, [`Wal::open`] deletes the segments still below the marker.
    pub fn remove(self) -> Result<(), WalError> {
        write_marker(&self.dir, self.first_index)?;
        if self.paths.is_empty() {
            return Ok(());
        }
        for path in &self.paths {
            match fs::remove_file(path) {
                Ok(()) => {}
                // Already gone: a reopen finished the purge first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(path)(e)),
            }
        }
        atomic::fsync_dir(&self.dir)?;
        Ok(())
    }
}

fn write_marker(dir: &Path, first: u64) -> Result<(), WalError> {
    atomic::write_atomic(&dir.join(MARKER_FILE), &first.to_le_bytes())?;
    Ok(())
}

/// Writes `count` zero bytes at `offset` (real blocks, unlike `fallocate`'s unwritten extents,
/// whose first write would again be a metadata change).
fn write_zeros(file: &File, offset: u64, count: u64) -> io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK.min(count) as usize];
    let mut done = 0;
    while done < count {
        let n = CHUNK.min(count - done);
        file.write_all_at(&zeros[..n as usize], offset + done)?;
        done += n;
    }
    Ok(())
}

fn segment_path(dir: &Path, first_index: u64) -> PathBuf {
    dir.join(format!("{first_index:0width$}{SEGMENT_SUFFIX}", width = SEGMENT_DIGITS))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segment files in `dir` sorted by first index. Other files are ignored.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name) {
            out.push((first, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(first, _)| *first);
    Ok(out)
}

fn load_marker(dir: &Path) -> Result<u64, WalError> {
    let path = dir.join(MARKER_FILE);
    match atomic::read_checked(&path)? {
        None => Ok(0),
        Some(bytes) => {
            let arr: [u8; 8] = bytes.as_slice().try_into().map_err(|_| WalError::BadMarker { path })?;
            Ok(u64::from_le_bytes(arr))
        }
    }
}
