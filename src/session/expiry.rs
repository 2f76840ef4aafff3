//! Background tasks that turn time into txns: session expiry, and reaping of
//! empty containers and expired TTL nodes, plus the follower's session activity
//! reports. Expiry and reaping act where expiry is owned (the leader) and decide nothing themselves: the txns they propose are re-validated
//! at apply time, so a race with a client (a reconnect, a new child) is harmless.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tracing::{debug, info, warn};

use crate::consensus::Consensus;
use crate::db::Db;
use crate::tree::txn::{Txn, TxnOp};

use super::SessionTracker;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn internal(op: TxnOp) -> Txn {
    Txn { session_id: 0, time_ms: now_ms(), auth: Vec::new(), op }
}

/// Gives every session the tree knows a fresh full timeout (after a start or a
/// leader change), so nothing expires for time spent without a leader. Sessions the
/// tree no longer has are forgotten.
pub fn track_all(db: &Db, tracker: &SessionTracker) {
    let sessions: Vec<(i64, i32)> = db.read(|t| t.sessions().map(|(id, s)| (id, s.timeout_ms)).collect());
    tracker.reset(sessions);
}

/// Starts tracking sessions the tree has but the tracker lacks (created through
/// another server), each with a full timeout.
fn track_new(db: &Db, tracker: &SessionTracker) {
    let untracked: Vec<(i64, i32)> = db.read(|t| {
        t.sessions()
            .filter(|(id, _)| !tracker.contains(*id) && !tracker.is_expiring(*id))
            .map(|(id, s)| (id, s.timeout_ms))
            .collect()
    });
    for (id, timeout) in untracked {
        tracker.add(id, timeout);
    }
}

/// Leader side of session activity reported by a follower: touch each session,
/// starting to track the ones the tree has and the tracker does not know yet.
pub fn touch_reported(db: &Db, tracker: &SessionTracker, ids: &[i64]) {
    for &id in ids {
        if tracker.touch_tracked(id) || tracker.is_expiring(id) {
            continue;
        }
        if let Some(timeout) = db.read(|t| t.session(id).map(|s| s.timeout_ms)) {
            tracker.add(id, timeout);
        }
    }
}

/// Expires sessions whose deadline passed, checking every `tick`. Runs on every
/// server but acts only on the leader; a server that becomes leader first gives every
/// session a fresh timeout.
pub async fn run_session_expiry(tracker: Arc<SessionTracker>, consensus: Arc<Consensus>, db: Arc<Db>, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    // The term this member is in charge in: leading with a working quorum. Only then can
    // clients reach this server's sessions and keep them alive, so only then do their
    // deadlines run.
    let in_charge_term = || consensus.leading_term().filter(|_| consensus.has_quorum());
    let mut was_in_charge = in_charge_term();
    loop {
        interval.tick().await;
        #[cfg(feature = "sim")]
        super::sim_gate::while_paused(consensus.node_id()).await;
        let in_charge = in_charge_term();
        if in_charge.is_some() && in_charge != was_in_charge {
            // A new leader, or a leader that got its quorum back without an election (the
            // followers that return accept it): either way clients could not reach it for a
            // while, so every session starts afresh, as after a ZooKeeper election. Compared
            // by term, not just "in charge or not": a member deposed and elected again while
            // this task waited for a proposal never looked in charge of nothing, and its
            // deadlines are those of its old term (live sessions were expired at once).
            info!("leading with a quorum: every session gets a fresh timeout");
            track_all(&db, &tracker);
        }
        was_in_charge = in_charge;
        let Some(term) = in_charge else { continue };
        track_new(&db, &tracker);
        for (session_id, timeout) in tracker.take_expired(Instant::now(), term) {
            // Checked again for each session: proposals take time, and a leader that lost its
            // quorum or its leadership meanwhile, or leads in another term now (whose sessions
            // have not had their fresh timeout yet), decides nothing more (the session keeps
            // its full timeout until a leader in charge looks at it afresh).
            if in_charge_term() != in_charge {
                tracker.add(session_id, timeout);
                continue;
            }
            info!(session = format_args!("0x{session_id:x}"), timeout_ms = timeout, "session expired");
            #[cfg(feature = "sim")]
            super::sim_gate::expiry_decided(consensus.node_id(), session_id, term).await;
            match consensus.propose(internal(TxnOp::ExpireSession { session_id, term })).await {
                // Applied, or refused because the entry landed in a later term (this node was
                // deposed and elected again meanwhile): a session the tree still has is tracked
                // afresh by `track_new`, with a full timeout.
                Ok(_) => tracker.expired(session_id),
                Err(e) => {
                    warn!(error = %e, "could not propose session expiry; will retry");
                    tracker.add(session_id, timeout);
                }
            }
        }
    }
}

/// True when a client reconnecting with `session_id` must be told that its session
/// expired because this member, leading, is proposing its close right now. A member that
/// does not lead decides nothing: an expiry it proposed as leader may still be on its way
/// (and be refused, being of an old term), and the leader's revalidation answers instead.
pub fn closing_here(consensus: &Consensus, tracker: &SessionTracker, session_id: i64) -> bool {
    consensus.leading_term().is_some_and(|term| tracker.is_expiring_in(session_id, term))
}

/// Sends the sessions with client activity on this server to the leader every `tick`
/// (nothing to send when this server leads: its own tracker was touched directly).
pub async fn run_session_reporter(tracker: Arc<SessionTracker>, consensus: Arc<Consensus>, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    loop {
        interval.tick().await;
        #[cfg(feature = "sim")]
        super::sim_gate::while_paused(consensus.node_id()).await;
        let touched = tracker.take_touched();
        if touched.is_empty() || consensus.is_leader() {
            continue;
        }
        if let Err(e) = consensus.report_sessions(touched).await {
            debug!(error = %e, "could not report session activity to the leader");
        }
    }
}

/// Deletes empty containers and expired TTL nodes every `interval`.
pub async fn run_reaper(db: Arc<Db>, consensus: Arc<Consensus>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        if !consensus.is_leader() {
            continue;
        }
        let due = db.read(|t| t.reapable(now_ms()));
        for path in due {
            debug!(%path, "reaping container/TTL node");
            if let Err(e) = consensus.propose(internal(TxnOp::DeleteContainer { path })).await {
                warn!(error = %e, "could not propose a container/TTL deletion");
                break;
            }
        }
    }
}
