//! Consensus glue: the openraft group that orders every write.
//!
//! [`Consensus`] owns a raft node whose log is `storage::wal` (see [`log_store`]) and
//! whose state machine is the application behind the [`Apply`] trait (see
//! [`state_machine`]). Writes go through [`Consensus::propose`], which batches concurrent
//! txns into one entry; [`Consensus::read_barrier`] gives ZooKeeper's `sync`.
//!
//! A standalone server is a single voter. An ensemble member talks to its peers over
//! the quorum port ([`network`] dials, [`rpc`] serves, [`wire`] is the format); the
//! cluster is formed from the configured members by [`cluster`]; writes and `sync` on a
//! follower go to the leader through [`forward`]. The leader checks that a session's
//! writes come through the member its client is attached to ([`owners`]).

pub mod batcher;
pub mod cluster;
pub mod commit_notice;
pub mod error;
mod failover;
pub mod forward;
pub mod heard_commits;
pub mod in_flight;
mod log_purge;
pub mod log_store;
pub mod membership;
pub mod net;
pub mod network;
pub mod owners;
pub mod rpc;
pub mod snapshot_pace;
pub mod state_machine;
pub mod transport;
pub mod types;
pub mod wire;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use self::net::TcpListener;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{InitializeError, RaftError};
use openraft::{ReadPolicy, ServerState, SnapshotPolicy};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use self::commit_notice::CommitNotices;
pub use self::error::{ConsensusError, RestoreError};
use self::forward::{call_error, Forwarder, LeaderLink};
use self::log_store::{LogStore, WriterHandle};
pub use self::membership::{MembershipView, ReconfigCall, ReconfigHandler};
use self::network::{NetworkFactory, Peers};
pub use self::owners::SessionOwnership;
use self::state_machine::StateMachine;
use self::types::{NodeId, RaftPeer, TypeConfig};
use self::wire::{Request, Response};
use crate::tree::txn::{BatchOutcome, Txn, TxnBatch, TxnOutcome};

/// The raft node type used by Roost.
pub type RaftHandle = openraft::Raft<TypeConfig, StateMachine>;

/// The application state machine (the data tree in production).
///
/// Called only from the raft state-machine task, in log order, one call at a time.
/// A frozen application state's serializer (see [`Apply::freeze`]).
pub type FrozenState = Box<dyn FnOnce() -> Vec<u8> + Send + Sync>;

pub trait Apply: Send + Sync + 'static {
    /// Applies one committed entry's batch; `term` is the entry's leader term (zxid epoch).
    /// Must return exactly one outcome per txn, in order.
    fn apply(&self, term: u64, index: u64, batch: &TxnBatch) -> BatchOutcome;
    /// Freezes the application state as of the last applied entry and returns its
    /// serializer. Called between two applies, so it must be quick; the serializer runs
    /// on a blocking thread while applying goes on.
    fn freeze(&self) -> FrozenState;
    /// Serializes the whole application state now.
    fn snapshot(&self) -> Vec<u8> {
        (self.freeze())()
    }
    /// Replaces the application state with a snapshot's contents.
    fn restore(&self, data: &[u8]) -> Result<(), RestoreError>;
}

/// Settings of the consensus layer.
#[derive(Debug, Clone)]
pub struct ConsensusConfig {
    pub node_id: u64,
    /// Holds `wal/`, `meta/` and `snap/`.
    pub data_dir: PathBuf,
    /// This node's raft transport address, recorded in the membership. Unused while
    /// the group is a single voter.
    pub raft_addr: String,
    /// Every configured member including this node (empty or just this node: standalone).
    pub members: Vec<Member>,
    /// Where the quorum-port listener binds (ensemble only).
    pub listen_addr: Option<String>,
    /// How peer connections are opened and authenticated (quorum TLS).
    pub transport: Arc<transport::PeerTransport>,
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Take a snapshot every this many log entries (ZooKeeper's snapCount).
    pub snapshot_every: u64,
    /// Log entries kept behind the newest snapshot when the log is purged (lets a
    /// slightly lagging follower catch up from the log instead of a snapshot).
    pub log_keep_after_snapshot: u64,
    /// Most txns in one log entry.
    pub max_batch: usize,
    /// Take a snapshot at a clean stop (see `Consensus::snapshot_before_exit`).
    pub snapshot_on_exit: bool,
    /// How long `start` waits for a leader and for the state to be recovered.
    pub startup_timeout: Duration,
}

impl ConsensusConfig {
    /// Defaults for a standalone node storing its data under `data_dir`.
    pub fn standalone(node_id: u64, data_dir: PathBuf) -> ConsensusConfig {
        ConsensusConfig {
            node_id,
            data_dir,
            raft_addr: String::new(),
            members: Vec::new(),
            listen_addr: None,
            transport: transport::PeerTransport::plain(),
            heartbeat_ms: 100,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            snapshot_every: 100_000,
            log_keep_after_snapshot: 10_000,
            max_batch: 1000,
            snapshot_on_exit: true,
            startup_timeout: Duration::from_secs(60),
        }
    }

