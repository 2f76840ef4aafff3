//! Four-letter words: plain-text status commands recognised as the first four
//! bytes of a connection (`echo ruok | nc host 2181`). Output shapes follow
//! ZooKeeper 3.8 so that scripts (`zkServer.sh status`, kazoo's `server_version`,
//! monitoring that parses `mntr`) work unchanged.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::proto::frame::FourLetterWord;

use super::ServerContext;
use crate::config::{Config, PeerRole};
use crate::reconfig::installed_config;

/// The ZooKeeper version we report (kazoo parses the leading digits).
pub const ZK_VERSION: &str = "3.8.4-roost";
/// The full version line: ZooKeeper prints `<version>-<hash>, built on <date>`.
pub const VERSION_LINE: &str = concat!("3.8.4-roost-", env!("CARGO_PKG_VERSION"), ", built on 2026-11-24 00:00 UTC");

/// Runs a command and returns the text to send before closing the connection.
pub fn run(ctx: &ServerContext, word: FourLetterWord) -> String {
    let name = word.as_str();
    if !ctx.config.four_letter_words.allows(name) {
        return format!("{name} is not executed because it is not in the whitelist.\n");
    }
    if !serving(ctx) && needs_a_serving_server(word) {
        return NOT_SERVING.to_string();
    }
    match word {
        FourLetterWord::Ruok => "imok".to_string(),
        // kazoo's read-only pinger compares these bytes exactly: no newline.
        FourLetterWord::Isro => isro(ctx).to_string(),
        FourLetterWord::Srvr => server_stats(ctx, false),
        FourLetterWord::Stat => server_stats(ctx, true),
        FourLetterWord::Conf => conf(ctx),
        FourLetterWord::Cons => connections(ctx),
        FourLetterWord::Crst => {
            for s in ctx.conn_stats.read().values() {
                s.reset();
            }
            "Connection stats reset.\n".to_string()
        }
        FourLetterWord::Srst => {
            ctx.stats.reset();
            "Server stats reset.\n".to_string()
        }
        FourLetterWord::Envi => environment(),
        FourLetterWord::Mntr => monitor(ctx),
        FourLetterWord::Wchs => ctx.db.watches(|w| {
            format!(
                "{} connections watching {} paths\nTotal watches:{}\n",
                w.connection_count(),
                w.path_count(),
                w.watch_count()
            )
        }),
        FourLetterWord::Wchc => watches_by_session(ctx),
        FourLetterWord::Wchp => watches_by_path(ctx),
        FourLetterWord::Dump => dump(ctx),
        FourLetterWord::Dirs => {
            let (data, log) = dir_sizes(ctx);
            format!("datadir_size: {data}\nlogdir_size: {log}\n")
        }
        FourLetterWord::Gtmk => "0\n".to_string(),
        FourLetterWord::Stmk => "0\n".to_string(),
        FourLetterWord::Hash => {
            let (zxid, digest) = ctx.db.read(|t| (t.last_zxid(), t.digest()));
            format!("digest: {digest:x} zxid: 0x{zxid:x}\n")
        }
    }
}

/// What ZooKeeper prints for most words while it has no server running (a member
/// without a quorum, before or between elections).
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// False on an ensemble member that has lost its quorum (or not found one yet), or has not
/// yet caught up with its leader since it started, and is not in read-only mode: it serves
/// no client, as a ZooKeeper member without a running server (a ZooKeeper follower starts
/// serving once it has synced with its leader). Before, a member answered `srvr` with its
/// mode as soon as it heard a leader, and with the zxid of a tree it had not yet received
/// (tests/migrate/test_cutover.py saw 0x0 on a member still installing the leader's snapshot).
fn serving(ctx: &ServerContext) -> bool {
    ctx.config.is_standalone() || ctx.read_only.is_active() || (ctx.consensus.has_quorum() && ctx.consensus.is_ready())
}

/// The words ZooKeeper answers with [`NOT_SERVING`] while not serving (its commands that
/// check `isZKServerRunning`); `ruok`, `envi` and the trace mask words always answer, and
/// `isro` says `null`.
fn needs_a_serving_server(word: FourLetterWord) -> bool {
    !matches!(
        word,
        FourLetterWord::Ruok
            | FourLetterWord::Envi
            | FourLetterWord::Gtmk
            | FourLetterWord::Stmk
            | FourLetterWord::Isro
    )
}

