//! multi (14) and multiRead (22): a sequence of `MultiHeader{type, done, err}` +
//! record pairs, closed by a header with `done = true`. Requests and responses use
//! the same framing; the terminator ZooKeeper writes is `{-1, true, -1}`.

use crate::proto::jute::{DecodeError, EncodedStrings, Reader, Writer};
use crate::proto::request::{decode_op_record, Request};
use crate::proto::types::{ErrorCode, OpCode, Stat};

/// Size of a serialized [`MultiHeader`].
pub const MULTI_HEADER_LEN: usize = 9;

/// `MultiHeader{int type, boolean done, int err}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiHeader {
    pub op_type: i32,
    pub done: bool,
    pub err: i32,
}

impl MultiHeader {
    /// The header that ends every multi request and response.
    pub const TERMINATOR: MultiHeader = MultiHeader { op_type: -1, done: true, err: -1 };

    pub fn read(r: &mut Reader<'_>) -> Result<MultiHeader, DecodeError> {
        Ok(MultiHeader { op_type: r.read_i32()?, done: r.read_bool()?, err: r.read_i32()? })
    }

    pub fn write(&self, w: &mut Writer<'_>) {
        w.write_i32(self.op_type);
        w.write_bool(self.done);
        w.write_i32(self.err);
    }
}

/// Sub-operation types a multi may carry.
fn allowed_in_multi(op: OpCode) -> bool {
    use OpCode::*;
    matches!(op, Create | Delete | SetData | Check | Create2 | CreateContainer | CreateTtl)
}

/// Sub-operation types a multiRead may carry.
fn allowed_in_multi_read(op: OpCode) -> bool {
    matches!(op, OpCode::GetData | OpCode::GetChildren)
}

/// Decodes the sub-operations of a multi (`read = false`) or multiRead (`read = true`).
///
/// A sub-type the kind does not allow (including mixing reads and writes) fails with
/// [`DecodeError::NotAllowedInMulti`]; ZooKeeper answers MarshallingError. Memory is
/// bounded by the input: each sub-op consumes at least its 9-byte header plus a
/// non-empty record, so the op count can never exceed `body.len() / 13`.
pub(crate) fn decode_multi(r: &mut Reader<'_>, read: bool) -> Result<Vec<(OpCode, Request)>, DecodeError> {
    let allowed = if read { allowed_in_multi_read } else { allowed_in_multi };
    let mut ops = Vec::new();
    loop {
        let header = MultiHeader::read(r)?;
        if header.done {
            return Ok(ops);
        }
        let code = OpCode::from_i32(header.op_type)
            .filter(|c| allowed(*c))
            .ok_or(DecodeError::NotAllowedInMulti(header.op_type))?;
        ops.push((code, decode_op_record(code, r)?));
    }
}

/// One sub-result of a multi or multiRead reply. Data is borrowed from the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult<'a> {
    /// A create sent as op 1 (header type 1: kazoo only parses type 1 for creates).
    Create {
        path: &'a str,
    },
    /// create2, createContainer and createTTL (header type 15).
    Create2 {
        path: &'a str,
        stat: Stat,
    },
    Delete,
    SetData(Stat),
    Check,
    /// multiRead getData (header type 4).
    GetData {
        data: Option<&'a [u8]>,
        stat: Stat,
    },
    /// multiRead getChildren (header type 8).
    GetChildren {
        children: &'a EncodedStrings,
    },
    /// A failed, rolled back (`Ok`) or skipped (`RuntimeInconsistency`) sub-op:
    /// header `{-1, false, code}` plus an `ErrorResponse{code}` body.
    Error(ErrorCode),
}

impl MultiResult<'_> {
    fn header(&self) -> MultiHeader {
        let (op, err) = match self {
            MultiResult::Create { .. } => (OpCode::Create, 0),
            MultiResult::Create2 { .. } => (OpCode::Create2, 0),
            MultiResult::Delete => (OpCode::Delete, 0),
            MultiResult::SetData(_) => (OpCode::SetData, 0),
            MultiResult::Check => (OpCode::Check, 0),
            MultiResult::GetData { .. } => (OpCode::GetData, 0),
            MultiResult::GetChildren { .. } => (OpCode::GetChildren, 0),
            MultiResult::Error(code) => (OpCode::Error, code.as_i32()),
        };
        MultiHeader { op_type: op.as_i32(), done: false, err }
    }

    fn write(&self, w: &mut Writer<'_>) {
        self.header().write(w);
        match self {
            MultiResult::Create { path } => w.write_str(path),
            MultiResult::Create2 { path, stat } => {
                w.write_str(path);
                w.write_stat(stat);
            }
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData(stat) => w.write_stat(stat),
            MultiResult::GetData { data, stat } => {
                w.write_buffer(*data);
                w.write_stat(stat);
            }
            MultiResult::GetChildren { children } => w.write_encoded_strings(children),
            MultiResult::Error(code) => w.write_i32(code.as_i32()),
        }
    }
}

