//! openraft's state machine over the application's [`Apply`] implementation, with
//! snapshots kept in `storage::snap`.
//!
//! The application state lives in memory (the data tree); durability comes from the log
//! plus periodic snapshots. On startup the newest snapshot is restored into the app and
//! `last_applied` is set from its metadata, so openraft replays only the log after it.

use std::io;
use std::path::Path;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use parking_lot::Mutex;
use tokio::sync::watch;

use super::in_flight::InFlight;
use super::snapshot_pace::SnapshotPace;
use super::types::{self, LogId, Snapshot, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig};
use super::{Apply, ConsensusError};
use crate::storage::snap::{SnapshotId as StoredSnapshotId, SnapshotStore};
use crate::tree::txn::BatchOutcome;

/// Applying yields the consensus thread after this long (see `apply`).
const APPLY_SLICE: std::time::Duration = std::time::Duration::from_millis(5);

/// Snapshot files kept on disk; older ones are deleted after each new snapshot.
const SNAPSHOTS_TO_KEEP: usize = 2;

/// The snapshot store is shared between the state machine and its snapshot builders,
/// whose `build_snapshot` runs in a separate task.
type SharedSnapshots = Arc<Mutex<SnapshotStore>>;

/// The snapshot restored at open, served to openraft's startup instead of reading the
/// file again: `Raft::new` asks for the current snapshot twice, and each read of a
/// million-znode snapshot costs a 155 MB read plus its checksum. Released (see
/// [`StartupSnapshot::release`]) once raft has started, so the bytes are not kept.
#[derive(Clone, Default)]
pub struct StartupSnapshot(Arc<Mutex<Option<(SnapshotMeta, SnapshotData)>>>);

impl StartupSnapshot {
    /// Drops the cached bytes; from now on the current snapshot is read from disk.
    pub fn release(&self) {
        self.0.lock().take();
    }

    fn get(&self) -> Option<(SnapshotMeta, SnapshotData)> {
        self.0.lock().clone()
    }
}

/// openraft state machine: feeds committed entries to [`Apply`] in log order.
pub struct StateMachine {
    app: Arc<dyn Apply>,
    snapshots: SharedSnapshots,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    /// Publishes the index of the last applied entry (followers wait on it before
    /// answering a forwarded write or a `sync`).
    applied_tx: watch::Sender<u64>,
    /// The same index for readers that must not take the watch's lock (every client read).
    applied_index: Arc<std::sync::atomic::AtomicU64>,
    /// What was applied since the last snapshot began, and the last snapshot's size: the
    /// snapshot trigger decides from these (one log entry carries a whole batch of txns).
    pace: Arc<SnapshotPace>,
    startup: StartupSnapshot,
    /// Txns this member forwarded and is still waiting for; told about each applied one.
    in_flight: Arc<InFlight>,
}

impl StateMachine {
    /// What the snapshot trigger decides from.
    pub fn snapshot_pace(&self) -> Arc<SnapshotPace> {
        self.pace.clone()
    }

    /// The registry of forwarded txns this state machine reports applied txns to.
    pub fn in_flight(&self) -> Arc<InFlight> {
        self.in_flight.clone()
    }

    /// The snapshot restored at open, kept until [`StartupSnapshot::release`].
    pub fn startup_snapshot(&self) -> StartupSnapshot {
        self.startup.clone()
    }

    /// Opens the snapshot directory and restores the newest snapshot (if any) into `app`.
    pub fn open(dir: &Path, app: Arc<dyn Apply>) -> Result<StateMachine, ConsensusError> {
        let store = SnapshotStore::open(dir).map_err(|e| ConsensusError::Storage(io::Error::other(e)))?;
        let mut sm = StateMachine {
            app,
            snapshots: Arc::new(Mutex::new(store)),
            last_applied: None,
            last_membership: StoredMembership::default(),
            applied_tx: watch::Sender::new(0),
            applied_index: Arc::default(),
            pace: Arc::default(),
            startup: StartupSnapshot::default(),
            in_flight: Arc::default(),
        };
        if let Some((meta, data)) = load_latest(&sm.snapshots).map_err(ConsensusError::Storage)? {
            sm.app.restore(&data)?;
            sm.pace.snapshot_size(data.len() as u64);
            sm.last_applied = meta.last_log_id;
            sm.last_membership = meta.last_membership.clone();
            sm.publish_applied();
            *sm.startup.0.lock() = Some((meta, data));
        }
        Ok(sm)
    }

    /// A receiver of the last applied index.
    pub fn applied_watch(&self) -> watch::Receiver<u64> {
        self.applied_tx.subscribe()
    }

    /// The last applied index as an atomic (stored after the entry is applied).
    pub fn applied_index(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.applied_index.clone()
    }

    fn publish_applied(&self) {
        let index = self.last_applied.map_or(0, |l| l.index);
        self.applied_index.store(index, std::sync::atomic::Ordering::Release);
        self.applied_tx.send_if_modified(|cur| {
            let changed = *cur != index;
            *cur = index;
            changed
        });
    }

    fn current_meta(&self) -> SnapshotMeta {
        SnapshotMeta { last_log_id: self.last_applied, last_membership: self.last_membership.clone() }
    }
}

/// Reads and decodes the newest snapshot on disk.
fn load_latest(store: &SharedSnapshots) -> io::Result<Option<(SnapshotMeta, SnapshotData)>> {
    let latest = store.lock().latest().map_err(io::Error::other)?;
    match latest {
        None => Ok(None),
        Some(stored) => {
            let meta: SnapshotMeta = types::decode(&stored.meta)?;
            Ok(Some((meta, types::snapshot_data(stored.data))))
        }
    }
}

