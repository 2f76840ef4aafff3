//! The configuration keys Roost understands, and how a raw key name is classified.
//!
//! ZooKeeper reads some settings from zoo.cfg and others from Java system properties, and it turns
//! every zoo.cfg key it does not know into the system property `zookeeper.<key>`. So the same setting
//! can be spelled `snapCount` or `zookeeper.snapCount`, `DigestAuthenticationProvider.superDigest` or
//! `zookeeper.DigestAuthenticationProvider.superDigest`. Roost accepts both spellings in every source
//! (zoo.cfg, `-D`, `ZOO_CFG_EXTRA`): a leading `zookeeper.` is dropped before the lookup.

/// A setting Roost reads. `name()` is the canonical (zoo.cfg) spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    ClientPort,
    ClientPortAddress,
    SecureClientPort,
    DataDir,
    DataLogDir,
    TickTime,
    InitLimit,
    SyncLimit,
    MinSessionTimeout,
    MaxSessionTimeout,
    MaxClientCnxns,
    ClientPortListenBacklog,
    FourLetterWhitelist,
    JuteMaxBuffer,
    AdminServerPort,
    AdminServerAddress,
    AdminEnableServer,
    AutopurgeSnapRetainCount,
    AutopurgePurgeInterval,
    SnapCount,
    CommitLogCount,
    ReadOnlyModeEnabled,
    SuperDigest,
    ExtendedTypesEnabled,
    ReconfigEnabled,
    StandaloneEnabled,
    LocalSessionsEnabled,
    LocalSessionsUpgradingEnabled,
    PeerType,
    ContainerCheckIntervalMs,
    ContainerMaxNeverUsedIntervalMs,
    GlobalOutstandingLimit,
    SessionlessCnxnTimeout,
    HttpReadOnly,
    HttpToken,
    HttpBasePath,
    HttpAllowedHosts,
    HttpUsers,
}

impl Key {
    /// Every key, for lookups and tests.
    pub const ALL: [Key; 38] = [
        Key::ClientPort,
        Key::ClientPortAddress,
        Key::SecureClientPort,
        Key::DataDir,
        Key::DataLogDir,
        Key::TickTime,
        Key::InitLimit,
        Key::SyncLimit,
        Key::MinSessionTimeout,
        Key::MaxSessionTimeout,
        Key::MaxClientCnxns,
        Key::ClientPortListenBacklog,
        Key::FourLetterWhitelist,
        Key::JuteMaxBuffer,
        Key::AdminServerPort,
        Key::AdminServerAddress,
        Key::AdminEnableServer,
        Key::AutopurgeSnapRetainCount,
        Key::AutopurgePurgeInterval,
        Key::SnapCount,
        Key::CommitLogCount,
        Key::ReadOnlyModeEnabled,
        Key::SuperDigest,
        Key::ExtendedTypesEnabled,
        Key::ReconfigEnabled,
        Key::StandaloneEnabled,
        Key::LocalSessionsEnabled,
        Key::LocalSessionsUpgradingEnabled,
        Key::PeerType,
        Key::ContainerCheckIntervalMs,
        Key::ContainerMaxNeverUsedIntervalMs,
        Key::GlobalOutstandingLimit,
        Key::SessionlessCnxnTimeout,
        Key::HttpReadOnly,
        Key::HttpToken,
        Key::HttpBasePath,
        Key::HttpAllowedHosts,
        Key::HttpUsers,
    ];

