//! Crash-safe replacement of small files, and the fsync helpers the rest of `storage` shares.
//!
//! Two layers:
//! * [`write_durably`]: write `<path>.tmp`, fsync it, rename it over `<path>`, fsync the directory.
//!   After a crash, `<path>` holds either the complete old content or the complete new content,
//!   never a mix. Used for snapshot files, which carry their own header and checksum.
//! * [`write_atomic`] / [`read_checked`]: the same, plus a checksummed trailer and a kept previous
//!   copy, for small metadata blobs (raft vote, committed id, the WAL's purge marker).
//!
//! # Checked file format
//! `[payload][u32 LE payload length][u32 LE crc32c(payload ++ length bytes)]`. A file that is too
//! short, whose length field disagrees with the file size, or whose checksum does not match is
//! rejected (an all-zero file fails both checks).
//!
//! # Previous copy (`<path>.prev`)
//! Before the new file is renamed into place, the current one is renamed to `<path>.prev`. The
//! possible states after a crash are therefore: (old, no new yet), (only `.prev` = old, new still in
//! `.tmp`), (new, `.prev` = old). [`read_checked`] reads `<path>` and falls back to `.prev` when
//! `<path>` is missing (the crash window above: the newer write never returned, so the old value is
//! the right answer) or fails its checksum (media damage: we log an error and use the last good
//! copy rather than refusing to start). Only when no good copy exists is an error returned; a
//! damaged file is never returned as data.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Bytes appended after the payload of a checked file: length + crc32c.
const TRAILER_LEN: usize = 8;

/// Errors of the atomic-file helpers. Every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum AtomicError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is corrupt (bad length or crc32c) and no good previous copy exists")]
    Corrupt { path: PathBuf },
}

/// Attaches `path` to an `io::Error`; shared by every storage module's error mapping.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AtomicError + '_ {
    move |source| AtomicError::Io { path: path.to_path_buf(), source }
}

/// `path` with `suffix` appended to its file name (`a/b` + `.tmp` = `a/b.tmp`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsync a directory so that file creations, renames and removals in it survive a crash.
pub fn fsync_dir(dir: &Path) -> Result<(), AtomicError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

/// Create `dir` (and parents) and make its directory entry durable.
pub fn ensure_dir(dir: &Path) -> Result<(), AtomicError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    fsync_dir(parent_dir(dir))
}

/// Write `parts` (concatenated) to `<path>.tmp`, fsync, rename over `path`, fsync the directory.
/// Durable when it returns.
pub fn write_durably(path: &Path, parts: &[&[u8]]) -> Result<(), AtomicError> {
    let tmp = with_suffix(path, ".tmp");
    write_synced(&tmp, parts)?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    fsync_dir(parent_dir(path))
}

fn write_synced(path: &Path, parts: &[&[u8]]) -> Result<(), AtomicError> {
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(path).map_err(io_err(path))?;
    for part in parts {
        f.write_all(part).map_err(io_err(path))?;
    }
    f.sync_all().map_err(io_err(path))
}

/// Durably replace `path` with `bytes` plus a checksummed trailer, keeping the previous content
/// as `<path>.prev` (see the module docs for the crash states this allows).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AtomicError> {
    let tmp = with_suffix(path, ".tmp");
    let trailer = trailer(path, bytes)?;
    write_synced(&tmp, &[bytes, &trailer])?;
    match fs::rename(path, with_suffix(path, ".prev")) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path)(e)),
    }
    fs::rename(&tmp, path).map_err(io_err(path))?;
    fsync_dir(parent_dir(path))
}

fn trailer(path: &Path, bytes: &[u8]) -> Result<[u8; TRAILER_LEN], AtomicError> {
    let len = u32::try_from(bytes.len()).map_err(|_| AtomicError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "checked file payload exceeds 4 GiB"),
    })?;
    let len = len.to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(bytes), &len);
    let mut out = [0u8; TRAILER_LEN];
    out[..4].copy_from_slice(&len);
    out[4..].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// What one copy on disk turned out to be.
enum Copy {
    Missing,
    Corrupt,
    Good(Vec<u8>),
}

