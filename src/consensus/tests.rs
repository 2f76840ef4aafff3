//! End-to-end tests of the consensus layer with a tiny counter app (not the data tree).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use futures::future::join_all;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::*;
use crate::proto::types::Stat;
use crate::tree::txn::{OpResult, TxnOp};

/// Counter app: every txn adds `session_id` (used as a unique txn id) to a sum and records
/// the id, so tests can check "applied exactly once" and compare states across restarts.
#[derive(Default)]
pub(super) struct CounterApp {
    state: Mutex<CounterState>,
    /// Normal entries applied by this process (not part of the replicated state).
    entries_applied: Mutex<u64>,
    restores: Mutex<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct CounterState {
    sum: i64,
    /// Txn ids in apply order.
    applied: Vec<i64>,
    last_index: u64,
}

impl CounterApp {
    pub(super) fn state(&self) -> CounterState {
        self.state.lock().clone()
    }
    fn entries(&self) -> u64 {
        *self.entries_applied.lock()
    }
}

impl Apply for CounterApp {
    fn apply(&self, _term: u64, index: u64, batch: &TxnBatch) -> BatchOutcome {
        *self.entries_applied.lock() += 1;
        let mut st = self.state.lock();
        assert!(index > st.last_index, "entry {index} applied after {}", st.last_index);
        st.last_index = index;
        let outcomes = batch
            .txns
            .iter()
            .map(|txn| {
                st.sum += txn.session_id;
                st.applied.push(txn.session_id);
                TxnOutcome {
                    zxid: st.applied.len() as i64,
                    result: Ok(OpResult::Created { path: format!("/{}", txn.session_id), stat: Stat::default() }),
                }
            })
            .collect();
        BatchOutcome { outcomes }
    }

    fn freeze(&self) -> FrozenState {
        let bytes = postcard::to_allocvec(&*self.state.lock()).unwrap();
        Box::new(move || bytes)
    }

