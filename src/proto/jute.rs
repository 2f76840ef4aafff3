//! Jute binary encoding: the primitives every ZooKeeper record is built from.
//!
//! Everything is big-endian. Strings (`ustring`) and byte buffers carry an `int`
//! length where `-1` means null; vectors carry an `int` count where `-1` means null.
//! Null and empty are different values on the wire (kazoo tests rely on null data
//! coming back as `None` and empty data as `b""`), so the reader keeps them apart.
//!
//! The [`Reader`] is written for hostile input: every length is checked against the
//! bytes that are actually left before anything is allocated, so a 4-byte length
//! field can never make the server reserve more memory than the frame itself holds.

use crate::proto::types::{Acl, Id, Stat};

/// Size of a serialized [`Stat`] record.
pub const STAT_LEN: usize = 68;

/// Why a record could not be decoded. The server maps these to reply codes with
/// [`DecodeError::error_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The record needs more bytes than the frame holds.
    #[error("truncated record: needed {needed} bytes, {remaining} left")]
    Truncated { needed: usize, remaining: usize },
    /// A length or count below -1 (-1 itself means null).
    #[error("negative length {0}")]
    NegativeLength(i32),
    /// A `ustring` whose bytes are not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// Bytes left after a record that must fill the frame.
    #[error("{0} trailing bytes after record")]
    TrailingBytes(usize),
    /// An opcode ZooKeeper does not accept from clients (including `check` (13)
    /// outside a multi).
    #[error("unknown or unsupported opcode {0}")]
    UnknownOpcode(i32),
    /// A sub-operation type that the enclosing multi (14) or multiRead (22) does not allow.
    #[error("operation type {0} not allowed in this multi")]
    NotAllowedInMulti(i32),
}

impl DecodeError {
    /// The error code ZooKeeper answers with: Unimplemented (-6) for an unknown opcode,
    /// MarshallingError (-5) for a body it could not parse.
    pub fn error_code(&self) -> crate::proto::types::ErrorCode {
        use crate::proto::types::ErrorCode;
        match self {
            DecodeError::UnknownOpcode(_) => ErrorCode::Unimplemented,
            _ => ErrorCode::MarshallingError,
        }
    }

    /// Whether ZooKeeper closes the connection after answering. It does for an unknown
    /// opcode (`UnimplementedRequestProcessor`); an unparseable body leaves it open.
    pub fn closes_connection(&self) -> bool {
        matches!(self, DecodeError::UnknownOpcode(_))
    }
}

