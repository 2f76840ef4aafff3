//! Torn-tail handling for the last segment.
//!
//! A crash during an append can leave the last segment ending in a partial record, zeros (the file
//! was extended but the data never reached the disk) or garbage. None of those records were
//! acknowledged (the fdatasync had not returned), so they are cut off. Damage anywhere else means
//! acknowledged data was lost or altered, and the log must not be used.
//!
//! The difficulty is telling the two apart when valid records *follow* the damaged one: the pages
//! of one unsynced write may reach the disk in any order, so the last batch can have a hole with
//! intact records after it. Each record stores its position in its batch (see `encoder`); a valid
//! record found after the damage whose batch began *after* the damaged index proves a later
//! append ran, which only happens after the damaged batch was synced and acknowledged. So:
//! later records from the same batch -> torn tail; a later batch -> corruption.

use std::fs::File;
use std::io;
use std::path::Path;

use super::decoder::{decode, Fault, Header};
use super::encoder::HEADER_LEN;

/// What the bytes after a damaged record in the last segment say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Only garbage, zeros or records of the same unacknowledged batch follow: cut here.
    Torn,
    /// A valid record written by a later append starts at `offset`.
    Corrupt { offset: u64, index: u64 },
}

/// Classify the damaged record at `bad_offset` of `buf` (the whole last segment), where index
/// `expected` was due. Looks for valid records at every later byte offset; candidates whose
/// header is implausible (index below `expected`, too far ahead, or length past the end) are
/// skipped before the checksum is computed, so zero or garbage tails are cheap to scan.
pub(super) fn classify_tail(buf: &[u8], bad_offset: usize, expected: u64) -> Verdict {
    let max_ahead = (buf.len().saturating_sub(bad_offset) / HEADER_LEN) as u64;
    let mut pos = bad_offset + 1;
    while pos + HEADER_LEN <= buf.len() {
        let rest = &buf[pos..];
        let plausible = Header::peek(rest).is_some_and(|h| {
            h.index >= expected && h.index - expected <= max_ahead && h.len <= rest.len() - HEADER_LEN
        });
        if plausible {
            if let Ok(rec) = decode(rest) {
                if rec.header.batch_start() > expected {
                    return Verdict::Corrupt { offset: pos as u64, index: rec.header.index };
                }
                pos += rec.size;
                continue;
            }
        }
        pos += 1;
    }
    Verdict::Torn
}

/// Cut the segment at `at` (the end of its last complete record) and make the new length
/// durable, logging what was dropped.
pub(super) fn cut_tail(file: &File, path: &Path, at: u64, old_len: u64, fault: Fault) -> io::Result<()> {
    tracing::warn!(
        segment = %path.display(),
        offset = at,
        dropped_bytes = old_len - at,
        ?fault,
        "WAL: cutting torn tail left by an interrupted append (those entries were never acknowledged)"
    );
    file.set_len(at)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::super::encoder::encode_into;
    use super::*;

    fn records(specs: &[(u64, u32)]) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut offs = Vec::new();
        for &(idx, pos) in specs {
            offs.push(buf.len());
            encode_into(&mut buf, idx, pos, &[idx as u8; 30]);
        }
        (buf, offs)
    }

    #[test]
    fn zeros_and_garbage_are_torn() {
        let (mut buf, offs) = records(&[(1, 0), (2, 0)]);
        buf.truncate(offs[1] + 7);
        buf.extend_from_slice(&[0u8; 500]);
        assert_eq!(classify_tail(&buf, offs[1], 2), Verdict::Torn);
        buf.extend((0..1000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
        assert_eq!(classify_tail(&buf, offs[1], 2), Verdict::Torn);
    }

    #[test]
    fn hole_inside_last_batch_is_torn_but_later_batch_is_corruption() {
        // Batch A = {1}, batch B = {2,3,4}; record 3 zeroed: same batch as 4 -> torn.
        let (mut buf, offs) = records(&[(1, 0), (2, 0), (3, 1), (4, 2)]);
        buf[offs[2]..offs[3]].fill(0);
        assert_eq!(classify_tail(&buf, offs[2], 3), Verdict::Torn);
        // Batches {1},{2},{3},{4}: record 3 damaged but 4 came from a later append.
        let (mut buf, offs) = records(&[(1, 0), (2, 0), (3, 0), (4, 0)]);
        buf[offs[2] + 25] ^= 1;
        assert_eq!(classify_tail(&buf, offs[2], 3), Verdict::Corrupt { offset: offs[3] as u64, index: 4 });
    }
}
