//! The validated [`Config`] and how it is assembled from the configuration layers.

use std::path::{Path, PathBuf};

use super::cli::Cli;
use super::docker_env;
use super::error::{ConfigError, ConfigWarning, Origin, ValueProblem};
use super::keys::Key;
use super::security::{self, SecurityConfig};
use super::servers::{PeerRole, ServerSpec};
use super::settings::{Settings, Sourced};
use super::values;
use super::whitelist::FourLetterWhitelist;
use super::zoocfg;

/// Client port when nothing sets one.
pub const DEFAULT_CLIENT_PORT: u16 = 2181;
/// ZooKeeper's `admin.rateLimiterIntervalInMS` default: `snapshot` and `restore` once per 5 minutes.
const DEFAULT_ADMIN_RATE_LIMIT_MS: u64 = 300_000;
/// HTTP (AdminServer / navigator) port, ZooKeeper's `admin.serverPort` default.
pub const DEFAULT_HTTP_PORT: u16 = 8080;
/// Apache ZooKeeper defaults to 3000 ms when started without any zoo.cfg, but its sample zoo.cfg,
/// the Docker image and kazoo's harness all use 2000 ms, and that is what operators expect.
pub const DEFAULT_TICK_TIME_MS: u32 = 2000;
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_BIND: &str = "0.0.0.0";
/// `maxClientCnxns` default (per client IP; 0 = unlimited).
pub const DEFAULT_MAX_CLIENT_CNXNS: u32 = 60;
/// `jute.maxbuffer` default: the largest frame a server accepts.
pub const DEFAULT_MAX_BUFFER: u32 = 0xfffff;
pub const DEFAULT_SNAP_COUNT: u64 = 100_000;
/// `commitLogCount` default. Roost's log entries carry batches of txns, so this is at
/// least ZooKeeper's 500 committed txns. Every entry kept is read back (and checked) at
/// startup: 10,000 entries of a million-znode fill made a restart read 150 MB of log.
pub const DEFAULT_COMMIT_LOG_COUNT: u64 = 1_000;
pub const DEFAULT_INIT_LIMIT: u32 = 10;
pub const DEFAULT_SYNC_LIMIT: u32 = 5;
/// ZooKeeper never keeps fewer than 3 snapshots when purging (`DatadirCleanupManager`).
pub const MIN_SNAP_RETAIN_COUNT: u32 = 3;
pub const DEFAULT_CONTAINER_CHECK_INTERVAL_MS: u64 = 60_000;
/// ZooKeeper's `globalOutstandingLimit` default.
pub const DEFAULT_GLOBAL_OUTSTANDING_LIMIT: u32 = 1_000;
/// ZooKeeper's `zookeeper.nio.sessionlessCnxnTimeout` default.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// The server configuration every other module reads. Built by [`Config::load`]; all values are
/// validated, all durations are milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The zoo.cfg that was read, if any.
    pub config_file: Option<PathBuf>,
    pub client_port: u16,
    /// Client bind address (`clientPortAddress`, `--bind`, or the host of this server's `;host:port`).
    pub bind: String,
    /// Whether the plain client port is served: not when only `secureClientPort` is configured
    /// (ZooKeeper then serves TLS only).
    pub client_port_plain: bool,
    /// TLS, SASL, x509, audit (see [`SecurityConfig`]).
    pub security: SecurityConfig,
    pub http_port: u16,
    /// HTTP bind address (`admin.serverAddress`, else `bind`).
    pub http_bind: String,
    /// `admin.enableServer`: whether the HTTP listener runs at all.
    pub http_enabled: bool,
    /// `http.readOnly`: the HTTP port refuses every change (REST writes, UI edits).
    pub http_read_only: bool,
    /// `admin.snapshot.enabled`: the AdminServer `snapshot` command runs (docs/BACKUP.md).
    pub admin_snapshot_enabled: bool,
    /// `admin.restore.enabled`: the AdminServer `restore` command runs.
    pub admin_restore_enabled: bool,
    /// `admin.rateLimiterIntervalInMS`: `snapshot` and `restore` each run at most once per
    /// this interval (0: no limit).
    pub admin_rate_limit_interval: std::time::Duration,
    /// `http.token`: the HTTP port requires this bearer token (or a UI login with it).
    pub http_token: Option<String>,
    /// `http.basePath`: prefix under which the HTTP port serves everything (reverse proxies).
    pub http_base_path: String,
    /// `http.allowedHosts`: when not empty, requests whose `Host` is not one of these names
    /// are refused (DNS rebinding); entries are `name` or `name:port`.
    pub http_allowed_hosts: Vec<String>,
    /// `http.users`: users who may log in to the HTTP port, each `user:<digest>` in
    /// ZooKeeper's digest format (base64 of the SHA-1 of `user:password`, what
    /// `DigestAuthenticationProvider` prints); no password is stored.
    pub http_users: Vec<String>,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    /// This server's id (top byte of the session ids it creates).
    pub my_id: u64,
    pub tick_time_ms: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    /// Per-client-IP connection limit; 0 = unlimited.
    pub max_client_cnxns: u32,
    /// `clientPortListenBacklog`; `None` = the OS default.
    pub client_port_listen_backlog: Option<u32>,
    pub four_letter_words: FourLetterWhitelist,
    /// `jute.maxbuffer`: the largest request frame / znode payload accepted.
    pub max_buffer: u32,
    /// `snapCount`: txns between snapshots.
    pub snap_count: u64,
    /// `commitLogCount` (ZooKeeper's `zookeeper.commitLogCount`): log entries kept behind
    /// the newest snapshot, so a follower that far behind catches up from the log; one
    /// further behind is sent the snapshot.
    pub commit_log_count: u64,
    pub autopurge_snap_retain_count: u32,
    /// `autopurge.purgeInterval` in hours; 0 disables purging.
    pub autopurge_purge_interval_hours: u32,
    /// `readonlymode.enabled`: serve reads when the quorum is lost.
    pub read_only_enabled: bool,
    /// `DigestAuthenticationProvider.superDigest` (`super:<base64 sha1>`).
    pub super_digest: Option<String>,
    /// `extendedTypesEnabled`: TTL nodes.
    pub ttl_enabled: bool,
    pub reconfig_enabled: bool,
    pub standalone_enabled: bool,
    pub local_sessions_enabled: bool,
    pub local_sessions_upgrading_enabled: bool,
    /// This server's role (its own server line wins over `peerType`, as in ZooKeeper).
    pub peer_type: PeerRole,
    pub container_check_interval_ms: u64,
    /// `znode.container.maxNeverUsedIntervalMs`; 0 = never delete never-used containers.
    pub container_max_never_used_interval_ms: u64,
    /// `globalOutstandingLimit`: requests outstanding on the whole server before connections with
    /// requests in flight stop being read (see `server::flow`); 0 = no global limit.
    pub global_outstanding_limit: u32,
    /// `zookeeper.nio.sessionlessCnxnTimeout`: how long a connection may take to send its
    /// ConnectRequest (or four-letter word) before it is closed.
    pub handshake_timeout_ms: u64,
    /// The ensemble (empty for a plain standalone server).
    pub servers: Vec<ServerSpec>,
    /// `--log` / `ROOST_LOG`.
    pub log_filter: Option<String>,
    /// Keys that were ignored or overridden (already logged with `tracing::warn!`).
    pub warnings: Vec<ConfigWarning>,
}

