//! One module per family of client requests.

pub mod auth;
pub mod read;
pub mod reconfig;
pub mod watch;
pub mod write;

use crate::server::outbound::OutboundQueue;

/// Queues the reply encoded in `out` and empties `out`. A request that sets a watch calls
/// this before it lets go of the watch manager (which a write's events are fired under):
/// the Java client and kazoo register a watcher only when the reply that set it arrives
/// and drop an event nobody is registered for, so an event that overtook that reply would
/// be lost. ZooKeeper answers every read in flight before it applies the next write.
pub fn queue_reply(replies: &OutboundQueue, out: &mut Vec<u8>) {
    replies.reply(bytes::Bytes::copy_from_slice(out));
    out.clear();
}
