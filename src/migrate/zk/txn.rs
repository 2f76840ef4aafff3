//! Logged txn records (`zookeeper.jute` module `org.apache.zookeeper.txn`, dispatched as
//! `SerializeUtils.deserializeTxn` does).

use std::path::Path;

use super::txnlog::LogRecord;
use super::ZkError;
#[cfg(test)]
use crate::proto::jute::Writer;
use crate::proto::jute::{DecodeError, Reader};
use crate::proto::types::Acl;

pub(super) const OP_CREATE: i32 = 1;
const OP_DELETE: i32 = 2;
const OP_SET_DATA: i32 = 5;
const OP_SET_ACL: i32 = 7;
const OP_CHECK: i32 = 13;
const OP_MULTI: i32 = 14;
const OP_CREATE2: i32 = 15;
const OP_RECONFIG: i32 = 16;
const OP_CREATE_CONTAINER: i32 = 19;
const OP_DELETE_CONTAINER: i32 = 20;
const OP_CREATE_TTL: i32 = 21;
const OP_CREATE_SESSION: i32 = -10;
const OP_CLOSE_SESSION: i32 = -11;
const OP_ERROR: i32 = -1;

/// `TxnHeader`: 32 bytes in front of every logged txn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnHeader {
    pub client_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    /// The leader's clock when it accepted the txn (ms since the epoch).
    pub time: i64,
    pub txn_type: i32,
}

pub(super) const HEADER_LEN: usize = 32;

impl TxnHeader {
    pub(super) fn read(r: &mut Reader<'_>) -> Result<TxnHeader, DecodeError> {
        Ok(TxnHeader {
            client_id: r.read_i64()?,
            cxid: r.read_i32()?,
            zxid: r.read_i64()?,
            time: r.read_i64()?,
            txn_type: r.read_i32()?,
        })
    }

    #[cfg(test)]
    pub(super) fn write(&self, w: &mut Writer<'_>) {
        w.write_i64(self.client_id);
        w.write_i32(self.cxid);
        w.write_i64(self.zxid);
        w.write_i64(self.time);
        w.write_i32(self.txn_type);
    }
}

/// Which create record a create came from; it decides the node's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    /// `CreateTxn` (create, create2): ephemeral or persistent.
    Plain,
    Container,
    Ttl(i64),
}

/// A decoded txn record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZkTxn {
    Create {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral: bool,
        parent_cversion: i32,
        kind: CreateKind,
    },
    Delete {
        path: String,
    },
    /// setData and reconfig: `version` is the new absolute version.
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    CreateSession {
        timeout_ms: i32,
    },
    /// `paths` is `None` in logs written before 3.6 (no record after the header).
    CloseSession {
        paths: Option<Vec<String>>,
    },
    Error {
        code: i32,
    },
    /// Sub-txns with their types.
    Multi(Vec<(i32, ZkTxn)>),
}

/// Decodes the record of a log entry. A damaged record names the file and its offset.
pub(super) fn decode(path: &Path, record: &LogRecord) -> Result<ZkTxn, ZkError> {
    let mut r = Reader::new(&record.body);
    decode_body(record.header.txn_type, &mut r, true).map_err(|what| {
        let offset = record.offset + record.body_offset + r.position();
        ZkError::corrupt(
            path,
            offset,
            format!("txn 0x{:x} (type {}): {what}", record.header.zxid, record.header.txn_type),
        )
    })
}

