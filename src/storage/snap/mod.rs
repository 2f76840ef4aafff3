//! Snapshot files: `<dir>/snap-<term>-<index>.bin` (both numbers zero-padded to 20 digits so the
//! names sort; parsing is numeric anyway).
//!
//! # File format (integers little-endian)
//! ```text
//! magic "ROOSTSNP" (8) | version u32 = 1 | term u64 | index u64 | meta_len u64 | data_len u64
//! | meta | data | crc32c u32 over every preceding byte
//! ```
//! Files are written with [`atomic::write_durably`] (tmp, fsync, rename, fsync dir), so a crash
//! leaves either no file or a complete one; a leftover `*.tmp` is removed on open.
//!
//! # Damaged snapshots
//! A file that fails any check (size, magic, version, ids vs. name, crc) is never returned.
//! [`SnapshotStore::latest`] returns the newest *valid* snapshot; damaged newer files are renamed
//! to `*.corrupt` (kept for inspection, out of `retain`'s way) with an error log - but only when
//! an older valid snapshot exists. If every snapshot is damaged, `latest` fails with
//! [`SnapError::Corrupt`] and renames nothing, so the server refuses to start instead of
//! silently starting from an empty state. Falling back to an older snapshot is only safe if the
//! log still covers the gap: the caller must check that the WAL's first index is at most
//! `snapshot.index + 1`.
//!
//! Ordering: "newer" means a higher `(index, term)`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::atomic::{self, AtomicError};

const MAGIC: &[u8; 8] = b"ROOSTSNP";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 8 + 8;
const CRC_LEN: usize = 4;

/// Identifies a snapshot by the last log entry it includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotId {
    pub term: u64,
    pub index: u64,
}

impl SnapshotId {
    fn order_key(&self) -> (u64, u64) {
        (self.index, self.term)
    }
}

/// A loaded, checksum-verified snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub id: SnapshotId,
    /// Opaque metadata from the consensus layer (e.g. serialized openraft `SnapshotMeta`).
    pub meta: Vec<u8>,
    /// Opaque state-machine image.
    pub data: Vec<u8>,
}

/// Why a snapshot file was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapCorruption {
    TooShort,
    BadMagic,
    UnsupportedVersion(u32),
    /// The ids in the header disagree with the file name.
    IdMismatch,
    /// Header lengths disagree with the file size.
    BadLength,
    BadChecksum,
}

/// Errors of [`SnapshotStore`].
#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    #[error("snapshot I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("snapshot {path} is corrupt ({kind:?}) and no older valid snapshot exists")]
    Corrupt { path: PathBuf, kind: SnapCorruption },
    #[error("snapshot file operation failed: {0}")]
    File(#[from] AtomicError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapError + '_ {
    move |source| SnapError::Io { path: path.to_path_buf(), source }
}

