//! The byte stream inside a snapshot file: plain, gzip, or snappy-java's framed stream
//! (`zookeeper.snapshot.compression.method`; `SnapStream.getStreamMode` picks the format from
//! the last dot-separated part of the name).

use std::io::Read;
use std::path::Path;

use super::ZkError;

pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// snappy-java's `SnappyCodec.MAGIC_HEADER`; a version and a compatible-version int follow.
pub(super) const SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const SNAPPY_HEADER_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compression {
    None,
    Gzip,
    Snappy,
}

impl Compression {
    pub(super) fn of(path: &Path) -> Compression {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match name.rsplit('.').next().map(str::to_ascii_lowercase).as_deref() {
            Some("gz") => Compression::Gzip,
            Some("snappy") => Compression::Snappy,
            _ => Compression::None,
        }
    }
}

/// The snapshot's uncompressed bytes (what the Adler-32 seals cover).
pub(super) fn read_snapshot_stream(path: &Path) -> Result<Vec<u8>, ZkError> {
    let raw = std::fs::read(path).map_err(ZkError::io(path))?;
    match Compression::of(path) {
        Compression::None => Ok(raw),
        Compression::Gzip => {
            let mut out = Vec::with_capacity(raw.len() * 4);
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(|e| ZkError::corrupt(path, 0, format!("gzip stream: {e}")))?;
            Ok(out)
        }
        Compression::Snappy => snappy_java_decode(&raw).map_err(|(offset, what)| ZkError::corrupt(path, offset, what)),
    }
}

/// Decodes snappy-java's stream: the 16-byte header, then blocks of a big-endian `int` length
/// and that many bytes of raw snappy. Errors carry the offset in the compressed file.
pub(super) fn snappy_java_decode(raw: &[u8]) -> Result<Vec<u8>, (usize, String)> {
    if raw.len() < SNAPPY_HEADER_LEN || raw[..8] != SNAPPY_MAGIC {
        return Err((0, "not a snappy-java stream (bad magic)".into()));
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    let mut pos = SNAPPY_HEADER_LEN;
    while pos < raw.len() {
        let Some(len_bytes) = raw.get(pos..pos + 4) else {
            return Err((pos, "snappy block length cut short".into()));
        };
        let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        let block = raw.get(pos + 4..pos + 4 + len).ok_or((pos, format!("snappy block of {len} bytes cut short")))?;
        raw_snappy_decode(block, &mut out).map_err(|what| (pos + 4, what))?;
        pos += 4 + len;
    }
    Ok(out)
}

/// Appends the decompression of one raw snappy block (the format of Google's
/// `format_description.txt`: a varint length, then literals and back-references).
fn raw_snappy_decode(block: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut pos = 0;
    let mut expected: u64 = 0;
    for shift in (0..35).step_by(7) {
        let b = *block.get(pos).ok_or("snappy length cut short")?;
        pos += 1;
        expected |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
    }
    let start = out.len();
    let le = |bytes: &[u8]| bytes.iter().rev().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    while pos < block.len() {
        let tag = block[pos];
        pos += 1;
        let (len, offset) = match tag & 3 {
            0 => {
                let mut len = usize::from(tag >> 2) + 1;
                if len > 60 {
                    let extra = len - 60;
                    let bytes = block.get(pos..pos + extra).ok_or("snappy literal length cut short")?;
                    len = le(bytes) + 1;
                    pos += extra;
                }
                let literal = block.get(pos..pos + len).ok_or("snappy literal cut short")?;
                out.extend_from_slice(literal);
                pos += len;
                continue;
            }
            1 => {
                let b = *block.get(pos).ok_or("snappy copy cut short")?;
                pos += 1;
                (usize::from((tag >> 2) & 7) + 4, (usize::from(tag >> 5) << 8) | usize::from(b))
            }
            kind => {
                let width = if kind == 2 { 2 } else { 4 };
                let bytes = block.get(pos..pos + width).ok_or("snappy copy cut short")?;
                pos += width;
                (usize::from(tag >> 2) + 1, le(bytes))
            }
        };
        let produced = out.len() - start;
        if offset == 0 || offset > produced {
            return Err(format!("snappy copy offset {offset} outside the {produced} bytes produced"));
        }
        if produced as u64 + len as u64 > expected {
            return Err("snappy block longer than its stated length".into());
        }
        // Copies may overlap their own output (a run): go byte by byte.
        let from = out.len() - offset;
        for i in 0..len {
            let b = out[from + i];
            out.push(b);
        }
    }
    if (out.len() - start) as u64 != expected {
        return Err(format!("snappy block decodes to {} bytes, header says {expected}", out.len() - start));
    }
    Ok(())
}

/// snappy-java's framing around raw snappy made only of literals: valid input for any snappy
/// reader, enough to test the decoder without a compressor.
#[cfg(test)]
pub(super) fn snappy_java_literals(data: &[u8]) -> Vec<u8> {
    let mut out = SNAPPY_MAGIC.to_vec();
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    for chunk in data.chunks(32 * 1024) {
        let mut block = Vec::new();
        let mut n = chunk.len() as u64;
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                block.push(b);
                break;
            }
            block.push(b | 0x80);
        }
        for piece in chunk.chunks(60) {
            block.push(((piece.len() - 1) as u8) << 2);
            block.extend_from_slice(piece);
        }
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_only_snappy_round_trips() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(snappy_java_decode(&snappy_java_literals(&data)).unwrap(), data);
        assert_eq!(snappy_java_decode(&snappy_java_literals(b"")).unwrap(), b"");
    }

    #[test]
    fn back_references_decode_including_overlapping_runs() {
        // "abcd" then copy(len 8, offset 4) with a 1-byte offset tag, then copy(len 5, offset 1)
        // with a 2-byte offset tag: an overlapping run of 'd'.
        let block = [17, 3 << 2, b'a', b'b', b'c', b'd', (4 << 2) | 1, 4, (4 << 2) | 2, 1, 0];
        let mut out = Vec::new();
        raw_snappy_decode(&block, &mut out).unwrap();
        assert_eq!(out, b"abcdabcdabcdddddd");
    }

    #[test]
    fn damaged_snappy_is_an_error_with_an_offset() {
        let good = snappy_java_literals(b"hello, world");
        assert!(snappy_java_decode(&good[..good.len() - 1]).is_err());
        let mut bad_offset = Vec::from(&good[..16]);
        let block = [4u8, 1, 9]; // a copy before anything was produced
        bad_offset.extend_from_slice(&(block.len() as u32).to_be_bytes());
        bad_offset.extend_from_slice(&block);
        let (offset, what) = snappy_java_decode(&bad_offset).unwrap_err();
        assert_eq!(offset, 20);
        assert!(what.contains("offset"), "{what}");
        assert_eq!(snappy_java_decode(b"not snappy at all").unwrap_err().0, 0);
    }
}
