//! `server.N=host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]` lines.
//!
//! The textual form is the one ZooKeeper prints in `/zookeeper/config` and the `conf` 4lw
//! (`QuorumServer.toString`), so [`ServerSpec`]'s `Display` reproduces it for reconfig and `conf`.

use std::fmt;

use super::error::ServerSpecProblem;

/// Lowest and highest accepted server id (`myid`). The id is also the top byte of session ids.
pub const MIN_SERVER_ID: u64 = 1;
pub const MAX_SERVER_ID: u64 = 254;

/// Whether a server votes (participant) or only follows (observer). Ordinals match Java's
/// `LearnerType`, which the `conf` 4lw prints as `peerType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerRole {
    #[default]
    Participant,
    Observer,
}

impl PeerRole {
    /// Parses `participant` / `observer`, case-insensitively as ZooKeeper does.
    pub fn parse(text: &str) -> Option<PeerRole> {
        match text.trim().to_ascii_lowercase().as_str() {
            "participant" => Some(PeerRole::Participant),
            "observer" => Some(PeerRole::Observer),
            _ => None,
        }
    }

    /// Java `LearnerType.ordinal()`: participant 0, observer 1.
    pub fn ordinal(self) -> u8 {
        match self {
            PeerRole::Participant => 0,
            PeerRole::Observer => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PeerRole::Participant => "participant",
            PeerRole::Observer => "observer",
        }
    }
}

impl fmt::Display for PeerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host (name, IPv4 or IPv6 literal without brackets) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// One member of the ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub id: u64,
    pub host: String,
    /// Port followers use to talk to the leader (Roost: Raft RPC).
    pub quorum_port: u16,
    /// Port used for leader election (kept for compatibility and `conf`).
    pub election_port: u16,
    pub role: PeerRole,
    /// Client address after `;`. A bare port means host `0.0.0.0`, as in ZooKeeper.
    pub client_addr: Option<HostPort>,
}

impl ServerSpec {
    /// Parses the value of a `server.N` line (the part after `=`).
    pub fn parse(id: u64, value: &str) -> Result<ServerSpec, ServerSpecProblem> {
        if value.contains('|') {
            return Err(ServerSpecProblem::MultiAddress);
        }
        let (server_part, client_part) = match value.split_once(';') {
            Some((s, c)) => (s.trim(), Some(c.trim())),
            None => (value.trim(), None),
        };
        let (host, rest) = split_host(server_part)?;
        let mut parts = rest.split(':');
        let quorum_port = parse_port(parts.next())?;
        let election_port = parse_port(parts.next())?;
        let role = match parts.next() {
            None => PeerRole::Participant,
            Some(role) => PeerRole::parse(role).ok_or_else(|| ServerSpecProblem::UnknownRole(role.to_string()))?,
        };
        if parts.next().is_some() {
            return Err(ServerSpecProblem::TooManyParts);
        }
        let client_addr = match client_part {
            None | Some("") => None,
            Some(text) => Some(parse_client_addr(text)?),
        };
        Ok(ServerSpec { id, host: host.to_string(), quorum_port, election_port, role, client_addr })
    }

    /// The address peers use to reach this server's quorum port.
    pub fn quorum_addr(&self) -> HostPort {
        HostPort { host: self.host.clone(), port: self.quorum_port }
    }

    /// The `server.N=...` line as ZooKeeper writes it in dynamic configs.
    pub fn to_config_line(&self) -> String {
        format!("server.{}={}", self.id, self)
    }
}

impl fmt::Display for ServerSpec {
    /// `host:quorumPort:electionPort:role[;clientHost:clientPort]` (`QuorumServer.toString`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = HostPort { host: self.host.clone(), port: self.quorum_port };
        write!(f, "{host}:{}:{}", self.election_port, self.role)?;
        if let Some(client) = &self.client_addr {
            write!(f, ";{client}")?;
        }
        Ok(())
    }
}

/// Splits `host:rest` or `[v6]:rest`, returning the host without brackets and the text after `:`.
fn split_host(text: &str) -> Result<(&str, &str), ServerSpecProblem> {
    let (host, rest) = if let Some(bracketed) = text.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or(ServerSpecProblem::BadIpv6)?;
        let rest = after.strip_prefix(':').ok_or(ServerSpecProblem::MissingPorts)?;
        (host, rest)
    } else {
        text.split_once(':').ok_or(ServerSpecProblem::MissingPorts)?
    };
    let host = host.trim();
    if host.is_empty() {
        return Err(ServerSpecProblem::EmptyHost);
    }
    Ok((host, rest))
}

