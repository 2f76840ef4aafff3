//! Client requests: `RequestHeader{xid, type}` followed by the record for `type`.
//!
//! Decoding conventions, chosen to match what the Java server does:
//! * A null path (length -1) decodes as `""`; kazoo sends every empty string as null.
//!   The tree's path validation then rejects it (BadArguments / NoNode).
//! * A null ACL list decodes as an empty list (both are InvalidACL for create/setACL).
//! * A null string list in SetWatches decodes as an empty list.
//! * Node data keeps null (`None`) apart from empty (`Some(vec![])`).
//! * Bytes after a complete record are ignored, as ZooKeeper's stream-based
//!   deserialization does.

use crate::proto::jute::{DecodeError, Reader};
use crate::proto::multi::decode_multi;
use crate::proto::types::{Acl, OpCode};

/// The 8-byte header in front of every request after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    pub xid: i32,
    /// The raw opcode; see [`OpCode::from_i32`].
    pub op: i32,
}

impl RequestHeader {
    /// Splits a frame payload into its header and the request body.
    pub fn parse(payload: &[u8]) -> Result<(RequestHeader, &[u8]), DecodeError> {
        let mut r = Reader::new(payload);
        let xid = r.read_i32()?;
        let op = r.read_i32()?;
        Ok((RequestHeader { xid, op }, r.rest()))
    }
}

