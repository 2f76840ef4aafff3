//! Read requests, answered from this server's tree.
//!
//! Each read runs with the tree read-locked and, when it sets a watch, the watch
//! manager locked too, so no write can be applied between the read and the
//! registration (ZooKeeper's "no missed event" guarantee).

use super::queue_reply;
use crate::db::Db;
use crate::proto::request::Request;
use crate::proto::response::{encode_reply, ReplyHeader, Response};
use crate::proto::types::{ErrorCode, Id, OpCode, Stat};
use crate::proto::{EncodedStrings, MultiResult};
use crate::server::outbound::OutboundQueue;
use crate::tree::DataTree;
use crate::watch::ConnId;

/// Who is reading.
pub struct Reader<'a> {
    pub db: &'a Db,
    pub conn: ConnId,
    pub session_id: i64,
    pub auth: &'a [Id],
    /// The connection's reply queue, for the replies [`execute`] queues itself.
    pub replies: &'a OutboundQueue,
}

fn has_nul(path: &str) -> bool {
    path.contains('\0')
}

/// Executes a read request and encodes its reply frame into `out`, or, for a read that
/// sets a watch, queues the reply itself (see [`queue_reply`]) and leaves `out` empty.
pub fn execute(r: &Reader<'_>, xid: i32, op: OpCode, req: Request, out: &mut Vec<u8>) {
    let db = r.db;
    let auth = r.auth;
    let reply = |out: &mut Vec<u8>, zxid: i64, result: Result<Response<'_>, ErrorCode>| match result {
        Ok(body) => encode_reply(out, &ReplyHeader { xid, zxid, err: 0 }, Some(&body)),
        Err(code) => encode_reply(out, &ReplyHeader { xid, zxid, err: code.as_i32() }, None),
    };
    match req {
        Request::Exists { path, watch } => db.read_and_watch(|tree, watches| {
            if has_nul(&path) {
                return reply(out, tree.last_zxid(), Err(ErrorCode::BadArguments));
            }
            // No ACL check: ZooKeeper answers exists with the stat whatever the node's
            // ACL (Curator's checkExists relies on it); only data and children need READ.
            let result = tree.stat(&path).ok_or(ErrorCode::NoNode);
            reply(out, tree.last_zxid(), result.map(Response::Stat));
            // exists leaves a watch even when the node is missing: that is how NodeCreated works.
            if watch {
                watches.add_data_watch(&path, r.conn);
                queue_reply(r.replies, out);
            }
        }),
        Request::GetData { path, watch } => {
            // Encoded while the tree is read-locked, straight from the tree's bytes.
            let encode = |tree: &DataTree, out: &mut Vec<u8>| {
                let result = tree.get_data_ref(&path, auth);
                let found = result.is_ok();
                reply(out, tree.last_zxid(), result.map(|(data, stat)| Response::GetData { data, stat }));
                found
            };
            if watch {
                db.read_and_watch(|tree, watches| {
                    if encode(tree, out) {
                        watches.add_data_watch(&path, r.conn);
                        queue_reply(r.replies, out);
                    }
                });
            } else {
                db.read(|tree| encode(tree, out));
            }
        }
        Request::GetChildren { path, watch } => {
            let encode = |out: &mut Vec<u8>, zxid: i64, result: &Result<(EncodedStrings, Stat), ErrorCode>| match result
            {
                Ok((children, stat)) if op == OpCode::GetChildren2 => {
                    reply(out, zxid, Ok(Response::GetChildren2 { children, stat: *stat }))
                }
                Ok((children, _)) => reply(out, zxid, Ok(Response::GetChildren { children })),
                Err(code) => reply(out, zxid, Err(*code)),
            };
            if watch {
                db.read_and_watch(|tree, watches| {
                    let result = children_in_zookeeper_order(tree, &path, auth);
                    encode(out, tree.last_zxid(), &result);
                    if result.is_ok() {
                        watches.add_child_watch(&path, r.conn);
                        queue_reply(r.replies, out);
                    }
                });
            } else {
                // Encoded after the lock: a long list's copy holds up no write.
                let (zxid, result) = db.read(|tree| (tree.last_zxid(), children_in_zookeeper_order(tree, &path, auth)));
                encode(out, zxid, &result);
            }
        }
        Request::GetAcl { path } => {
            let (zxid, result) = db.read(|tree| (tree.last_zxid(), tree.get_acl(&path, auth)));
            match &result {
                Ok((acl, stat)) => reply(out, zxid, Ok(Response::GetAcl { acl, stat: *stat })),
                Err(code) => reply(out, zxid, Err(*code)),
            }
        }
        Request::GetAllChildrenNumber { path } => {
            let (zxid, result) = db.read(|tree| (tree.last_zxid(), tree.all_children_number(&path, auth)));
            reply(out, zxid, result.map(Response::AllChildrenNumber));
        }
        Request::GetEphemerals { prefix } => {
            let (zxid, list) =
                db.read(|tree| (tree.last_zxid(), tree.ephemerals(r.session_id, prefix.as_deref().unwrap_or(""))));
            reply(out, zxid, Ok(Response::GetEphemerals(&list)));
        }
        Request::WhoAmI => {
            let infos = who_am_i(auth);
            reply(out, db.last_zxid(), Ok(Response::WhoAmI(&infos)));
        }
        Request::MultiRead(ops) => {
            /// One sub-read's owned result, kept until the reply borrows it.
            enum Owned {
                Data(Option<bytes::Bytes>, Stat),
                Children(EncodedStrings),
                Failed(ErrorCode),
            }
            let (zxid, owned) = db.read(|tree| {
                let owned: Vec<Owned> = ops
                    .into_iter()
                    .map(|(sub_op, sub)| match sub {
                        Request::GetData { path, .. } => match tree.get_data(&path, auth) {
                            Ok((data, stat)) => Owned::Data(data, stat),
                            Err(code) => Owned::Failed(code),
                        },
                        Request::GetChildren { path, .. } if sub_op == OpCode::GetChildren => {
                            match children_in_zookeeper_order(tree, &path, auth) {
                                Ok((children, _)) => Owned::Children(children),
                                Err(code) => Owned::Failed(code),
                            }
                        }
                        _ => Owned::Failed(ErrorCode::BadArguments),
                    })
                    .collect();
                (tree.last_zxid(), owned)
            });
            let results = owned
                .iter()
                .map(|o| match o {
                    Owned::Data(data, stat) => MultiResult::GetData { data: data.as_deref(), stat: *stat },
                    Owned::Children(children) => MultiResult::GetChildren { children },
                    Owned::Failed(code) => MultiResult::Error(*code),
                })
                .collect();
            reply(out, zxid, Ok(Response::Multi(results)));
        }
        _ => reply(out, db.last_zxid(), Err(ErrorCode::Unimplemented)),
    }
}

