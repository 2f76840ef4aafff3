//! ZooKeeper's dynamic configuration: the text held in `/zookeeper/config` and what the
//! `reconfig` operation computes from it.
//!
//! The text is one `server.N=host:quorumPort:electionPort:role[;clientAddr]` line per member,
//! in id order, then `version=<hex>` without a final newline (`QuorumMaj.toString`). The version
//! is the zxid of the txn that installed the configuration.
//!
//! A reconfig is either *incremental* (`joining` server lines and `leaving` ids, both
//! comma-separated, applied to the current configuration) or *non-incremental* (`newMembers`:
//! the complete new list, separated by commas or newlines), as in `PrepRequestProcessor`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::error::ServerSpecProblem;
use super::servers::{PeerRole, ServerSpec};

/// Why a configuration text or a reconfig argument is unusable (the client gets BadArguments).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DynamicConfigError {
    #[error("{0:?} is not a key=value line")]
    NotKeyValue(String),
    #[error("{0:?} is not a server id")]
    BadServerId(String),
    #[error("server.{id}: {problem}")]
    BadServer { id: u64, problem: ServerSpecProblem },
    #[error("server.{0} needs a client address (;[host:]port)")]
    NoClientAddress(u64),
    #[error("server.{0} uses an address another server already has")]
    DuplicateAddress(u64),
    #[error("{0:?} is not a hexadecimal version")]
    BadVersion(String),
    #[error("unknown dynamic configuration key {0:?}")]
    UnknownKey(String),
}

/// A parsed dynamic configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DynamicConfig {
    /// Every member by id.
    pub servers: BTreeMap<u64, ServerSpec>,
    /// The zxid that installed it (0 for a configuration that was never installed).
    pub version: u64,
}

impl DynamicConfig {
    /// A configuration of `servers` (later duplicates of an id win) at `version`.
    pub fn new(servers: impl IntoIterator<Item = ServerSpec>, version: u64) -> DynamicConfig {
        DynamicConfig { servers: servers.into_iter().map(|s| (s.id, s)).collect(), version }
    }

    /// Parses the `/zookeeper/config` text (or a `newMembers` list, where commas separate
    /// lines too). Blank lines and `#` comments are skipped; a missing `version` is 0.
    pub fn parse(text: &str) -> Result<DynamicConfig, DynamicConfigError> {
        let mut config = DynamicConfig::default();
        for line in text.split(['\n', ',']).map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| DynamicConfigError::NotKeyValue(line.to_string()))?;
            let (key, value) = (key.trim(), value.trim());
            if key == "version" {
                config.version =
                    u64::from_str_radix(value, 16).map_err(|_| DynamicConfigError::BadVersion(value.to_string()))?;
            } else if key.starts_with("server.") {
                let spec = parse_server(key, value)?;
                config.servers.insert(spec.id, spec);
            } else {
                return Err(DynamicConfigError::UnknownKey(key.to_string()));
            }
        }
        Ok(config)
    }

    /// The `server.N=...` lines, each ending in a newline (the text without its version).
    pub fn members_text(&self) -> String {
        let mut out = String::new();
        for server in self.servers.values() {
            let _ = writeln!(out, "{}", server.to_config_line());
        }
        out
    }

    /// The full text as ZooKeeper serves it: members, then `version=<hex>`.
    pub fn to_text(&self) -> String {
        format!("{}version={:x}", self.members_text(), self.version)
    }

    /// Whether a reconfig installed it: its version is a txn's zxid. The initial
    /// configuration's version is an epoch's first zxid (counter 0), which no txn gets.
    pub fn is_reconfigured(&self) -> bool {
        self.version & 0xffff_ffff != 0
    }

    /// Ids of the participants (voters).
    pub fn voters(&self) -> impl Iterator<Item = u64> + '_ {
        self.servers.values().filter(|s| s.role == PeerRole::Participant).map(|s| s.id)
    }

    /// The members after an incremental reconfig: `leaving` ids removed, then each `joining`
    /// line added or replacing the member of the same id. Joiners need a client address and
    /// must not reuse another member's quorum or election address.
    pub fn incremental(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
    ) -> Result<DynamicConfig, DynamicConfigError> {
        let mut next = self.servers.clone();
        for id in split_list(leaving) {
            let parsed = id.parse::<u64>().map_err(|_| DynamicConfigError::BadServerId(id.to_string()))?;
            next.remove(&parsed);
        }
        for joiner in split_list(joining) {
            let mut parts = joiner.split('=').map(str::trim).filter(|p| !p.is_empty());
            let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(DynamicConfigError::NotKeyValue(joiner.to_string()));
            };
            let spec = parse_server(key, value)?;
            if spec.client_addr.is_none() {
                return Err(DynamicConfigError::NoClientAddress(spec.id));
            }
            let taken = next.values().filter(|other| other.id != spec.id).any(|other| {
                let theirs = [other.quorum_addr(), election_addr(other)];
                theirs.contains(&spec.quorum_addr()) || theirs.contains(&election_addr(&spec))
            });
            if taken {
                return Err(DynamicConfigError::DuplicateAddress(spec.id));
            }
            next.insert(spec.id, spec);
        }
        Ok(DynamicConfig { servers: next, version: self.version })
    }
}