    fn restore(&self, data: &[u8]) -> Result<(), RestoreError> {
        let st: CounterState = postcard::from_bytes(data).map_err(|e| RestoreError::Corrupt(Box::new(e)))?;
        *self.state.lock() = st;
        *self.restores.lock() += 1;
        Ok(())
    }
}

pub(super) fn txn(id: i64) -> Txn {
    Txn { session_id: id, time_ms: 0, auth: vec![], op: TxnOp::Delete { path: format!("/{id}"), version: -1 } }
}

fn config(dir: &Path) -> ConsensusConfig {
    let mut cfg = ConsensusConfig::standalone(1, dir.to_path_buf());
    cfg.heartbeat_ms = 50;
    cfg.election_timeout_min_ms = 150;
    cfg.election_timeout_max_ms = 300;
    cfg.startup_timeout = Duration::from_secs(20);
    cfg
}

async fn start(cfg: &ConsensusConfig) -> (Arc<Consensus>, Arc<CounterApp>) {
    let app = Arc::new(CounterApp::default());
    let consensus = Consensus::start(cfg.clone(), app.clone()).await.unwrap();
    (Arc::new(consensus), app)
}

/// Stops `c` and starts a new node on the same directory.
async fn restart(c: Arc<Consensus>, cfg: &ConsensusConfig) -> (Arc<Consensus>, Arc<CounterApp>) {
    c.shutdown().await;
    drop(c);
    start(cfg).await
}

/// A node that, like a crashed one, leaves no snapshot when it stops: its restart
/// must rebuild the state from the log.
fn config_without_exit_snapshot(dir: &Path) -> ConsensusConfig {
    ConsensusConfig { snapshot_on_exit: false, ..config(dir) }
}

/// Proposes ids `from..to` all at once and checks each caller got its own outcome.
async fn propose_concurrently(c: &Arc<Consensus>, ids: std::ops::Range<i64>) {
    let futures = ids.clone().map(|id| {
        let c = c.clone();
        async move { (id, c.propose(txn(id)).await.unwrap()) }
    });
    for (id, outcome) in join_all(futures).await {
        match outcome.result {
            Ok(OpResult::Created { path, .. }) => assert_eq!(path, format!("/{id}")),
            other => panic!("unexpected outcome {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_start_becomes_leader() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _app) = start(&config(dir.path())).await;
    assert!(c.is_leader());
    let status = c.metrics();
    assert_eq!(status.role, Role::Leader);
    assert_eq!(status.leader_id, Some(1));
    assert!(status.term >= 1);
    c.shutdown().await;
    c.shutdown().await; // idempotent
    assert!(matches!(c.propose(txn(1)).await, Err(ConsensusError::Stopped)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_are_batched_and_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let (c, app) = start(&config(dir.path())).await;
    propose_concurrently(&c, 1..101).await;
    let st = app.state();
    let mut ids = st.applied.clone();
    ids.sort();
    assert_eq!(ids, (1..101).collect::<Vec<_>>(), "every txn applied exactly once");
    assert_eq!(st.sum, (1..101).sum::<i64>());
    assert!(app.entries() < 100, "100 concurrent proposals used {} entries", app.entries());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_proposals_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let (c, app) = start(&config(dir.path())).await;
    let mut last = 0;
    for id in 1..=20 {
        let out = c.propose(txn(id)).await.unwrap();
        assert!(out.zxid > last, "outcomes come back in log order");
        last = out.zxid;
        // Resolved only after the local apply.
        assert_eq!(app.state().applied.last(), Some(&id));
    }
    assert_eq!(app.state().applied, (1..=20).collect::<Vec<_>>());
    c.shutdown().await;
}

/// Fixed owners: session -> member; records forgotten sessions.
struct FixedOwners {
    owners: BTreeMap<i64, NodeId>,
    forgotten: Mutex<Vec<i64>>,
}

impl SessionOwnership for FixedOwners {
    fn attach(&self, _term: u64, session_id: i64, _timeout_ms: i32, _member: NodeId) -> bool {
        self.owners.contains_key(&session_id)
    }
    fn admit(&self, _term: u64, session_id: i64, member: NodeId) -> bool {
        self.owners.get(&session_id).is_none_or(|owner| *owner == member)
    }
    fn forget(&self, session_id: i64) {
        self.forgotten.lock().push(session_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_a_session_owned_by_another_member_get_session_moved() {
    let dir = tempfile::tempdir().unwrap();
    let (c, app) = start(&config(dir.path())).await;
    // Session 7 is attached to member 2, session 8 to this node (member 1).
    let owners = Arc::new(FixedOwners { owners: BTreeMap::from([(7, 2), (8, 1)]), forgotten: Mutex::new(Vec::new()) });
    c.set_session_ownership(owners.clone());
    // Queues like a forward from member 2 and yields the reply receiver, awaited later.
    #[allow(clippy::async_yields_async)]
    let forwarded_by_2 = |t: Txn| {
        let (reply, wait) = oneshot::channel();
        let proposals = c.core.proposals.clone();
        async move {
            proposals.send(Proposal { txn: t, reply, from: Some(2), sent_term: None }).await.unwrap();
            wait
        }
    };
    // Queued in this order, so they can share entries; each gets its own answer.
    let local_8 = c.submit(txn(8)).await.unwrap();
    let local_7 = c.submit(txn(7)).await.unwrap();
    let remote_7 = forwarded_by_2(txn(7)).await;
    let remote_8 = forwarded_by_2(txn(8)).await;
    let unknown = c.submit(txn(9)).await.unwrap();
    let create = c
        .submit(Txn {
            session_id: 0,
            time_ms: 0,
            auth: vec![],
            op: TxnOp::CreateSession { session_id: 7, timeout_ms: 1, password: [0; 16] },
        })
        .await
        .unwrap();
    let close = c
        .submit(Txn { session_id: 7, time_ms: 0, auth: vec![], op: TxnOp::CloseSession { session_id: 7 } })
        .await
        .unwrap();

    let moved = Err(crate::proto::types::ErrorCode::SessionMoved);
    assert!(local_8.await.unwrap().result.is_ok());
    assert_eq!(local_7.await.unwrap().result, moved);
    let remote_7 = remote_7.await.unwrap().unwrap();
    assert!(remote_7.outcome.result.is_ok());
    assert!(remote_7.index > 0);
    let remote_8 = remote_8.await.unwrap().unwrap();
    assert_eq!(remote_8.outcome.result, moved);
    assert_eq!(remote_8.index, 0, "nothing was written for it");
    assert!(unknown.await.unwrap().result.is_ok(), "no owner known: admitted");
    assert!(create.await.unwrap().result.is_ok(), "session create is not checked");
    assert!(close.await.unwrap().result.is_ok(), "session close is not checked");
    assert_eq!(app.state().applied, vec![8, 7, 9, 0, 7], "moved writes never reach the log");
    assert_eq!(*owners.forgotten.lock(), vec![7], "a close forgets the owner");
    // This node is the leader: attaching is answered here.
    assert!(c.attach_session(8, 1000).await.unwrap());
    assert!(!c.attach_session(10, 1000).await.unwrap());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_barrier_sees_all_prior_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (c, app) = start(&config(dir.path())).await;
    propose_concurrently(&c, 1..31).await;
    c.read_barrier().await.unwrap();
    // What the barrier guarantees: every write proposed before it has been applied.
    assert_eq!(app.state().applied.len(), 30);
    // openraft publishes metrics asynchronously, so they may trail the apply briefly.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut status = c.metrics();
    while status.last_applied != status.last_log_index && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        status = c.metrics();
    }
    assert_eq!(status.last_applied, status.last_log_index);
    c.shutdown().await;
    assert!(c.read_barrier().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replays_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_without_exit_snapshot(dir.path());
    let (c, app) = start(&cfg).await;
    propose_concurrently(&c, 1..51).await;
    for id in 51..61 {
        c.propose(txn(id)).await.unwrap();
    }
    let before = app.state();
    let last_index = c.metrics().last_log_index;
    let (c, app) = restart(c, &cfg).await;
    assert_eq!(app.state(), before, "app state restored exactly from the log");
    assert_eq!(*app.restores.lock(), 0, "no snapshot was taken");
    let status = c.metrics();
    assert!(status.last_log_index > last_index, "a restart elects a new term with a blank entry");
    assert_eq!(status.last_applied, status.last_log_index);
    // Writes continue after the restart.
    c.propose(txn(1000)).await.unwrap();
    assert_eq!(app.state().sum, before.sum + 1000);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_stop_leaves_a_snapshot_so_restart_replays_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (c, app) = start(&cfg).await;
    propose_concurrently(&c, 1..41).await;
    let before = app.state();
    let (c, app) = restart(c, &cfg).await;
    assert_eq!(*app.restores.lock(), 1, "the state came from the exit snapshot");
    assert_eq!(app.state(), before, "and it is exactly the state at the stop");
    c.propose(txn(1000)).await.unwrap();
    assert_eq!(app.state().sum, before.sum + 1000);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_restores_snapshot_and_purged_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config_without_exit_snapshot(dir.path());
    cfg.snapshot_every = 10;
    cfg.log_keep_after_snapshot = 3;
    cfg.max_batch = 4;
    let (c, app) = start(&cfg).await;
    for round in 0..10 {
        propose_concurrently(&c, round * 10..round * 10 + 10).await;
    }
    let m = c
        .core
        .raft
        .wait(Some(Duration::from_secs(30)))
        .metrics(|m| m.snapshot.is_some() && m.purged.is_some(), "snapshot and purge")
        .await
        .unwrap();
    let snapshot_index = m.snapshot.map(|l| l.index).unwrap();
    assert!(snapshot_index >= 10);
    let before = app.state();
    let (c, app) = restart(c, &cfg).await;
    assert_eq!(*app.restores.lock(), 1, "the snapshot was restored");
    assert_eq!(app.state(), before, "snapshot + log tail rebuild the exact state");
    assert!(app.entries() < before.applied.len() as u64, "only the tail after the snapshot was replayed");
    c.propose(txn(5000)).await.unwrap();
    assert_eq!(app.state().sum, before.sum + 5000);
    c.shutdown().await;
}

/// A crash can leave the lazily saved committed id behind the durable log; the restart
/// must still bring the app back to every entry that was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_stale_committed_id_recovers_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_without_exit_snapshot(dir.path());
    let (c, app) = start(&cfg).await;
    propose_concurrently(&c, 1..41).await;
    let before = app.state();
    c.shutdown().await;
    drop(c);
    let mut meta = crate::storage::meta::MetaStore::open(&dir.path().join("meta")).unwrap();
    meta.save("committed", &types::encode(&types::log_id(1, 1)).unwrap()).unwrap();
    drop(meta);

    let (c, app) = start(&cfg).await;
    assert_eq!(app.state(), before);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_metadata_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (c, _app) = start(&cfg).await;
    c.propose(txn(1)).await.unwrap();
    c.shutdown().await;
    drop(c);
    let mut meta = crate::storage::meta::MetaStore::open(&dir.path().join("meta")).unwrap();
    meta.save("vote", &[0xff, 0xff, 0xff, 0xff]).unwrap();
    let app = Arc::new(CounterApp::default());
    match Consensus::start(cfg, app).await {
        Err(ConsensusError::Storage(_)) => {}
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("started on corrupt metadata"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_config_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.election_timeout_min_ms = 500;
    cfg.election_timeout_max_ms = 100;
    let app = Arc::new(CounterApp::default());
    assert!(matches!(Consensus::start(cfg, app).await, Err(ConsensusError::Config(_))));
}

/// openraft's own storage conformance suite against our log store + state machine.
mod conformance {
    use openraft::testing::log::{StoreBuilder, Suite};
    use openraft::StorageError;

    use super::*;
    use crate::consensus::log_store::{LogStore, WriterHandle};
    use crate::consensus::state_machine::StateMachine;

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, (tempfile::TempDir, WriterHandle)> for Builder {
        async fn build(
            &self,
        ) -> Result<((tempfile::TempDir, WriterHandle), LogStore, StateMachine), StorageError<TypeConfig>> {
            let dir = tempfile::tempdir().unwrap();
            let (log, writer) = LogStore::open(dir.path()).unwrap();
            let sm = StateMachine::open(&dir.path().join("snap"), Arc::new(CounterApp::default())).unwrap();
            Ok(((dir, writer), log, sm))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn openraft_storage_suite() {
        Suite::test_all(Builder).await.unwrap();
    }

    #[allow(dead_code)]
    fn _uses(_: BTreeMap<u64, u64>) {}
}

mod ensemble;

/// An app whose snapshot takes a long time, as serializing millions of znodes does.
struct SlowSnapshotApp(CounterApp);

impl Apply for SlowSnapshotApp {
    fn apply(&self, term: u64, index: u64, batch: &TxnBatch) -> BatchOutcome {
        self.0.apply(term, index, batch)
    }
    fn freeze(&self) -> FrozenState {
        let frozen = self.0.freeze();
        Box::new(move || {
            std::thread::sleep(Duration::from_millis(800));
            frozen()
        })
    }
    fn restore(&self, data: &[u8]) -> Result<(), RestoreError> {
        self.0.restore(data)
    }
}

/// Serializing a snapshot must not occupy a runtime worker: on a 3-member ensemble every
/// member snapshots at the same index, and a worker held for the serialization's length
/// (half a second at a million znodes) kept heartbeats from running until the leader lost
/// its quorum (bench/scale, 2026-12-06). With one worker, any other task stalls as long as
/// the serialization if it runs on that worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_slow_snapshot_does_not_hold_up_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.snapshot_every = 10;
    cfg.max_batch = 1; // one log entry per txn, so 30 txns make snapshots
    let consensus = Consensus::start(cfg.clone(), Arc::new(SlowSnapshotApp(CounterApp::default()))).await.unwrap();
    let c = Arc::new(consensus);
    let ticker = tokio::spawn(async {
        let (mut worst, mut last) = (Duration::ZERO, std::time::Instant::now());
        let end = last + Duration::from_secs(4);
        while last < end {
            tokio::time::sleep(Duration::from_millis(10)).await;
            worst = worst.max(last.elapsed());
            last = std::time::Instant::now();
        }
        worst
    });
    for round in 0..3 {
        propose_concurrently(&c, round * 10..round * 10 + 10).await;
    }
    c.core
        .raft
        .wait(Some(Duration::from_secs(30)))
        .metrics(|m| m.snapshot.is_some_and(|s| s.index >= 10), "a snapshot")
        .await
        .unwrap();
    let worst = ticker.await.unwrap();
    assert!(worst < Duration::from_millis(500), "a 10 ms timer task waited {worst:?} while a snapshot was serialized");
    c.shutdown().await;
}

/// An app whose serializer waits until the test opens its gate (20 s at most).
#[derive(Default)]
struct GatedSnapshotApp {
    inner: CounterApp,
    frozen: std::sync::atomic::AtomicBool,
    gate: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl GatedSnapshotApp {
    fn open_gate(&self) {
        let (open, cvar) = &*self.gate;
        *open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
    }
}

impl Apply for GatedSnapshotApp {
    fn apply(&self, term: u64, index: u64, batch: &TxnBatch) -> BatchOutcome {
        self.inner.apply(term, index, batch)
    }
    fn freeze(&self) -> FrozenState {
        let frozen = self.inner.freeze();
        self.frozen.store(true, std::sync::atomic::Ordering::SeqCst);
        let gate = self.gate.clone();
        Box::new(move || {
            let (open, cvar) = &*gate;
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let mut is_open = open.lock().unwrap_or_else(|e| e.into_inner());
            while !*is_open && std::time::Instant::now() < deadline {
                is_open = cvar.wait_timeout(is_open, Duration::from_millis(50)).unwrap_or_else(|e| e.into_inner()).0;
            }
            drop(is_open);
            frozen()
        })
    }
    fn restore(&self, data: &[u8]) -> Result<(), RestoreError> {
        self.inner.restore(data)
    }
}

/// Apply must not wait for a snapshot's serialization (2.7 s at 3M znodes, which made
/// setData's p99.9 2.5 s at that size): only the freeze happens between two applies.
/// Here the serializer is held until every write below has been applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_applied_while_a_snapshot_is_serialized() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.snapshot_every = 10;
    cfg.max_batch = 1;
    let app = Arc::new(GatedSnapshotApp::default());
    let c = Arc::new(Consensus::start(cfg, app.clone()).await.unwrap());
    propose_concurrently(&c, 0..10).await;
    for _ in 0..400 {
        if app.frozen.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(app.frozen.load(std::sync::atomic::Ordering::SeqCst), "a snapshot began");
    for id in 100..110 {
        let applied = tokio::time::timeout(Duration::from_secs(5), c.propose(txn(id))).await;
        assert!(matches!(applied, Ok(Ok(_))), "write {id} while the snapshot is serialized: {applied:?}");
    }
    app.open_gate();
    c.core
        .raft
        .wait(Some(Duration::from_secs(30)))
        .metrics(|m| m.snapshot.is_some_and(|s| s.index >= 10), "the snapshot")
        .await
        .unwrap();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_stamped_with_another_term_is_refused_before_it_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let (c, app) = start(&config(dir.path())).await;
    let term = c.core.raft.metrics().borrow_watched().current_term;
    assert!(term > 0);
    // Queues like a forward from member 2 and yields the reply receiver, awaited later.
    #[allow(clippy::async_yields_async)]
    let forwarded_in = |t: Txn, sent_term: u64| {
        let (reply, wait) = oneshot::channel();
        let proposals = c.core.proposals.clone();
        async move {
            proposals.send(Proposal { txn: t, reply, from: Some(2), sent_term: Some(sent_term) }).await.unwrap();
            wait
        }
    };
    // Sent in an earlier term (it reached this leader only after it was elected again),
    // in the current one, and in one this node never led.
    let earlier = forwarded_in(txn(1), term - 1).await;
    let current = forwarded_in(txn(2), term).await;
    let later = forwarded_in(txn(3), term + 1).await;
    match earlier.await.unwrap() {
        Err(ConsensusError::TermPassed { sent_term, term: now }) => assert_eq!((sent_term, now), (term - 1, term)),
        other => panic!("an earlier term's forward was not refused: {other:?}"),
    }
    assert!(current.await.unwrap().is_ok(), "the current term's forward is appended");
    assert!(matches!(later.await.unwrap(), Err(ConsensusError::TermPassed { .. })));
    assert_eq!(app.state().applied, vec![2], "refused forwards never reach the log");
}
