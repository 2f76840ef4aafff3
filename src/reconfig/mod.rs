//! Dynamic reconfiguration (ZooKeeper's `reconfig`, op 16) on top of raft membership.
//!
//! The configuration text in `/zookeeper/config` is the source of truth: it is replicated
//! like any znode and says who is a member and who votes. Raft membership follows it:
//!
//! * A **reconfig** runs on the leader ([`Reconfigurer::run`]) with ZooKeeper's checks in
//!   `PrepRequestProcessor` order: in progress, version, arguments, at least two voters,
//!   permission (WRITE on `/zookeeper/config`: in practice the super user). Joining
//!   participants are then added as learners and must catch up; if the new voters do not
//!   have a synced quorum the change is refused with NewConfigNoQuorum (and the learners
//!   added for it are removed again). Otherwise a `SetConfig` txn installs the new text
//!   (its zxid is the new version), and the voter set is switched by joint consensus
//!   (servers that left stay on as learners, see below). A removed leader hands over to
//!   the most up-to-date remaining voter.
//! * A **reconciler** ([`Reconfigurer::reconcile_forever`]) runs on every member and acts
//!   while it leads: it installs the initial configuration (from zoo.cfg, no zxid) when the tree has
//!   none, and finishes any membership change a failed or interrupted reconfig left behind
//!   (a leader that crashed after committing the text, an observer still to be added).
//!
//! * A server that leaves stays a raft *learner*: like ZooKeeper's removed servers it keeps
//!   following without a vote (serving its clients, reporting `follower`) and votes again
//!   when re-added. The leader drops it from raft membership once it has not answered for
//!   syncLimit ticks (when ZooKeeper's leader drops a silent learner).
//! * A reconfig that moves an existing member's quorum port records the new address in raft
//!   membership (`SetNodes`); every member then dials the addresses of the installed
//!   configuration, and listens on its own new quorum and client ports ([`follow`]).
//!
//! Deviation: the permission check comes before the quorum check, because checking the
//! quorum of a joining participant means adding it as a learner first.

pub mod follow;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{Config, DynamicConfig, PeerRole};
use crate::consensus::wire::Committed;
use crate::consensus::{Consensus, ConsensusError, ReconfigCall, ReconfigHandler};
use crate::db::Db;
use crate::proto::types::ErrorCode;
use crate::tree::txn::{Txn, TxnOp, TxnOutcome};

/// How long a joining participant may take to catch up before the quorum check. Short,
/// because the client waits for the answer behind it (its pings too): a server that is
/// running and reachable replicates a small log well within it.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one membership step (learner add, voter switch, removal) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the reconciler looks at the membership.
const RECONCILE_EVERY: Duration = Duration::from_millis(500);

/// Carries out reconfigs and keeps raft membership in line with `/zookeeper/config`.
pub struct Reconfigurer {
    db: Arc<Db>,
    consensus: Weak<Consensus>,
    config: Arc<Config>,
    /// Held by whoever changes membership (a reconfig or the reconciler).
    busy: tokio::sync::Mutex<()>,
    /// A client reconfig is running (a second one gets ReconfigInProgress).
    running: AtomicBool,
    /// Since when each learner that is no longer a member has been out of touch.
    silent_since: parking_lot::Mutex<HashMap<u64, tokio::time::Instant>>,
}