/// A cursor over one record's bytes. Never panics, whatever the input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Bytes consumed so far (the offset of the next read within the buffer).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The whole buffer, consumed part included.
    pub fn whole(&self) -> &'a [u8] {
        self.buf
    }

    /// The unconsumed tail, without consuming it.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything was consumed.
    pub fn expect_end(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// Consumes exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(DecodeError::Truncated { needed: n, remaining });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take_array::<1>()?[0])
    }

    /// Jute booleans are one byte; any non-zero value reads as true (as in Java).
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.read_u8()? != 0)
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take_array()?))
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.take_array()?))
    }

    /// Reads a length or count: `None` for -1 (null), an error below -1.
    fn read_len(&mut self) -> Result<Option<usize>, DecodeError> {
        match self.read_i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::NegativeLength(n)),
            // i32 -> usize cannot lose bits on the 32/64-bit targets Rust supports.
            n => Ok(Some(n as usize)),
        }
    }

    /// Reads a vector count and checks that `count` elements of at least `min_elem`
    /// bytes each can fit in what is left, so callers may allocate `count` slots.
    fn read_count(&mut self, min_elem: usize) -> Result<Option<usize>, DecodeError> {
        let Some(count) = self.read_len()? else {
            return Ok(None);
        };
        let needed = count.saturating_mul(min_elem);
        if needed > self.remaining() {
            return Err(DecodeError::Truncated { needed, remaining: self.remaining() });
        }
        Ok(Some(count))
    }

    /// A `buffer` borrowed from the input; `None` when null.
    pub fn read_buffer_ref(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.read_len()? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    /// A `buffer`; `None` when null, which is distinct from `Some(vec![])`.
    pub fn read_buffer(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        Ok(self.read_buffer_ref()?.map(<[u8]>::to_vec))
    }

    /// A `ustring`; `None` when null.
    pub fn read_ustring(&mut self) -> Result<Option<String>, DecodeError> {
        match self.read_buffer_ref()? {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(bytes).map(|s| Some(s.to_owned())).map_err(|_| DecodeError::InvalidUtf8),
        }
    }

    /// A `ustring` where null and empty mean the same thing (paths, schemes): null
    /// reads as `""`. kazoo sends every empty string as null.
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        Ok(self.read_ustring()?.unwrap_or_default())
    }

    /// A `vector<ustring>`; `None` when null. Null elements read as `""`.
    pub fn read_string_vec(&mut self) -> Result<Option<Vec<String>>, DecodeError> {
        let Some(count) = self.read_count(4)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.read_string()?);
        }
        Ok(Some(out))
    }

    /// An `Id{scheme, id}`; null strings read as `""`.
    pub fn read_id(&mut self) -> Result<Id, DecodeError> {
        let scheme = self.read_string()?;
        let id = self.read_string()?;
        Ok(Id { scheme, id })
    }

    /// An `ACL{int perms, Id id}`.
    pub fn read_acl(&mut self) -> Result<Acl, DecodeError> {
        let perms = self.read_i32()?;
        let id = self.read_id()?;
        Ok(Acl { perms, id })
    }

    /// A `vector<ACL>`; `None` when null.
    pub fn read_acl_vec(&mut self) -> Result<Option<Vec<Acl>>, DecodeError> {
        let Some(count) = self.read_count(12)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.read_acl()?);
        }
        Ok(Some(out))
    }

    /// The 68-byte client-visible `Stat`.
    pub fn read_stat(&mut self) -> Result<Stat, DecodeError> {
        // Check once up front so a short stat reports the whole record as missing.
        if self.remaining() < STAT_LEN {
            return Err(DecodeError::Truncated { needed: STAT_LEN, remaining: self.remaining() });
        }
        Ok(Stat {
            czxid: self.read_i64()?,
            mzxid: self.read_i64()?,
            ctime: self.read_i64()?,
            mtime: self.read_i64()?,
            version: self.read_i32()?,
            cversion: self.read_i32()?,
            aversion: self.read_i32()?,
            ephemeral_owner: self.read_i64()?,
            data_length: self.read_i32()?,
            num_children: self.read_i32()?,
            pzxid: self.read_i64()?,
        })
    }
}

/// A non-null `vector<ustring>` given already encoded, for long lists: getChildren of a
/// million children costs one buffer instead of a `String` per name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedStrings {
    count: usize,
    bytes: Vec<u8>,
}

impl EncodedStrings {
    /// A list already in this encoding: `count` strings, each a 4-byte big-endian length and
    /// its bytes, back to back in `bytes` (as the tree lists child names).
    pub fn from_length_prefixed(count: usize, bytes: Vec<u8>) -> Self {
        EncodedStrings { count, bytes }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Appends jute-encoded values to a caller-owned buffer, so one buffer can collect
/// many frames and be reused across writes.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Writer { out }
    }