/// `a,b,,c` -> `a`, `b`, `c` (trimmed, empty items dropped; `None` is empty).
fn split_list(text: Option<&str>) -> impl Iterator<Item = &str> {
    text.unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// `server.N` (ZooKeeper takes the text after the last dot as the id) and its spec.
fn parse_server(key: &str, value: &str) -> Result<ServerSpec, DynamicConfigError> {
    let id_text = key.rsplit_once('.').map_or(key, |(_, id)| id);
    let id = id_text.parse::<u64>().map_err(|_| DynamicConfigError::BadServerId(key.to_string()))?;
    ServerSpec::parse(id, value).map_err(|problem| DynamicConfigError::BadServer { id, problem })
}

fn election_addr(s: &ServerSpec) -> super::servers::HostPort {
    super::servers::HostPort { host: s.host.clone(), port: s.election_port }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                        server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
                        server.3=localhost:2890:3890:observer\n\
                        version=100000000";

    #[test]
    fn text_round_trips_in_zookeeper_form() {
        let c = DynamicConfig::parse(TEXT).unwrap();
        assert_eq!(c.version, 0x1_0000_0000);
        assert!(!c.is_reconfigured(), "the initial version has counter 0");
        assert!(DynamicConfig { version: 0x1_0000_000a, ..c.clone() }.is_reconfigured());
        assert_eq!(c.servers.len(), 3);
        assert_eq!(c.voters().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(c.to_text(), TEXT);
        assert!(c.members_text().ends_with("observer\n"));
        // Bare client ports and missing roles are written the long way, ids sorted.
        let c = DynamicConfig::parse("server.2=h:1:2;2181\nserver.1=h:3:4\n").unwrap();
        assert_eq!(c.to_text(), "server.1=h:3:4:participant\nserver.2=h:1:2:participant;0.0.0.0:2181\nversion=0");
    }

    #[test]
    fn new_members_may_be_comma_separated() {
        let c = DynamicConfig::parse("server.1=h:1:2;3, server.2=h:4:5;6").unwrap();
        assert_eq!(c.servers.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn malformed_texts_are_errors() {
        assert!(matches!(DynamicConfig::parse("some thing"), Err(DynamicConfigError::NotKeyValue(_))));
        assert!(matches!(DynamicConfig::parse("server.x=h:1:2"), Err(DynamicConfigError::BadServerId(_))));
        assert!(matches!(DynamicConfig::parse("server.1=h"), Err(DynamicConfigError::BadServer { id: 1, .. })));
        assert!(matches!(DynamicConfig::parse("version=zz"), Err(DynamicConfigError::BadVersion(_))));
        assert!(matches!(DynamicConfig::parse("tickTime=2"), Err(DynamicConfigError::UnknownKey(_))));
    }

    #[test]
    fn incremental_changes() {
        let c = DynamicConfig::parse(TEXT).unwrap();
        let joined = c.incremental(Some("server.4=127.0.0.1:2891:3891:participant;2184"), None).unwrap();
        assert_eq!(joined.voters().collect::<Vec<_>>(), vec![1, 2, 4]);
        assert!(joined.to_text().contains("server.4=127.0.0.1:2891:3891:participant;0.0.0.0:2184\n"));
        let left = joined.incremental(None, Some("1, 3")).unwrap();
        assert_eq!(left.servers.keys().copied().collect::<Vec<_>>(), vec![2, 4]);
        // Re-joining an id replaces its line (here: becomes an observer).
        let role = c.incremental(Some("server.2=127.0.0.1:2889:3889:observer;2182"), None).unwrap();
        assert_eq!(role.voters().collect::<Vec<_>>(), vec![1]);
        // Unknown leaving ids are ignored, as ZooKeeper does.
        assert_eq!(c.incremental(None, Some("9")).unwrap().servers.len(), 3);
    }

    #[test]
    fn incremental_refusals() {
        let c = DynamicConfig::parse(TEXT).unwrap();
        assert!(matches!(c.incremental(Some("some thing"), None), Err(DynamicConfigError::NotKeyValue(_))));
        assert!(matches!(c.incremental(Some("server.4=h:1:2"), None), Err(DynamicConfigError::NoClientAddress(4))));
        assert!(matches!(
            c.incremental(Some("server.4=127.0.0.1:2888:9999;2184"), None),
            Err(DynamicConfigError::DuplicateAddress(4))
        ));
        assert!(matches!(c.incremental(None, Some("one")), Err(DynamicConfigError::BadServerId(_))));
    }
}
