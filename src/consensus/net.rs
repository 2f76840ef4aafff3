//! The sockets of the quorum port, in one place so that the simulator can swap them.
//!
//! Production uses tokio's TCP types. With the `sim` cargo feature (only for `tests/sim.rs`)
//! they are turmoil's simulated ones, whose network (latency, partitions, crashes) and clock a
//! test drives from a seed. Nothing else in the consensus layer names a socket type.
//!
//! Blocking file work goes through [`blocking`] for the same reason: a thread of tokio's
//! blocking pool finishes at a moment of real time, which the simulator cannot control.

use std::os::fd::OwnedFd;
use std::time::Duration;

#[cfg(not(feature = "sim"))]
pub use tokio::net::{TcpListener, TcpStream};
#[cfg(feature = "sim")]
pub use turmoil::net::{TcpListener, TcpStream};

/// A duplicate of an accepted socket's descriptor, so that a read can ask the kernel what
/// is queued on it (see `heard_commits`). A simulated socket has no descriptor: `None`.
#[cfg(not(feature = "sim"))]
pub fn duplicate_descriptor(sock: &TcpStream) -> Option<OwnedFd> {
    std::os::fd::AsFd::as_fd(sock).try_clone_to_owned().ok()
}

#[cfg(feature = "sim")]
pub fn duplicate_descriptor(_sock: &TcpStream) -> Option<OwnedFd> {
    None
}

/// Waits at most `timeout` for the first byte of a new connection, leaving it unread.
/// `None` when the peer closed or sent nothing in time. (`&mut`: turmoil's `peek` needs it.)
pub async fn peek_first_byte(sock: &mut TcpStream, timeout: Duration) -> Option<u8> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(timeout, sock.peek(&mut first)).await {
        Ok(Ok(1)) => Some(first[0]),
        _ => None,
    }
}

/// Runs blocking file work (snapshot files, WAL reads, opening the storage) off the async
/// workers, on tokio's blocking pool. Under the simulator it runs inline instead: the
/// simulated clock stands still meanwhile, so the disk is instant and the run does not
/// depend on how fast the machine is.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::io::Result<T> {
    #[cfg(not(feature = "sim"))]
    return tokio::task::spawn_blocking(f).await.map_err(std::io::Error::other);
    #[cfg(feature = "sim")]
    Ok(f())
}
