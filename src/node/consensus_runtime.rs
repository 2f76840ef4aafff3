//! The runtime consensus runs on: a worker thread of its own, apart from the client port
//! and the HTTP port.
//!
//! Tokio schedules tasks cooperatively, so on one shared runtime a burst of client work
//! (10,000 sessions arming 100 watches each) queues the leader's heartbeats and a
//! follower's election timer behind it, and a healthy ensemble elects a new leader for
//! nothing. On a thread of its own, consensus gets its share of the CPU from the kernel's
//! scheduler, which preempts.
//!
//! What runs here: raft (openraft's core, replication, the state machine's apply, the
//! quorum port, peer links even when a forwarded client write dials them) and the session
//! timers whose lateness would expire live sessions. Clients talk to it through channels.

use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};

/// Owns the consensus thread; dropping it stops that thread's tasks without waiting.
pub(crate) struct ConsensusRuntime {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl ConsensusRuntime {
    pub(crate) fn start() -> std::io::Result<ConsensusRuntime> {
        let runtime = Builder::new_multi_thread().worker_threads(1).thread_name("consensus").enable_all().build()?;
        let handle = runtime.handle().clone();
        Ok(ConsensusRuntime { runtime: Some(runtime), handle })
    }

    /// Runs `fut` on the consensus thread and waits for it: whatever it spawns stays there.
    pub(crate) async fn run<F>(&self, fut: F) -> Result<F::Output, tokio::task::JoinError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(fut).await
    }

    pub(crate) fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(fut)
    }
}

impl Drop for ConsensusRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async context forbids.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The point of the thread: a timer on it fires on time while every worker of the
    /// caller's runtime is held by work that never yields.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timer_on_the_consensus_thread_fires_while_client_workers_are_busy() {
        let runtime = ConsensusRuntime::start().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let busy: Vec<_> = (0..2)
            .map(|_| {
                let stop = stop.clone();
                tokio::spawn(async move {
                    // Blocking work on a runtime worker, as a burst of requests that each
                    // take a while looks to the scheduler.
                    let until = Instant::now() + Duration::from_millis(600);
                    while Instant::now() < until && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        let started = Instant::now();
        // The timer is made on the consensus thread: a timer belongs to the runtime that
        // creates it.
        let slept = runtime.run(async { tokio::time::sleep(Duration::from_millis(10)).await }).await;
        let waited = slept.map(|()| started.elapsed());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for b in busy {
            let _ = b.await;
        }
        let waited = waited.unwrap();
        assert!(waited < Duration::from_millis(400), "a 10 ms timer waited {waited:?}");
    }
}