impl Default for Config {
    /// The standalone defaults, as `roost` with no arguments and no environment would run.
    fn default() -> Self {
        match Config::load(Cli::default(), &|_| None) {
            Ok(config) => config,
            Err(err) => unreachable!("built-in defaults are valid: {err}"),
        }
    }
}

impl Config {
    /// Loads the configuration from all sources.
    ///
    /// Precedence, highest first:
    /// 1. dedicated command-line flags (`--client-port`...), then their `ROOST_*` variables (clap
    ///    merges a flag and its variable; the flag wins);
    /// 2. `-D key=value` / `--property` (and `ROOST_PROPERTY`): below the dedicated flags, so
    ///    `--client-port` beats `-D clientPort=...`;
    /// 3. the zoo.cfg file (`--config`, `ROOST_CONFIG` or the positional argument), and for the
    ///    server id the `<dataDir>/myid` file;
    /// 4. the official Docker image's `ZOO_*` variables, read through `env`;
    /// 5. built-in defaults.
    ///
    /// The `server.N` lines are taken as a whole from the highest source that has any. This server's
    /// client port and address come from `clientPort`/`clientPortAddress` or from its own server
    /// line's `;host:port`, whichever has the higher precedence (the key wins a tie).
    ///
    /// `env` only supplies the `ZOO_*` variables; `ROOST_*` variables were already read by clap when
    /// `cli` was parsed. Warnings go to `tracing`, so install the subscriber (from `cli.log`) first.
    pub fn load(cli: Cli, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let docker = docker_env::read(env)?;
        let mut settings = Settings::default();
        settings.apply_layer(docker.entries)?;
        let config_file = cli.config_file().cloned();
        if let Some(path) = &config_file {
            settings.apply_layer(zoocfg::read(path)?)?;
        }
        settings.apply_layer(cli.property_entries())?;
        settings.apply_layer(cli.flag_entries())?;
        let ids = IdSources { flag: cli.server_id, docker: docker.my_id };
        resolve(settings, &ids, config_file, cli.log)
    }

