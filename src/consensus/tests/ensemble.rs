//! Three consensus members in one process, talking over real loopback TCP.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{txn, CounterApp};
use crate::consensus::{Consensus, ConsensusConfig, ConsensusError, Member, Role};

/// A free port below Linux's ephemeral range (32768 and up). A port from binding port 0
/// is ephemeral: while the members are down in the restart test, any outgoing connection
/// (another test's peer redialing) may take it, and the restart then fails to bind.
/// Ports are walked from a per-process starting point, each handed out once.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 21_000;
    const SPAN: u32 = 11_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    loop {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(step < SPAN, "no free port in {LOW}..{}", LOW + SPAN);
        let port = (LOW + (start + step) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn configs(root: &Path, n: u64) -> Vec<ConsensusConfig> {
    let members: Vec<Member> =
        (1..=n).map(|id| Member { id, raft_addr: format!("127.0.0.1:{}", free_port()), voter: true }).collect();
    members
        .iter()
        .map(|m| {
            let mut cfg = ConsensusConfig::standalone(m.id, root.join(format!("n{}", m.id)));
            cfg.heartbeat_ms = 50;
            cfg.election_timeout_min_ms = 200;
            cfg.election_timeout_max_ms = 400;
            cfg.raft_addr = m.raft_addr.clone();
            cfg.listen_addr = Some(m.raft_addr.clone());
            cfg.members = members.clone();
            cfg
        })
        .collect()
}

struct Member3 {
    consensus: Arc<Consensus>,
    app: Arc<CounterApp>,
}

async fn start_all(cfgs: &[ConsensusConfig]) -> Vec<Member3> {
    let mut out = Vec::new();
    // Highest id first, as kazoo's harness does.
    for cfg in cfgs.iter().rev() {
        let app = Arc::new(CounterApp::default());
        let consensus = Arc::new(Consensus::start(cfg.clone(), app.clone()).await.unwrap());
        out.push(Member3 { consensus, app });
    }
    out.reverse();
    for m in &out {
        m.consensus.wait_ready(Duration::from_secs(20)).await.unwrap();
    }
    out
}

async fn wait_converged(members: &[Member3]) {
    for _ in 0..200 {
        let states: Vec<_> = members.iter().map(|m| m.app.state()).collect();
        if states.windows(2).all(|w| w[0] == w[1]) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("members did not converge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_elect_one_leader_and_forward_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cfgs = configs(dir.path(), 3);
    let members = start_all(&cfgs).await;
    let leaders: Vec<_> = members.iter().filter(|m| m.consensus.is_leader()).collect();
    assert_eq!(leaders.len(), 1, "exactly one leader");
    let leader_id = leaders[0].consensus.node_id();
    for m in &members {
        let status = m.consensus.metrics();
        assert_eq!(status.leader_id, Some(leader_id));
        assert_eq!(status.voters, vec![1, 2, 3]);
    }
    let leader_status = leaders[0].consensus.metrics();
    assert_eq!(leader_status.role, Role::Leader);
    assert_eq!(leader_status.followers.len(), 2);

    // A write through each member, including followers; each is visible on its own
    // member as soon as the proposal resolves (read-your-writes on a follower).
    for (i, m) in members.iter().enumerate() {
        let id = 100 + i as i64;
        m.consensus.propose(txn(id)).await.unwrap();
        assert!(m.app.state().applied.contains(&id), "member {} sees its own write", i + 1);
    }
    // Pipelined writes from one follower keep their order.
    let follower = members.iter().find(|m| !m.consensus.is_leader()).unwrap();
    let mut futures = Vec::new();
    for id in 1000..1050 {
        futures.push(follower.consensus.submit(txn(id)).await.unwrap());
    }
    for f in futures {
        f.await.unwrap();
    }
    let applied = follower.app.state().applied;
    let tail: Vec<i64> = applied.iter().copied().filter(|id| *id >= 1000).collect();
    assert_eq!(tail, (1000..1050).collect::<Vec<_>>());
    // sync on a follower.
    follower.consensus.read_barrier().await.unwrap();
    wait_converged(&members).await;
    for m in &members {
        m.consensus.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_takes_over_when_the_leader_stops() {
    let dir = tempfile::tempdir().unwrap();
    let cfgs = configs(dir.path(), 3);
    let mut members = start_all(&cfgs).await;
    for id in 1..20 {
        members[(id % 3) as usize].consensus.propose(txn(id)).await.unwrap();
    }
    let idx = members.iter().position(|m| m.consensus.is_leader()).unwrap();
    let old = members.remove(idx);
    old.consensus.shutdown().await;
    let started = std::time::Instant::now();
    // Writes through the survivors succeed once a new leader is elected.
    let survivor = &members[0];
    let mut id = 100;
    loop {
        match survivor.consensus.propose(txn(id)).await {
            Ok(_) => break,
            Err(ConsensusError::NotLeader { .. })
            | Err(ConsensusError::LeaderUnreachable { .. })
            | Err(ConsensusError::OutcomeUnknown { .. }) => {
                id += 1;
                assert!(started.elapsed() < Duration::from_secs(10), "no new leader");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    eprintln!("failover took {:?}", started.elapsed());
    wait_converged(&members).await;
    let st = members[0].app.state();
    for id in 1..20 {
        assert!(st.applied.contains(&id), "acknowledged write {id} survived");
    }
    for m in &members {
        m.consensus.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_ensemble_elects_at_once_instead_of_after_an_election_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfgs = configs(dir.path(), 3);
    let members = start_all(&cfgs).await;
    for id in 1..10 {
        members[(id % 3) as usize].consensus.propose(txn(id)).await.unwrap();
    }
    wait_converged(&members).await;
    for m in members {
        m.consensus.shutdown().await;
    }
    // An election timeout far longer than the wait below: only the startup campaign can
    // produce a leader in time.
    for cfg in &mut cfgs {
        cfg.election_timeout_min_ms = 60_000;
        cfg.election_timeout_max_ms = 90_000;
    }
    // start_all waits 20 s for readiness, a third of the shortest election timeout.
    let restarted = start_all(&cfgs).await;
    assert_eq!(restarted.iter().filter(|m| m.consensus.is_leader()).count(), 1);
    restarted[1].consensus.propose(txn(100)).await.unwrap();
    wait_converged(&restarted).await;
    let st = restarted[0].app.state();
    assert!((1..10).chain([100]).all(|id| st.applied.contains(&id)));
    for m in &restarted {
        m.consensus.shutdown().await;
    }
}

/// Polls `fut` once and drops it unless it finished: a caller that stops waiting.
async fn poll_once<F: std::future::Future>(fut: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        out = fut => Some(out),
        _ = std::future::ready(()) => None,
    }
}

/// Waits up to 10 s for the leader's membership to be uniform with `voters`.
async fn wait_voters(consensus: &Consensus, voters: &[u64]) -> bool {
    for _ in 0..400 {
        let view = consensus.membership();
        if !view.joint && view.voters.iter().copied().eq(voters.iter().copied()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// openraft's membership change is two entries proposed one after the other by the
/// caller's future: a caller that stopped waiting after the first left the group in a
/// joint configuration for good, and every later reconfig refused (the simulator's seed
/// 60: a removed leader that never stepped down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_change_whose_caller_gives_up_still_completes() {
    use std::collections::BTreeSet;
    let dir = tempfile::tempdir().unwrap();
    let cfgs = configs(dir.path(), 3);
    let members = start_all(&cfgs).await;
    let leader = members.iter().find(|m| m.consensus.is_leader()).unwrap();
    let leader_id = leader.consensus.node_id();

    // A caller that gives up at once (polled once, then dropped): the change still ends
    // in the new voter set. Two voters leave, so openraft goes through a joint configuration.
    let gave_up = poll_once(leader.consensus.set_voters([leader_id].into(), Duration::from_secs(10))).await;
    assert!(gave_up.is_none(), "one poll cannot commit: {gave_up:?}");
    assert!(wait_voters(&leader.consensus, &[leader_id]).await, "the change went past its joint configuration");

    // A joint configuration nobody finishes (its leader's future was dropped after the
    // first step, as a deposed leader's would be) is finished by `finish_joint`.
    let all: BTreeSet<u64> = [1, 2, 3].into();
    let dropped =
        poll_once(leader.consensus.core.raft.change_membership(openraft::ChangeMembers::ReplaceAllVoters(all), true))
            .await;
    assert!(dropped.is_none());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(leader.consensus.membership().joint, "stays joint while nobody finishes it");
    leader.consensus.finish_joint(Duration::from_secs(10)).await.unwrap();
    assert!(wait_voters(&leader.consensus, &[1, 2, 3]).await, "finish_joint flattens");
    members[0].consensus.propose(txn(1)).await.unwrap();
    wait_converged(&members).await;
    for m in &members {
        m.consensus.shutdown().await;
    }
}
