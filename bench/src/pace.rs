//! Intended send times for the open-loop (fixed-rate) mode.
//!
//! Open-loop latency is measured from the time a request *should* have been sent, so
//! any lateness of the generator itself is charged to the server. tokio's timer
//! rounds every sleep up to the next millisecond: a writer that slept until its next
//! send woke up to 1 ms late, which at 10,000 gets/s was a large part of the measured
//! p50. And since every session slept on the same schedule, all of them sent at once,
//! in bursts the server then queued.
//!
//! Here one OS thread walks the schedule with the kernel's high-resolution sleep and
//! hands each request's intended time to the sessions in turn: request `i` of the
//! whole run is due at `start + i / rate` and belongs to session `i % sessions`.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// The schedule of one open-loop run.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub start: Instant,
    /// No request is due at or after this time (`None`: only `per_session` ends it).
    pub end: Option<Instant>,
    /// Requests per second across all sessions.
    pub rate: f64,
    pub sessions: usize,
    /// Most requests per session.
    pub per_session: Option<u64>,
}

impl Schedule {
    /// When request `i` of the run is due.
    fn due(&self, i: u64) -> Instant {
        self.start + Duration::from_secs_f64(i as f64 / self.rate.max(1e-3))
    }
}

/// Starts the pacing thread; returns one receiver of intended send times per
/// session. A receiver ends when the schedule does (or all receivers are gone).
pub fn start(schedule: Schedule) -> std::io::Result<Vec<UnboundedReceiver<Instant>>> {
    let (senders, receivers) = channels(schedule.sessions.max(1));
    std::thread::Builder::new().name("pacer".into()).spawn(move || run(schedule, senders))?;
    Ok(receivers)
}

/// One channel of send times per session.
fn channels(sessions: usize) -> (Vec<UnboundedSender<Instant>>, Vec<UnboundedReceiver<Instant>>) {
    (0..sessions).map(|_| unbounded_channel()).unzip()
}

fn run(schedule: Schedule, senders: Vec<UnboundedSender<Instant>>) {
    let sessions = senders.len() as u64;
    let total = schedule.per_session.map(|n| n.saturating_mul(sessions));
    let mut i = 0u64;
    while total.is_none_or(|t| i < t) {
        let due = schedule.due(i);
        if schedule.end.is_some_and(|e| due >= e) {
            break;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        // A session that has gone away (its connection failed) just stops receiving;
        // once all have, nobody is left to pace.
        if senders[(i % sessions) as usize].send(due).is_err() && senders.iter().all(|s| s.is_closed()) {
            break;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(rx: &mut UnboundedReceiver<Instant>) -> Vec<Instant> {
        let mut out = Vec::new();
        while let Ok(t) = rx.try_recv() {
            out.push(t);
        }
        out
    }

    #[test]
    fn requests_are_spread_evenly_over_sessions_and_time() {
        let start = Instant::now();
        let schedule = Schedule { start, end: None, rate: 20_000.0, sessions: 4, per_session: Some(50) };
        let mut rxs = start_blocking(schedule);
        let per_session: Vec<Vec<Instant>> = rxs.iter_mut().map(drain).collect();
        for (s, times) in per_session.iter().enumerate() {
            assert_eq!(times.len(), 50, "session {s} gets its limit");
            for (j, t) in times.iter().enumerate() {
                let i = (j * 4 + s) as f64;
                assert_eq!(t.duration_since(start), Duration::from_secs_f64(i / 20_000.0), "session {s} request {j}");
            }
        }
    }

    #[test]
    fn nothing_is_due_at_or_after_the_end() {
        let start = Instant::now();
        let end = start + Duration::from_millis(10);
        let schedule = Schedule { start, end: Some(end), rate: 1_000.0, sessions: 3, per_session: None };
        let mut rxs = start_blocking(schedule);
        let all: Vec<Instant> = rxs.iter_mut().flat_map(drain).collect();
        assert_eq!(all.len(), 10, "1,000/s for 10 ms");
        assert!(all.iter().all(|t| *t < end));
    }

    #[test]
    fn sends_are_not_made_before_they_are_due() {
        let start = Instant::now() + Duration::from_millis(5);
        let schedule = Schedule { start, end: None, rate: 500.0, sessions: 1, per_session: Some(3) };
        let mut rx = super::start(schedule).expect("pacer thread").remove(0);
        for _ in 0..3 {
            let due = rx.blocking_recv().expect("a time");
            assert!(Instant::now() >= due, "handed out early");
        }
        assert!(rx.blocking_recv().is_none(), "the schedule ends after the limit");
    }

    #[test]
    fn the_pacer_stops_once_every_session_is_gone() {
        let schedule = Schedule { start: Instant::now(), end: None, rate: 1e9, sessions: 2, per_session: None };
        let (senders, receivers) = channels(2);
        drop(receivers);
        run(schedule, senders);
    }

    /// Runs the schedule to its end and returns the receivers.
    fn start_blocking(schedule: Schedule) -> Vec<UnboundedReceiver<Instant>> {
        let (senders, receivers) = channels(schedule.sessions);
        run(schedule, senders);
        receivers
    }
}
