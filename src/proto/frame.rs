//! Length-prefixed framing and four-letter-word detection.
//!
//! Every message in both directions is a big-endian `int32` length followed by that
//! many payload bytes. ZooKeeper closes the connection ("Len error") when a client
//! announces a length below zero or above `jute.maxbuffer`; [`parse_frame`] reports
//! those as [`FrameError`] so the server can do the same before buffering anything.

use crate::proto::jute::Writer;

/// A frame length the server must not accept; the connection should be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("negative frame length {0}")]
    Negative(i32),
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
}

/// Finds the first complete frame at the start of `buf`.
///
/// Returns `Ok(Some((consumed, payload)))` where `consumed` counts the 4-byte prefix
/// too, `Ok(None)` while the prefix or payload is still incomplete, and an error as
/// soon as the prefix announces an unacceptable length (without waiting for the body).
pub fn parse_frame(buf: &[u8], max_len: usize) -> Result<Option<(usize, &[u8])>, FrameError> {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = i32::from_be_bytes(*prefix);
    if len < 0 {
        return Err(FrameError::Negative(len));
    }
    let len = len as usize;
    if len > max_len {
        return Err(FrameError::TooLarge { len, max: max_len });
    }
    let end = 4 + len;
    Ok(buf.get(4..end).map(|payload| (end, payload)))
}

/// Appends one frame to `out`: a length prefix, then whatever `body` writes. The
/// prefix is patched afterwards, so the payload is written exactly once, in place.
pub fn write_frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Writer<'_>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    body(&mut Writer::new(out));
    let len = i32::try_from(out.len() - start - 4).unwrap_or(i32::MAX);
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

macro_rules! four_letter_words {
    ($($variant:ident => $word:literal,)*) => {
        /// The admin commands a client may send instead of a ConnectRequest.
        ///
        /// ZooKeeper checks the first 4 bytes of a new connection only: read as a length
        /// they are all above 0xfffff, so they cannot be mistaken for a real frame.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FourLetterWord {
            $($variant,)*
        }

        impl FourLetterWord {
            /// Every command, in a fixed order (useful for whitelists and help text).
            pub const ALL: &'static [FourLetterWord] = &[$(FourLetterWord::$variant,)*];

            /// The command as sent on the wire, e.g. `"ruok"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FourLetterWord::$variant => $word,)*
                }
            }
        }

        /// Recognizes a four-letter word from the first 4 bytes of a new connection.
        /// Note that `stmk` is followed by an 8-byte trace mask the server must also read.
        pub fn four_letter_word(first4: [u8; 4]) -> Option<FourLetterWord> {
            match &first4 {
                $(x if x == $word.as_bytes() => Some(FourLetterWord::$variant),)*
                _ => None,
            }
        }
    };
}

four_letter_words! {
    Ruok => "ruok",
    Isro => "isro",
    Srvr => "srvr",
    Stat => "stat",
    Conf => "conf",
    Cons => "cons",
    Crst => "crst",
    Srst => "srst",
    Envi => "envi",
    Mntr => "mntr",
    Wchs => "wchs",
    Wchc => "wchc",
    Wchp => "wchp",
    Dump => "dump",
    Dirs => "dirs",
    Gtmk => "gtmk",
    Stmk => "stmk",
    Hash => "hash",
}

impl std::fmt::Display for FourLetterWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::types::DEFAULT_MAX_BUFFER;

    #[test]
    fn incomplete_prefix_or_body_waits() {
        assert_eq!(parse_frame(&[], 100), Ok(None));
        assert_eq!(parse_frame(&[0, 0, 0], 100), Ok(None));
        assert_eq!(parse_frame(&[0, 0, 0, 3, 1, 2], 100), Ok(None));
    }

    #[test]
    fn complete_frame_returns_payload_and_consumed() {
        let buf = [0, 0, 0, 2, 7, 8, 0, 0];
        assert_eq!(parse_frame(&buf, 100), Ok(Some((6, &[7u8, 8][..]))));
        // The rest of the buffer is the start of the next frame.
        assert_eq!(parse_frame(&buf[6..], 100), Ok(None));
        assert_eq!(parse_frame(&[0, 0, 0, 0], 100), Ok(Some((4, &[][..]))));
    }

    #[test]
    fn bad_lengths_are_rejected_before_the_body_arrives() {
        assert_eq!(parse_frame(&[0xff, 0xff, 0xff, 0xff], 100), Err(FrameError::Negative(-1)));
        assert_eq!(
            parse_frame(&[0, 0x10, 0, 0], DEFAULT_MAX_BUFFER),
            Err(FrameError::TooLarge { len: 0x100000, max: DEFAULT_MAX_BUFFER })
        );
        // Exactly the limit is fine (ZooKeeper rejects only len > maxbuffer).
        assert_eq!(parse_frame(&[0, 0x0f, 0xff, 0xff], DEFAULT_MAX_BUFFER), Ok(None));
        // A four-letter word read as a length is always too large.
        assert!(matches!(parse_frame(b"ruok", DEFAULT_MAX_BUFFER), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn write_frame_appends_after_existing_bytes() {
        let mut out = vec![0xaa];
        write_frame(&mut out, |w| w.write_i32(5));
        write_frame(&mut out, |_| {});
        assert_eq!(out, [0xaa, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 0]);
        assert_eq!(parse_frame(&out[1..], 100), Ok(Some((8, &[0u8, 0, 0, 5][..]))));
    }

    #[test]
    fn four_letter_words_round_trip() {
        assert_eq!(FourLetterWord::ALL.len(), 18);
        for w in FourLetterWord::ALL {
            let bytes: [u8; 4] = w.as_str().as_bytes().try_into().unwrap();
            assert_eq!(four_letter_word(bytes), Some(*w));
            // Every word is above jute.maxbuffer when read as a frame length.
            assert!(i32::from_be_bytes(bytes) as usize > DEFAULT_MAX_BUFFER);
        }
        assert_eq!(four_letter_word(*b"ruok"), Some(FourLetterWord::Ruok));
        assert_eq!(four_letter_word(*b"RUOK"), None);
        assert_eq!(four_letter_word([0, 0, 0, 45]), None);
    }
}