/// getChildren's names as the tree lists them, already in the reply's encoding.
fn children_in_zookeeper_order(tree: &DataTree, path: &str, auth: &[Id]) -> Result<(EncodedStrings, Stat), ErrorCode> {
    let (count, names, stat) = tree.children_in_zookeeper_order(path, auth)?;
    Ok((EncodedStrings::from_length_prefixed(count, names), stat))
}

/// whoAmI: one (scheme, user) pair per identity (`AuthUtil.getClientInfos`); digest ids show
/// their user name only, and `super`, which has no provider to name a user, an empty one.
fn who_am_i(auth: &[Id]) -> Vec<(String, String)> {
    auth.iter()
        .map(|id| {
            let user = match id.scheme.as_str() {
                "digest" => id.id.split(':').next().unwrap_or("").to_string(),
                "super" => String::new(),
                _ => id.id.clone(),
            };
            (id.scheme.clone(), user)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_am_i_shows_digest_user_names_not_hashes() {
        let auth = vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "bob:abc="), Id::new("super", "CN=admin")];
        assert_eq!(
            who_am_i(&auth),
            vec![
                ("ip".to_string(), "127.0.0.1".to_string()),
                ("digest".to_string(), "bob".to_string()),
                ("super".to_string(), String::new())
            ]
        );
    }
}
