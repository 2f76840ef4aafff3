//! The live cluster view behind the cluster and sessions pages.
//!
//! One task samples the backend's view of the ensemble, turns it into display rows (the
//! same rows the page is first rendered from, so there is one formatter) and keeps a short
//! timeline of what changed: leader and term changes, members going down or coming back,
//! reconfigs. `GET /api/v1/cluster/stream` sends the view as server-sent events whenever it
//! changes, plus the caller's sessions and the watches when asked for.
//!
//! One leader per term: the leader shown is the one this member follows in its current
//! term. Another member's own report of being leader (polled, so possibly older) is shown
//! as such, never as a second leader.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as AxState};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::auth::Caller;
use super::backend::{Backend, ClusterInfo};
use super::format;
use super::ui::{session_rows, watch_rows, Crumb, SessionRow};
use super::State;
use crate::proto::types::Id;

/// How often the view is sampled while a page shows it, and while none does.
const SAMPLE_WATCHED: Duration = Duration::from_millis(250);
const SAMPLE_IDLE: Duration = Duration::from_secs(1);
/// How often a stream re-reads the sessions and watches it was asked for.
const SESSIONS_EVERY: Duration = Duration::from_millis(500);
/// Timeline entries kept.
const TIMELINE: usize = 50;

/// One member as the cluster page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberRow {
    pub id: u64,
    pub address: String,
    pub role: String,
    /// The leader this member follows in `term`; at most one row has it.
    pub leader: bool,
    pub this: bool,
    pub zxid: String,
    /// Transactions behind the newest member (same epoch only), or `-`.
    pub lag: String,
    pub connections: u64,
    pub latency: String,
    pub znodes: u64,
    /// `up`, `down` or `not serving` (up, without a quorum).
    pub state: &'static str,
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterEvent {
    pub at_ms: i64,
    /// `HH:MM:SS.mmm` (UTC).
    pub at: String,
    /// `leader`, `down`, `up` or `reconfig`.
    pub kind: &'static str,
    pub text: String,
}

/// What the cluster page shows, as of `at_ms`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterView {
    pub version: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub members: Vec<MemberRow>,
    /// Newest first.
    pub events: Vec<ClusterEvent>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn event(at_ms: i64, kind: &'static str, text: String) -> ClusterEvent {
    let at = format::time_ms(at_ms).get(11..23).unwrap_or_default().to_owned();
    ClusterEvent { at_ms, at, kind, text }
}

/// The display rows of `info` (see the module comment on leaders).
pub fn member_rows(info: &ClusterInfo) -> Vec<MemberRow> {
    let newest = info.members.iter().filter(|m| m.reachable).map(|m| m.zxid).max().unwrap_or(0);
    info.members
        .iter()
        .map(|m| {
            let leader = info.leader_id == Some(m.id);
            let role = if leader && m.role != "standalone" {
                "leader".to_owned()
            } else if m.role == "leader" {
                // Its own (polled) report, from a term this member has left or not reached.
                "leader in another term".to_owned()
            } else {
                m.role.clone()
            };
            let state = match (m.reachable, m.role.as_str()) {
                (false, _) => "down",
                (true, "not serving") => "not serving",
                (true, _) => "up",
            };
            let lag = if m.reachable && newest >> 32 == m.zxid >> 32 {
                (newest - m.zxid).to_string()
            } else {
                "-".to_owned()
            };
            MemberRow {
                id: m.id,
                address: m.address.clone(),
                role,
                leader,
                this: m.id == info.this_id,
                zxid: format::zxid(m.zxid),
                lag,
                connections: m.connections,
                latency: format!("{:.1} / {} ms", m.avg_latency_ms, m.max_latency_ms),
                znodes: m.znode_count,
                state,
            }
        })
        .collect()
}

