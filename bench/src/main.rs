//! `roost-bench`: a ZooKeeper-protocol load generator. It drives any ZooKeeper-compatible
//! server (Roost or Apache ZooKeeper) with the same client code, so the two can be compared
//! on one machine in one run. `bench/compare` runs it against both; see docs/BENCHMARKS.md.

mod client;
mod floor;
mod hold;
mod independent;
mod load;
mod pace;
mod report;
mod scenarios;
mod subscribe;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::client::Transport;
use crate::load::{Kind, LoadSpec};
use crate::report::{Counters, Outcome, Percentiles, Progress};
use crate::scenarios::ScenarioSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// getData of `--value-size` bytes from `--keys` znodes.
    Get,
    /// setData of `--value-size` bytes to `--keys` znodes.
    Set,
    /// `--read-pct` getData, the rest setData.
    Mix,
    /// create + delete of fresh znodes.
    Churn,
    /// create `--count` znodes of `--value-size` bytes, then read the RSS of `--pid`s.
    Fill,
    /// `--count` sessions watch one znode; time from setData to the last event.
    Watch,
    /// `--count` sessions connect at once; time until all are connected.
    Storm,
    /// retry connect + getData(`--probe-path`) until it succeeds (restart recovery).
    Probe,
    /// one writer for `--duration`, reconnecting on failure; reports the longest write gap.
    Failover,
    /// `--sessions` connectors each repeat connect (+ TLS handshake with `--tls-*`) +
    /// ConnectRequest/Response + closeSession + close for `--warmup` + `--duration`;
    /// reports new sessions per second and connect-to-ConnectResponse latency.
    Handshakes,
    /// no ZooKeeper server: one 40-byte message to each of `--count` loopback connections
    /// from a child process; time to the last one read (the TCP floor of `watch`).
    Floor,
    /// `--count` WebSocket subscribers to `/` (subtree, with data) on Roost's HTTP port
    /// (`--servers` are HTTP addresses) for `--warmup` + `--duration`; run beside a load.
    Subscribe,
    /// `--count` sessions (pinging), each arming `--watches` watches (6 data, 3 child, 1
    /// persistent-recursive in 10) on the tree of an earlier `fill` (`--fill-sessions`,
    /// `--fill-per-session`, `--fanout`), held for `--duration`; memory per session and per
    /// watch from the `--pid`s' RSS, and how many sessions are alive at the end.
    Hold,
    /// getChildren of `--probe-path`, `--rounds` times: latency, names and reply size.
    Children,
    /// the child process of `floor`.
    #[value(hide = true)]
    FloorServe,
}

/// Which client speaks the protocol for get, set, mix and children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ClientKind {
    /// This crate's own pipelined client (the fastest way to load a server).
    Own,
    /// The `zookeeper-client` crate: an independent implementation, to check our figures.
    Independent,
}