/// Clears the `running` flag when a reconfig ends, however it ends.
struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn refuse(db: &Db, code: ErrorCode) -> Result<Committed, ConsensusError> {
    Ok(Committed { index: 0, outcome: TxnOutcome { zxid: db.last_zxid(), result: Err(code) } })
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Reconfigurer {
    pub fn new(db: Arc<Db>, consensus: &Arc<Consensus>, config: Arc<Config>) -> Arc<Reconfigurer> {
        Arc::new(Reconfigurer {
            db,
            consensus: Arc::downgrade(consensus),
            config,
            busy: tokio::sync::Mutex::new(()),
            running: AtomicBool::new(false),
            silent_since: parking_lot::Mutex::new(HashMap::new()),
        })
    }

    /// The handler to install with [`Consensus::set_reconfig_handler`].
    pub fn handler(self: &Arc<Self>) -> ReconfigHandler {
        let me = Arc::downgrade(self);
        Arc::new(move |call: ReconfigCall| {
            let me = me.clone();
            Box::pin(async move {
                match me.upgrade() {
                    Some(me) => me.run(call).await,
                    None => Err(ConsensusError::Stopped),
                }
            }) as Pin<Box<dyn Future<Output = _> + Send>>
        })
    }

    /// The installed configuration, or zoo.cfg's ensemble (version 0) before the first one.
    fn current(&self) -> Result<DynamicConfig, crate::config::DynamicConfigError> {
        let data = self.db.read(|t| t.config_data());
        if data.is_empty() {
            return Ok(DynamicConfig::new(self.config.servers.iter().cloned(), 0));
        }
        DynamicConfig::parse(&String::from_utf8_lossy(&data))
    }

    /// One client reconfig, on the leader.
    pub async fn run(&self, call: ReconfigCall) -> Result<Committed, ConsensusError> {
        let consensus = self.consensus.upgrade().ok_or(ConsensusError::Stopped)?;
        if self.running.swap(true, Ordering::AcqRel) {
            return refuse(&self.db, ErrorCode::ReconfigInProgress);
        }
        let _running = Running(&self.running);
        let _busy = self.busy.lock().await;
        // Everything committed before is applied here, so the tree holds the latest config.
        consensus.read_barrier().await?;
        let Ok(current) = self.current() else { return refuse(&self.db, ErrorCode::BadArguments) };
        if call.cur_config_id != -1 && call.cur_config_id as u64 != current.version {
            return refuse(&self.db, ErrorCode::BadVersion);
        }
        let next = match &call.new_members {
            Some(members) => DynamicConfig::parse(members),
            None => current.incremental(call.joining.as_deref(), call.leaving.as_deref()),
        };
        let next = match next {
            Ok(next) => next,
            Err(e) => {
                tracing::info!(error = %e, "reconfig refused: bad arguments");
                return refuse(&self.db, ErrorCode::BadArguments);
            }
        };
        let voters: BTreeSet<u64> = next.voters().collect();
        let min_voters = if self.config.standalone_enabled { 2 } else { 1 };
        if voters.len() < min_voters {
            return refuse(&self.db, ErrorCode::BadArguments);
        }
        if !self.db.read(|t| t.may_write_config(&call.auth)) {
            return refuse(&self.db, ErrorCode::NoAuth);
        }

        // Joining members become learners; participants must catch up to count as synced.
        let before = consensus.membership();
        let joiners: Vec<_> = next.servers.values().filter(|s| !before.nodes.contains_key(&s.id)).collect();
        let mut added = BTreeSet::new();
        for s in &joiners {
            match consensus.add_learner(s.id, s.quorum_addr().to_string(), false, STEP_TIMEOUT).await {
                Ok(()) => {
                    added.insert(s.id);
                }
                Err(e) => tracing::warn!(server = s.id, error = %e, "could not add a joining server as a learner"),
            }
        }
        let participants: BTreeSet<u64> =
            joiners.iter().filter(|s| s.role == PeerRole::Participant && added.contains(&s.id)).map(|s| s.id).collect();
        let caught_up = consensus.wait_caught_up(&participants, CATCH_UP_TIMEOUT).await;
        let synced: BTreeSet<u64> = consensus.synced_members().union(&caught_up).copied().collect();
        let synced_voters = voters.intersection(&synced).count();
        if synced_voters < voters.len() / 2 + 1 {
            tracing::info!(?voters, ?synced, "reconfig refused: the new configuration has no synced quorum");
            let added: BTreeSet<u64> =
                consensus.membership().nodes.keys().filter(|id| added.contains(id)).copied().collect();
            if !added.is_empty() {
                if let Err(e) = consensus.remove_learners(added, STEP_TIMEOUT).await {
                    tracing::warn!(error = %e, "could not remove the learners of a refused reconfig");
                }
            }
            return refuse(&self.db, ErrorCode::NewConfigNoQuorum);
        }

        let txn = Txn {
            session_id: call.session_id,
            time_ms: now_ms(),
            auth: call.auth,
            op: TxnOp::SetConfig { members: next.members_text() },
        };
        let committed = consensus.propose_committed(txn).await?;
        if committed.outcome.result.is_ok() {
            tracing::info!(
                zxid = format_args!("0x{:x}", committed.outcome.zxid),
                ?voters,
                "new configuration installed"
            );
            if let Err(e) = self.converge(&consensus, &next).await {
                tracing::warn!(error = %e, "membership change incomplete; the reconciler will retry");
            }
        }
        Ok(committed)
    }

    /// Runs until the consensus layer is gone: on the leader, installs the initial
    /// configuration and brings raft membership in line with `/zookeeper/config`.
    pub async fn reconcile_forever(self: Arc<Self>) {
        loop {
            tokio::time::sleep(RECONCILE_EVERY).await;
            let Some(consensus) = self.consensus.upgrade() else { return };
            if !consensus.is_leader() || !consensus.is_ready() {
                continue;
            }
            let Ok(_busy) = self.busy.try_lock() else { continue };
            if let Err(e) = self.reconcile_once(&consensus).await {
                tracing::debug!(error = %e, "membership reconciliation failed; retrying");
            }
        }
    }

    async fn reconcile_once(&self, consensus: &Consensus) -> Result<(), ConsensusError> {
        if self.db.read(|t| t.config_data().is_empty()) {
            let initial = DynamicConfig::new(self.config.servers.iter().cloned(), 0);
            let txn = Txn {
                session_id: 0,
                time_ms: now_ms(),
                auth: Vec::new(),
                op: TxnOp::InitConfig { members: initial.members_text() },
            };
            consensus.propose(txn).await?;
            tracing::info!("initial configuration installed");
            return Ok(());
        }
        match self.current() {
            Ok(desired) => self.converge(consensus, &desired).await,
            Err(e) => {
                tracing::warn!(error = %e, "/zookeeper/config does not parse; membership left as is");
                Ok(())
            }
        }
    }
}

impl Reconfigurer {
    /// Brings raft membership to `desired`: missing members join as learners, moved members
    /// get their new address, the voter set is switched (voters left out stay on as
    /// learners), and learners that are not members leave once they have gone silent.
    async fn converge(&self, consensus: &Consensus, desired: &DynamicConfig) -> Result<(), ConsensusError> {
        let now = consensus.membership();
        if now.joint {
            // A change of this leader's finishes on its own task; one left by an earlier
            // leader is finished here. Either way, look again on the next pass.
            return consensus.finish_joint(STEP_TIMEOUT).await;
        }
        for s in desired.servers.values().filter(|s| !now.nodes.contains_key(&s.id)) {
            tracing::info!(server = s.id, "adding member as a learner");
            consensus.add_learner(s.id, s.quorum_addr().to_string(), false, STEP_TIMEOUT).await?;
        }
        // Only a reconfig moves members: the initial configuration is the installing
        // leader's zoo.cfg, whose addresses may differ from the initializer's (proxies).
        if desired.is_reconfigured() {
            let moved: BTreeMap<u64, String> = desired
                .servers
                .values()
                .map(|s| (s.id, s.quorum_addr().to_string()))
                .filter(|(id, addr)| now.nodes.get(id).is_some_and(|recorded| recorded != addr))
                .collect();
            if !moved.is_empty() {
                tracing::info!(?moved, "recording moved members' quorum addresses");
                consensus.set_addresses(moved, STEP_TIMEOUT).await?;
            }
        }
        let voters: BTreeSet<u64> = desired.voters().collect();
        if voters != consensus.membership().voters {
            tracing::info!(?voters, "switching the voter set");
            consensus.set_voters(voters.clone(), STEP_TIMEOUT).await?;
        }
        if let Some(to) = consensus.hand_over_if_not_voter().await? {
            tracing::info!(to, "no longer a voter: handing leadership over");
            return Ok(());
        }
        let gone = self.silent_non_members(consensus, desired);
        if !gone.is_empty() {
            tracing::info!(?gone, "removing servers that left the configuration and stopped following");
            consensus.remove_learners(gone, STEP_TIMEOUT).await?;
        }
        Ok(())
    }

    /// Learners outside `desired` that have not acknowledged this leader for syncLimit ticks.
    fn silent_non_members(&self, consensus: &Consensus, desired: &DynamicConfig) -> BTreeSet<u64> {
        let limit = self.config.tick_time() * self.config.sync_limit.max(1);
        let status = consensus.metrics();
        let now = tokio::time::Instant::now();
        let mut since = self.silent_since.lock();
        let mut gone = BTreeSet::new();
        for f in status.followers.iter().filter(|f| !f.voter && !desired.servers.contains_key(&f.id)) {
            let silent_for = match f.acked_ago {
                Some(ago) => {
                    since.remove(&f.id);
                    ago
                }
                // Not heard from since this leader began: count from when it was first seen.
                None => now.duration_since(*since.entry(f.id).or_insert(now)),
            };
            if silent_for > limit {
                gone.insert(f.id);
            }
        }
        since.retain(|id, _| status.followers.iter().any(|f| f.id == *id));
        gone
    }
}

/// The configuration installed in `/zookeeper/config` (`None` before the first leader
/// installed one, or if it does not parse).
pub fn installed_config(db: &Db) -> Option<DynamicConfig> {
    let data = db.read(|t| t.config_data());
    if data.is_empty() {
        return None;
    }
    DynamicConfig::parse(&String::from_utf8_lossy(&data)).ok()
}