/// What changed from `prev` to `cur`, as timeline entries (oldest first).
fn changes(prev: Option<&ClusterInfo>, cur: &ClusterInfo, at_ms: i64) -> Vec<ClusterEvent> {
    let mut out = Vec::new();
    let leader_text = |info: &ClusterInfo| match info.leader_id {
        Some(id) => format!("leader: member {id} (term {})", info.term),
        None => format!("no leader (term {}): election under way", info.term),
    };
    let Some(prev) = prev else {
        out.push(event(at_ms, "leader", leader_text(cur)));
        return out;
    };
    if prev.voters != cur.voters && !prev.voters.is_empty() {
        out.push(event(at_ms, "reconfig", format!("voters {:?} → {:?}", prev.voters, cur.voters)));
    }
    for m in &cur.members {
        let was = prev.members.iter().find(|p| p.id == m.id).map(|p| p.reachable);
        match (was, m.reachable) {
            (Some(true), false) => out.push(event(at_ms, "down", format!("member {} down ({})", m.id, m.address))),
            (Some(false), true) => out.push(event(at_ms, "up", format!("member {} up ({})", m.id, m.address))),
            _ => {}
        }
    }
    if (prev.leader_id, prev.term) != (cur.leader_id, cur.term) {
        out.push(event(at_ms, "leader", leader_text(cur)));
    }
    out
}

fn view(info: &ClusterInfo, timeline: &VecDeque<ClusterEvent>) -> ClusterView {
    ClusterView {
        version: info.version.clone(),
        term: info.term,
        leader_id: info.leader_id,
        members: member_rows(info),
        events: timeline.iter().rev().cloned().collect(),
    }
}

/// The latest cluster view, kept current by a background task.
pub struct ClusterFeed {
    rx: watch::Receiver<Arc<ClusterView>>,
}

impl ClusterFeed {
    /// Starts the sampling task on the current tokio runtime; it ends with the feed.
    pub fn start(backend: Arc<dyn Backend>) -> ClusterFeed {
        let first = backend.cluster();
        let mut timeline: VecDeque<ClusterEvent> = changes(None, &first, now_ms()).into();
        let (tx, rx) = watch::channel(Arc::new(view(&first, &timeline)));
        tokio::spawn(async move {
            let mut prev = first;
            // The feed's own receiver is one; more are pages looking.
            while !tx.is_closed() {
                let watched = tx.receiver_count() > 1;
                tokio::time::sleep(if watched { SAMPLE_WATCHED } else { SAMPLE_IDLE }).await;
                let cur = backend.cluster();
                if cur == prev {
                    continue;
                }
                timeline.extend(changes(Some(&prev), &cur, now_ms()));
                while timeline.len() > TIMELINE {
                    timeline.pop_front();
                }
                tx.send_replace(Arc::new(view(&cur, &timeline)));
                prev = cur;
            }
        });
        ClusterFeed { rx }
    }

