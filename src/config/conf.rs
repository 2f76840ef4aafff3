//! Derived views of a [`Config`]: listen addresses, durations, session-timeout clamping and the text
//! of the `conf` four-letter word / `configuration` admin command.

use std::path::Path;
use std::time::Duration;

use super::load::Config;
use super::servers::HostPort;

impl Config {
    /// `host:port` for the client listener (IPv6 hosts bracketed).
    pub fn client_listen_addr(&self) -> String {
        HostPort { host: self.bind.clone(), port: self.client_port }.to_string()
    }

    /// `host:port` for the HTTP listener.
    pub fn http_listen_addr(&self) -> String {
        HostPort { host: self.http_bind.clone(), port: self.http_port }.to_string()
    }

    pub fn tick_time(&self) -> Duration {
        Duration::from_millis(u64::from(self.tick_time_ms))
    }

    /// The per-IP connection limit, `None` when unlimited (`maxClientCnxns=0`).
    pub fn max_client_cnxns_limit(&self) -> Option<u32> {
        (self.max_client_cnxns != 0).then_some(self.max_client_cnxns)
    }

    /// The session timeout a client gets for `requested_ms`: clamped into
    /// `[minSessionTimeout, maxSessionTimeout]` (`ZooKeeperServer.processConnectRequest`).
    pub fn clamp_session_timeout(&self, requested_ms: i32) -> i32 {
        let min = i64::from(self.min_session_timeout_ms);
        let max = i64::from(self.max_session_timeout_ms);
        let clamped = i64::from(requested_ms).clamp(min, max);
        i32::try_from(clamped).unwrap_or(i32::MAX)
    }

    /// The `key=value` pairs of the `conf` 4lw (`ZooKeeperServer.dumpConf`, plus
    /// `QuorumZooKeeperServer.dumpConf` for an ensemble member), in ZooKeeper's order. The directory
    /// sizes are measured by the caller.
    ///
    /// Deviations: directories are printed as
    /// absolute paths without ZooKeeper's `version-2` suffix; a standalone server prints its real
    /// `serverId` (ZooKeeper prints 0).
    pub fn to_conf_lines(&self, data_dir_size: u64, data_log_size: u64) -> Vec<(&'static str, String)> {
        let mut lines = vec![
            ("clientPort", self.client_port.to_string()),
            ("secureClientPort", self.security.secure_client_port.map_or_else(|| "-1".to_string(), |p| p.to_string())),
            ("dataDir", absolute(&self.data_dir)),
            ("dataDirSize", data_dir_size.to_string()),
            ("dataLogDir", absolute(&self.data_log_dir)),
            ("dataLogSize", data_log_size.to_string()),
            ("tickTime", self.tick_time_ms.to_string()),
            ("maxClientCnxns", self.max_client_cnxns.to_string()),
            ("minSessionTimeout", self.min_session_timeout_ms.to_string()),
            ("maxSessionTimeout", self.max_session_timeout_ms.to_string()),
            (
                "clientPortListenBacklog",
                self.client_port_listen_backlog.map_or_else(|| "-1".to_string(), |b| b.to_string()),
            ),
            ("serverId", self.my_id.to_string()),
        ];
        if let (false, Some(me)) = (self.is_standalone(), self.my_server()) {
            lines.extend([
                ("initLimit", self.init_limit.to_string()),
                ("syncLimit", self.sync_limit.to_string()),
                ("electionAlg", "3".to_string()),
                ("electionPort", me.election_port.to_string()),
                ("quorumPort", me.quorum_port.to_string()),
                ("peerType", self.peer_type.ordinal().to_string()),
            ]);
        }
        lines
    }

    /// The full `conf` 4lw reply: the `key=value` lines and, for an ensemble member, the
    /// `membership: ` section with the current configuration text (`membership`, as served
    /// in `/zookeeper/config`; no final newline, as `QuorumZooKeeperServer.dumpConf` prints it).
    pub fn conf_text(&self, data_dir_size: u64, data_log_size: u64, membership: &str) -> String {
        let mut out = String::new();
        for (key, value) in self.to_conf_lines(data_dir_size, data_log_size) {
            out.push_str(key);
            out.push('=');
            out.push_str(&value);
            out.push('\n');
        }
        if !self.is_standalone() {
            out.push_str("membership: \n");
            out.push_str(membership);
        }
        out
    }

    /// The ensemble in ZooKeeper's dynamic-config form (`QuorumMaj.toString`), as served in
    /// `/zookeeper/config`: one `server.N=...` line each, then `version=<hex>` (no final newline).
    pub fn quorum_config_text(&self, version: u64) -> String {
        let mut out = String::new();
        for server in &self.servers {
            out.push_str(&server.to_config_line());
            out.push('\n');
        }
        out.push_str(&format!("version={version:x}"));
        out
    }
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}