/// Directory of snapshot files.
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// Open (creating if needed) the snapshot directory and remove leftover temporary files.
    pub fn open(dir: &Path) -> Result<SnapshotStore, SnapError> {
        atomic::ensure_dir(dir)?;
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            if entry.file_name().to_str().is_some_and(|n| n.ends_with(".tmp")) {
                fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
            }
        }
        Ok(SnapshotStore { dir: dir.to_path_buf() })
    }

    /// Durably write a snapshot (replacing one with the same id) and return its path.
    pub fn save(&self, id: &SnapshotId, meta: &[u8], data: &[u8]) -> Result<PathBuf, SnapError> {
        let path = self.path_for(id);
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&id.term.to_le_bytes());
        header.extend_from_slice(&id.index.to_le_bytes());
        header.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        header.extend_from_slice(&(data.len() as u64).to_le_bytes());
        let crc = [meta, data].iter().fold(crc32c::crc32c(&header), |c, p| crc32c::crc32c_append(c, p));
        atomic::write_durably(&path, &[&header, meta, data, &crc.to_le_bytes()])?;
        Ok(path)
    }

    /// Ids of all snapshot files present, newest first (not validated).
    pub fn list(&self) -> Result<Vec<SnapshotId>, SnapError> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            if let Some(id) = entry.file_name().to_str().and_then(parse_name) {
                ids.push(id);
            }
        }
        ids.sort_unstable_by_key(|id| std::cmp::Reverse(id.order_key()));
        Ok(ids)
    }

    /// Load and verify one snapshot; `Ok(None)` if no such file.
    pub fn load(&self, id: &SnapshotId) -> Result<Option<StoredSnapshot>, SnapError> {
        let path = self.path_for(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        match decode(id, &bytes) {
            Ok(snap) => Ok(Some(snap)),
            Err(kind) => Err(SnapError::Corrupt { path, kind }),
        }
    }

    /// The newest valid snapshot (see the module docs for how damaged files are handled).
    pub fn latest(&self) -> Result<Option<StoredSnapshot>, SnapError> {
        let mut damaged: Vec<(PathBuf, SnapCorruption)> = Vec::new();
        for id in self.list()? {
            match self.load(&id) {
                Ok(Some(snap)) => {
                    self.quarantine(&damaged)?;
                    return Ok(Some(snap));
                }
                Ok(None) => {}
                Err(SnapError::Corrupt { path, kind }) => {
                    tracing::error!(path = %path.display(), ?kind, "snapshot file is corrupt");
                    damaged.push((path, kind));
                }
                Err(e) => return Err(e),
            }
        }
        match damaged.into_iter().next() {
            Some((path, kind)) => Err(SnapError::Corrupt { path, kind }),
            None => Ok(None),
        }
    }

    /// Keep the `keep` newest snapshot files and delete the rest (`keep = 0` deletes all).
    pub fn retain(&self, keep: usize) -> Result<(), SnapError> {
        let ids = self.list()?;
        if ids.len() <= keep {
            return Ok(());
        }
        for id in &ids[keep..] {
            let path = self.path_for(id);
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        atomic::fsync_dir(&self.dir)?;
        Ok(())
    }

    /// Bytes of snapshot files on disk.
    pub fn disk_bytes(&self) -> Result<u64, SnapError> {
        let mut total = 0;
        for id in self.list()? {
            let path = self.path_for(&id);
            total += fs::metadata(&path).map_err(io_err(&path))?.len();
        }
        Ok(total)
    }

    /// The directory holding the snapshots.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_for(&self, id: &SnapshotId) -> PathBuf {
        self.dir.join(format!("snap-{:020}-{:020}.bin", id.term, id.index))
    }

    fn quarantine(&self, damaged: &[(PathBuf, SnapCorruption)]) -> Result<(), SnapError> {
        if damaged.is_empty() {
            return Ok(());
        }
        for (path, _) in damaged {
            let to = atomic::with_suffix(path, ".corrupt");
            tracing::error!(from = %path.display(), to = %to.display(), "quarantining corrupt snapshot; using an older one");
            fs::rename(path, &to).map_err(io_err(path))?;
        }
        atomic::fsync_dir(&self.dir)?;
        Ok(())
    }
}