#[derive(Debug, Parser)]
#[command(name = "roost-bench", about = "ZooKeeper-protocol load generator (closed or open loop)")]
struct Args {
    /// Workload to run.
    #[arg(value_enum)]
    workload: Workload,
    /// Comma-separated host:port list; sessions are spread round-robin.
    #[arg(long, default_value = "127.0.0.1:2181")]
    servers: String,
    #[arg(long, default_value_t = 32)]
    sessions: usize,
    /// Requests outstanding per session (closed loop), or its cap (open loop).
    #[arg(long, default_value_t = 16)]
    inflight: usize,
    /// Measured seconds (after warmup).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Total requests per second (open loop, latency from the intended send time).
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    /// Number of znodes the key-based workloads spread over.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    #[arg(long, default_value_t = 90)]
    read_pct: u32,
    /// fill: znodes to create; watch: watchers; storm: sessions.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// fill: children per directory (0: all znodes are children of /bench/fill).
    #[arg(long, default_value_t = 0)]
    fanout: u64,
    /// fill: the index each session starts at (the znodes per session of earlier fills),
    /// so that a fill grows the tree an earlier one made.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// hold: watches each session arms.
    #[arg(long, default_value_t = 0)]
    watches: usize,
    /// hold: the `--sessions` of the fill whose tree the watches go on.
    #[arg(long, default_value_t = 32)]
    fill_sessions: usize,
    /// hold: znodes per session of that fill (all fills together).
    #[arg(long, default_value_t = 0)]
    fill_per_session: u64,
    /// children: the largest reply accepted, in MiB.
    #[arg(long, default_value_t = 256)]
    max_reply_mib: usize,
    /// watch: fan-out rounds per run.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Server pids whose resident memory is reported after the workload (repeatable).
    #[arg(long = "pid")]
    pids: Vec<u32>,
    #[arg(long, default_value_t = 30_000)]
    session_timeout_ms: i32,
    /// Handshakes in progress at once while opening sessions (not for storm).
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    #[arg(long, default_value = "/")]
    probe_path: String,
    /// watch: seconds to wait between arming the watchers and each setData (for profiling).
    #[arg(long, default_value_t = 0.0)]
    fire_pause: f64,
    #[arg(long, default_value_t = 300.0)]
    probe_timeout: f64,
    /// Skip creating /bench and the keys (they exist already).
    #[arg(long)]
    no_setup: bool,
    /// Label for the progress line.
    #[arg(long, default_value = "bench")]
    label: String,
    /// Write the JSON result here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Tokio worker threads (default: the number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// Connect over TLS, presenting this key store (key + certificate chain) as the client
    /// certificate. Needs --tls-truststore.
    #[arg(long, requires = "tls_truststore")]
    tls_keystore: Option<PathBuf>,
    /// Certificates that verify the server (its chain or CA). The server's name is not
    /// checked (test certificates often have no SAN), only its chain.
    #[arg(long, requires = "tls_keystore")]
    tls_truststore: Option<PathBuf>,
    /// Password of both stores (JKS needs one; PKCS12/encrypted PEM may).
    #[arg(long)]
    tls_password: Option<String>,
    /// Trust store password, if it differs from --tls-password.
    #[arg(long)]
    tls_truststore_password: Option<String>,
    /// Store type of both stores: PEM, JKS or PKCS12 (default: from the file suffix).
    #[arg(long)]
    tls_store_type: Option<String>,
    /// Trust store type, if it differs from --tls-store-type.
    #[arg(long)]
    tls_truststore_type: Option<String>,
    /// Let new connections resume earlier TLS sessions (off: every handshake is a full one).
    #[arg(long)]
    tls_resume: bool,
    /// The client that runs get, set and mix (closed loop only).
    #[arg(long, value_enum, default_value_t = ClientKind::Own)]
    client: ClientKind,
}

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("bad --servers entry {0:?}")]
    Server(String),
    #[error(transparent)]
    Independent(#[from] independent::IndependentError),
    #[error("the independent client runs a closed loop only (no --rate)")]
    IndependentOpenLoop,
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("TLS configuration: {0}")]
    Tls(#[from] roost_tls::TlsError),
    #[error("writing the result: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding the result: {0}")]
    Json(#[from] serde_json::Error),
}

fn parse_servers(list: &str) -> Result<Vec<SocketAddr>, BenchError> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim().to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or_else(|| BenchError::Server(s.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|v| if v.is_empty() { Err(BenchError::Server(list.into())) } else { Ok(v) })
}

/// Plain TCP, or TLS from the `--tls-*` options: the key store is the client certificate, the
/// trust store verifies the server with roost-tls' verifier (which accepts X.509 v1
/// certificates), and no host name is checked.
fn transport(args: &Args) -> Result<Transport, BenchError> {
    let (Some(key), Some(trust)) = (&args.tls_keystore, &args.tls_truststore) else {
        return Ok(Transport::plain());
    };
    let mut key_store = roost_tls::StoreSpec::new(key, args.tls_password.as_deref());
    key_store.store_type = args.tls_store_type.clone();
    let trust_password = args.tls_truststore_password.as_deref().or(args.tls_password.as_deref());
    let mut trust_store = roost_tls::StoreSpec::new(trust, trust_password);
    trust_store.store_type = args.tls_truststore_type.clone().or_else(|| args.tls_store_type.clone());
    let settings = roost_tls::TlsSettings::new(key_store, Some(trust_store));
    let mut config = roost_tls::client_config(&settings, None)?.as_ref().clone();
    if !args.tls_resume {
        config.resumption = roost_tls::rustls::client::Resumption::disabled();
    }
    Ok(Transport::tls(Arc::new(config)))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let result = rt.enable_all().build().map_err(BenchError::from).and_then(|rt| rt.block_on(run(&args)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roost-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), BenchError> {
    if args.workload == Workload::FloorServe {
        return Ok(floor::serve(args.count).await?);
    }
    let servers = parse_servers(&args.servers)?;
    let transport = transport(args)?;
    let counters = Arc::new(Counters::default());
    let progress = Progress::start(format!("{} {:?}", args.label, args.workload).to_lowercase(), counters.clone());
    let mut outcome = Outcome {
        workload: format!("{:?}", args.workload).to_lowercase(),
        servers: servers.iter().map(ToString::to_string).collect(),
        sessions: args.sessions,
        inflight: args.inflight,
        rate: args.rate,
        elapsed_s: 0.0,
        ops: 0,
        throughput: 0.0,
        errors: 0,
        error_codes: Default::default(),
        latency_us: None,
        rss_kib: Default::default(),
        rss_total_kib: 0,
        extra: Default::default(),
    };
    let kind = match args.workload {
        Workload::Get => Some(Kind::Get),
        Workload::Set => Some(Kind::Set),
        Workload::Mix => Some(Kind::Mix { read_pct: args.read_pct.min(100) }),
        Workload::Churn => Some(Kind::Churn),
        Workload::Fill => Some(Kind::Fill),
        _ => None,
    };
    if let Some(kind) = kind {
        run_load(args, kind, &servers, transport, counters, &mut outcome).await?;
    } else {
        run_scenario(args, &servers, transport, counters, &mut outcome).await?;
    }
    drop(progress);
    outcome.errors = outcome.error_codes.values().sum();
    outcome.rss_kib = report::rss_kib(&args.pids);
    outcome.rss_total_kib = outcome.rss_kib.values().sum();
    let text = serde_json::to_string_pretty(&outcome)?;
    match &args.out {
        Some(path) => std::fs::write(path, text + "\n")?,
        None => println!("{text}"),
    }
    Ok(())
}

async fn run_load(
    args: &Args,
    kind: Kind,
    servers: &[SocketAddr],
    transport: Transport,
    counters: Arc<Counters>,
    outcome: &mut Outcome,
) -> Result<(), BenchError> {
    let fill = kind == Kind::Fill;
    let sessions = args.sessions.max(1);
    let spec = LoadSpec {
        kind,
        sessions,
        inflight: args.inflight,
        duration: Duration::from_secs_f64(args.duration),
        warmup: if fill { Duration::ZERO } else { Duration::from_secs_f64(args.warmup) },
        limit_per_session: fill.then(|| args.count.div_ceil(sessions) as u64),
        fill: load::FillLayout { fanout: args.fanout, first: args.first },
        rate: args.rate,
        value_size: args.value_size,
        keys: args.keys,
        session_timeout_ms: args.session_timeout_ms,
        connect_concurrency: args.connect_concurrency,
        transport,
    };
    if !args.no_setup {
        load::prepare(servers[0], &spec).await?;
    }
    let r = match args.client {
        ClientKind::Own => load::run(&spec, servers, counters).await?,
        ClientKind::Independent if args.rate.is_some() => return Err(BenchError::IndependentOpenLoop),
        ClientKind::Independent => {
            outcome.extra.insert("client".into(), serde_json::json!("zookeeper-client"));
            independent::run(&spec, servers, counters).await?
        }
    };
    outcome.elapsed_s = r.elapsed.as_secs_f64();
    outcome.ops = r.measured_ops;
    outcome.throughput = r.measured_ops as f64 / r.elapsed.as_secs_f64().max(1e-9);
    outcome.error_codes = r.errors;
    outcome.latency_us = (!r.all.is_empty()).then(|| Percentiles::of(&r.all));
    if let Some(tls) = &r.tls {
        outcome.extra.insert("tls".into(), serde_json::json!(tls));
    }
    if matches!(kind, Kind::Mix { .. }) {
        outcome.extra.insert("read_latency_us".into(), serde_json::to_value(Percentiles::of(&r.reads))?);
        outcome.extra.insert("write_latency_us".into(), serde_json::to_value(Percentiles::of(&r.writes))?);
    }
    if fill {
        outcome.extra.insert("znodes".into(), serde_json::json!(spec.limit_per_session.unwrap_or(0) * sessions as u64));
        outcome.extra.insert("creates_per_s".into(), serde_json::json!(outcome.throughput));
    }
    Ok(())
}

async fn run_scenario(
    args: &Args,
    servers: &[SocketAddr],
    transport: Transport,
    counters: Arc<Counters>,
    outcome: &mut Outcome,
) -> Result<(), BenchError> {
    let spec = ScenarioSpec {
        count: args.count,
        rounds: args.rounds.max(1),
        session_timeout_ms: args.session_timeout_ms,
        connect_concurrency: args.connect_concurrency,
        duration: Duration::from_secs_f64(args.duration),
        probe_timeout: Duration::from_secs_f64(args.probe_timeout),
        fire_pause: Duration::from_secs_f64(args.fire_pause.max(0.0)),
        connectors: args.sessions.max(1),
        warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
        transport: transport.clone(),
    };
    // Only these scenarios have a zookeeper-client version; the others would silently run ours.
    if args.client == ClientKind::Independent && !matches!(args.workload, Workload::Hold | Workload::Children) {
        return Err(independent::IndependentError::Workload.into());
    }
    let needs_root = matches!(args.workload, Workload::Watch | Workload::Failover);
    if needs_root && !args.no_setup {
        let prep = LoadSpec {
            kind: Kind::Fill,
            sessions: 1,
            inflight: 1,
            duration: Duration::ZERO,
            warmup: Duration::ZERO,
            limit_per_session: None,
            fill: load::FillLayout::default(),
            rate: None,
            value_size: 0,
            keys: 0,
            session_timeout_ms: args.session_timeout_ms,
            connect_concurrency: 1,
            transport,
        };
        load::prepare(servers[0], &prep).await?;
    }
    let r = match args.workload {
        Workload::Watch => scenarios::watch_fanout(&spec, servers, counters).await?,
        Workload::Storm => scenarios::session_storm(&spec, servers, counters).await?,
        Workload::Probe => scenarios::probe(&spec, servers, &args.probe_path).await?,
        Workload::Floor => floor::tcp_floor(&spec).await?,
        Workload::Handshakes => scenarios::handshakes(&spec, servers, counters).await?,
        Workload::Subscribe => subscribe::subscribers(&spec, servers, counters).await?,
        Workload::Hold => {
            let shape = hold::FillShape {
                sessions: args.fill_sessions,
                per_session: args.fill_per_session,
                fanout: args.fanout,
            };
            match args.client {
                ClientKind::Independent => {
                    independent::hold(&spec, servers, shape, args.watches, &args.pids, counters).await?
                }
                _ => hold::hold(&spec, servers, shape, args.watches, &args.pids, counters).await?,
            }
        }
        Workload::Children if args.client == ClientKind::Independent => {
            independent::children(&spec, servers, &args.probe_path).await?
        }
        Workload::Children => hold::children(&spec, servers, &args.probe_path, args.max_reply_mib << 20).await?,
        _ => scenarios::failover(&spec, servers, counters).await?,
    };
    outcome.sessions = match args.workload {
        Workload::Watch | Workload::Storm | Workload::Floor | Workload::Subscribe | Workload::Hold => args.count,
        Workload::Handshakes => spec.connectors,
        _ => 1,
    };
    outcome.inflight = 1;
    outcome.elapsed_s = r.elapsed.as_secs_f64();
    outcome.ops = r.ops;
    outcome.throughput = r.ops as f64 / r.elapsed.as_secs_f64().max(1e-9);
    outcome.error_codes = r.errors;
    outcome.latency_us = scenarios::percentiles(&r.latency);
    outcome.extra = r.extra;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists_parse_and_bad_entries_are_rejected() {
        let v = parse_servers("127.0.0.1:2181, 127.0.0.1:2182").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].port(), 2182);
        assert!(parse_servers("nope").is_err());
        assert!(parse_servers("").is_err());
    }
}