    /// True when the group has other members to talk to.
    pub fn is_ensemble(&self) -> bool {
        self.members.iter().any(|m| m.id != self.node_id)
    }

    fn raft_config(&self) -> Result<openraft::Config, ConsensusError> {
        let config = openraft::Config {
            cluster_name: "roost".into(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            // A backstop only: `trigger_snapshots` decides, and for a large tree it waits for
            // more than snapCount txns (see `snapshot_pace`).
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every.max(1).saturating_mul(BACKSTOP_ENTRIES)),
            max_in_snapshot_log_to_keep: self.log_keep_after_snapshot,
            // openraft 0.10 lets a restarted leader resume its old term without an election
            // (default on). We turn that off so that, like ZooKeeper, every restart of a leader
            // starts a new epoch (term) whose blank entry commits the whole durable tail; our
            // committed id is saved lazily and this keeps recovery independent of it.
            enable_leader_restore: Some(false),
            // A node that was cut off (or stopped) must not bump the term and depose a
            // healthy leader when it returns: it first asks whether it could win.
            enable_pre_vote: Some(true),
            ..Default::default()
        };
        config.validate().map_err(|e| ConsensusError::Config(Box::new(e)))
    }
}

/// One configured member of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    /// `host:port` of its quorum (raft) port.
    pub raft_addr: String,
    /// Participants vote; observers replicate as learners.
    pub voter: bool,
}

/// The leader's view of another member's replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerStatus {
    pub id: NodeId,
    pub voter: bool,
    /// Highest log index known to be on that member.
    pub matched: u64,
    /// It acknowledged the leader recently (within an election timeout).
    pub synced: bool,
    /// How long ago it last acknowledged the leader (`None`: never, since this leader began).
    pub acked_ago: Option<Duration>,
}

/// Receives the ids of sessions that had client activity on some member (leader only).
pub type SessionSink = Arc<dyn Fn(&[i64]) + Send + Sync>;

/// A node's role in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

/// A snapshot of the node's consensus state, for `srvr`/`mntr` and the web UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusStatus {
    pub role: Role,
    pub term: u64,
    /// Index of the last log entry (0 for an empty log).
    pub last_log_index: u64,
    /// Index of the last entry applied to the app (0 if none).
    pub last_applied: u64,
    pub leader_id: Option<u64>,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// Filled on the leader only.
    pub followers: Vec<FollowerStatus>,
    /// Forwarded writes whose leader was replaced before it answered, settled from this
    /// member's log since start: (committed and answered, never committed).
    pub forwards_settled: (u64, u64),
}

/// What the RPC server shares with the rest of consensus.
/// How long a clean stop waits for its exit snapshot.
const EXIT_SNAPSHOT_WAIT: Duration = Duration::from_secs(10);