/// A decoded request body. Which of the create opcodes (1, 15, 19) produced a
/// [`Request::Create`] is known from the header (or the multi sub-op's [`OpCode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// create (1), create2 (15), createContainer (19): `CreateRequest`.
    Create {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        flags: i32,
    },
    /// createTTL (21): `CreateTTLRequest`.
    CreateTtl {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        flags: i32,
        ttl: i64,
    },
    Delete {
        path: String,
        version: i32,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetData {
        path: String,
        watch: bool,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    GetAcl {
        path: String,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    /// getChildren (8) and getChildren2 (12).
    GetChildren {
        path: String,
        watch: bool,
    },
    Sync {
        path: String,
    },
    Ping,
    /// Only produced inside a multi; a top-level 13 is [`DecodeError::UnknownOpcode`].
    Check {
        path: String,
        version: i32,
    },
    /// multi (14): sub-ops of types 1, 2, 5, 13, 15, 19, 21, in order.
    Multi(Vec<(OpCode, Request)>),
    /// multiRead (22): sub-ops of types 4 and 8, in order.
    MultiRead(Vec<(OpCode, Request)>),
    Reconfig {
        joining: Option<String>,
        leaving: Option<String>,
        new_members: Option<String>,
        cur_config_id: i64,
    },
    CheckWatches {
        path: String,
        watcher_type: i32,
    },
    RemoveWatches {
        path: String,
        watcher_type: i32,
    },
    DeleteContainer {
        path: String,
    },
    /// `AuthPacket`; a null auth buffer decodes as empty.
    Auth {
        auth_type: i32,
        scheme: String,
        auth: Vec<u8>,
    },
    /// setWatches (101) fills the first three lists; setWatches2 (105) all five.
    SetWatches {
        relative_zxid: i64,
        data_watches: Vec<String>,
        exist_watches: Vec<String>,
        child_watches: Vec<String>,
        persistent_watches: Vec<String>,
        persistent_recursive_watches: Vec<String>,
    },
    /// `GetSASLRequest`; a null token decodes as empty.
    Sasl {
        token: Vec<u8>,
    },
    /// `None` (null), `""` and `"/"` all mean "every ephemeral of the session".
    GetEphemerals {
        prefix: Option<String>,
    },
    GetAllChildrenNumber {
        path: String,
    },
    AddWatch {
        path: String,
        mode: i32,
    },
    WhoAmI,
    CloseSession,
}

/// Decodes the body of a request with opcode `op`.
///
/// Unknown opcodes, and opcodes that are never valid from a client at top level
/// (notification 0, check 13, createSession -10, error -1), give
/// [`DecodeError::UnknownOpcode`]: ZooKeeper answers those with Unimplemented and
/// closes the connection. Any other failure means the body did not parse
/// (MarshallingError, connection stays open); see [`DecodeError::error_code`].
pub fn decode_request(op: i32, body: &[u8]) -> Result<Request, DecodeError> {
    let code = OpCode::from_i32(op).ok_or(DecodeError::UnknownOpcode(op))?;
    let mut r = Reader::new(body);
    use OpCode::*;
    match code {
        Ping => Ok(Request::Ping),
        WhoAmI => Ok(Request::WhoAmI),
        CloseSession => Ok(Request::CloseSession),
        Multi => decode_multi(&mut r, false).map(Request::Multi),
        MultiRead => decode_multi(&mut r, true).map(Request::MultiRead),
        Sync => Ok(Request::Sync { path: r.read_string()? }),
        Reconfig => Ok(Request::Reconfig {
            joining: r.read_ustring()?,
            leaving: r.read_ustring()?,
            new_members: r.read_ustring()?,
            cur_config_id: r.read_i64()?,
        }),
        CheckWatches => Ok(Request::CheckWatches { path: r.read_string()?, watcher_type: r.read_i32()? }),
        RemoveWatches => Ok(Request::RemoveWatches { path: r.read_string()?, watcher_type: r.read_i32()? }),
        DeleteContainer => Ok(Request::DeleteContainer { path: r.read_string()? }),
        Auth => Ok(Request::Auth {
            auth_type: r.read_i32()?,
            scheme: r.read_string()?,
            auth: r.read_buffer()?.unwrap_or_default(),
        }),
        SetWatches | SetWatches2 => decode_set_watches(&mut r, code == SetWatches2),
        Sasl => Ok(Request::Sasl { token: r.read_buffer()?.unwrap_or_default() }),
        GetEphemerals => Ok(Request::GetEphemerals { prefix: r.read_ustring()? }),
        GetAllChildrenNumber => Ok(Request::GetAllChildrenNumber { path: r.read_string()? }),
        AddWatch => Ok(Request::AddWatch { path: r.read_string()?, mode: r.read_i32()? }),
        GetAcl => Ok(Request::GetAcl { path: r.read_string()? }),
        Exists => Ok(Request::Exists { path: r.read_string()?, watch: r.read_bool()? }),
        SetAcl => Ok(Request::SetAcl {
            path: r.read_string()?,
            acl: r.read_acl_vec()?.unwrap_or_default(),
            version: r.read_i32()?,
        }),
        // The record types that may also appear inside a multi.
        Create | Create2 | CreateContainer | CreateTtl | Delete | SetData | GetData | GetChildren | GetChildren2 => {
            decode_op_record(code, &mut r)
        }
        Check | Notification | CreateSession | Error => Err(DecodeError::UnknownOpcode(op)),
    }
}

/// Decodes one of the records a multi or multiRead may carry (plus `check`, which is
/// only valid there). Shared by [`decode_request`] and the multi decoder.
pub(crate) fn decode_op_record(code: OpCode, r: &mut Reader<'_>) -> Result<Request, DecodeError> {
    use OpCode::*;
    match code {
        Create | Create2 | CreateContainer => Ok(Request::Create {
            path: r.read_string()?,
            data: r.read_buffer()?,
            acl: r.read_acl_vec()?.unwrap_or_default(),
            flags: r.read_i32()?,
        }),
        CreateTtl => Ok(Request::CreateTtl {
            path: r.read_string()?,
            data: r.read_buffer()?,
            acl: r.read_acl_vec()?.unwrap_or_default(),
            flags: r.read_i32()?,
            ttl: r.read_i64()?,
        }),
        Delete => Ok(Request::Delete { path: r.read_string()?, version: r.read_i32()? }),
        SetData => Ok(Request::SetData { path: r.read_string()?, data: r.read_buffer()?, version: r.read_i32()? }),
        Check => Ok(Request::Check { path: r.read_string()?, version: r.read_i32()? }),
        GetData => Ok(Request::GetData { path: r.read_string()?, watch: r.read_bool()? }),
        GetChildren | GetChildren2 => Ok(Request::GetChildren { path: r.read_string()?, watch: r.read_bool()? }),
        other => Err(DecodeError::UnknownOpcode(other.as_i32())),
    }
}

fn decode_set_watches(r: &mut Reader<'_>, v2: bool) -> Result<Request, DecodeError> {
    let relative_zxid = r.read_i64()?;
    let mut list = || -> Result<Vec<String>, DecodeError> { Ok(r.read_string_vec()?.unwrap_or_default()) };
    let data_watches = list()?;
    let exist_watches = list()?;
    let child_watches = list()?;
    let (persistent_watches, persistent_recursive_watches) =
        if v2 { (list()?, list()?) } else { (Vec::new(), Vec::new()) };
    Ok(Request::SetWatches {
        relative_zxid,
        data_watches,
        exist_watches,
        child_watches,
        persistent_watches,
        persistent_recursive_watches,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::jute::testutil::unhex;
    use crate::proto::jute::Writer;
    use crate::proto::types::{perms, Id};

    /// Request bodies produced by kazoo 2.11's own serializers
    /// (`kazoo.protocol.serialization`), as (opcode, hex, what kazoo was asked to send).
    pub(crate) const KAZOO_BODIES: &[(i32, &str, &str)] = &[
        (
            1,
            "000000042f666f6f00000003626172000000010000001f00000005776f726c6400000006616e796f6e6500000003",
            "Create('/foo', b'bar', OPEN_ACL_UNSAFE, 3)",
        ),
        (
            1,
            "000000022f6effffffff000000010000001f00000005776f726c6400000006616e796f6e6500000000",
            "Create('/n', None, OPEN_ACL_UNSAFE, 0)",
        ),
        (
            1,
            "000000022f6500000000000000010000001f00000005776f726c6400000006616e796f6e6500000000",
            "Create('/e', b'', OPEN_ACL_UNSAFE, 0)",
        ),
        (
            15,
            "000000032f63320000000178000000010000001f0000000664696765737400000020626f623a6679566d46\
              43775662544a59727a6e6f5375316b6f7159455946303d00000000",
            "Create2('/c2', b'x', [make_digest_acl('bob', 'secret', all=True)], 0)",
        ),
        (2, "000000042f666f6fffffffff", "Delete('/foo', -1)"),
        (3, "000000042f666f6f01", "Exists('/foo', True)"),
        (4, "000000042f666f6f00", "GetData('/foo', False)"),
        (5, "000000042f666f6f000000036e657700000007", "SetData('/foo', b'new', 7)"),
        (6, "000000042f666f6f", "GetACL('/foo')"),
        (
            7,
            "000000042f666f6f000000010000001f00000005776f726c6400000006616e796f6e6500000002",
            "SetACL('/foo', OPEN_ACL_UNSAFE, 2)",
        ),
        (8, "000000012f01", "GetChildren('/', True)"),
        (12, "000000022f6100", "GetChildren2('/a', False)"),
        (9, "000000022f73", "Sync('/s')"),
        (
            16,
            "0000002d7365727665722e343d6c6f63616c686f73743a323838383a333838383a7061727469636970616e\
              743b32313831ffffffffffffffffffffffffffffffff",
            "Reconfig('server.4=localhost:2888:3888:participant;2181', None, None, -1)",
        ),
        (100, "000000000000000664696765737400000009757365723a70617373", "Auth(0, 'digest', 'user:pass')"),
        (102, "00000003746f6b", "SASL(b'tok')"),
        (
            14,
            "0000000100ffffffff000000022f740000000164000000010000001f00000005776f726c6400000006616e\
              796f6e65000000000000000200ffffffff000000022f75000000010000000500ffffffff000000022f7400\
              00000165ffffffff0000000d00ffffffff000000022f7400000000ffffffff01ffffffff",
            "Transaction([Create('/t', b'd', OPEN, 0), Delete('/u', 1), SetData('/t', b'e', -1), \
             CheckVersion('/t', 0)])",
        ),
        (14, "ffffffff01ffffffff", "Transaction([])"),
        (11, "", "Ping"),
        (-11, "", "Close"),
    ];

    fn kazoo(op: i32, what: &str) -> Request {
        let (_, hex, _) = KAZOO_BODIES.iter().find(|(o, _, w)| *o == op && w.starts_with(what)).unwrap();
        decode_request(op, &unhex(hex)).unwrap()
    }

    fn open() -> Vec<Acl> {
        Acl::open_unsafe()
    }

    #[test]
    fn header_splits_xid_and_op() {
        let payload = unhex("fffffffe0000000b");
        let (h, body) = RequestHeader::parse(&payload).unwrap();
        assert_eq!(h, RequestHeader { xid: -2, op: 11 });
        assert!(body.is_empty());
        assert!(RequestHeader::parse(&payload[..7]).is_err());
    }

    #[test]
    fn kazoo_creates_keep_null_and_empty_data_apart() {
        assert_eq!(
            kazoo(1, "Create('/foo'"),
            Request::Create { path: "/foo".into(), data: Some(b"bar".to_vec()), acl: open(), flags: 3 }
        );
        assert_eq!(kazoo(1, "Create('/n'"), Request::Create { path: "/n".into(), data: None, acl: open(), flags: 0 });
        assert_eq!(
            kazoo(1, "Create('/e'"),
            Request::Create { path: "/e".into(), data: Some(vec![]), acl: open(), flags: 0 }
        );
        let Request::Create { path, acl, .. } = kazoo(15, "Create2") else { panic!() };
        assert_eq!(path, "/c2");
        assert_eq!(acl, vec![Acl { perms: perms::ALL, id: Id::new("digest", "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=") }]);
    }

    #[test]
    fn kazoo_simple_requests() {
        assert_eq!(kazoo(2, "Delete"), Request::Delete { path: "/foo".into(), version: -1 });
        assert_eq!(kazoo(3, "Exists"), Request::Exists { path: "/foo".into(), watch: true });
        assert_eq!(kazoo(4, "GetData"), Request::GetData { path: "/foo".into(), watch: false });
        assert_eq!(
            kazoo(5, "SetData"),
            Request::SetData { path: "/foo".into(), data: Some(b"new".to_vec()), version: 7 }
        );
        assert_eq!(kazoo(6, "GetACL"), Request::GetAcl { path: "/foo".into() });
        assert_eq!(kazoo(7, "SetACL"), Request::SetAcl { path: "/foo".into(), acl: open(), version: 2 });
        assert_eq!(kazoo(8, "GetChildren("), Request::GetChildren { path: "/".into(), watch: true });
        assert_eq!(kazoo(12, "GetChildren2"), Request::GetChildren { path: "/a".into(), watch: false });
        assert_eq!(kazoo(9, "Sync"), Request::Sync { path: "/s".into() });
        assert_eq!(kazoo(11, "Ping"), Request::Ping);
        assert_eq!(kazoo(-11, "Close"), Request::CloseSession);
        assert_eq!(
            kazoo(16, "Reconfig"),
            Request::Reconfig {
                joining: Some("server.4=localhost:2888:3888:participant;2181".into()),
                leaving: None,
                new_members: None,
                cur_config_id: -1,
            }
        );
        assert_eq!(
            kazoo(100, "Auth"),
            Request::Auth { auth_type: 0, scheme: "digest".into(), auth: b"user:pass".to_vec() }
        );
        assert_eq!(kazoo(102, "SASL"), Request::Sasl { token: b"tok".to_vec() });
    }

    #[test]
    fn kazoo_transaction() {
        assert_eq!(
            kazoo(14, "Transaction([C"),
            Request::Multi(vec![
                (
                    OpCode::Create,
                    Request::Create { path: "/t".into(), data: Some(b"d".to_vec()), acl: open(), flags: 0 }
                ),
                (OpCode::Delete, Request::Delete { path: "/u".into(), version: 1 }),
                (OpCode::SetData, Request::SetData { path: "/t".into(), data: Some(b"e".to_vec()), version: -1 }),
                (OpCode::Check, Request::Check { path: "/t".into(), version: 0 }),
            ])
        );
        assert_eq!(kazoo(14, "Transaction([])"), Request::Multi(vec![]));
    }

    /// Bodies for the opcodes kazoo never sends, encoded here from the jute layouts.
    pub(crate) fn hand_made_bodies() -> Vec<(i32, Vec<u8>)> {
        let body = |f: &dyn Fn(&mut Writer)| {
            let mut out = Vec::new();
            f(&mut Writer::new(&mut out));
            out
        };
        vec![
            (
                17,
                body(&|w| {
                    w.write_str("/w");
                    w.write_i32(2);
                }),
            ),
            (
                18,
                body(&|w| {
                    w.write_str("/w");
                    w.write_i32(3);
                }),
            ),
            (
                19,
                body(&|w| {
                    w.write_str("/c");
                    w.write_buffer(None);
                    w.write_acl_vec(&open());
                    w.write_i32(4);
                }),
            ),
            (20, body(&|w| w.write_str("/c"))),
            (
                21,
                body(&|w| {
                    w.write_str("/t");
                    w.write_buffer(Some(b"x"));
                    w.write_acl_vec(&open());
                    w.write_i32(5);
                    w.write_i64(60_000);
                }),
            ),
            (
                101,
                body(&|w| {
                    w.write_i64(0x42);
                    w.write_string_vec(&["/d"]);
                    w.write_string_vec(&["/e1", "/e2"]);
                    w.write_string_vec::<&str>(&[]);
                }),
            ),
            (
                105,
                body(&|w| {
                    w.write_i64(7);
                    w.write_string_vec(&["/d"]);
                    w.write_i32(-1);
                    w.write_string_vec(&["/c"]);
                    w.write_string_vec(&["/p"]);
                    w.write_string_vec(&["/r"]);
                }),
            ),
            (103, body(&|w| w.write_str("/app"))),
            (104, body(&|w| w.write_str("/"))),
            (
                106,
                body(&|w| {
                    w.write_str("/aw");
                    w.write_i32(1);
                }),
            ),
            (107, Vec::new()),
        ]
    }

    #[test]
    fn newer_opcodes() {
        let decoded: Vec<Request> = hand_made_bodies().iter().map(|(op, b)| decode_request(*op, b).unwrap()).collect();
        assert_eq!(
            decoded,
            vec![
                Request::CheckWatches { path: "/w".into(), watcher_type: 2 },
                Request::RemoveWatches { path: "/w".into(), watcher_type: 3 },
                Request::Create { path: "/c".into(), data: None, acl: open(), flags: 4 },
                Request::DeleteContainer { path: "/c".into() },
                Request::CreateTtl { path: "/t".into(), data: Some(b"x".to_vec()), acl: open(), flags: 5, ttl: 60_000 },
                Request::SetWatches {
                    relative_zxid: 0x42,
                    data_watches: vec!["/d".into()],
                    exist_watches: vec!["/e1".into(), "/e2".into()],
                    child_watches: vec![],
                    persistent_watches: vec![],
                    persistent_recursive_watches: vec![],
                },
                Request::SetWatches {
                    relative_zxid: 7,
                    data_watches: vec!["/d".into()],
                    exist_watches: vec![],
                    child_watches: vec!["/c".into()],
                    persistent_watches: vec!["/p".into()],
                    persistent_recursive_watches: vec!["/r".into()],
                },
                Request::GetEphemerals { prefix: Some("/app".into()) },
                Request::GetAllChildrenNumber { path: "/".into() },
                Request::AddWatch { path: "/aw".into(), mode: 1 },
                Request::WhoAmI,
            ]
        );
    }

    #[test]
    fn null_path_decodes_as_empty_string() {
        assert_eq!(decode_request(9, &unhex("ffffffff")), Ok(Request::Sync { path: String::new() }));
        assert_eq!(decode_request(103, &unhex("ffffffff")), Ok(Request::GetEphemerals { prefix: None }));
    }

    #[test]
    fn unknown_and_top_level_only_opcodes() {
        for op in [0, 10, 13, 23, 99, 108, -1, -10, i32::MIN] {
            let err = decode_request(op, &[]).unwrap_err();
            assert_eq!(err, DecodeError::UnknownOpcode(op));
            assert_eq!(err.error_code(), crate::proto::types::ErrorCode::Unimplemented);
            assert!(err.closes_connection());
        }
        let bad_body = decode_request(4, &[0, 0]).unwrap_err();
        assert_eq!(bad_body.error_code(), crate::proto::types::ErrorCode::MarshallingError);
        assert!(!bad_body.closes_connection());
    }

    /// Every strict prefix of every valid body must fail cleanly (never panic, never
    /// decode as something shorter).
    #[test]
    fn every_truncation_of_every_request_is_an_error() {
        let mut all: Vec<(i32, Vec<u8>)> = KAZOO_BODIES.iter().map(|(op, hex, _)| (*op, unhex(hex))).collect();
        all.extend(hand_made_bodies());
        for (op, body) in &all {
            assert!(decode_request(*op, body).is_ok(), "op {op} full body");
            for n in 0..body.len() {
                assert!(decode_request(*op, &body[..n]).is_err(), "op {op} prefix {n} decoded");
            }
        }
    }

    /// A cheap deterministic fuzz: corrupt bytes of valid bodies and decode under every
    /// opcode (and as a handshake); the decoders must return Ok or Err, never panic.
    #[test]
    fn corrupted_bodies_never_panic() {
        let mut all: Vec<Vec<u8>> = KAZOO_BODIES.iter().map(|(_, hex, _)| unhex(hex)).collect();
        all.extend(hand_made_bodies().into_iter().map(|(_, b)| b));
        let ops: Vec<i32> = (-12..=25).chain(99..=110).collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut decoded_ok = 0;
        for body in &all {
            for _ in 0..40 {
                let mut b = body.clone();
                for _ in 0..3 {
                    let r = next();
                    if !b.is_empty() {
                        let i = (r as usize) % b.len();
                        b[i] = (r >> 32) as u8;
                    }
                }
                for op in &ops {
                    decoded_ok += usize::from(decode_request(*op, &b).is_ok());
                }
                let _ = crate::proto::connect::ConnectRequest::decode(&b);
            }
        }
        // Pure noise, including short inputs that look like huge lengths.
        for _ in 0..2000 {
            let len = (next() % 48) as usize;
            let b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            for op in &ops {
                let _ = decode_request(*op, &b);
            }
        }
        // The corruption must leave some inputs decodable, or the loop tested nothing.
        assert!(decoded_ok > 0);
    }
}
