//! The ZooKeeper wire codec: pure functions from bytes to records and back, no IO.
//!
//! * [`frame`]: length-prefixed framing, the frame-size limit, four-letter words.
//! * [`jute`]: the primitive encoding ([`Reader`], [`Writer`], [`DecodeError`]).
//! * [`connect`]: the handshake records.
//! * [`request`]: `RequestHeader` and every client request body.
//! * [`multi`]: multi/multiRead sub-operations and results.
//! * [`response`]: `ReplyHeader`, response bodies and watch notifications.
//!
//! Decoding never panics and never allocates more than the input could describe.

pub mod connect;
pub mod frame;
pub mod jute;
pub mod multi;
pub mod request;
pub mod response;
pub mod types;

pub use connect::{ConnectRequest, ConnectResponse};
pub use frame::{four_letter_word, parse_frame, write_frame, FourLetterWord, FrameError};
pub use jute::{DecodeError, EncodedStrings, Reader, Writer};
pub use multi::{MultiHeader, MultiResult};
pub use request::{decode_request, Request, RequestHeader};
pub use response::{encode_notification, encode_reply, ReplyHeader, Response};