fn parse_port(part: Option<&str>) -> Result<u16, ServerSpecProblem> {
    let text = part.map(str::trim).ok_or(ServerSpecProblem::MissingPorts)?;
    if text.is_empty() {
        return Err(ServerSpecProblem::MissingPorts);
    }
    match text.parse::<u16>() {
        Ok(0) => Err(ServerSpecProblem::ZeroPort),
        Ok(port) => Ok(port),
        Err(_) => Err(ServerSpecProblem::BadPort(text.to_string())),
    }
}

/// `port`, `host:port` or `[v6]:port`.
fn parse_client_addr(text: &str) -> Result<HostPort, ServerSpecProblem> {
    let bad = || ServerSpecProblem::BadClientAddress(text.to_string());
    let (host, port) = match text.rsplit_once(':') {
        None => ("0.0.0.0", text),
        Some((host, port)) => {
            let host = match host.strip_prefix('[') {
                Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
                None if host.contains(':') => return Err(bad()),
                None => host,
            };
            (host.trim(), port)
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = port.trim().parse::<u16>().map_err(|_| bad())?;
    Ok(HostPort { host: host.to_string(), port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: &str) -> ServerSpec {
        ServerSpec::parse(1, value).unwrap()
    }

    #[test]
    fn plain_two_ports_is_a_participant_without_client_address() {
        let s = spec("zk1:2888:3888");
        assert_eq!((s.host.as_str(), s.quorum_port, s.election_port), ("zk1", 2888, 3888));
        assert_eq!(s.role, PeerRole::Participant);
        assert_eq!(s.client_addr, None);
    }

    #[test]
    fn roles() {
        assert_eq!(spec("localhost:20002:20001:participant").role, PeerRole::Participant);
        assert_eq!(spec("localhost:20002:20001:observer").role, PeerRole::Observer);
        assert_eq!(spec("localhost:20002:20001:OBSERVER").role, PeerRole::Observer);
        assert_eq!(ServerSpec::parse(1, "h:1:2:voter"), Err(ServerSpecProblem::UnknownRole("voter".into())));
    }

    #[test]
    fn client_address_variants() {
        let bare = spec("zk1:2888:3888;2181").client_addr.unwrap();
        assert_eq!(bare, HostPort { host: "0.0.0.0".into(), port: 2181 });
        let with_host = spec("zk1:2888:3888:participant;0.0.0.0:2181").client_addr.unwrap();
        assert_eq!(with_host, HostPort { host: "0.0.0.0".into(), port: 2181 });
        let named = spec("zk1:2888:3888:observer;zk1:2182");
        assert_eq!(named.client_addr.unwrap(), HostPort { host: "zk1".into(), port: 2182 });
        let v6 = spec("[::1]:2888:3888;[::1]:2181");
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.client_addr.unwrap(), HostPort { host: "::1".into(), port: 2181 });
    }

    #[test]
    fn display_matches_zookeeper_dynamic_config_form() {
        assert_eq!(spec("zk1:2888:3888;2181").to_config_line(), "server.1=zk1:2888:3888:participant;0.0.0.0:2181");
        assert_eq!(spec("zk1:2888:3888:observer").to_string(), "zk1:2888:3888:observer");
        assert_eq!(spec("[::1]:2888:3888").to_string(), "[::1]:2888:3888:participant");
    }

    #[test]
    fn malformed_specs() {
        use ServerSpecProblem::*;
        let cases = [
            ("zk1", MissingPorts),
            ("zk1:2888", MissingPorts),
            (":2888:3888", EmptyHost),
            ("zk1:x:3888", BadPort("x".into())),
            ("zk1:0:3888", ZeroPort),
            ("zk1:2888:3888:participant:extra", TooManyParts),
            ("zk1:2888:3888;abc", BadClientAddress("abc".into())),
            ("zk1:2888:3888|zk2:2888:3888", MultiAddress),
            ("[::1:2888:3888", BadIpv6),
        ];
        for (text, problem) in cases {
            assert_eq!(ServerSpec::parse(1, text), Err(problem), "{text}");
        }
    }
}
