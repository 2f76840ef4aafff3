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

/// How much lower than the rest of the process a background thread runs (nice 10: a tenth
/// of the CPU share of a normal thread when both want the CPU).
#[cfg(not(feature = "sim"))]
const BACKGROUND_NICE: libc::c_int = 10;

/// Runs CPU-heavy work that nothing waits for urgently (serializing a snapshot: 6 s of CPU
/// at 10M znodes) on a thread of its own at a lower priority, so that the consensus thread,
/// which must answer heartbeats within an election timeout, wins the CPU when both want
/// it. (It did not by itself keep a 10M-znode fill on a 2-core machine from losing its
/// leader; see docs/BENCHMARKS.md.) Under the simulator it runs inline, as [`blocking`]
/// does.
pub async fn background<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> std::io::Result<T> {
    #[cfg(not(feature = "sim"))]
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new().name(name.to_string()).spawn(move || {
            lower_this_threads_priority();
            let _ = tx.send(f());
        })?;
        rx.await.map_err(|_| std::io::Error::other(format!("{name} thread panicked")))
    }
    #[cfg(feature = "sim")]
    {
        let _ = name;
        Ok(f())
    }
}

/// Lowers the calling thread's priority to nice [`BACKGROUND_NICE`], never raising it
/// (Linux schedules threads one by one: `setpriority` on a thread id affects that thread
/// only). Best effort: a failure leaves it as it was.
#[cfg(not(feature = "sim"))]
fn lower_this_threads_priority() {
    let tid = this_thread_id();
    // SAFETY: getpriority and setpriority have no memory-safety preconditions.
    let result = unsafe {
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, now.max(BACKGROUND_NICE))
    };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower a background thread's priority");
    }
}

#[cfg(not(feature = "sim"))]
fn this_thread_id() -> libc::id_t {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::id_t }
}

#[cfg(all(test, not(feature = "sim")))]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> libc::c_int {
        // SAFETY: no preconditions.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, this_thread_id()) }
    }

    #[tokio::test]
    async fn background_work_runs_at_a_lower_priority_than_its_caller() {
        let caller = nice_of_this_thread();
        let inside = background("test-background", nice_of_this_thread).await.unwrap();
        assert!(inside >= BACKGROUND_NICE.max(caller), "nice {inside} in the background, {caller} outside");
        assert_eq!(nice_of_this_thread(), caller, "the caller's own priority is left alone");
    }
}