fn read_copy(path: &Path) -> Result<Copy, AtomicError> {
    let mut buf = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Copy::Missing),
        Err(e) => return Err(io_err(path)(e)),
    };
    if buf.len() < TRAILER_LEN {
        return Ok(Copy::Corrupt);
    }
    let body_len = buf.len() - TRAILER_LEN;
    let (body, tr) = buf.split_at(body_len);
    let len = u32::from_le_bytes([tr[0], tr[1], tr[2], tr[3]]) as usize;
    let crc = u32::from_le_bytes([tr[4], tr[5], tr[6], tr[7]]);
    if len != body_len || crc32c::crc32c_append(crc32c::crc32c(body), &tr[..4]) != crc {
        return Ok(Copy::Corrupt);
    }
    buf.truncate(body_len);
    Ok(Copy::Good(buf))
}

/// Read a file written by [`write_atomic`]. `Ok(None)` if neither it nor its `.prev` exists;
/// falls back to `.prev` when the file is missing or corrupt; `Err(Corrupt)` if no good copy is
/// left. Never returns bytes that failed their checksum.
pub fn read_checked(path: &Path) -> Result<Option<Vec<u8>>, AtomicError> {
    let prev = with_suffix(path, ".prev");
    match read_copy(path)? {
        Copy::Good(b) => Ok(Some(b)),
        Copy::Missing => match read_copy(&prev)? {
            Copy::Good(b) => {
                tracing::info!(path = %path.display(), "using previous copy (interrupted replace)");
                Ok(Some(b))
            }
            Copy::Missing => Ok(None),
            Copy::Corrupt => Err(AtomicError::Corrupt { path: prev }),
        },
        Copy::Corrupt => match read_copy(&prev)? {
            Copy::Good(b) => {
                tracing::error!(
                    path = %path.display(),
                    "checked file is corrupt; falling back to the previous good copy"
                );
                Ok(Some(b))
            }
            Copy::Missing | Copy::Corrupt => Err(AtomicError::Corrupt { path: path.to_path_buf() }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_overwrite_keeps_prev() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vote");
        assert_eq!(read_checked(&p).unwrap(), None);
        write_atomic(&p, b"one").unwrap();
        assert_eq!(read_checked(&p).unwrap().as_deref(), Some(&b"one"[..]));
        write_atomic(&p, b"two").unwrap();
        assert_eq!(read_checked(&p).unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(
            read_copy(&with_suffix(&p, ".prev")).ok().map(|c| matches!(c, Copy::Good(ref b) if b == b"one")),
            Some(true)
        );
        write_atomic(&p, b"").unwrap();
        assert_eq!(read_checked(&p).unwrap().as_deref(), Some(&b""[..]));
    }

    #[test]
    fn torn_current_falls_back_to_prev() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vote");
        write_atomic(&p, b"first value").unwrap();
        write_atomic(&p, b"second value").unwrap();
        let full = fs::read(&p).unwrap();
        for cut in 0..full.len() {
            fs::write(&p, &full[..cut]).unwrap();
            assert_eq!(read_checked(&p).unwrap().as_deref(), Some(&b"first value"[..]), "cut {cut}");
        }
        // Same length, flipped bit.
        let mut flipped = full.clone();
        flipped[3] ^= 0x10;
        fs::write(&p, &flipped).unwrap();
        assert_eq!(read_checked(&p).unwrap().as_deref(), Some(&b"first value"[..]));
        // Zero-filled file of the right size.
        fs::write(&p, vec![0u8; full.len()]).unwrap();
        assert_eq!(read_checked(&p).unwrap().as_deref(), Some(&b"first value"[..]));
    }

    #[test]
    fn interrupted_replace_uses_prev() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meta");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        // Simulate the crash window: current renamed away, new copy still in .tmp.
        fs::remove_file(&p).unwrap();
        fs::write(with_suffix(&p, ".tmp"), b"garbage").unwrap();
        assert_eq!(read_checked(&p).unwrap().as_deref(), Some(&b"old"[..]));
    }

    #[test]
    fn no_good_copy_is_an_error_not_data() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meta");
        write_atomic(&p, b"only").unwrap();
        fs::write(&p, b"xx").unwrap();
        assert!(matches!(read_checked(&p), Err(AtomicError::Corrupt { .. })));
    }

    #[test]
    fn write_durably_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blob");
        write_durably(&p, &[b"abc", b"def"]).unwrap();
        write_durably(&p, &[b"x"]).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"x");
        assert!(!with_suffix(&p, ".tmp").exists());
    }
}