fn parse_name(name: &str) -> Option<SnapshotId> {
    let rest = name.strip_prefix("snap-")?.strip_suffix(".bin")?;
    let (term, index) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(term) || !digits(index) {
        return None;
    }
    Some(SnapshotId { term: term.parse().ok()?, index: index.parse().ok()? })
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Verify a whole snapshot file and split it into meta and data.
fn decode(id: &SnapshotId, bytes: &[u8]) -> Result<StoredSnapshot, SnapCorruption> {
    if bytes.len() < HEADER_LEN + CRC_LEN {
        return Err(SnapCorruption::TooShort);
    }
    if &bytes[..8] != MAGIC {
        return Err(SnapCorruption::BadMagic);
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != VERSION {
        return Err(SnapCorruption::UnsupportedVersion(version));
    }
    let (term, index, meta_len, data_len) =
        (u64_at(bytes, 12), u64_at(bytes, 20), u64_at(bytes, 28), u64_at(bytes, 36));
    let body = (bytes.len() - HEADER_LEN - CRC_LEN) as u64;
    if meta_len.checked_add(data_len) != Some(body) {
        return Err(SnapCorruption::BadLength);
    }
    let (content, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    if crc32c::crc32c(content).to_le_bytes() != crc {
        return Err(SnapCorruption::BadChecksum);
    }
    if (SnapshotId { term, index }) != *id {
        return Err(SnapCorruption::IdMismatch);
    }
    let meta_end = HEADER_LEN + meta_len as usize;
    Ok(StoredSnapshot { id: *id, meta: content[HEADER_LEN..meta_end].to_vec(), data: content[meta_end..].to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(term: u64, index: u64) -> SnapshotId {
        SnapshotId { term, index }
    }

    #[test]
    fn save_latest_reopen_retain() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        assert_eq!(store.latest().unwrap(), None);
        store.save(&id(1, 10), b"m10", b"data-10").unwrap();
        store.save(&id(2, 250), b"m250", b"data-250").unwrap();
        // Higher index wins even with a lower term on a lexically "smaller" name.
        store.save(&id(3, 90), b"m90", b"").unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        let latest = store.latest().unwrap().unwrap();
        assert_eq!(latest, StoredSnapshot { id: id(2, 250), meta: b"m250".to_vec(), data: b"data-250".to_vec() });
        assert_eq!(store.list().unwrap(), vec![id(2, 250), id(3, 90), id(1, 10)]);
        store.retain(2).unwrap();
        assert_eq!(store.list().unwrap(), vec![id(2, 250), id(3, 90)]);
        assert_eq!(store.load(&id(1, 10)).unwrap(), None);
        assert_eq!(store.load(&id(3, 90)).unwrap().unwrap().meta, b"m90");
        assert!(store.disk_bytes().unwrap() > 0);
    }

    #[test]
    fn every_corruption_of_the_only_snapshot_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        let path = store.save(&id(4, 40), b"meta", b"the state machine image").unwrap();
        let good = fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x04;
            fs::write(&path, &bad).unwrap();
            assert!(matches!(store.latest(), Err(SnapError::Corrupt { .. })), "flip at {i}");
            fs::write(&path, &good[..i]).unwrap();
            assert!(matches!(store.latest(), Err(SnapError::Corrupt { .. })), "cut at {i}");
        }
        // Nothing was renamed away: the damage stays visible on the next start.
        assert_eq!(store.list().unwrap(), vec![id(4, 40)]);
    }

    #[test]
    fn corrupt_newest_falls_back_to_older_and_is_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        store.save(&id(1, 100), b"a", b"old").unwrap();
        let newest = store.save(&id(1, 200), b"b", b"new").unwrap();
        let mut bytes = fs::read(&newest).unwrap();
        let last = bytes.len() - 6;
        bytes[last] ^= 0xff;
        fs::write(&newest, &bytes).unwrap();
        assert_eq!(store.latest().unwrap().unwrap().data, b"old");
        assert_eq!(store.list().unwrap(), vec![id(1, 100)]);
        assert!(atomic::with_suffix(&newest, ".corrupt").exists());
        // retain cannot now delete the good one in favour of the damaged file.
        store.retain(1).unwrap();
        assert_eq!(store.latest().unwrap().unwrap().id, id(1, 100));
    }

    #[test]
    fn renamed_file_with_wrong_ids_is_rejected_and_tmp_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        let p = store.save(&id(1, 5), b"", b"x").unwrap();
        fs::rename(&p, store.path_for(&id(1, 6))).unwrap();
        assert!(matches!(store.latest(), Err(SnapError::Corrupt { kind: SnapCorruption::IdMismatch, .. })));
        fs::write(dir.path().join("snap-1-7.bin.tmp"), b"partial").unwrap();
        let _ = SnapshotStore::open(dir.path()).unwrap();
        assert!(!dir.path().join("snap-1-7.bin.tmp").exists());
    }
}
