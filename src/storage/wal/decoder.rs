//! Reading and validating records (format in `encoder`), and scanning a whole segment.

use super::encoder::{record_crc, HEADER_LEN};

/// The parsed fixed header of a candidate record (not yet checksum-verified).
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    pub crc: u32,
    pub len: usize,
    pub index: u64,
    pub batch_pos: u32,
}

impl Header {
    /// Parse the header at the start of `buf`; `None` if fewer than `HEADER_LEN` bytes remain.
    pub fn peek(buf: &[u8]) -> Option<Header> {
        let h = buf.get(..HEADER_LEN)?;
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let mut idx = [0u8; 8];
        idx.copy_from_slice(&h[8..16]);
        Some(Header { crc: u32_at(0), len: u32_at(4) as usize, index: u64::from_le_bytes(idx), batch_pos: u32_at(16) })
    }

    /// The first index of the append() call that wrote this record.
    pub fn batch_start(&self) -> u64 {
        self.index.saturating_sub(u64::from(self.batch_pos))
    }
}

/// A checksum-verified record borrowed from a buffer.
#[derive(Debug)]
pub(super) struct Record<'a> {
    pub header: Header,
    pub payload: &'a [u8],
    /// Bytes this record occupies (header + payload).
    pub size: usize,
}

/// Why decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fewer bytes remain than the header (or its length field) requires.
    Truncated,
    /// All bytes present, but the crc32c does not match.
    BadChecksum,
}

/// Decode and verify the record at the start of `buf`.
pub(super) fn decode(buf: &[u8]) -> Result<Record<'_>, Fault> {
    let header = Header::peek(buf).ok_or(Fault::Truncated)?;
    let size = HEADER_LEN.checked_add(header.len).ok_or(Fault::Truncated)?;
    let body = buf.get(..size).ok_or(Fault::Truncated)?;
    let payload = &body[HEADER_LEN..];
    if record_crc(&body[4..HEADER_LEN], payload) != header.crc {
        return Err(Fault::BadChecksum);
    }
    Ok(Record { header, payload, size })
}

/// Where and why a segment scan stopped before the end of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The bytes at `offset` are not a valid record.
    Bad { offset: u64, fault: Fault },
    /// A valid record at `offset` carries `found` where `expected` was due.
    WrongIndex { offset: u64, expected: u64, found: u64 },
}

/// Result of scanning one segment's bytes from its start.
#[derive(Debug)]
pub(super) struct Scan {
    /// Start offset of each valid record; record `i` has index `first_index + i`.
    pub offsets: Vec<u64>,
    /// End of the last valid record.
    pub valid_len: u64,
    /// Set when something other than end-of-buffer ended the scan.
    pub stop: Option<Stop>,
}

/// Scan `buf` (a whole segment) expecting consecutive indexes starting at `first_index`.
pub(super) fn scan(buf: &[u8], first_index: u64) -> Scan {
    let mut offsets = Vec::new();
    let mut pos = 0usize;
    let mut expected = first_index;
    let stop = loop {
        if pos == buf.len() {
            break None;
        }
        match decode(&buf[pos..]) {
            Err(fault) => break Some(Stop::Bad { offset: pos as u64, fault }),
            Ok(rec) if rec.header.index != expected => {
                break Some(Stop::WrongIndex { offset: pos as u64, expected, found: rec.header.index })
            }
            Ok(rec) => {
                offsets.push(pos as u64);
                pos += rec.size;
                expected += 1;
            }
        }
    };
    Scan { offsets, valid_len: pos as u64, stop }
}

#[cfg(test)]
mod tests {
    use super::super::encoder::encode_into;
    use super::*;

    #[test]
    fn roundtrip_and_every_single_bit_flip_is_caught() {
        let mut buf = Vec::new();
        encode_into(&mut buf, 7, 2, b"hello");
        let rec = decode(&buf).unwrap();
        assert_eq!((rec.header.index, rec.header.batch_start(), rec.payload), (7, 5, &b"hello"[..]));
        assert_eq!(rec.size, buf.len());
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[byte] ^= 1 << bit;
                assert!(decode(&b).is_err(), "flip at byte {byte} bit {bit} went unnoticed");
            }
        }
    }

    #[test]
    fn zeros_are_never_a_record_even_for_index_zero() {
        assert_eq!(decode(&[0u8; 64]).unwrap_err(), Fault::BadChecksum);
        assert_eq!(decode(&[0u8; 10]).unwrap_err(), Fault::Truncated);
        let mut buf = Vec::new();
        encode_into(&mut buf, 0, 0, b"");
        assert_eq!(decode(&buf).unwrap().header.index, 0);
    }

    #[test]
    fn scan_stops_at_wrong_index_and_truncation() {
        let mut buf = Vec::new();
        encode_into(&mut buf, 1, 0, b"a");
        encode_into(&mut buf, 2, 1, b"b");
        encode_into(&mut buf, 4, 0, b"d");
        let s = scan(&buf, 1);
        assert_eq!(s.offsets.len(), 2);
        assert!(matches!(s.stop, Some(Stop::WrongIndex { expected: 3, found: 4, .. })));
        let two = s.valid_len as usize;
        let s = scan(&buf[..buf.len() - 1], 1);
        assert_eq!(s.stop, Some(Stop::Bad { offset: two as u64, fault: Fault::Truncated }));
        let s = scan(&buf[..two + 5], 1);
        assert_eq!(s.stop, Some(Stop::Bad { offset: two as u64, fault: Fault::Truncated }));
        assert_eq!(s.valid_len as usize, two);
    }
}