    /// The zoo.cfg spelling (without any `zookeeper.` prefix).
    pub fn name(self) -> &'static str {
        match self {
            Key::ClientPort => "clientPort",
            Key::ClientPortAddress => "clientPortAddress",
            Key::SecureClientPort => "secureClientPort",
            Key::DataDir => "dataDir",
            Key::DataLogDir => "dataLogDir",
            Key::TickTime => "tickTime",
            Key::InitLimit => "initLimit",
            Key::SyncLimit => "syncLimit",
            Key::MinSessionTimeout => "minSessionTimeout",
            Key::MaxSessionTimeout => "maxSessionTimeout",
            Key::MaxClientCnxns => "maxClientCnxns",
            Key::ClientPortListenBacklog => "clientPortListenBacklog",
            Key::FourLetterWhitelist => "4lw.commands.whitelist",
            Key::JuteMaxBuffer => "jute.maxbuffer",
            Key::AdminServerPort => "admin.serverPort",
            Key::AdminServerAddress => "admin.serverAddress",
            Key::AdminEnableServer => "admin.enableServer",
            Key::AutopurgeSnapRetainCount => "autopurge.snapRetainCount",
            Key::AutopurgePurgeInterval => "autopurge.purgeInterval",
            Key::SnapCount => "snapCount",
            Key::CommitLogCount => "commitLogCount",
            Key::ReadOnlyModeEnabled => "readonlymode.enabled",
            Key::SuperDigest => "DigestAuthenticationProvider.superDigest",
            Key::ExtendedTypesEnabled => "extendedTypesEnabled",
            Key::ReconfigEnabled => "reconfigEnabled",
            Key::StandaloneEnabled => "standaloneEnabled",
            Key::LocalSessionsEnabled => "localSessionsEnabled",
            Key::LocalSessionsUpgradingEnabled => "localSessionsUpgradingEnabled",
            Key::PeerType => "peerType",
            Key::ContainerCheckIntervalMs => "znode.container.checkIntervalMs",
            Key::ContainerMaxNeverUsedIntervalMs => "znode.container.maxNeverUsedIntervalMs",
            Key::GlobalOutstandingLimit => "globalOutstandingLimit",
            Key::SessionlessCnxnTimeout => "nio.sessionlessCnxnTimeout",
            Key::HttpReadOnly => "http.readOnly",
            Key::HttpToken => "http.token",
            Key::HttpBasePath => "http.basePath",
            Key::HttpAllowedHosts => "http.allowedHosts",
            Key::HttpUsers => "http.users",
        }
    }

    fn by_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What a raw key from any source means to Roost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClass {
    Known(Key),
    /// `server.N`; the string is the `N` part, not yet validated.
    Server(String),
    /// A ZooKeeper feature Roost does not implement (TLS, SASL, pluggable factories...): warn.
    Unsupported,
    /// JVM and logging properties the `java` command line of ZooKeeper's scripts and kazoo's harness
    /// always pass; they mean nothing to Roost, so they are dropped without a warning.
    JvmOnly,
    Unknown,
}

/// Prefixes of keys for features Roost knowingly does not implement.
const UNSUPPORTED_PREFIXES: &[&str] = &[
    "ssl.",
    "ssl.quorum.",
    "serverCnxnFactory",
    "authProvider.",
    "sslQuorum",
    "secureClientPortAddress",
    "client.secure",
    "quorum.auth.",
    "kerberos.",
    "dynamicConfigFile",
    "metricsProvider.",
];

/// Java system properties that only configure the JVM or log4j.
const JVM_ONLY_PREFIXES: &[&str] = &[
    "java.",
    "javax.",
    "jdk.",
    "sun.",
    "com.sun.",
    "file.encoding",
    "log4j",
    "logback",
    "zookeeper.log.",
    "zookeeper.root.logger",
    "zookeeper.tracelog.",
    "zookeeper.jmx.",
];

/// Classifies a raw key (already trimmed).
pub fn classify(raw: &str) -> KeyClass {
    if JVM_ONLY_PREFIXES.iter().any(|p| raw.starts_with(p)) {
        return KeyClass::JvmOnly;
    }
    let name = raw.strip_prefix("zookeeper.").unwrap_or(raw);
    if let Some(key) = Key::by_name(name) {
        return KeyClass::Known(key);
    }
    if let Some(id) = name.strip_prefix("server.") {
        return KeyClass::Server(id.to_string());
    }
    if UNSUPPORTED_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return KeyClass::Unsupported;
    }
    KeyClass::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_cfg_and_system_property_spellings_are_the_same_key() {
        assert_eq!(classify("snapCount"), KeyClass::Known(Key::SnapCount));
        assert_eq!(classify("zookeeper.snapCount"), KeyClass::Known(Key::SnapCount));
        assert_eq!(classify("zookeeper.DigestAuthenticationProvider.superDigest"), KeyClass::Known(Key::SuperDigest));
        assert_eq!(classify("zookeeper.extendedTypesEnabled"), KeyClass::Known(Key::ExtendedTypesEnabled));
        assert_eq!(classify("zookeeper.4lw.commands.whitelist"), KeyClass::Known(Key::FourLetterWhitelist));
        assert_eq!(classify("readonlymode.enabled"), KeyClass::Known(Key::ReadOnlyModeEnabled));
        assert_eq!(classify("zookeeper.globalOutstandingLimit"), KeyClass::Known(Key::GlobalOutstandingLimit));
        assert_eq!(classify("zookeeper.nio.sessionlessCnxnTimeout"), KeyClass::Known(Key::SessionlessCnxnTimeout));
    }

    #[test]
    fn harness_extras_are_classified() {
        assert_eq!(classify("server.3"), KeyClass::Server("3".into()));
        assert_eq!(classify("ssl.keyStore.location"), KeyClass::Unsupported);
        assert_eq!(classify("serverCnxnFactory"), KeyClass::Unsupported);
        assert_eq!(classify("authProvider.1"), KeyClass::Unsupported);
        assert_eq!(classify("zookeeper.log.dir"), KeyClass::JvmOnly);
        assert_eq!(classify("file.encoding"), KeyClass::JvmOnly);
        assert_eq!(classify("java.security.auth.login.config"), KeyClass::JvmOnly);
        assert_eq!(classify("noSuchKey"), KeyClass::Unknown);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = Key::ALL.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Key::ALL.len());
    }
}