/// Writes a `MultiResponse` body: every result, then the terminator.
pub(crate) fn write_multi_response(w: &mut Writer<'_>, results: &[MultiResult<'_>]) {
    for result in results {
        result.write(w);
    }
    MultiHeader::TERMINATOR.write(w);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::jute::testutil::{hex, sample_stat};
    use crate::proto::request::decode_request;
    use crate::proto::types::Acl;

    fn body(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut Writer::new(&mut out));
        out
    }

    fn sub(w: &mut Writer, op: i32) {
        MultiHeader { op_type: op, done: false, err: -1 }.write(w);
    }

    #[test]
    fn multi_accepts_every_write_type() {
        let b = body(|w| {
            for op in [1, 15, 19] {
                sub(w, op);
                w.write_str("/c");
                w.write_buffer(Some(b""));
                w.write_acl_vec(&Acl::open_unsafe());
                w.write_i32(0);
            }
            sub(w, 21);
            w.write_str("/ttl");
            w.write_buffer(None);
            w.write_acl_vec(&Acl::open_unsafe());
            w.write_i32(5);
            w.write_i64(1000);
            sub(w, 2);
            w.write_str("/d");
            w.write_i32(-1);
            MultiHeader::TERMINATOR.write(w);
        });
        let Request::Multi(ops) = decode_request(14, &b).unwrap() else { panic!() };
        let codes: Vec<OpCode> = ops.iter().map(|(c, _)| *c).collect();
        use OpCode::*;
        assert_eq!(codes, [Create, Create2, CreateContainer, CreateTtl, Delete]);
        assert!(matches!(&ops[3].1, Request::CreateTtl { ttl: 1000, flags: 5, data: None, .. }));
    }

    #[test]
    fn multi_read_accepts_get_data_and_children() {
        let b = body(|w| {
            sub(w, 4);
            w.write_str("/a");
            w.write_bool(false);
            sub(w, 8);
            w.write_str("/b");
            w.write_bool(false);
            MultiHeader::TERMINATOR.write(w);
        });
        assert_eq!(
            decode_request(22, &b),
            Ok(Request::MultiRead(vec![
                (OpCode::GetData, Request::GetData { path: "/a".into(), watch: false }),
                (OpCode::GetChildren, Request::GetChildren { path: "/b".into(), watch: false }),
            ]))
        );
        // The same records inside a write multi are a marshalling error.
        assert_eq!(decode_request(14, &b), Err(DecodeError::NotAllowedInMulti(4)));
    }

    #[test]
    fn mixing_kinds_or_foreign_types_is_rejected() {
        let delete_in_read = body(|w| {
            sub(w, 2);
            w.write_str("/d");
            w.write_i32(-1);
            MultiHeader::TERMINATOR.write(w);
        });
        assert_eq!(decode_request(22, &delete_in_read), Err(DecodeError::NotAllowedInMulti(2)));
        for op in [0, 3, 7, 9, 11, 12, 14, 20, 22, 100, -1, 999] {
            let b = body(|w| {
                sub(w, op);
                MultiHeader::TERMINATOR.write(w);
            });
            assert_eq!(decode_request(14, &b), Err(DecodeError::NotAllowedInMulti(op)), "op {op}");
            assert_eq!(decode_request(14, &b).unwrap_err().error_code(), ErrorCode::MarshallingError);
        }
    }

    #[test]
    fn done_flag_ends_the_list_whatever_its_type() {
        // Any non-zero byte is "done"; the terminator's type and err are not checked.
        assert_eq!(decode_request(14, &[0, 0, 0, 5, 2, 0, 0, 0, 0]), Ok(Request::Multi(vec![])));
        assert_eq!(decode_request(22, &[0xff; 9]), Ok(Request::MultiRead(vec![])));
        // No terminator at all is truncated.
        assert!(matches!(decode_request(14, &[]), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn write_multi_response_layout_is_accepted_by_kazoo() {
        let stat = sample_stat();
        let results = [
            MultiResult::Create { path: "/t" },
            MultiResult::Delete,
            MultiResult::SetData(stat),
            MultiResult::Check,
            MultiResult::Error(ErrorCode::Ok),
            MultiResult::Error(ErrorCode::NoNode),
            MultiResult::Error(ErrorCode::RuntimeInconsistency),
        ];
        let b = body(|w| write_multi_response(w, &results));
        // Verified once with kazoo 2.11: Transaction.deserialize(bytes, 0) returned
        // ['/t', True, ZnodeStat(czxid=4294967297, ..., pzxid=4294967299), True,
        //  RolledBackError(), NoNodeError(), RuntimeInconsistency()].
        assert_eq!(
            hex(&b),
            "000000010000000000000000022f74\
             000000020000000000\
             000000050000000000\
             000000010000000100000001000000020000018bcfe568000000018bcfe569f4\
             0000000300000004000000050123456789abcdef00000006000000070000000100000003\
             0000000d0000000000\
             ffffffff000000000000000000\
             ffffffff00ffffff9bffffff9b\
             ffffffff00fffffffefffffffe\
             ffffffff01ffffffff"
        );
    }

    #[test]
    fn multi_read_and_create2_results() {
        let names = vec!["x".to_string()];
        let children = crate::proto::jute::testutil::encoded_strings(&["x"]);
        let stat = Stat::default();
        let b = body(|w| {
            write_multi_response(
                w,
                &[
                    MultiResult::GetData { data: None, stat },
                    MultiResult::GetChildren { children: &children },
                    MultiResult::Create2 { path: "/c", stat },
                ],
            )
        });
        let mut r = Reader::new(&b);
        assert_eq!(MultiHeader::read(&mut r).unwrap(), MultiHeader { op_type: 4, done: false, err: 0 });
        assert_eq!(r.read_buffer().unwrap(), None);
        assert_eq!(r.read_stat().unwrap(), stat);
        assert_eq!(MultiHeader::read(&mut r).unwrap().op_type, 8);
        assert_eq!(r.read_string_vec().unwrap(), Some(names));
        assert_eq!(MultiHeader::read(&mut r).unwrap().op_type, 15);
        assert_eq!(r.read_string().unwrap(), "/c");
        assert_eq!(r.read_stat().unwrap(), stat);
        assert_eq!(MultiHeader::read(&mut r).unwrap(), MultiHeader::TERMINATOR);
        r.expect_end().unwrap();
    }
}
