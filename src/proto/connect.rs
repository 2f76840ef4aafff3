//! The session handshake: the first frame in each direction, with no request or
//! reply header.
//!
//! The trailing `readOnly` byte is optional in both records: clients older than 3.4
//! (and some third-party ones) leave it out, and ZooKeeper answers with the byte only
//! if the request had it. Hence `read_only: Option<bool>` on both sides; the server
//! copies the request's presence into the response.

use crate::proto::frame::write_frame;
use crate::proto::jute::{DecodeError, Reader};

/// `ConnectRequest` as sent by the client (44 bytes, or 45 with `readOnly`, for the
/// usual 16-byte password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    /// Requested session timeout in milliseconds.
    pub timeout_ms: i32,
    /// 0 asks for a new session.
    pub session_id: i64,
    /// 16 zero bytes for a new session; a null buffer decodes as empty.
    pub password: Vec<u8>,
    /// Whether the client accepts a read-only server; `None` when the byte is absent.
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    /// Decodes the payload of the first frame of a connection. Bytes after the
    /// `readOnly` flag are ignored, as ZooKeeper does.
    pub fn decode(payload: &[u8]) -> Result<ConnectRequest, DecodeError> {
        let mut r = Reader::new(payload);
        let protocol_version = r.read_i32()?;
        let last_zxid_seen = r.read_i64()?;
        let timeout_ms = r.read_i32()?;
        let session_id = r.read_i64()?;
        let password = r.read_buffer()?.unwrap_or_default();
        let read_only = if r.is_empty() { None } else { Some(r.read_bool()?) };
        Ok(ConnectRequest { protocol_version, last_zxid_seen, timeout_ms, session_id, password, read_only })
    }
}

/// `ConnectResponse` (36 bytes, or 37 with `readOnly`). The password is always 16
/// bytes: the C client reads a fixed 41-byte handshake reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    /// Negotiated timeout in milliseconds; `<= 0` tells the client its session expired.
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: [u8; 16],
    /// Written only when `Some`: mirror the request's `read_only.is_some()`.
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    /// The reply for an unknown, expired or wrong-password session: timeout 0,
    /// session 0, zero password. The server closes the connection after sending it.
    pub fn expired(request: &ConnectRequest) -> ConnectResponse {
        ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            password: [0; 16],
            read_only: request.read_only.map(|_| false),
        }
    }

    /// Appends the complete frame (length prefix included) to `out`.
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        write_frame(out, |w| {
            w.write_i32(self.protocol_version);
            w.write_i32(self.timeout_ms);
            w.write_i64(self.session_id);
            w.write_buffer(Some(&self.password));
            if let Some(ro) = self.read_only {
                w.write_bool(ro);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::jute::testutil::{hex, unhex};

    // kazoo 2.11: Connect(0, 0x100000005, 15000, 0, b"\0"*16, False).serialize()
    const KAZOO_NEW_SESSION: &str = "00000000000000010000000500003a98000000000000000000000010\
                                     0000000000000000000000000000000000";
    // kazoo 2.11: Connect(0, 0x200000007, 10000, 0x0123456789abcdef, bytes(range(16)), True)
    const KAZOO_RESUME_RO: &str = "000000000000000200000007000027100123456789abcdef00000010\
                                   000102030405060708090a0b0c0d0e0f01";

    #[test]
    fn decodes_kazoo_new_session() {
        let bytes = unhex(KAZOO_NEW_SESSION);
        assert_eq!(bytes.len(), 45);
        let req = ConnectRequest::decode(&bytes).unwrap();
        assert_eq!(
            req,
            ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0x1_0000_0005,
                timeout_ms: 15000,
                session_id: 0,
                password: vec![0; 16],
                read_only: Some(false),
            }
        );
    }

    #[test]
    fn decodes_kazoo_resume_read_only() {
        let req = ConnectRequest::decode(&unhex(KAZOO_RESUME_RO)).unwrap();
        assert_eq!(req.session_id, 0x0123_4567_89ab_cdef);
        assert_eq!(req.password, (0..16).collect::<Vec<u8>>());
        assert_eq!(req.timeout_ms, 10000);
        assert_eq!(req.last_zxid_seen, 0x2_0000_0007);
        assert_eq!(req.read_only, Some(true));
    }

    #[test]
    fn old_client_without_read_only_byte() {
        let bytes = unhex(KAZOO_NEW_SESSION);
        let req = ConnectRequest::decode(&bytes[..44]).unwrap();
        assert_eq!(req.read_only, None);
        assert_eq!(req.password, vec![0; 16]);
        // And the reply to it leaves the byte out too.
        let mut out = Vec::new();
        ConnectResponse::expired(&req).encode_frame(&mut out);
        assert_eq!(out.len(), 4 + 36);
        assert_eq!(&out[..4], &[0, 0, 0, 36]);
    }

    #[test]
    fn longer_password_and_trailing_bytes_are_tolerated() {
        let mut bytes = unhex("00000000 0000000000000000 00001388 0000000000000001 00000014");
        bytes.extend_from_slice(&[9; 20]);
        bytes.extend_from_slice(&[1, 0xee]);
        let req = ConnectRequest::decode(&bytes).unwrap();
        assert_eq!(req.password, vec![9; 20]);
        assert_eq!(req.read_only, Some(true));
    }

    #[test]
    fn every_truncation_before_the_password_end_fails() {
        let bytes = unhex(KAZOO_NEW_SESSION);
        for n in 0..44 {
            assert!(ConnectRequest::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn response_layout_is_accepted_by_kazoo() {
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 30000,
            session_id: 0x0100_0000_0000_002a,
            password: *b"0123456789abcdef",
            read_only: Some(false),
        };
        let mut out = vec![0xff]; // appends, leaving earlier bytes alone
        resp.encode_frame(&mut out);
        // Verified once with kazoo 2.11: Connect.deserialize(payload, 0) ==
        // (Connect(protocol_version=0, last_zxid_seen=0, time_out=30000,
        //  session_id=72057594037927978, passwd=b'0123456789abcdef', read_only=False), 37)
        assert_eq!(
            hex(&out),
            "ff00000025000000000000753001000000000000\
             2a0000001030313233343536373839616263646566\
             00"
        );
        let mut ro = resp.clone();
        ro.read_only = Some(true);
        let mut out = Vec::new();
        ro.encode_frame(&mut out);
        assert_eq!(out.len(), 41, "the C client reads exactly 41 bytes");
        assert_eq!(out[40], 1);
    }

    #[test]
    fn expired_reply_has_zero_timeout_and_password() {
        let req = ConnectRequest::decode(&unhex(KAZOO_RESUME_RO)).unwrap();
        let resp = ConnectResponse::expired(&req);
        assert_eq!(resp.timeout_ms, 0);
        assert_eq!(resp.session_id, 0);
        assert_eq!(resp.password, [0; 16]);
        assert_eq!(resp.read_only, Some(false));
    }
}