pub struct Core {
    raft: RaftHandle,
    /// Set when this follower saw its leader's process die (fast failover).
    dead_leader: Arc<failover::DeadLeader>,
    peers: Arc<Peers>,
    proposals: mpsc::Sender<Proposal>,
    session_sink: RwLock<Option<SessionSink>>,
    /// When this node last accepted an append (heartbeat) or snapshot from a leader.
    leader_contact: Mutex<Option<tokio::time::Instant>>,
    reconfig_handler: RwLock<Option<ReconfigHandler>>,
    /// The leader's session owners (installed on ensemble members).
    ownership: Arc<owners::OwnershipSlot>,
    /// The index of the last entry applied to the app here.
    applied: watch::Receiver<u64>,
    /// Commits announced by a leader and not applied yet (client reads wait for them).
    heard_commits: heard_commits::HeardCommits,
}

impl Core {
    /// Hands session activity reported by a member to the session tracker.
    fn touch_sessions(&self, ids: &[i64]) {
        let sink = self.session_sink.read().clone();
        if let Some(sink) = sink {
            sink(ids);
        }
    }

    /// Records that a leader this node accepts has just reached it.
    fn heard_from_leader(&self) {
        *self.leader_contact.lock() = Some(tokio::time::Instant::now());
    }
}

/// The running consensus layer of one node.
pub struct Consensus {
    core: Arc<Core>,
    link: LeaderLink,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The quorum-port listener (ensemble only): the address it is bound to and its task.
    quorum_listener: Mutex<Option<(String, JoinHandle<()>)>>,
    writer: WriterHandle,
    ready: watch::Receiver<bool>,
    /// Forwarded writes waiting for the leader's answer (see [`in_flight`]).
    in_flight: Arc<in_flight::InFlight>,
    election_timeout: Duration,
    ensemble: bool,
    snapshot_on_exit: bool,
}

use self::batcher::Proposal;

/// openraft's own snapshot policy fires after snapCount times this many log entries: only if
/// `trigger_snapshots` has not (one entry carries a batch of txns, often many).
const BACKSTOP_ENTRIES: u64 = 16;

/// Asks for a snapshot once one is due (see [`snapshot_pace`]: `every` txns, ZooKeeper's
/// snapCount, and for a large tree a log that is a share of the last snapshot, each staggered
/// per member by `stagger`). The
/// entry-count policy in the raft config stays as a backstop.
async fn trigger_snapshots(
    raft: RaftHandle,
    pace: Arc<snapshot_pace::SnapshotPace>,
    every: u64,
    mut stagger: snapshot_pace::Stagger,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        if pace.due(every, stagger.roll()) {
            stagger.next();
            // Reset here too, so a slow snapshot is not requested again every tick.
            pace.started();
            if raft.trigger().snapshot().await.is_err() {
                return; // raft stopped
            }
        }
    }
}

/// How long a client may wait for a session touch to reach the leader.
const TOUCH_WAIT: Duration = Duration::from_millis(500);

