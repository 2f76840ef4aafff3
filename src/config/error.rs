//! Errors and warnings of configuration loading, and where each setting came from.
//!
//! Every setting carries an [`Origin`] so that a message can point at the exact place the operator has
//! to fix: a `zoo.cfg` line, an environment variable or a command-line flag.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from. The order of the variants is the precedence order
/// (see [`Origin::rank`]): a value from a higher-ranked origin replaces one from a lower-ranked origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built-in default.
    Default,
    /// A variable of the official `zookeeper` Docker image, e.g. `ZOO_TICK_TIME`.
    DockerEnv(&'static str),
    /// A line of a zoo.cfg file (1-based line number).
    File { path: PathBuf, line: usize },
    /// The `<dataDir>/myid` file.
    MyIdFile(PathBuf),
    /// A `-D key=value` / `--property` argument (or `ROOST_PROPERTY`).
    Property,
    /// A dedicated flag such as `--client-port`, or its `ROOST_*` variable (clap merges the two).
    Flag(&'static str),
}

impl Origin {
    /// Precedence rank: defaults < ZOO_* env < zoo.cfg (and myid) < -D properties < dedicated flags.
    pub fn rank(&self) -> u8 {
        match self {
            Origin::Default => 0,
            Origin::DockerEnv(_) => 1,
            Origin::File { .. } | Origin::MyIdFile(_) => 2,
            Origin::Property => 3,
            Origin::Flag(_) => 4,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::DockerEnv(var) => write!(f, "environment variable {var}"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::MyIdFile(path) => write!(f, "{}", path.display()),
            Origin::Property => write!(f, "--property (-D)"),
            Origin::Flag(flag) => write!(f, "{flag}"),
        }
    }
}

/// What is wrong with a single value. The `Display` text follows the quoted value in a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueProblem {
    #[error("is not a port number")]
    NotAPort,
    #[error("is not a port number (0 is not allowed here)")]
    ZeroPort,
    #[error("is not a non-negative integer")]
    NotAnInteger,
    #[error("must be greater than 0")]
    NotPositive,
    #[error("is out of range ({min}..={max})")]
    OutOfRange { min: u64, max: u64 },
    #[error("is not true or false")]
    NotABool,
    #[error("is not participant or observer")]
    NotAPeerType,
    #[error("must not be empty")]
    Empty,
    #[error("is not of the form user:base64digest")]
    NotASuperDigest,
    #[error("is not a valid server id (an integer 1..=254)")]
    NotAServerId,
    #[error("is not key=value")]
    NotKeyValue,
    #[error("is not one of {expected}")]
    NotOneOf { expected: &'static str },
    #[error("is not host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]: {0}")]
    BadServerSpec(ServerSpecProblem),
}

/// Why a `server.N` value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerSpecProblem {
    #[error("the host is empty")]
    EmptyHost,
    #[error("both the quorum port and the election port are required")]
    MissingPorts,
    #[error("{0:?} is not a port number")]
    BadPort(String),
    #[error("port 0 is not allowed")]
    ZeroPort,
    #[error("{0:?} is not participant or observer")]
    UnknownRole(String),
    #[error("too many ':'-separated parts")]
    TooManyParts,
    #[error("the client address {0:?} is not [host:]port")]
    BadClientAddress(String),
    #[error("multiple addresses separated by '|' are not supported")]
    MultiAddress,
    #[error("unterminated '[' in an IPv6 address")]
    BadIpv6,
}

/// A configuration that cannot be used. The message always names the origin of the offending value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {key}: {value:?} {problem}")]
    BadValue { origin: Origin, key: String, value: String, problem: ValueProblem },
    #[error("{origin}: server.{id} is defined twice (first at {first})")]
    DuplicateServer { id: u64, origin: Origin, first: Origin },
    #[error("{}: file is missing; a server with server.N lines needs its id (or set --server-id / ZOO_MY_ID)", path.display())]
    MissingMyId { path: PathBuf },
    #[error("{}: {content:?} is not a server id (an integer 1..=254)", path.display())]
    BadMyId { path: PathBuf, content: String },
    #[error("server id {id} ({origin}) is not one of the server.N lines (ids: {known:?})")]
    MyIdNotInServers { id: u64, origin: Origin, known: Vec<u64> },
    #[error("minSessionTimeout {min} ({min_origin}) is larger than maxSessionTimeout {max} ({max_origin})")]
    SessionTimeouts { min: u32, min_origin: Origin, max: u32, max_origin: Origin },
    #[error("clientPort ({client_origin}) and admin.serverPort ({http_origin}) are both {port}")]
    PortClash { port: u16, client_origin: Origin, http_origin: Origin },
    #[error("{origin}: no server.N line is a participant; an ensemble needs at least one voter")]
    NoParticipants { origin: Origin },
}

/// Something in the configuration was ignored or overridden; loading went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigWarning {
    /// A key Roost does not know at all.
    UnknownKey { key: String, origin: Origin },
    /// A key Roost knows but does not implement (TLS, SASL, custom connection factories...).
    Unsupported { key: String, origin: Origin },
    /// The server line gives a client port different from the one used.
    ClientPortOverridden { server_line: u16, used: u16, origin: Origin },
    /// `peerType` disagrees with this server's own `server.N` line; the server line wins (as in Java).
    PeerTypeMismatch { peer_type: String, server_line: String },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigWarning::UnknownKey { key, origin } => {
                write!(f, "{origin}: unknown configuration key {key:?} ignored")
            }
            ConfigWarning::Unsupported { key, origin } => {
                write!(f, "{origin}: {key:?} is not supported by Roost; ignored")
            }
            ConfigWarning::ClientPortOverridden { server_line, used, origin } => {
                write!(f, "client port {server_line} of this server's server.N line is overridden by {used} ({origin})")
            }
            ConfigWarning::PeerTypeMismatch { peer_type, server_line } => write!(
                f,
                "peerType={peer_type} does not match this server's server.N line ({server_line}); using the server line"
            ),
        }
    }
}

impl ConfigWarning {
    /// Logs the warning through `tracing`.
    pub(crate) fn emit(&self) {
        tracing::warn!("{self}");
    }
}