/// ZooKeeper's node count, which includes the root twice (its node table maps both ""
/// and "/" to it): a fresh server reports 5. Monitoring compares these figures.
fn zk_node_count(nodes: usize) -> usize {
    nodes + 1
}

/// `isro`: `ro` in read-only mode, `null` on a member that is not serving (it has lost its
/// quorum and is not read-only, or has not turned read-only yet), as ZooKeeper does while it
/// has no server running (so read-only clients looking for a `rw` server skip it), else `rw`.
fn isro(ctx: &ServerContext) -> &'static str {
    if ctx.read_only.is_active() {
        "ro"
    } else if !serving(ctx) {
        "null"
    } else {
        "rw"
    }
}

/// `Mode:` of `srvr`/`stat` and `zk_server_state`: standalone, leader, follower or
/// observer, or `read-only` while in read-only mode. The role comes from the installed
/// configuration (zoo.cfg's `peerType` before there is one). A server a reconfig removed
/// keeps following without a vote and says `follower`, as ZooKeeper's does.
pub fn mode(ctx: &ServerContext) -> &'static str {
    if ctx.read_only.is_active() {
        return "read-only";
    }
    if ctx.config.is_standalone() {
        return "standalone";
    }
    if ctx.consensus.is_leader() {
        return "leader";
    }
    let role = match installed_config(&ctx.db) {
        Some(installed) => installed.servers.get(&ctx.config.my_id).map_or(PeerRole::Participant, |me| me.role),
        None => ctx.config.peer_type,
    };
    match role {
        PeerRole::Observer => "observer",
        PeerRole::Participant => "follower",
    }
}

fn server_stats(ctx: &ServerContext, with_clients: bool) -> String {
    let mut s = String::with_capacity(512);
    let _ = writeln!(s, "Zookeeper version: {VERSION_LINE}");
    if ctx.read_only.is_active() {
        s.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    if with_clients {
        s.push_str("Clients:\n");
        for c in ctx.conn_stats.read().values() {
            let _ = writeln!(
                s,
                " /{}[1](queued=0,recved={},sent={})",
                c.remote,
                c.received.load(Ordering::Relaxed),
                c.sent.load(Ordering::Relaxed)
            );
        }
        s.push('\n');
    }
    let (min, avg, max) = ctx.stats.latency.summary();
    let (zxid, nodes) = ctx.db.read(|t| (t.last_zxid(), zk_node_count(t.node_count())));
    let _ = writeln!(s, "Latency min/avg/max: {min}/{avg:.4}/{max}");
    let _ = writeln!(s, "Received: {}", ctx.stats.packets_received.load(Ordering::Relaxed));
    let _ = writeln!(s, "Sent: {}", ctx.stats.packets_sent.load(Ordering::Relaxed));
    let _ = writeln!(s, "Connections: {}", ctx.conn_stats.read().len());
    let _ = writeln!(s, "Outstanding: {}", ctx.stats.outstanding.load(Ordering::Relaxed));
    let _ = writeln!(s, "Zxid: 0x{zxid:x}");
    let _ = writeln!(s, "Mode: {}", mode(ctx));
    let _ = writeln!(s, "Node count: {nodes}");
    s
}

/// The `conf` key/value pairs (also served by the HTTP admin commands).
pub fn conf_lines(ctx: &ServerContext) -> Vec<(&'static str, String)> {
    let (data, log) = dir_sizes(ctx);
    current_settings(ctx).to_conf_lines(data, log)
}

/// `conf`: the settings, then (ensemble members) the configuration `/zookeeper/config`
/// holds, or zoo.cfg's servers at version 0 until the first leader has installed it.
fn conf(ctx: &ServerContext) -> String {
    let (data, log) = dir_sizes(ctx);
    let installed = ctx.db.read(|t| t.config_data());
    let membership = if installed.is_empty() {
        ctx.config.quorum_config_text(0)
    } else {
        String::from_utf8_lossy(&installed).into_owned()
    };
    current_settings(ctx).conf_text(data, log, &membership)
}

/// This server's settings with the ports and role a reconfig gave it (ZooKeeper's `conf`
/// shows those); as configured until a reconfig lists it.
fn current_settings(ctx: &ServerContext) -> std::borrow::Cow<'_, Config> {
    let Some(installed) = installed_config(&ctx.db).filter(|c| c.is_reconfigured()) else {
        return std::borrow::Cow::Borrowed(&ctx.config);
    };
    let Some(me) = installed.servers.get(&ctx.config.my_id) else {
        return std::borrow::Cow::Borrowed(&ctx.config);
    };
    let mut settings = (*ctx.config).clone();
    if let Some(client) = &me.client_addr {
        settings.client_port = client.port;
    }
    settings.peer_type = me.role;
    settings.servers = installed.servers.values().cloned().collect();
    std::borrow::Cow::Owned(settings)
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis()
}

