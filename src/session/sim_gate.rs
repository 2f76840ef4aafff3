//! Under the simulator only (`tests/sim.rs`, cargo feature `sim`): faults that the network
//! cannot make, injected into a member's session tasks.
//!
//! A schedule can stall a member's expiry task between deciding an expiry and proposing it,
//! as a proposal that waits behind a busy batcher, or a task that is not scheduled, would be.
//! The decision then reaches the log after its leader was deposed, and, when that member
//! leads again, in a later term (where the apply-time term check must refuse it).
//!
//! A schedule can also pause a member, as SIGSTOP would as far as these tasks go: its expiry
//! and activity-report tasks stop at their next tick, and on resume they find their timers
//! overdue and act on what they knew before the pause. (turmoil cannot stop one host's clock
//! or its other tasks; the simulator holds the member's links meanwhile.)

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

/// How often a stalled task looks whether it may go on (simulated time).
const POLL: Duration = Duration::from_millis(5);

#[derive(Default)]
struct Gate {
    paused: bool,
    /// Expiries decided here wait before being proposed.
    holds_expiries: bool,
    /// (session id, term it was decided in) of the expiries waiting here.
    waiting: Vec<(i64, u64)>,
}

// The simulation runs every member on the test's thread.
thread_local! {
    static GATES: RefCell<BTreeMap<u64, Gate>> = RefCell::default();
}

fn with_gate<T>(node: u64, f: impl FnOnce(&mut Gate) -> T) -> T {
    GATES.with(|g| f(g.borrow_mut().entry(node).or_default()))
}

/// The expiries that member `node` decides from now on wait before being proposed, until
/// [`release_expiries`].
pub fn hold_expiries(node: u64) {
    with_gate(node, |g| g.holds_expiries = true);
}

/// Lets the expiries waiting at member `node` go on to be proposed.
pub fn release_expiries(node: u64) {
    with_gate(node, |g| g.holds_expiries = false);
}

/// (session id, term decided in) of the expiries waiting at member `node`.
pub fn held_expiries(node: u64) -> Vec<(i64, u64)> {
    with_gate(node, |g| g.waiting.clone())
}

/// Pauses member `node`'s session tasks until [`resume`].
pub fn pause(node: u64) {
    with_gate(node, |g| g.paused = true);
}

/// Ends [`pause`] (SIGCONT).
pub fn resume(node: u64) {
    with_gate(node, |g| g.paused = false);
}

pub fn is_paused(node: u64) -> bool {
    with_gate(node, |g| g.paused)
}

/// Waits while member `node` is paused.
pub async fn while_paused(node: u64) {
    while is_paused(node) {
        tokio::time::sleep(POLL).await;
    }
}

/// Forgets every gate (a new simulation begins).
pub fn reset() {
    GATES.with(|g| g.borrow_mut().clear());
}

/// Called by the expiry task of `node` between deciding to expire `session_id` in `term`
/// and proposing it: waits while the schedule holds that member's expiries or pauses it.
pub(crate) async fn expiry_decided(node: u64, session_id: i64, term: u64) {
    let decided = (session_id, term);
    loop {
        let held = with_gate(node, |g| {
            if !g.holds_expiries && !g.paused {
                g.waiting.retain(|w| *w != decided);
                return false;
            }
            if !g.waiting.contains(&decided) {
                g.waiting.push(decided);
            }
            true
        });
        if !held {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}