    /// Standalone unless there is an ensemble of more than one voter (or `standaloneEnabled=false`),
    /// the same rule as ZooKeeper's `QuorumPeerConfig.isDistributed`.
    pub fn is_standalone(&self) -> bool {
        !is_distributed(&self.servers, self.standalone_enabled)
    }

    /// This server's own `server.N` entry.
    pub fn my_server(&self) -> Option<&ServerSpec> {
        self.servers.iter().find(|s| s.id == self.my_id)
    }

    /// The other members of the ensemble.
    pub fn peers(&self) -> impl Iterator<Item = &ServerSpec> {
        self.servers.iter().filter(move |s| s.id != self.my_id)
    }
}

/// The server-id inputs that are not zoo.cfg keys.
struct IdSources {
    flag: Option<u64>,
    docker: Option<String>,
}

fn is_distributed(servers: &[ServerSpec], standalone_enabled: bool) -> bool {
    let voters = servers.iter().filter(|s| s.role == PeerRole::Participant).count();
    !servers.is_empty() && (!standalone_enabled || voters > 1)
}

fn text(s: &str) -> Result<String, ValueProblem> {
    Ok(s.to_string())
}

fn resolve(
    settings: Settings,
    ids: &IdSources,
    config_file: Option<PathBuf>,
    log_filter: Option<String>,
) -> Result<Config, ConfigError> {
    let s = &settings;
    let mut warnings = settings.warnings.clone();

    let tick = s.get_or(Key::TickTime, DEFAULT_TICK_TIME_MS, values::u32_positive)?.value;
    let min_st = s.get_or(Key::MinSessionTimeout, tick.saturating_mul(2), values::u32_any)?;
    let max_st = s.get_or(Key::MaxSessionTimeout, tick.saturating_mul(20), values::u32_any)?;
    if min_st.value > max_st.value {
        return Err(ConfigError::SessionTimeouts {
            min: min_st.value,
            min_origin: min_st.origin,
            max: max_st.value,
            max_origin: max_st.origin,
        });
    }

    let data_dir = PathBuf::from(s.get_or(Key::DataDir, DEFAULT_DATA_DIR.to_string(), values::non_empty)?.value);
    let data_log_dir = s.get(Key::DataLogDir, values::non_empty)?.map_or_else(|| data_dir.clone(), |d| d.value.into());
    let standalone_enabled = s.get_or(Key::StandaloneEnabled, true, values::boolean)?.value;

    let server_list = s.servers();
    let servers = server_list.specs.clone();
    let distributed = is_distributed(&servers, standalone_enabled);
    if !servers.is_empty() && !servers.iter().any(|s| s.role == PeerRole::Participant) {
        return Err(ConfigError::NoParticipants { origin: server_list.origins[0].clone() });
    }
    let my_id = resolve_my_id(ids, &servers, &data_dir, distributed)?;
    let own_index = servers.iter().position(|s| s.id == my_id.value);
    if !servers.is_empty() && own_index.is_none() {
        return Err(ConfigError::MyIdNotInServers {
            id: my_id.value,
            origin: my_id.origin,
            known: servers.iter().map(|s| s.id).collect(),
        });
    }
    let own = own_index.map(|i| (&servers[i], &server_list.origins[i]));
    let own_client =
        own.and_then(|(spec, origin)| spec.client_addr.as_ref().map(|addr| (addr.clone(), origin.clone())));

    let port_key = s.get(Key::ClientPort, values::port)?;
    let line_port = own_client.as_ref().map(|(a, o)| Sourced { value: a.port, origin: o.clone() });
    let client_port = prefer(port_key.clone(), line_port.clone())
        .unwrap_or(Sourced { value: DEFAULT_CLIENT_PORT, origin: Origin::Default });
    if let (Some(line), Some(_)) = (&line_port, &port_key) {
        if line.value != client_port.value {
            warnings.push(ConfigWarning::ClientPortOverridden {
                server_line: line.value,
                used: client_port.value,
                origin: client_port.origin.clone(),
            });
        }
    }
    let line_host = own_client.map(|(a, o)| Sourced { value: a.host, origin: o });
    let bind = prefer(s.get(Key::ClientPortAddress, values::non_empty)?, line_host)
        .map_or_else(|| DEFAULT_BIND.to_string(), |b| b.value);

    let http_port = s.get_or(Key::AdminServerPort, DEFAULT_HTTP_PORT, values::port)?;
    let http_enabled = s.get_or(Key::AdminEnableServer, true, values::boolean)?.value;
    if http_enabled && client_port.value != 0 && client_port.value == http_port.value {
        return Err(ConfigError::PortClash {
            port: client_port.value,
            client_origin: client_port.origin,
            http_origin: http_port.origin,
        });
    }
    let http_bind = s.get(Key::AdminServerAddress, values::non_empty)?.map_or_else(|| bind.clone(), |b| b.value);

    let configured_type = s.get(Key::PeerType, values::peer_type)?.map(|p| p.value);
    let peer_type = match (own, configured_type) {
        (Some((spec, _)), Some(configured)) if spec.role != configured => {
            warnings.push(ConfigWarning::PeerTypeMismatch {
                peer_type: configured.to_string(),
                server_line: spec.role.to_string(),
            });
            spec.role
        }
        (Some((spec, _)), _) => spec.role,
        (None, configured) => configured.unwrap_or_default(),
    };
    for warning in &warnings[settings.warnings.len()..] {
        warning.emit();
    }

    let read_only_enabled = s.get_or(Key::ReadOnlyModeEnabled, false, values::boolean)?.value;
    let security = security::resolve(s)?;
    let client_port_plain = port_key.is_some() || line_port.is_some() || security.secure_client_port.is_none();
    let whitelist = s.get(Key::FourLetterWhitelist, text)?.map(|w| w.value);

    Ok(Config {
        config_file,
        client_port: client_port.value,
        bind,
        client_port_plain,
        security,
        http_port: http_port.value,
        http_bind,
        http_enabled,
        http_read_only: s.get_or(Key::HttpReadOnly, false, values::boolean)?.value,
        admin_snapshot_enabled: s.get_or(Key::AdminSnapshotEnabled, true, values::boolean)?.value,
        admin_restore_enabled: s.get_or(Key::AdminRestoreEnabled, true, values::boolean)?.value,
        admin_rate_limit_interval: std::time::Duration::from_millis(
            s.get_or(Key::AdminRateLimiterInterval, DEFAULT_ADMIN_RATE_LIMIT_MS, values::u64_any)?.value,
        ),
        http_token: s.get(Key::HttpToken, values::non_empty)?.map(|t| t.value),
        http_base_path: s.get(Key::HttpBasePath, values::non_empty)?.map_or_else(String::new, |b| b.value),
        http_allowed_hosts: s
            .get(Key::HttpAllowedHosts, values::non_empty)?
            .map(|h| h.value.split(',').map(|x| x.trim().to_ascii_lowercase()).filter(|x| !x.is_empty()).collect())
            .unwrap_or_default(),
        http_users: s.get(Key::HttpUsers, values::digest_list)?.map(|u| u.value).unwrap_or_default(),
        data_dir,
        data_log_dir,
        my_id: my_id.value,
        tick_time_ms: tick,
        init_limit: s.get_or(Key::InitLimit, DEFAULT_INIT_LIMIT, values::u32_positive)?.value,
        sync_limit: s.get_or(Key::SyncLimit, DEFAULT_SYNC_LIMIT, values::u32_positive)?.value,
        min_session_timeout_ms: min_st.value,
        max_session_timeout_ms: max_st.value,
        max_client_cnxns: s.get_or(Key::MaxClientCnxns, DEFAULT_MAX_CLIENT_CNXNS, values::u32_any)?.value,
        client_port_listen_backlog: s.get(Key::ClientPortListenBacklog, values::u32_positive)?.map(|b| b.value),
        four_letter_words: FourLetterWhitelist::new(whitelist.as_deref(), read_only_enabled),
        max_buffer: s.get_or(Key::JuteMaxBuffer, DEFAULT_MAX_BUFFER, values::byte_size)?.value,
        snap_count: s.get_or(Key::SnapCount, DEFAULT_SNAP_COUNT, values::u64_positive)?.value,
        commit_log_count: s.get_or(Key::CommitLogCount, DEFAULT_COMMIT_LOG_COUNT, values::u64_any)?.value,
        autopurge_snap_retain_count: s
            .get_or(Key::AutopurgeSnapRetainCount, MIN_SNAP_RETAIN_COUNT, values::u32_any)?
            .value
            .max(MIN_SNAP_RETAIN_COUNT),
        autopurge_purge_interval_hours: s.get_or(Key::AutopurgePurgeInterval, 0, values::u32_any)?.value,
        read_only_enabled,
        super_digest: s.get(Key::SuperDigest, values::super_digest)?.map(|d| d.value),
        ttl_enabled: s.get_or(Key::ExtendedTypesEnabled, false, values::boolean)?.value,
        reconfig_enabled: s.get_or(Key::ReconfigEnabled, false, values::boolean)?.value,
        standalone_enabled,
        local_sessions_enabled: s.get_or(Key::LocalSessionsEnabled, false, values::boolean)?.value,
        local_sessions_upgrading_enabled: s.get_or(Key::LocalSessionsUpgradingEnabled, false, values::boolean)?.value,
        peer_type,
        container_check_interval_ms: s
            .get_or(Key::ContainerCheckIntervalMs, DEFAULT_CONTAINER_CHECK_INTERVAL_MS, values::u64_positive)?
            .value,
        container_max_never_used_interval_ms: s.get_or(Key::ContainerMaxNeverUsedIntervalMs, 0, values::u64_any)?.value,
        global_outstanding_limit: s
            .get_or(Key::GlobalOutstandingLimit, DEFAULT_GLOBAL_OUTSTANDING_LIMIT, values::u32_any)?
            .value,
        handshake_timeout_ms: s
            .get_or(Key::SessionlessCnxnTimeout, DEFAULT_HANDSHAKE_TIMEOUT_MS, values::u64_positive)?
            .value,
        servers,
        log_filter,
        warnings,
    })
}