fn connections(ctx: &ServerContext) -> String {
    let mut s = String::new();
    for c in ctx.conn_stats.read().values() {
        let last = *c.last.lock();
        let (min, avg, max) = c.latency.summary();
        let _ = writeln!(
            s,
            " /{}[1](queued=0,recved={},sent={},sid=0x{:x},lop={},est={},to={},lcxid=0x{:x},lzxid=0x{:x},lresp={},llat={},minlat={},avglat={:.0},maxlat={})",
            c.remote,
            c.received.load(Ordering::Relaxed),
            c.sent.load(Ordering::Relaxed),
            c.session_id.load(Ordering::Relaxed),
            last.op,
            millis(c.established),
            c.timeout_ms.load(Ordering::Relaxed),
            last.cxid,
            last.zxid,
            millis(last.at),
            last.latency_ms,
            min,
            avg,
            max
        );
    }
    s.push('\n');
    s
}

fn environment() -> String {
    // kazoo's server_version() reads one recv(8192) and parses zookeeper.version: keep it short.
    let mut s = String::from("Environment:\n");
    let _ = writeln!(s, "zookeeper.version={VERSION_LINE}");
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let _ = writeln!(s, "host.name={host}");
    let _ = writeln!(s, "java.version=none (roost {})", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(s, "java.vendor=none");
    let _ = writeln!(s, "os.name={}", std::env::consts::OS);
    let _ = writeln!(s, "os.arch={}", std::env::consts::ARCH);
    let os_version = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let _ = writeln!(s, "os.version={}", os_version.trim());
    let _ = writeln!(s, "user.name={}", std::env::var("USER").unwrap_or_default());
    let _ = writeln!(s, "user.home={}", std::env::var("HOME").unwrap_or_default());
    let _ = writeln!(s, "user.dir={}", std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default());
    // Java reports its heap here; the closest figures for us are resident and total memory.
    let (rss_mb, total_mb) = memory_mb();
    let _ = writeln!(s, "os.memory.free={}MB", total_mb.saturating_sub(rss_mb));
    let _ = writeln!(s, "os.memory.max={total_mb}MB");
    let _ = writeln!(s, "os.memory.total={rss_mb}MB");
    s
}

/// (resident set size, machine memory) in MiB, from /proc.
fn memory_mb() -> (u64, u64) {
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    (field(&status, "VmRSS:"), field(&meminfo, "MemTotal:"))
}

/// The `mntr` figures without the `zk_` prefix (also served as Prometheus metrics).
pub fn monitor_lines(ctx: &ServerContext) -> Vec<(&'static str, String)> {
    let (min, avg, max) = ctx.stats.latency.summary();
    let (nodes, ephemerals, data_size, sessions) = ctx.db.read(|t| {
        (zk_node_count(t.node_count()), t.ephemeral_count(), t.approximate_data_size(), t.sessions().count())
    });
    let watch_count = ctx.db.watches(|w| w.watch_count());
    let (open_fds, max_fds) = fd_counts();
    let lines: Vec<(&str, String)> = vec![
        ("version", VERSION_LINE.to_string()),
        ("server_state", mode(ctx).to_string()),
        ("avg_latency", format!("{avg:.4}")),
        ("max_latency", max.to_string()),
        ("min_latency", min.to_string()),
        ("packets_received", ctx.stats.packets_received.load(Ordering::Relaxed).to_string()),
        ("packets_sent", ctx.stats.packets_sent.load(Ordering::Relaxed).to_string()),
        ("num_alive_connections", ctx.conn_stats.read().len().to_string()),
        ("outstanding_requests", ctx.stats.outstanding.load(Ordering::Relaxed).to_string()),
        ("uptime", ctx.stats.started.elapsed().as_millis().to_string()),
        ("znode_count", nodes.to_string()),
        ("watch_count", watch_count.to_string()),
        ("ephemerals_count", ephemerals.to_string()),
        ("approximate_data_size", data_size.to_string()),
        ("global_sessions", sessions.to_string()),
        ("local_sessions", ctx.read_only.local_count().to_string()),
        ("open_file_descriptor_count", open_fds.to_string()),
        ("max_file_descriptor_count", max_fds.to_string()),
    ];
    let mut lines = lines;
    if !ctx.config.is_standalone() {
        lines.extend(ensemble_lines(ctx));
    }
    lines
}

/// The ensemble part of `mntr`: quorum size everywhere, the followers' state on the
/// leader (as ZooKeeper's leader reports its learners).
fn ensemble_lines(ctx: &ServerContext) -> Vec<(&'static str, String)> {
    let status = ctx.consensus.metrics();
    let peer_state = match mode(ctx) {
        "leader" => "leading - broadcast",
        "observer" => "observing - broadcast",
        "read-only" => "looking",
        _ if status.leader_id.is_some() => "following - broadcast",
        _ => "looking",
    };
    let mut lines =
        vec![("peer_state", peer_state.to_string()), ("quorum_size", (status.voters.len() / 2 + 1).to_string())];
    if ctx.consensus.is_leader() {
        // Learners are observers when the configuration says so; the others are servers a
        // reconfig removed, which ZooKeeper counts as non-voting followers.
        let installed = installed_config(&ctx.db);
        let observer = |id: u64| {
            installed.as_ref().is_some_and(|c| c.servers.get(&id).is_some_and(|s| s.role == PeerRole::Observer))
        };
        let synced = status.followers.iter().filter(|f| f.synced);
        let synced_observers = synced.clone().filter(|f| observer(f.id)).count();
        let synced_non_voting = synced.clone().filter(|f| !f.voter && !observer(f.id)).count();
        let synced_followers = synced.count() - synced_observers;
        lines.extend([
            ("learners", status.followers.len().to_string()),
            ("followers", status.followers.iter().filter(|f| !observer(f.id)).count().to_string()),
            ("synced_followers", synced_followers.to_string()),
            ("synced_non_voting_followers", synced_non_voting.to_string()),
            ("synced_observers", synced_observers.to_string()),
            ("pending_syncs", "0".to_string()),
        ]);
    }
    lines
}

fn monitor(ctx: &ServerContext) -> String {
    let mut s = String::new();
    for (k, v) in monitor_lines(ctx) {
        let _ = writeln!(s, "zk_{k}\t{v}");
    }
    s
}

fn session_of(ctx: &ServerContext, conn: u64) -> i64 {
    ctx.conn_stats.read().get(&conn).map(|c| c.session_id.load(Ordering::Relaxed)).unwrap_or(0)
}

fn watches_by_session(ctx: &ServerContext) -> String {
    let mut s = String::new();
    for (conn, paths) in ctx.db.watches(|w| w.by_connection()) {
        let _ = writeln!(s, "0x{:x}", session_of(ctx, conn));
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s
}

fn watches_by_path(ctx: &ServerContext) -> String {
    let mut s = String::new();
    for (path, conns) in ctx.db.watches(|w| w.by_path()) {
        let _ = writeln!(s, "{path}");
        for c in conns {
            let _ = writeln!(s, "\t0x{:x}", session_of(ctx, c));
        }
    }
    s
}

fn dump(ctx: &ServerContext) -> String {
    let mut s = String::from("SessionTracker dump:\n");
    let queue = ctx.sessions.dump();
    let _ = writeln!(s, "Session Sets ({})/({}):", queue.len(), queue.len());
    for (id, timeout, left) in &queue {
        let _ = writeln!(s, "0x{id:x}\ttimeout={timeout}ms\texpires in {}ms", left.as_millis());
    }
    s.push_str("ephemeral nodes dump:\n");
    let sessions = ctx.db.read(|t| {
        t.sessions().map(|(id, _)| (id, t.ephemerals(id, ""))).filter(|(_, e)| !e.is_empty()).collect::<Vec<_>>()
    });
    let _ = writeln!(s, "Sessions with Ephemerals ({}):", sessions.len());
    for (id, paths) in sessions {
        let _ = writeln!(s, "0x{id:x}:");
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s
}

fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn dir_sizes(ctx: &ServerContext) -> (u64, u64) {
    (dir_size(&ctx.config.data_dir), dir_size(&ctx.config.data_log_dir))
}

fn fd_counts() -> (u64, u64) {
    let open = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0);
    (open, max)
}