    /// The view as of now.
    pub fn current(&self) -> Arc<ClusterView> {
        self.rx.borrow().clone()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    #[serde(default)]
    sessions: bool,
    #[serde(default)]
    watches: bool,
}

/// Sessions or watches as last sent on one stream.
#[derive(PartialEq)]
enum Sent {
    Sessions(Vec<SessionRow>),
    Watches(Vec<(Crumb, Vec<String>)>),
}

struct Streamer {
    state: State,
    ids: Vec<Id>,
    rx: watch::Receiver<Arc<ClusterView>>,
    first: bool,
    query: StreamQuery,
    last_sessions: Option<Vec<SessionRow>>,
    last_watches: Option<Vec<(Crumb, Vec<String>)>>,
    tick: tokio::time::Interval,
}

fn sse(name: &str, value: &impl Serialize) -> Event {
    Event::default().event(name).data(serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
}

impl Streamer {
    /// Sessions or watches that changed since last sent, if any.
    fn changed_tables(&mut self) -> Option<Sent> {
        if self.query.sessions {
            let rows = session_rows(&self.state, &self.ids);
            if self.last_sessions.as_ref() != Some(&rows) {
                self.last_sessions = Some(rows.clone());
                return Some(Sent::Sessions(rows));
            }
        }
        if self.query.watches {
            let rows = watch_rows(&self.state);
            if self.last_watches.as_ref() != Some(&rows) {
                self.last_watches = Some(rows.clone());
                return Some(Sent::Watches(rows));
            }
        }
        None
    }

    async fn next(&mut self) -> Option<Event> {
        if self.first {
            self.first = false;
            let v = self.rx.borrow_and_update().clone();
            // Reconnect quickly after the server comes back.
            return Some(sse("cluster", &*v).retry(Duration::from_secs(1)));
        }
        loop {
            if let Some(sent) = self.changed_tables() {
                return Some(match sent {
                    Sent::Sessions(rows) => sse("sessions", &rows),
                    Sent::Watches(rows) => sse("watches", &rows),
                });
            }
            tokio::select! {
                changed = self.rx.changed() => {
                    changed.ok()?;
                    let v = self.rx.borrow_and_update().clone();
                    return Some(sse("cluster", &*v));
                }
                _ = self.tick.tick() => {}
            }
        }
    }
}

/// `GET /api/v1/cluster/stream`: the cluster view (event `cluster`) now and on every
/// change; with `?sessions=true` the caller's sessions (event `sessions`), with
/// `?watches=true` the watches by path (event `watches`), each when they change.
pub async fn stream(
    AxState(state): AxState<State>,
    caller: Caller,
    q: Result<Query<StreamQuery>, QueryRejection>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let query = q.map(|Query(q)| q).unwrap_or_default();
    let mut tick = tokio::time::interval(SESSIONS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let streamer = Streamer {
        rx: state.cluster.rx.clone(),
        state,
        ids: caller.ids,
        first: true,
        query,
        last_sessions: None,
        last_watches: None,
        tick,
    };
    let events = futures::stream::unfold(streamer, |mut s| async move { s.next().await.map(|e| (Ok(e), s)) });
    Sse::new(events).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::backend::MemberInfo;

    fn member(id: u64, role: &str, zxid: i64, reachable: bool) -> MemberInfo {
        MemberInfo {
            id,
            address: format!("h:{id}"),
            role: role.into(),
            zxid,
            connections: 0,
            avg_latency_ms: 0.0,
            max_latency_ms: 0,
            znode_count: 0,
            reachable,
        }
    }

    fn info(leader: Option<u64>, term: u64, members: Vec<MemberInfo>) -> ClusterInfo {
        ClusterInfo { this_id: 1, leader_id: leader, term, voters: vec![1, 2, 3], members, version: "v".into() }
    }

    #[test]
    fn a_stale_leader_report_is_not_a_second_leader() {
        let i = info(
            Some(2),
            5,
            vec![
                member(1, "follower", 5 << 32, true),
                member(2, "leader", 5 << 32, true),
                member(3, "leader", 3, true),
            ],
        );
        let rows = member_rows(&i);
        assert_eq!(rows.iter().filter(|r| r.leader).count(), 1);
        assert!(rows[1].leader);
        assert_eq!(rows[2].role, "leader in another term");
        assert_eq!(rows[2].lag, "-", "another epoch has no lag figure");
    }

    #[test]
    fn timeline_records_down_up_leader_and_reconfig() {
        let a = info(Some(1), 1, vec![member(1, "leader", 10, true), member(2, "follower", 8, true)]);
        let mut b = info(Some(2), 2, vec![member(1, "unknown", 0, false), member(2, "leader", 12, true)]);
        b.voters = vec![2, 3];
        let ev = changes(Some(&a), &b, 0);
        let kinds: Vec<_> = ev.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["reconfig", "down", "leader"]);
        assert_eq!(ev[2].text, "leader: member 2 (term 2)");
        assert_eq!(member_rows(&a)[1].lag, "2");
        assert_eq!(member_rows(&b)[0].state, "down");
    }
}