    /// Bytes in the underlying buffer (including anything written before this writer).
    pub fn len(&self) -> usize {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    pub fn write_bool(&mut self, v: bool) {
        self.out.push(u8::from(v));
    }

    pub fn write_i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub fn write_i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes a length field. Lengths come from in-memory values that are far below
    /// 2 GiB in practice (frames are capped at `jute.maxbuffer`); a larger one is
    /// saturated rather than wrapped so it can never read as null or negative.
    fn write_len(&mut self, n: usize) {
        self.write_i32(i32::try_from(n).unwrap_or(i32::MAX));
    }

    /// A `buffer`: `None` is written as length -1 (null).
    pub fn write_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.write_i32(-1),
            Some(bytes) => {
                self.write_len(bytes.len());
                self.write_raw(bytes);
            }
        }
    }

    /// A `ustring`: `None` is written as length -1 (null).
    pub fn write_ustring(&mut self, v: Option<&str>) {
        self.write_buffer(v.map(str::as_bytes));
    }

    /// A non-null `ustring`.
    pub fn write_str(&mut self, v: &str) {
        self.write_ustring(Some(v));
    }

    /// A non-null `vector<ustring>`.
    pub fn write_string_vec<S: AsRef<str>>(&mut self, v: &[S]) {
        self.write_len(v.len());
        for s in v {
            self.write_str(s.as_ref());
        }
    }

    /// A `vector<ustring>` built by [`EncodedStrings`].
    pub fn write_encoded_strings(&mut self, v: &EncodedStrings) {
        self.write_len(v.count);
        self.write_raw(&v.bytes);
    }

    pub fn write_id(&mut self, id: &Id) {
        self.write_str(&id.scheme);
        self.write_str(&id.id);
    }

    pub fn write_acl(&mut self, acl: &Acl) {
        self.write_i32(acl.perms);
        self.write_id(&acl.id);
    }

    /// A non-null `vector<ACL>`.
    pub fn write_acl_vec(&mut self, acls: &[Acl]) {
        self.write_len(acls.len());
        for acl in acls {
            self.write_acl(acl);
        }
    }

    pub fn write_stat(&mut self, s: &Stat) {
        self.write_i64(s.czxid);
        self.write_i64(s.mzxid);
        self.write_i64(s.ctime);
        self.write_i64(s.mtime);
        self.write_i32(s.version);
        self.write_i32(s.cversion);
        self.write_i32(s.aversion);
        self.write_i64(s.ephemeral_owner);
        self.write_i32(s.data_length);
        self.write_i32(s.num_children);
        self.write_i64(s.pzxid);
    }
}

/// Hex helpers shared by the codec tests (byte strings captured from kazoo).
#[cfg(test)]
pub(crate) mod testutil {
    /// `names` as an [`super::EncodedStrings`], encoded as `write_string_vec` encodes them.
    pub fn encoded_strings(names: &[&str]) -> super::EncodedStrings {
        let mut bytes = Vec::new();
        super::Writer::new(&mut bytes).write_string_vec(names);
        super::EncodedStrings::from_length_prefixed(names.len(), bytes.split_off(4))
    }

    pub fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    pub fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// A stat with a distinct value in every field, to catch field-order mistakes.
    pub fn sample_stat() -> crate::proto::types::Stat {
        crate::proto::types::Stat {
            czxid: 0x1_0000_0001,
            mzxid: 0x1_0000_0002,
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_500,
            version: 3,
            cversion: 4,
            aversion: 5,
            ephemeral_owner: 0x0123_4567_89ab_cdef,
            data_length: 6,
            num_children: 7,
            pzxid: 0x1_0000_0003,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    fn written(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut Writer::new(&mut out));
        out
    }

    #[test]
    fn encoded_strings_match_a_string_vector() {
        let names = ["a", "", "z\u{e9}e"];
        let direct = written(|w| w.write_string_vec(&names));
        assert_eq!(hex(&direct), "00000003".to_owned() + "0000000161" + "00000000" + "000000047ac3a965");
        let given = EncodedStrings::from_length_prefixed(3, direct[4..].to_vec());
        assert_eq!(given.len(), 3);
        assert_eq!(written(|w| w.write_encoded_strings(&given)), direct);
        assert_eq!(written(|w| w.write_encoded_strings(&EncodedStrings::default())), [0, 0, 0, 0]);
    }

    #[test]
    fn null_and_empty_buffer_stay_distinct() {
        let bytes = written(|w| {
            w.write_buffer(None);
            w.write_buffer(Some(b""));
            w.write_buffer(Some(b"ab"));
        });
        assert_eq!(hex(&bytes), "ffffffff".to_owned() + "00000000" + "000000026162");
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_buffer().unwrap(), None);
        assert_eq!(r.read_buffer().unwrap(), Some(vec![]));
        assert_eq!(r.read_buffer().unwrap(), Some(b"ab".to_vec()));
        assert!(r.is_empty());
        r.expect_end().unwrap();
    }

