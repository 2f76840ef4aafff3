//! Watch management requests: addWatch, checkWatches, removeWatches and the
//! setWatches / setWatches2 a client sends after reconnecting.

use crate::db::Db;
use crate::proto::request::Request;
use crate::proto::response::{encode_reply, ReplyHeader, Response};
use crate::proto::types::{AddWatchMode, ErrorCode, WatcherType};
use crate::server::outbound::OutboundQueue;
use crate::watch::{ConnId, SetWatchesLists};

/// Executes a watch request and encodes its reply frame into `out`; addWatch queues its
/// reply on `replies` itself, before the watch it adds can fire, and leaves `out` empty
/// (the Java client registers the watcher when that reply arrives; see [`super::queue_reply`]).
pub fn execute(db: &Db, conn: ConnId, req_xid: i32, req: Request, replies: &OutboundQueue, out: &mut Vec<u8>) {
    let zxid = db.last_zxid();
    let header = |err: ErrorCode| ReplyHeader { xid: req_xid, zxid, err: err.as_i32() };
    match req {
        Request::AddWatch { path, mode } => match AddWatchMode::from_i32(mode) {
            Some(mode) => {
                // The Java client reads a 4-byte ErrorResponse body here; without it, it disconnects.
                encode_reply(out, &header(ErrorCode::Ok), Some(&Response::ErrorBody(0)));
                db.watches(|w| {
                    let _added = match mode {
                        AddWatchMode::Persistent => w.add_persistent(&path, conn),
                        AddWatchMode::PersistentRecursive => w.add_persistent_recursive(&path, conn),
                    };
                    super::queue_reply(replies, out);
                });
            }
            None => encode_reply(out, &header(ErrorCode::BadArguments), None),
        },
        Request::CheckWatches { path, watcher_type } => {
            let found = WatcherType::from_i32(watcher_type).map(|t| db.watches(|w| w.check(&path, conn, t)));
            encode_reply(out, &header(watch_result(found)), None);
        }
        Request::RemoveWatches { path, watcher_type } => {
            let found = WatcherType::from_i32(watcher_type).map(|t| db.watches(|w| w.remove(&path, conn, t)));
            encode_reply(out, &header(watch_result(found)), None);
        }
        Request::SetWatches {
            relative_zxid,
            data_watches,
            exist_watches,
            child_watches,
            persistent_watches,
            persistent_recursive_watches,
        } => {
            db.read_and_watch(|tree, watches| {
                let lists = SetWatchesLists {
                    relative_zxid,
                    data: &data_watches,
                    exist: &exist_watches,
                    child: &child_watches,
                    persistent: &persistent_watches,
                    recursive: &persistent_recursive_watches,
                };
                let events = watches.set_watches(conn, &lists, |p| tree.stat(p));
                // Catch-up events go out before the reply; like ZooKeeper, unfiltered.
                for (event, path) in events {
                    db.deliver_event(&[conn], event, &path, None);
                }
            });
            // Answered with the request's own xid, like every request: the Java client sends -8,
            // go-zookeeper and aiozk send an ordinary xid and match the reply by it.
            encode_reply(out, &header(ErrorCode::Ok), None);
        }
        _ => encode_reply(out, &header(ErrorCode::Unimplemented), None),
    }
}

fn watch_result(found: Option<bool>) -> ErrorCode {
    match found {
        Some(true) => ErrorCode::Ok,
        Some(false) => ErrorCode::NoWatcher,
        None => ErrorCode::BadArguments,
    }
}