/// The value with the higher precedence; `first` wins a tie.
fn prefer<T>(first: Option<Sourced<T>>, second: Option<Sourced<T>>) -> Option<Sourced<T>> {
    match (first, second) {
        (Some(a), Some(b)) => Some(if b.origin.rank() > a.origin.rank() { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Server id: `--server-id` > `<dataDir>/myid` (read only when there are server lines) > `ZOO_MY_ID`
/// > the only server line's id > 1. A distributed server without any of the first three is an error.
fn resolve_my_id(
    ids: &IdSources,
    servers: &[ServerSpec],
    data_dir: &Path,
    distributed: bool,
) -> Result<Sourced<u64>, ConfigError> {
    if let Some(id) = ids.flag {
        return Ok(Sourced { value: id, origin: Origin::Flag("--server-id") });
    }
    let myid_path = data_dir.join("myid");
    if !servers.is_empty() {
        if let Some(id) = read_myid_file(&myid_path)? {
            return Ok(Sourced { value: id, origin: Origin::MyIdFile(myid_path) });
        }
    }
    if let Some(text) = &ids.docker {
        let origin = Origin::DockerEnv("ZOO_MY_ID");
        let id = values::server_id(text).map_err(|problem| ConfigError::BadValue {
            origin: origin.clone(),
            key: "ZOO_MY_ID".to_string(),
            value: text.clone(),
            problem,
        })?;
        return Ok(Sourced { value: id, origin });
    }
    match servers {
        _ if distributed => Err(ConfigError::MissingMyId { path: myid_path }),
        [only] => Ok(Sourced { value: only.id, origin: Origin::Default }),
        _ => Ok(Sourced { value: 1, origin: Origin::Default }),
    }
}

/// Reads `<dataDir>/myid`; `Ok(None)` when the file does not exist.
fn read_myid_file(path: &Path) -> Result<Option<u64>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(content) => values::server_id(&content)
            .map(Some)
            .map_err(|_| ConfigError::BadMyId { path: path.to_path_buf(), content: content.trim().to_string() }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Io { path: path.to_path_buf(), source }),
    }
}
