//! Transaction log files (`FileTxnLog`): a `FileHeader` (`ZKLG`, version 2, dbid), then
//! entries of `long adler32(payload)`, `int length`, payload (`TxnHeader` + record + optional
//! digest), and the end-of-record byte `B`; zero padding (preallocation) after the last one.

use std::path::Path;

use super::txn::{TxnHeader, HEADER_LEN};
use super::ZkError;
use crate::proto::jute::Reader;

const LOG_MAGIC: i32 = 0x5A4B_4C47; // "ZKLG"
const LOG_VERSION: i32 = 2;
const FILE_HEADER_LEN: usize = 16;
const END_OF_RECORD: u8 = b'B';

/// One entry whose checksum matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LogRecord {
    /// Offset of the entry (its checksum field) in the file.
    pub offset: usize,
    pub header: TxnHeader,
    /// The record after the header (and any digest after it).
    pub body: Vec<u8>,
    /// Offset of `body` within the entry.
    pub body_offset: usize,
}

/// The entries of one log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LogFile {
    pub records: Vec<LogRecord>,
    /// Where a torn entry (cut short, or without its `B`) ended the file; `None` when the file
    /// ended cleanly (end of file or zero padding).
    pub torn_at: Option<u64>,
}

/// Reads every entry of a log file.
///
/// As `FileTxnIterator.next` / `Util.readTxnBytes`: a zero length ends the file (padding), and
/// so does an entry that is cut short or lacks its trailer byte (a write torn by a crash); a
/// checksum mismatch in a complete entry is corruption, and fatal.
pub(super) fn read(path: &Path) -> Result<LogFile, ZkError> {
    let bytes = std::fs::read(path).map_err(ZkError::io(path))?;
    parse(path, &bytes)
}

pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<LogFile, ZkError> {
    if bytes.is_empty() {
        // ZooKeeper creates the file before writing its header; it deletes such a file.
        return Ok(LogFile { records: Vec::new(), torn_at: None });
    }
    let mut r = Reader::new(bytes);
    let header = (r.read_i32(), r.read_i32(), r.read_i64());
    let (Ok(magic), Ok(version), Ok(_dbid)) = header else {
        return Err(ZkError::corrupt(path, 0, "file header cut short"));
    };
    if magic != LOG_MAGIC {
        return Err(ZkError::corrupt(path, 0, format!("not a ZooKeeper transaction log (magic 0x{magic:08x})")));
    }
    if version != LOG_VERSION {
        return Err(ZkError::corrupt(path, 4, format!("unsupported log version {version}")));
    }
    let mut records = Vec::new();
    let mut pos = FILE_HEADER_LEN;
    let torn = |pos: usize| Ok(Some(pos as u64));
    let torn_at: Result<Option<u64>, ZkError> = loop {
        let rest = &bytes[pos..];
        if rest.len() < 12 {
            // Not even room for a checksum and a length: the end, or a torn entry.
            break if rest.iter().all(|b| *b == 0) { Ok(None) } else { torn(pos) };
        }
        let mut head = Reader::new(&rest[..12]);
        let (Ok(checksum), Ok(len)) = (head.read_i64(), head.read_i32()) else { break torn(pos) };
        if len == 0 {
            // Preallocated zeros after the last entry; with a checksum, an entry torn
            // right after it. ZooKeeper stops at both.
            break if checksum == 0 { Ok(None) } else { torn(pos) };
        }
        if len < 0 {
            return Err(ZkError::corrupt(path, pos + 8, format!("negative entry length {len}")));
        }
        let len = len as usize;
        let Some(payload) = rest.get(12..12 + len) else { break torn(pos) };
        if rest.get(12 + len) != Some(&END_OF_RECORD) {
            break torn(pos);
        }
        let actual = adler2::adler32_slice(payload);
        if i64::from(actual) != checksum {
            return Err(ZkError::corrupt(
                path,
                pos,
                format!("entry checksum mismatch (stored 0x{checksum:x}, computed 0x{actual:x})"),
            ));
        }
        if len < HEADER_LEN {
            return Err(ZkError::corrupt(path, pos + 12, format!("entry of {len} bytes is shorter than a txn header")));
        }
        let mut p = Reader::new(payload);
        let Ok(header) = TxnHeader::read(&mut p) else {
            return Err(ZkError::corrupt(path, pos + 12, "txn header cut short"));
        };
        records.push(LogRecord {
            offset: pos,
            header,
            body: payload[HEADER_LEN..].to_vec(),
            body_offset: 12 + HEADER_LEN,
        });
        pos += 12 + len + 1;
    };
    let torn_at = torn_at?;
    if let Some(offset) = torn_at {
        tracing::warn!(file = %path.display(), offset, "log ends in a partial entry; ignoring it, as ZooKeeper does");
    }
    Ok(LogFile { records, torn_at })
}

/// Builds a log file the way `FileTxnLog.append` writes one (tests and the benchmark's
/// generator use it).
#[cfg(test)]
pub(super) fn build(entries: &[(TxnHeader, super::txn::ZkTxn)], padding: usize) -> Vec<u8> {
    use crate::proto::jute::Writer;
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.write_i32(LOG_MAGIC);
    w.write_i32(LOG_VERSION);
    w.write_i64(0);
    for (header, txn) in entries {
        let mut payload = Vec::new();
        let mut p = Writer::new(&mut payload);
        header.write(&mut p);
        super::txn::encode_body(txn, &mut p);
        w.write_i64(i64::from(adler2::adler32_slice(&payload)));
        w.write_i32(payload.len() as i32);
        w.write_raw(&payload);
        w.write_raw(&[END_OF_RECORD]);
    }
    out.resize(out.len() + padding, 0);
    out
}