fn decode_body(txn_type: i32, r: &mut Reader<'_>, top_level: bool) -> Result<ZkTxn, String> {
    let e = |e: DecodeError| e.to_string();
    let acl_vec = |r: &mut Reader<'_>| r.read_acl_vec().map(Option::unwrap_or_default);
    let txn = match txn_type {
        OP_CREATE | OP_CREATE2 => {
            let path = r.read_string().map_err(e)?;
            let data = r.read_buffer().map_err(e)?;
            let acl = acl_vec(r).map_err(e)?;
            let ephemeral = r.read_bool().map_err(e)?;
            // CreateTxnV0 (before 3.3) has no parentCVersion: -1 means "current + 1".
            let parent_cversion = if r.remaining() >= 4 { r.read_i32().map_err(e)? } else { -1 };
            ZkTxn::Create { path, data, acl, ephemeral, parent_cversion, kind: CreateKind::Plain }
        }
        OP_CREATE_CONTAINER | OP_CREATE_TTL => {
            let path = r.read_string().map_err(e)?;
            let data = r.read_buffer().map_err(e)?;
            let acl = acl_vec(r).map_err(e)?;
            let parent_cversion = r.read_i32().map_err(e)?;
            let kind = if txn_type == OP_CREATE_TTL {
                CreateKind::Ttl(r.read_i64().map_err(e)?)
            } else {
                CreateKind::Container
            };
            ZkTxn::Create { path, data, acl, ephemeral: false, parent_cversion, kind }
        }
        OP_DELETE | OP_DELETE_CONTAINER => ZkTxn::Delete { path: r.read_string().map_err(e)? },
        OP_SET_DATA | OP_RECONFIG => ZkTxn::SetData {
            path: r.read_string().map_err(e)?,
            data: r.read_buffer().map_err(e)?,
            version: r.read_i32().map_err(e)?,
        },
        OP_SET_ACL => ZkTxn::SetAcl {
            path: r.read_string().map_err(e)?,
            acl: acl_vec(r).map_err(e)?,
            version: r.read_i32().map_err(e)?,
        },
        OP_CHECK => ZkTxn::Check { path: r.read_string().map_err(e)?, version: r.read_i32().map_err(e)? },
        OP_CREATE_SESSION => ZkTxn::CreateSession { timeout_ms: r.read_i32().map_err(e)? },
        OP_CLOSE_SESSION => {
            let paths = if r.is_empty() { None } else { Some(r.read_string_vec().map_err(e)?.unwrap_or_default()) };
            ZkTxn::CloseSession { paths }
        }
        // Only the code counts; ZooKeeper ignores whatever follows it (3.6.3 wrote 550-byte ones).
        OP_ERROR => ZkTxn::Error { code: r.read_i32().map_err(e)? },
        OP_MULTI if top_level => {
            let count = r.read_i32().map_err(e)?;
            if count < 0 || count as usize > r.remaining() / 8 {
                return Err(format!("multi with an impossible count {count}"));
            }
            let mut subs = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let sub_type = r.read_i32().map_err(e)?;
                let bytes = r.read_buffer_ref().map_err(e)?.unwrap_or_default();
                let mut sub = Reader::new(bytes);
                subs.push((sub_type, decode_body(sub_type, &mut sub, false)?));
            }
            ZkTxn::Multi(subs)
        }
        other => return Err(format!("unknown txn type {other}")),
    };
    // Whatever remains is the optional TxnDigest (3.6+) or padding ZooKeeper also ignores.
    Ok(txn)
}

/// Encodes a record the way ZooKeeper writes it (tests build logs with it).
#[cfg(test)]
pub(super) fn encode_body(txn: &ZkTxn, w: &mut Writer<'_>) {
    match txn {
        ZkTxn::Create { path, data, acl, ephemeral, parent_cversion, kind } => {
            w.write_str(path);
            w.write_buffer(data.as_deref());
            w.write_acl_vec(acl);
            match kind {
                CreateKind::Plain => {
                    w.write_bool(*ephemeral);
                    w.write_i32(*parent_cversion);
                }
                CreateKind::Container => w.write_i32(*parent_cversion),
                CreateKind::Ttl(ttl) => {
                    w.write_i32(*parent_cversion);
                    w.write_i64(*ttl);
                }
            }
        }
        ZkTxn::Delete { path } => w.write_str(path),
        ZkTxn::SetData { path, data, version } => {
            w.write_str(path);
            w.write_buffer(data.as_deref());
            w.write_i32(*version);
        }
        ZkTxn::SetAcl { path, acl, version } => {
            w.write_str(path);
            w.write_acl_vec(acl);
            w.write_i32(*version);
        }
        ZkTxn::Check { path, version } => {
            w.write_str(path);
            w.write_i32(*version);
        }
        ZkTxn::CreateSession { timeout_ms } => w.write_i32(*timeout_ms),
        ZkTxn::CloseSession { paths } => {
            if let Some(paths) = paths {
                w.write_string_vec(paths);
            }
        }
        ZkTxn::Error { code } => w.write_i32(*code),
        ZkTxn::Multi(subs) => {
            w.write_i32(subs.len() as i32);
            for (sub_type, sub) in subs {
                w.write_i32(*sub_type);
                let mut bytes = Vec::new();
                encode_body(sub, &mut Writer::new(&mut bytes));
                w.write_buffer(Some(&bytes));
            }
        }
    }
}