impl Consensus {
    /// Opens storage, restores the newest snapshot into `app` and starts raft. A
    /// standalone node forms its single-voter group and returns once it leads and has
    /// replayed its log. An ensemble member starts its quorum-port listener, joins the
    /// bootstrap (see [`cluster`]) and returns at once: [`Consensus::wait_ready`] tells
    /// when it knows a leader and has caught up with it.
    pub async fn start(cfg: ConsensusConfig, app: Arc<dyn Apply>) -> Result<Consensus, ConsensusError> {
        let raft_config = Arc::new(cfg.raft_config()?);
        let listener = match (&cfg.listen_addr, cfg.is_ensemble()) {
            (Some(addr), true) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ConsensusError::Listen { addr: addr.clone(), source })?,
            ),
            _ => None,
        };
        let dir = cfg.data_dir.clone();
        let (log_store, writer, sm) = net::blocking(move || {
            std::fs::create_dir_all(&dir)?;
            // The log and the snapshot are independent: read them side by side.
            let snap_dir = dir.join("snap");
            let started = std::time::Instant::now();
            let sm_thread = std::thread::Builder::new()
                .name("snapshot-restore".into())
                .spawn(move || {
                    let sm = StateMachine::open(&snap_dir, app);
                    (sm, started.elapsed())
                })
                .map_err(ConsensusError::Storage)?;
            let opened = LogStore::open(&dir);
            let log_ms = started.elapsed().as_millis();
            let (sm, sm_took) =
                sm_thread.join().map_err(|_| ConsensusError::Fatal("snapshot restore thread panicked".into()))?;
            let (log_store, writer) = opened?;
            let sm = sm?;
            tracing::info!(log_ms, snapshot_ms = sm_took.as_millis(), "log and snapshot loaded");
            Ok::<_, ConsensusError>((log_store, writer, sm))
        })
        .await
        .map_err(|e| ConsensusError::Fatal(Box::new(e)))??;
        let applied = sm.applied_watch();
        let heard_commits = heard_commits::HeardCommits::new(sm.applied_index(), applied.clone());
        log_store.track_applied(applied.clone());
        let mut log_store = log_store;
        let notice_log = openraft::storage::RaftLogStorage::get_log_reader(&mut log_store).await;
        let snapshot_pace = sm.snapshot_pace();
        let in_flight = sm.in_flight();
        let startup_snapshot = sm.startup_snapshot();

        let configured =
            cfg.members.iter().filter(|m| m.id != cfg.node_id).map(|m| (m.id, m.raft_addr.clone())).collect();
        let peers = Peers::with_addresses(cfg.node_id, configured, cfg.transport.clone());
        let dead_leader = Arc::new(failover::DeadLeader::default());
        let network = NetworkFactory::new(peers.clone(), dead_leader.clone());
        let raft = match RaftHandle::new(cfg.node_id, raft_config, network, log_store, sm).await {
            Ok(raft) => raft,
            Err(e) => {
                writer.shutdown().await;
                return Err(e.into());
            }
        };
        startup_snapshot.release();
        let (proposals, rx) = mpsc::channel(cfg.max_batch.max(1) * 16);
        let link = LeaderLink::new(raft.clone(), peers.clone(), applied.clone());
        let forwarder = Forwarder { link: link.clone(), in_flight: in_flight.clone() };
        let ownership: Arc<owners::OwnershipSlot> = Arc::default();
        let mut tasks = vec![
            tokio::spawn(batcher::run(
                raft.clone(),
                rx,
                cfg.max_batch,
                forwarder,
                ownership.clone(),
                Arc::new(CommitNotices::new(raft.clone(), peers.clone(), notice_log)),
            )),
            tokio::spawn(trigger_snapshots(
                raft.clone(),
                snapshot_pace,
                cfg.snapshot_every.max(1),
                snapshot_pace::Stagger::new(cfg.node_id),
            )),
        ];
        if let Some(reloading) = cfg.transport.reloading() {
            tasks.push(tokio::spawn(crate::security::tls::reload_forever(reloading, "the peer port's TLS")));
        }
        let core = Arc::new(Core {
            raft: raft.clone(),
            dead_leader,
            peers: peers.clone(),
            proposals,
            session_sink: RwLock::new(None),
            leader_contact: Mutex::new(None),
            reconfig_handler: RwLock::new(None),
            ownership,
            applied,
            heard_commits,
        });
        let mut quorum_listener = None;
        if let (Some(listener), Some(addr)) = (listener, &cfg.listen_addr) {
            quorum_listener = Some((addr.clone(), tokio::spawn(rpc::serve(listener, core.clone()))));
            tasks.push(tokio::spawn(cluster::bootstrap(raft.clone(), peers, cfg.node_id, cfg.members.clone())));
            tasks.push(tokio::spawn(cluster::campaign_at_startup(core.clone(), cluster::STARTUP_CAMPAIGN_WINDOW)));
        }
        let (ready_tx, ready) = watch::channel(false);
        let consensus = Consensus {
            core,
            link,
            tasks: Mutex::new(tasks),
            quorum_listener: Mutex::new(quorum_listener),
            writer,
            ready,
            in_flight,
            election_timeout: Duration::from_millis(cfg.election_timeout_max_ms),
            ensemble: cfg.is_ensemble(),
            snapshot_on_exit: cfg.snapshot_on_exit,
        };
        if cfg.is_ensemble() {
            let barrier_link = consensus.link.clone();
            let barrier_raft = raft.clone();
            let task = tokio::spawn(cluster::become_ready(ready_tx, move || {
                let (link, raft) = (barrier_link.clone(), barrier_raft.clone());
                async move { remote_read_barrier(&raft, &link).await }
            }));
            consensus.tasks.lock().push(task);
            return Ok(consensus);
        }
        if let Err(e) = consensus.bootstrap_standalone(&cfg).await {
            consensus.shutdown().await;
            return Err(e);
        }
        let _ = ready_tx.send(true);
        Ok(consensus)
    }

    async fn bootstrap_standalone(&self, cfg: &ConsensusConfig) -> Result<(), ConsensusError> {
        let raft = &self.core.raft;
        if !raft.is_initialized().await? {
            let mut members = BTreeMap::new();
            members.insert(cfg.node_id, RaftPeer { raft_addr: cfg.raft_addr.clone() });
            match raft.initialize(members).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(RaftError::APIError(e)) => return Err(ConsensusError::Fatal(Box::new(e))),
                Err(RaftError::Fatal(f)) => return Err(f.into()),
            }
        }
        let timeout = Some(cfg.startup_timeout);
        raft.wait(timeout)
            .metrics(|m| m.current_leader.is_some(), "consensus start: a leader is known")
            .await
            .map_err(|_| ConsensusError::StartupTimeout)?;
        raft.wait_for_recovery(timeout).await.map_err(|_| ConsensusError::StartupTimeout)?;
        Ok(())
    }

    /// Waits until this node knows a leader and has applied what the leader had
    /// committed when it started (immediately true for a standalone node).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), ConsensusError> {
        let mut ready = self.ready.clone();
        let waited = tokio::time::timeout(timeout, ready.wait_for(|r| *r)).await.map(|r| r.map(|_| ()));
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ConsensusError::Stopped),
            Err(_) => Err(ConsensusError::StartupTimeout),
        }
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Orders `txn` through the log. Resolves once the entry carrying it is committed and
    /// applied locally, with the outcome `Apply::apply` produced for it. Concurrent calls
    /// share entries; calls made one after another keep their order in the log.
    pub async fn propose(&self, txn: Txn) -> Result<TxnOutcome, ConsensusError> {
        self.submit(txn).await?.await
    }

    /// Queues `txn` for the log and returns the future of its outcome. When this
    /// returns, the txn's place in the log relative to later submissions is fixed, so
    /// a connection can pipeline its writes and still keep them in request order. On a
    /// follower the txn is forwarded to the leader, and the future resolves only once
    /// this node has applied the entry.
    pub async fn submit(
        &self,
        txn: Txn,
    ) -> Result<impl std::future::Future<Output = Result<TxnOutcome, ConsensusError>> + Send + 'static, ConsensusError>
    {
        let outcome = self.enqueue(txn).await?;
        Ok(async move { outcome.await.map_err(|_| ConsensusError::Stopped)?.map(|c| c.outcome) })
    }

    /// Queues `txn` with this node's batcher (in call order); the receiver resolves once
    /// the txn has committed here.
    async fn enqueue(
        &self,
        txn: Txn,
    ) -> Result<oneshot::Receiver<Result<wire::Committed, ConsensusError>>, ConsensusError> {
        let (reply, outcome) = oneshot::channel();
        self.core
            .proposals
            .send(Proposal { txn, reply, from: None, sent_term: None })
            .await
            .map_err(|_| ConsensusError::Stopped)?;
        Ok(outcome)
    }

    /// Linearizable read barrier (ZooKeeper `sync`): gets a read index from the leader
    /// (this node or, via the quorum port, the current leader) and waits until the local
    /// app has applied up to it.
    pub async fn read_barrier(&self) -> Result<(), ConsensusError> {
        remote_read_barrier(&self.core.raft, &self.link).await
    }

    /// Reports sessions with client activity on this node to the leader, whose
    /// tracker owns expiry (handled locally when this node leads).
    pub async fn report_sessions(&self, ids: Vec<i64>) -> Result<(), ConsensusError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut link = self.link.clone();
        link.leader_wait = TOUCH_WAIT;
        match link.send(Request::Touch(ids.clone())).await? {
            None => {
                self.core.touch_sessions(&ids);
                Ok(())
            }
            Some(pending) => pending.wait(TOUCH_WAIT).await.map(|_| ()).map_err(call_error),
        }
    }

    /// Installs the receiver of session activity reported by other members.
    pub fn set_session_sink(&self, sink: SessionSink) {
        *self.core.session_sink.write() = Some(sink);
    }

    pub fn is_leader(&self) -> bool {
        self.core.raft.is_leader()
    }

    /// Before a client read that reached this member at `arrived`: waits (briefly) for the
    /// commits a leader has announced to this member to be applied (see [`heard_commits`]),
    /// unless the connection's last complete wait, recorded in `settled`, already covers it.
    pub async fn settle_heard_commits(&self, arrived: std::time::Instant, settled: &mut heard_commits::SettledReads) {
        if !settled.needed(arrived) {
            return;
        }
        let began = std::time::Instant::now();
        if self.settle_now().await {
            settled.completed(began);
        }
    }

    /// One wait of [`settle_heard_commits`](Self::settle_heard_commits); true when complete.
    async fn settle_now(&self) -> bool {
        let heard = &self.core.heard_commits;
        // Standalone: no peer connections, nothing to look up.
        let leader = if heard.has_links() {
            let metrics = self.core.raft.metrics();
            let leader = metrics.borrow_watched().current_leader;
            leader.filter(|l| l != self.core.raft.node_id())
        } else {
            None
        };
        heard.settle(leader).await
    }

    /// The term this node leads in, or `None` when it does not lead. A decision taken as
    /// leader (a session expiry) carries it, so that it is refused at apply time if its
    /// entry lands in a later term.
    pub fn leading_term(&self) -> Option<u64> {
        let metrics = self.core.raft.metrics();
        let m = metrics.borrow_watched();
        (m.state == ServerState::Leader).then_some(m.current_term)
    }

    /// True while this node is part of a working quorum: a standalone node always; a
    /// leader whose latest quorum acknowledgement is recent; a follower or learner that
    /// knows a leader and accepted an append (or heartbeat) from it recently. "Recently"
    /// is twice the maximum election timeout, so a single late heartbeat does not count
    /// as a lost quorum. Read-only mode (see `server::readonly`) is driven by this.
    pub fn has_quorum(&self) -> bool {
        if !self.ensemble {
            return true;
        }
        let lease = self.election_timeout * 2;
        let metrics = self.core.raft.metrics();
        let m = metrics.borrow_watched();
        match m.state {
            ServerState::Leader => {
                m.last_quorum_acked.as_ref().is_some_and(|t| openraft::Instant::elapsed(&**t) <= lease)
            }
            ServerState::Follower | ServerState::Learner => {
                m.current_leader.is_some() && self.core.leader_contact.lock().is_some_and(|t| t.elapsed() <= lease)
            }
            ServerState::Candidate | ServerState::Shutdown => false,
        }
    }

    /// Waits up to `timeout` for [`Self::has_quorum`]; true if it came (or never left).
    /// `has_quorum` reads the leader-contact clock as well as openraft's metrics, so this
    /// polls rather than waiting on the metrics channel alone.
    pub async fn wait_quorum(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.has_quorum() {
                return true;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return false;
            }
            tokio::time::sleep((deadline - now).min(Duration::from_millis(10))).await;
        }
    }

    pub fn metrics(&self) -> ConsensusStatus {
        let metrics = self.core.raft.metrics();
        let m = metrics.borrow_watched();
        let membership = m.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        let learners: Vec<u64> = membership.learner_ids().collect();
        let mut followers = Vec::new();
        if let (Some(replication), Some(heartbeat)) = (&m.replication, &m.heartbeat) {
            for (id, matched) in replication {
                if *id == m.id {
                    continue;
                }
                let acked = heartbeat.get(id).and_then(|t| t.as_ref()).map(|t| openraft::Instant::elapsed(&**t));
                followers.push(FollowerStatus {
                    id: *id,
                    voter: voters.contains(id),
                    matched: matched.as_ref().map_or(0, |l| l.index),
                    synced: acked.is_some_and(|t| t <= self.election_timeout),
                    acked_ago: acked,
                });
            }
        }
        ConsensusStatus {
            role: match m.state {
                ServerState::Leader => Role::Leader,
                ServerState::Follower => Role::Follower,
                ServerState::Candidate => Role::Candidate,
                ServerState::Learner => Role::Learner,
                ServerState::Shutdown => Role::Shutdown,
            },
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            last_applied: m.last_applied.map_or(0, |l| l.index),
            leader_id: m.current_leader,
            voters,
            learners,
            followers,
            forwards_settled: self.in_flight.settled(),
        }
    }

    /// Stops batching (queued proposals fail with `Stopped`), the quorum listener, raft
    /// and the log writer (flushing the committed id). Safe to call more than once.
    pub async fn shutdown(&self) {
        if self.snapshot_on_exit {
            self.snapshot_before_exit().await;
        }
        let mut tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        tasks.extend(self.quorum_listener.lock().take().map(|(_, task)| task));
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        if let Err(e) = self.core.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown failed");
        }
        self.writer.shutdown().await;
    }

    /// A clean stop leaves a snapshot at the last applied entry, so the next start loads
    /// it and re-applies no log tail (after a million-znode fill that tail cost each
    /// process about 0.4 s at startup). Bounded: a stop never waits long for it, and a
    /// stop without one is as safe as a crash.
    async fn snapshot_before_exit(&self) {
        let raft = &self.core.raft;
        let (applied, snapshot) = {
            let metrics = raft.metrics();
            let m = metrics.borrow_watched();
            (m.last_applied.map(|l| l.index), m.snapshot.map(|l| l.index))
        };
        let Some(target) = applied.filter(|&a| Some(a) != snapshot) else { return };
        if raft.trigger().snapshot().await.is_err() {
            return;
        }
        let mut metrics = raft.metrics();
        let covered = async {
            while metrics.borrow_watched().snapshot.is_none_or(|l| l.index < target) {
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        };
        let started = std::time::Instant::now();
        match tokio::time::timeout(EXIT_SNAPSHOT_WAIT, covered).await {
            Ok(()) => tracing::info!(index = target, ms = started.elapsed().as_millis(), "snapshot taken before exit"),
            Err(_) => {
                tracing::warn!(index = target, "no snapshot before exit (took too long); the log will be replayed")
            }
        }
    }

    /// The node id of this member.
    pub fn node_id(&self) -> NodeId {
        *self.core.raft.node_id()
    }

    /// Dials peers at `addrs` (the members of a reconfigured ensemble) from now on.
    pub fn set_peer_addresses(&self, addrs: std::collections::HashMap<NodeId, String>) {
        self.core.peers.set_reconfigured(addrs);
    }

    /// Moves the quorum-port listener to `addr` (a reconfig changed this member's quorum
    /// address). Connections accepted on the old port stay open; nothing listens there
    /// any more. Does nothing when already listening there, or for a standalone node.
    pub async fn listen_quorum(&self, addr: &str) -> Result<(), ConsensusError> {
        if self.quorum_listener.lock().as_ref().is_none_or(|(bound, _)| bound == addr) {
            return Ok(());
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ConsensusError::Listen { addr: addr.to_string(), source })?;
        let task = tokio::spawn(rpc::serve(listener, self.core.clone()));
        let old = self.quorum_listener.lock().replace((addr.to_string(), task));
        if let Some((from, old)) = old {
            old.abort();
            tracing::info!(%from, to = %addr, "quorum port moved");
        }
        Ok(())
    }
}

/// Read index from the leader (local or remote), then wait for local apply.
async fn remote_read_barrier(raft: &RaftHandle, link: &LeaderLink) -> Result<(), ConsensusError> {
    match link.call_retrying(Request::ReadIndex, link.rpc_timeout).await? {
        None => {
            raft.ensure_linearizable(ReadPolicy::ReadIndex).await?;
            Ok(())
        }
        Some(Response::ReadIndex(Ok(index))) => link.wait_applied(index, link.rpc_timeout).await,
        Some(Response::ReadIndex(Err(e))) => Err(e.into()),
        Some(_) => Err(ConsensusError::OutcomeUnknown { leader: None }),
    }
}

#[cfg(test)]
mod tests;
