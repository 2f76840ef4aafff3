//! `MetaStore`: small raft metadata blobs (vote, committed log id, last purged id) keyed by name.
//!
//! Each key is one file `<dir>/<key>.meta` written with [`atomic::write_atomic`], so a save is
//! durable when it returns and a torn or damaged file is detected by its crc32c trailer (falling
//! back to the previous good copy, see `atomic`). Values are opaque bytes; the consensus layer
//! serializes them. One file per key keeps a vote update from rewriting unrelated state.

use std::path::{Path, PathBuf};

use super::atomic::{self, AtomicError};

/// Errors of [`MetaStore`].
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// Keys become file names, so only `[A-Za-z0-9_-]{1,64}` is accepted.
    #[error("invalid meta key {key:?}: use 1-64 characters from [A-Za-z0-9_-]")]
    InvalidKey { key: String },
    #[error("meta store: {0}")]
    Store(#[from] AtomicError),
}

/// Directory of small, atomically replaced metadata files.
#[derive(Debug)]
pub struct MetaStore {
    dir: PathBuf,
}

impl MetaStore {
    /// Open (creating if needed) the metadata directory.
    pub fn open(dir: &Path) -> Result<MetaStore, MetaError> {
        atomic::ensure_dir(dir)?;
        Ok(MetaStore { dir: dir.to_path_buf() })
    }

    /// Durably store `bytes` under `key` (replacing any previous value) before returning.
    /// Takes `&mut self` so concurrent saves of one key cannot race on the temporary file.
    pub fn save(&mut self, key: &str, bytes: &[u8]) -> Result<(), MetaError> {
        let path = self.path_for(key)?;
        atomic::write_atomic(&path, bytes)?;
        Ok(())
    }

    /// The last saved value of `key`, `None` if it was never saved. A damaged file with no good
    /// previous copy is an error, never returned as data.
    pub fn load(&self, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
        let path = self.path_for(key)?;
        Ok(atomic::read_checked(&path)?)
    }

    /// The directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_for(&self, key: &str) -> Result<PathBuf, MetaError> {
        let ok = !key.is_empty()
            && key.len() <= 64
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(MetaError::InvalidKey { key: key.to_string() });
        }
        Ok(self.dir.join(format!("{key}.meta")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = MetaStore::open(&dir.path().join("meta")).unwrap();
        assert_eq!(m.load("vote").unwrap(), None);
        m.save("vote", b"term=3,node=1").unwrap();
        m.save("committed", b"42").unwrap();
        m.save("vote", b"term=4,node=2").unwrap();
        drop(m);
        let m = MetaStore::open(&dir.path().join("meta")).unwrap();
        assert_eq!(m.load("vote").unwrap().as_deref(), Some(&b"term=4,node=2"[..]));
        assert_eq!(m.load("committed").unwrap().as_deref(), Some(&b"42"[..]));
        assert_eq!(m.load("purged").unwrap(), None);
    }

    #[test]
    fn torn_meta_file_is_detected_and_previous_value_used() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = MetaStore::open(dir.path()).unwrap();
        m.save("vote", b"v1").unwrap();
        m.save("vote", b"v2-longer").unwrap();
        let p = dir.path().join("vote.meta");
        let len = std::fs::metadata(&p).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(len - 3).unwrap();
        assert_eq!(m.load("vote").unwrap().as_deref(), Some(&b"v1"[..]));
        // Both copies damaged: an error, not garbage.
        std::fs::write(dir.path().join("vote.meta.prev"), b"junkjunkjunk").unwrap();
        assert!(matches!(m.load("vote"), Err(MetaError::Store(AtomicError::Corrupt { .. }))));
    }

    #[test]
    fn rejects_path_like_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = MetaStore::open(dir.path()).unwrap();
        for key in ["", "../x", "a/b", "a.b", &"k".repeat(65)] {
            assert!(matches!(m.save(key, b"x"), Err(MetaError::InvalidKey { .. })), "{key}");
        }
    }
}
