//! Which files of a ZooKeeper data directory to read (`FileSnap.findNValidSnapshots`,
//! `FileTxnLog.getLogFiles`, `Util.getZxidFromName`).

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::stream::{Compression, GZIP_MAGIC, SNAPPY_MAGIC};
use super::ZkError;

/// `<dataDir>/version-2`, where ZooKeeper keeps its snapshots.
pub fn snap_dir_of(data_dir: &Path) -> PathBuf {
    data_dir.join("version-2")
}

/// `<dataLogDir>/version-2`, where ZooKeeper keeps its transaction logs.
pub fn log_dir_of(data_log_dir: &Path) -> PathBuf {
    data_log_dir.join("version-2")
}

/// The zxid in a file name `<prefix>.<hex>[.<suffix>]`, as `Util.getZxidFromName` reads it.
pub(super) fn zxid_from_name(name: &str, prefix: &str) -> Option<i64> {
    let mut parts = name.split('.');
    if parts.next() != Some(prefix) {
        return None;
    }
    u64::from_str_radix(parts.next()?, 16).ok().map(|z| z as i64)
}

/// A snapshot file chosen for loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SnapshotFile {
    pub path: PathBuf,
    pub zxid: i64,
}

/// Files in `dir` named `<prefix>.<hex>...`, sorted by zxid (ascending).
fn named_files(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, ZkError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ZkError::io(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(ZkError::io(dir))?;
        if let Some(zxid) = entry.file_name().to_str().and_then(|n| zxid_from_name(n, prefix)) {
            out.push((zxid, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The newest snapshot that looks complete (`SnapStream.isValidSnapshot`: a plain file ends
/// with the `"/"` terminator, a compressed one starts with its format's magic). Files that
/// fail this cheap test are ones ZooKeeper never finished writing, and it skips them too;
/// damage inside a complete-looking file is reported when it is parsed.
pub(super) fn newest_snapshot(dir: &Path) -> Result<Option<SnapshotFile>, ZkError> {
    for (zxid, path) in named_files(dir, "snapshot")?.into_iter().rev() {
        if looks_complete(&path)? {
            return Ok(Some(SnapshotFile { path, zxid }));
        }
        tracing::warn!(file = %path.display(), "skipping an incomplete ZooKeeper snapshot");
    }
    Ok(None)
}

fn looks_complete(path: &Path) -> Result<bool, ZkError> {
    let mut file = fs::File::open(path).map_err(ZkError::io(path))?;
    let len = file.metadata().map_err(ZkError::io(path))?.len();
    let mut head = [0u8; 8];
    match Compression::of(path) {
        Compression::Gzip => Ok(len >= 2 && file.read_exact(&mut head[..2]).is_ok() && head[..2] == GZIP_MAGIC),
        Compression::Snappy => Ok(len >= 8 && file.read_exact(&mut head).is_ok() && head == SNAPPY_MAGIC),
        Compression::None => {
            if len < 10 {
                return Ok(false);
            }
            let mut tail = [0u8; 5];
            file.seek(SeekFrom::End(-5)).map_err(ZkError::io(path))?;
            file.read_exact(&mut tail).map_err(ZkError::io(path))?;
            Ok(tail == [0, 0, 0, 1, b'/'])
        }
    }
}

/// The logs to replay after a snapshot at `snap_zxid`: the newest one named at or below it
/// (it spans the snapshot point) and every later one, oldest first.
pub(super) fn logs_after(dir: &Path, snap_zxid: i64) -> Result<Vec<PathBuf>, ZkError> {
    let logs = named_files(dir, "log")?;
    let start = logs.iter().rposition(|(zxid, _)| *zxid <= snap_zxid).unwrap_or(0);
    Ok(logs.into_iter().skip(start).map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_like_zookeeper() {
        assert_eq!(zxid_from_name("snapshot.13", "snapshot"), Some(0x13));
        assert_eq!(zxid_from_name("snapshot.1a2b.gz", "snapshot"), Some(0x1a2b));
        assert_eq!(zxid_from_name("log.100000001", "log"), Some(0x1_0000_0001));
        assert_eq!(zxid_from_name("log.zz", "log"), None);
        assert_eq!(zxid_from_name("snapshot.13", "log"), None);
        assert_eq!(zxid_from_name("acceptedEpoch", "log"), None);
    }

    #[test]
    fn the_log_spanning_the_snapshot_and_later_ones_are_chosen() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["log.1", "log.14", "log.30", "log.45", "snapshot.20"] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        let names = |zxid| -> Vec<String> {
            logs_after(dir.path(), zxid)
                .unwrap()
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into())
                .collect()
        };
        assert_eq!(names(0x20), ["log.14", "log.30", "log.45"]);
        assert_eq!(names(0x30), ["log.30", "log.45"]);
        assert_eq!(names(0), ["log.1", "log.14", "log.30", "log.45"]);
    }

    #[test]
    fn incomplete_snapshots_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("snapshot.5"), b"0123456789\0\0\0\x01/").unwrap();
        fs::write(dir.path().join("snapshot.9"), b"0123456789 cut short").unwrap();
        fs::write(dir.path().join("snapshot.7.gz"), b"no").unwrap();
        let chosen = newest_snapshot(dir.path()).unwrap().unwrap();
        assert_eq!(chosen.zxid, 5);
        assert!(newest_snapshot(&dir.path().join("missing")).unwrap().is_none());
    }
}