/// Writes a snapshot durably and drops the ones older than the last few.
fn persist(store: &SharedSnapshots, meta: &SnapshotMeta, data: &[u8]) -> io::Result<()> {
    let id = match &meta.last_log_id {
        Some(l) => StoredSnapshotId { term: types::term_of(l), index: l.index },
        None => StoredSnapshotId { term: 0, index: 0 },
    };
    let meta_bytes = types::encode(meta)?;
    let store = store.lock();
    store.save(&id, &meta_bytes, data).map_err(io::Error::other)?;
    store.retain(SNAPSHOTS_TO_KEEP).map_err(io::Error::other)?;
    Ok(())
}

/// Runs blocking snapshot-file IO off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    super::net::blocking(f).await?
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut ran_since = tokio::time::Instant::now();
        while let Some(item) = entries.next().await {
            // openraft hands over every committed entry in one stream, often ready at once, and
            // this task shares the consensus thread with heartbeats and replication: let them
            // run every few milliseconds of applying (during a 10M fill the three members'
            // consensus threads were busy in user space for 300-900 ms at the same moments,
            // which points at the one thing they all do at once: applying).
            if ran_since.elapsed() >= APPLY_SLICE {
                tokio::task::yield_now().await;
                ran_since = tokio::time::Instant::now();
            }
            let (entry, responder) = item?;
            let log_id = entry.log_id;
            let outcome = match entry.payload {
                EntryPayload::Blank => BatchOutcome::default(),
                EntryPayload::Normal(batch) => {
                    let bytes = batch.txns.iter().map(types::txn_bytes).sum::<usize>();
                    self.pace.applied(batch.txns.len() as u64, bytes as u64);
                    let outcome = self.app.apply(types::term_of(&log_id), log_id.index, &batch);
                    self.in_flight.observe(log_id.index, &batch.txns, &outcome.outcomes);
                    outcome
                }
                EntryPayload::Membership(membership) => {
                    self.last_membership = StoredMembership::new(Some(log_id), membership);
                    BatchOutcome::default()
                }
            };
            self.last_applied = Some(log_id);
            self.publish_applied();
            if let Some(responder) = responder {
                responder.send(outcome);
            }
        }
        Ok(())
    }

    /// Freezes the app *here*, on the state-machine task, so the snapshot matches
    /// `last_applied` exactly; openraft then runs `build_snapshot` (serialization and file
    /// IO) in a separate task while applying continues.
    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<SnapshotBuilder> {
        Some(self.get_snapshot_builder().await)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        self.pace.started();
        self.startup.release();
        // Only the freeze waits here. Serializing (2.7 s at 3M znodes) used to, and apply
        // with it: setData's p99.9 at 3M was 2.5 s (bench/scale, 2026-12-06).
        let frozen = self.app.freeze();
        SnapshotBuilder {
            meta: self.current_meta(),
            frozen: Some(frozen),
            store: self.snapshots.clone(),
            pace: self.pace.clone(),
        }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotData) -> Result<(), io::Error> {
        self.startup.release();
        let started = std::time::Instant::now();
        self.app.restore(&snapshot).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.in_flight.snapshot_installed();
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.publish_applied();
        let (store, meta, bytes) = (self.snapshots.clone(), meta.clone(), snapshot.len());
        self.pace.snapshot_size(bytes as u64);
        let last = meta.last_log_id;
        blocking(move || persist(&store, &meta, &snapshot)).await?;
        tracing::info!(
            last_log_id = ?last,
            bytes,
            took_ms = started.elapsed().as_millis() as u64,
            "installed a snapshot from the leader"
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        if let Some((meta, snapshot)) = self.startup.get() {
            return Ok(Some(Snapshot { meta, snapshot }));
        }
        let store = self.snapshots.clone();
        let latest = blocking(move || load_latest(&store)).await?;
        Ok(latest.map(|(meta, snapshot)| Snapshot { meta, snapshot }))
    }
}

/// A frozen copy of the app state at one `last_applied`, serialized and written to disk
/// on demand.
pub struct SnapshotBuilder {
    meta: SnapshotMeta,
    /// Taken by the first `build_snapshot`.
    frozen: Option<super::FrozenState>,
    store: SharedSnapshots,
    pace: Arc<SnapshotPace>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    /// On a background thread, not a runtime worker: at a million znodes serializing is
    /// half a second of CPU, and on a worker it held up heartbeats on every member at once
    /// (all snapshot at the same index); the leader lost its quorum under a steady fill.
    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let Some(frozen) = self.frozen.take() else {
            return Err(io::Error::other("snapshot already built"));
        };
        let (store, meta, pace) = (self.store.clone(), self.meta.clone(), self.pace.clone());
        super::net::background("snapshot-build", move || {
            let started = std::time::Instant::now();
            let data = types::snapshot_data(frozen());
            pace.snapshot_size(data.len() as u64);
            let serialize_ms = started.elapsed().as_millis() as u64;
            persist(&store, &meta, &data)?;
            tracing::info!(
                bytes = data.len(),
                serialize_ms,
                write_ms = started.elapsed().as_millis() as u64 - serialize_ms,
                "snapshot written"
            );
            Ok(Snapshot { meta, snapshot: data })
        })
        .await?
    }
}
