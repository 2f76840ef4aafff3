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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Handle, Runtime};

/// How often the consensus thread proves it is running.
const STALL_TICK: Duration = Duration::from_millis(50);
/// A gap longer than this is logged: followers call an election after 250-500 ms without
/// their leader, so a stall of this size on a leader is one that can depose it.
const STALL_WARN: Duration = Duration::from_millis(250);

/// Owns the consensus thread; dropping it stops that thread's tasks without waiting.
pub(crate) struct ConsensusRuntime {
    runtime: Option<Runtime>,
    handle: Handle,
    stall_watch: StallWatch,
}

impl ConsensusRuntime {
    pub(crate) fn start() -> std::io::Result<ConsensusRuntime> {
        let runtime = Builder::new_multi_thread().worker_threads(1).thread_name("consensus").enable_all().build()?;
        let handle = runtime.handle().clone();
        let stall_watch = StallWatch::start(&handle)?;
        Ok(ConsensusRuntime { runtime: Some(runtime), handle, stall_watch })
    }

    /// Stalls of the consensus thread longer than [`STALL_WARN`] so far.
    #[cfg(test)]
    fn stalls(&self) -> u64 {
        self.stall_watch.shared.stalls.load(Ordering::Relaxed)
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

/// Notices when the consensus thread stops running tasks, as ZooKeeper's JvmPauseMonitor
/// notices pauses: a task there stamps the time every [`STALL_TICK`], and a plain thread
/// logs a warning when the stamp is older than [`STALL_WARN`] (while it lasts and when it
/// ends, with its length). Whatever held the thread (a long apply, a blocking call, the
/// machine itself) shows up in the log next to the election it caused.
struct StallWatch {
    shared: Arc<StallShared>,
}

struct StallShared {
    epoch: Instant,
    /// Milliseconds since `epoch` of the consensus thread's last tick.
    last_tick_ms: AtomicU64,
    stalls: AtomicU64,
    stop: AtomicBool,
}

impl StallWatch {
    fn start(handle: &Handle) -> std::io::Result<StallWatch> {
        let shared = Arc::new(StallShared {
            epoch: Instant::now(),
            last_tick_ms: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let ticker = shared.clone();
        handle.spawn(async move {
            let mut tick = tokio::time::interval(STALL_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !ticker.stop.load(Ordering::Relaxed) {
                tick.tick().await;
                ticker.last_tick_ms.store(ticker.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
        });
        let watcher = shared.clone();
        std::thread::Builder::new().name("stall-watch".into()).spawn(move || watcher.watch())?;
        Ok(StallWatch { shared })
    }

    /// Ends the ticker and the watch thread (within a tick).
    fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

impl StallShared {
    fn watch(&self) {
        let mut stalled_since: Option<u64> = None;
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(STALL_TICK);
            let now = self.epoch.elapsed().as_millis() as u64;
            let last = self.last_tick_ms.load(Ordering::Relaxed);
            // The tick itself may be up to one period old.
            let late = now.saturating_sub(last).saturating_sub(STALL_TICK.as_millis() as u64);
            match stalled_since {
                None if late > STALL_WARN.as_millis() as u64 => {
                    stalled_since = Some(last);
                    self.stalls.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(late_ms = late, "the consensus thread has not run its tasks for a while");
                }
                Some(since) if last > since => {
                    stalled_since = None;
                    tracing::warn!(stalled_ms = last.saturating_sub(since), "the consensus thread runs again");
                }
                _ => {}
            }
        }
    }
}

impl Drop for ConsensusRuntime {
    fn drop(&mut self) {
        self.stall_watch.stop();
        // Dropping a runtime blocks, which an async context forbids.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A stall of the consensus thread is counted (and logged) by the watch thread; its
    /// normal ticking is not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_blocked_consensus_thread_is_noticed() {
        let runtime = ConsensusRuntime::start().unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(runtime.stalls(), 0, "an idle thread counted as stalled");
        // Work that never yields, as a long apply or a blocking call looks to the runtime.
        runtime.run(async { std::thread::sleep(Duration::from_millis(700)) }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(runtime.stalls(), 1);
    }
}
