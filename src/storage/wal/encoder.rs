//! Record framing for WAL segments.
//!
//! # Record format (all integers little-endian)
//! ```text
//! offset  size  field
//!      0     4  crc        crc32c over bytes 4..20+len (len, index, batch_pos, payload)
//!      4     4  len        payload length in bytes
//!      8     8  index      raft log index of this entry
//!     16     4  batch_pos  position of this record inside the append() call that wrote it
//!     20   len  payload    opaque bytes from the consensus layer
//! ```
//! The checksum covers the length and index too, so a damaged header is caught like a damaged
//! payload, and an all-zero region never decodes as a record (crc32c of zeros is not zero).
//!
//! `batch_pos` lets recovery tell a torn, never-acknowledged last batch (its pages may reach the
//! disk in any order, so valid records of the same batch can follow a damaged one) from damage
//! to acknowledged data (a valid record from a *later* batch follows it). See `repair`.

/// Size of the fixed record header.
pub(super) const HEADER_LEN: usize = 20;

/// Largest payload a record can carry (the length field is a u32).
pub const MAX_PAYLOAD: usize = u32::MAX as usize - HEADER_LEN;

/// crc32c over the header fields after the crc (`len`, `index`, `batch_pos`) and the payload.
pub(super) fn record_crc(header_tail: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(header_tail), payload)
}

/// Total on-disk size of a record with a payload of `payload_len` bytes.
pub(super) fn record_size(payload_len: usize) -> u64 {
    (HEADER_LEN + payload_len) as u64
}

/// Append one framed record to `buf`. The caller has checked `payload.len() <= MAX_PAYLOAD`.
pub(super) fn encode_into(buf: &mut Vec<u8>, index: u64, batch_pos: u32, payload: &[u8]) {
    let mut tail = [0u8; HEADER_LEN - 4];
    // Lossless: callers reject payloads above MAX_PAYLOAD before encoding.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    tail[0..4].copy_from_slice(&len.to_le_bytes());
    tail[4..12].copy_from_slice(&index.to_le_bytes());
    tail[12..16].copy_from_slice(&batch_pos.to_le_bytes());
    let crc = record_crc(&tail, payload);
    buf.reserve(HEADER_LEN + payload.len());
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(&tail);
    buf.extend_from_slice(payload);
}