    #[test]
    fn null_string_reads_as_none_or_empty() {
        let bytes = written(|w| {
            w.write_ustring(None);
            w.write_ustring(None);
            w.write_str("/a");
        });
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_ustring().unwrap(), None);
        assert_eq!(r.read_string().unwrap(), "");
        assert_eq!(r.read_ustring().unwrap().as_deref(), Some("/a"));
    }

    #[test]
    fn bool_reads_any_nonzero_as_true() {
        let mut r = Reader::new(&[0, 1, 2, 0xff]);
        assert_eq!(
            [r.read_bool().unwrap(), r.read_bool().unwrap(), r.read_bool().unwrap(), r.read_bool().unwrap()],
            [false, true, true, true]
        );
        assert!(matches!(r.read_bool(), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn huge_length_is_rejected_without_allocating() {
        // 0x7fffffff-byte buffer claimed in a 6-byte input.
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff, 1, 2]);
        assert_eq!(r.read_buffer(), Err(DecodeError::Truncated { needed: 0x7fff_ffff, remaining: 2 }));
        // A vector of 2^31-1 strings needs at least 4 bytes per element.
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(r.read_string_vec(), Err(DecodeError::Truncated { .. })));
        let mut r = Reader::new(&[0, 0, 0, 1, 0, 0, 0, 0]);
        assert!(matches!(r.read_acl_vec(), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn lengths_below_minus_one_are_errors() {
        let bytes = (-2i32).to_be_bytes();
        assert_eq!(Reader::new(&bytes).read_buffer(), Err(DecodeError::NegativeLength(-2)));
        assert_eq!(Reader::new(&bytes).read_ustring(), Err(DecodeError::NegativeLength(-2)));
        assert_eq!(Reader::new(&bytes).read_string_vec(), Err(DecodeError::NegativeLength(-2)));
        let null = (-1i32).to_be_bytes();
        assert_eq!(Reader::new(&null).read_string_vec(), Ok(None));
        assert_eq!(Reader::new(&null).read_acl_vec(), Ok(None));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let bytes = [0, 0, 0, 2, 0xc3, 0x28];
        assert_eq!(Reader::new(&bytes).read_ustring(), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn stat_and_acl_round_trip() {
        let stat = sample_stat();
        let acls = vec![Acl::open_unsafe().remove(0), Acl { perms: 1, id: Id::new("digest", "bob:x") }];
        let bytes = written(|w| {
            w.write_stat(&stat);
            w.write_acl_vec(&acls);
            w.write_string_vec(&["a", "", "ccc"]);
        });
        assert_eq!(bytes.len(), STAT_LEN + 4 + (4 + 9 + 10) + (4 + 10 + 9) + 4 + 5 + 4 + 7);
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_stat().unwrap(), stat);
        assert_eq!(r.read_acl_vec().unwrap(), Some(acls));
        assert_eq!(r.read_string_vec().unwrap(), Some(vec!["a".into(), "".into(), "ccc".into()]));
        r.expect_end().unwrap();
    }

    #[test]
    fn stat_matches_kazoo_layout() {
        // kazoo: stat_struct.pack(*ZnodeStat(...)) with the sample values, "!qqqqiiiqiiq".
        let bytes = written(|w| w.write_stat(&sample_stat()));
        assert_eq!(
            hex(&bytes),
            "000000010000000100000001000000020000018bcfe568000000018bcfe569f4\
             0000000300000004000000050123456789abcdef00000006000000070000000100000003"
        );
    }

    #[test]
    fn truncated_stat_is_an_error() {
        let bytes = written(|w| w.write_stat(&sample_stat()));
        for n in 0..bytes.len() {
            assert!(matches!(Reader::new(&bytes[..n]).read_stat(), Err(DecodeError::Truncated { .. })));
        }
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let mut r = Reader::new(&[0, 0, 0, 1, 9]);
        r.read_i32().unwrap();
        assert_eq!(r.expect_end(), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(r.rest(), &[9]);
    }
}
