//! The configuration keys Roost understands, and how a raw key name is classified.
//!
//! ZooKeeper reads some settings from zoo.cfg and others from Java system properties, and it turns
//! every zoo.cfg key it does not know into the system property `zookeeper.<key>`. So the same setting
//! can be spelled `snapCount` or `zookeeper.snapCount`, `DigestAuthenticationProvider.superDigest` or
//! `zookeeper.DigestAuthenticationProvider.superDigest`. Roost accepts both spellings in every source
//! (zoo.cfg, `-D`, `ZOO_CFG_EXTRA`): a leading `zookeeper.` is dropped before the lookup.

/// Declares [`Key`] from one table of `Variant => "zoo.cfg name"` rows, so a key is named once.
macro_rules! keys {
    ($($variant:ident => $name:literal,)*) => {
        /// A setting Roost reads. `name()` is the canonical (zoo.cfg) spelling.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Key {
            $($variant,)*
        }

        impl Key {
            /// Every key, for lookups and tests.
            pub const ALL: &'static [Key] = &[$(Key::$variant,)*];

            /// The zoo.cfg spelling (without any `zookeeper.` prefix).
            pub fn name(self) -> &'static str {
                match self {
                    $(Key::$variant => $name,)*
                }
            }
        }
    };
}

keys! {
    ClientPort => "clientPort",
    ClientPortAddress => "clientPortAddress",
    SecureClientPort => "secureClientPort",
    DataDir => "dataDir",
    DataLogDir => "dataLogDir",
    TickTime => "tickTime",
    InitLimit => "initLimit",
    SyncLimit => "syncLimit",
    MinSessionTimeout => "minSessionTimeout",
    MaxSessionTimeout => "maxSessionTimeout",
    MaxClientCnxns => "maxClientCnxns",
    ClientPortListenBacklog => "clientPortListenBacklog",
    FourLetterWhitelist => "4lw.commands.whitelist",
    JuteMaxBuffer => "jute.maxbuffer",
    AdminServerPort => "admin.serverPort",
    AdminServerAddress => "admin.serverAddress",
    AdminEnableServer => "admin.enableServer",
    AdminSnapshotEnabled => "admin.snapshot.enabled",
    AdminRestoreEnabled => "admin.restore.enabled",
    AdminRateLimiterInterval => "admin.rateLimiterIntervalInMS",
    AutopurgeSnapRetainCount => "autopurge.snapRetainCount",
    AutopurgePurgeInterval => "autopurge.purgeInterval",
    SnapCount => "snapCount",
    CommitLogCount => "commitLogCount",
    ReadOnlyModeEnabled => "readonlymode.enabled",
    SuperDigest => "DigestAuthenticationProvider.superDigest",
    ExtendedTypesEnabled => "extendedTypesEnabled",
    ReconfigEnabled => "reconfigEnabled",
    StandaloneEnabled => "standaloneEnabled",
    LocalSessionsEnabled => "localSessionsEnabled",
    LocalSessionsUpgradingEnabled => "localSessionsUpgradingEnabled",
    PeerType => "peerType",
    ContainerCheckIntervalMs => "znode.container.checkIntervalMs",
    ContainerMaxNeverUsedIntervalMs => "znode.container.maxNeverUsedIntervalMs",
    GlobalOutstandingLimit => "globalOutstandingLimit",
    SessionlessCnxnTimeout => "nio.sessionlessCnxnTimeout",
    HttpReadOnly => "http.readOnly",
    HttpToken => "http.token",
    HttpBasePath => "http.basePath",
    HttpAllowedHosts => "http.allowedHosts",
    HttpUsers => "http.users",
    // Security (docs/SECURITY.md). The `ssl.quorum.` keys mirror the `ssl.` ones for the peer port
    // (and, as in ZooKeeper, for HTTPS on the admin port).
    SecureClientPortAddress => "secureClientPortAddress",
    ClientPortUnification => "client.portUnification",
    ClientCertReload => "client.certReload",
    ServerCnxnFactory => "serverCnxnFactory",
    SslKeyStoreLocation => "ssl.keyStore.location",
    SslKeyStorePassword => "ssl.keyStore.password",
    SslKeyStorePasswordPath => "ssl.keyStore.passwordPath",
    SslKeyStoreType => "ssl.keyStore.type",
    SslTrustStoreLocation => "ssl.trustStore.location",
    SslTrustStorePassword => "ssl.trustStore.password",
    SslTrustStorePasswordPath => "ssl.trustStore.passwordPath",
    SslTrustStoreType => "ssl.trustStore.type",
    SslClientAuth => "ssl.clientAuth",
    SslProtocol => "ssl.protocol",
    SslEnabledProtocols => "ssl.enabledProtocols",
    SslCipherSuites => "ssl.ciphersuites",
    SslHostnameVerification => "ssl.hostnameVerification",
    SslAuthProvider => "ssl.authProvider",
    SslQuorum => "sslQuorum",
    QuorumPortUnification => "portUnification",
    SslQuorumReloadCertFiles => "sslQuorumReloadCertFiles",
    SslQuorumKeyStoreLocation => "ssl.quorum.keyStore.location",
    SslQuorumKeyStorePassword => "ssl.quorum.keyStore.password",
    SslQuorumKeyStorePasswordPath => "ssl.quorum.keyStore.passwordPath",
    SslQuorumKeyStoreType => "ssl.quorum.keyStore.type",
    SslQuorumTrustStoreLocation => "ssl.quorum.trustStore.location",
    SslQuorumTrustStorePassword => "ssl.quorum.trustStore.password",
    SslQuorumTrustStorePasswordPath => "ssl.quorum.trustStore.passwordPath",
    SslQuorumTrustStoreType => "ssl.quorum.trustStore.type",
    SslQuorumClientAuth => "ssl.quorum.clientAuth",
    SslQuorumProtocol => "ssl.quorum.protocol",
    SslQuorumEnabledProtocols => "ssl.quorum.enabledProtocols",
    SslQuorumCipherSuites => "ssl.quorum.ciphersuites",
    SslQuorumHostnameVerification => "ssl.quorum.hostnameVerification",
    X509SuperUser => "X509AuthenticationProvider.superUser",
    SuperUser => "superUser",
    JaasConfigFile => "java.security.auth.login.config",
    SaslServerSection => "sasl.serverconfig",
    SaslSuperPassword => "SASLAuthenticationProvider.superPassword",
    AuthToLocal => "security.auth_to_local",
    KerberosRemoveHost => "kerberos.removeHostFromPrincipal",
    KerberosRemoveRealm => "kerberos.removeRealmFromPrincipal",
    AllowSaslFailedClients => "allowSaslFailedClients",
    SessionRequireClientSaslAuth => "sessionRequireClientSASLAuth",
    EnforceAuthEnabled => "enforce.auth.enabled",
    EnforceAuthSchemes => "enforce.auth.schemes",
    AuditEnable => "audit.enable",
    AuditFile => "audit.file",
    AdminForceHttps => "admin.forceHttps",
    AdminPortUnification => "admin.portUnification",
    AdminNeedClientAuth => "admin.needClientAuth",
    QuorumAuthEnableSasl => "quorum.auth.enableSasl",
    QuorumAuthLearnerRequireSasl => "quorum.auth.learnerRequireSasl",
    QuorumAuthServerRequireSasl => "quorum.auth.serverRequireSasl",
    QuorumAuthLearnerLoginContext => "quorum.auth.learner.saslLoginContext",
    QuorumAuthServerLoginContext => "quorum.auth.server.saslLoginContext",
}

impl Key {
    fn by_name(name: &str) -> Option<Key> {
        Key::ALL.iter().copied().find(|k| k.name() == name)
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
    /// A key that may be given many times with different suffixes (`authProvider.1`, `superUser.ops`).
    Indexed(IndexedKey, String),
    /// JVM and logging properties the `java` command line of ZooKeeper's scripts and kazoo's harness
    /// always pass; they mean nothing to Roost, so they are dropped without a warning.
    JvmOnly,
    Unknown,
}

/// Prefixes of keys for features Roost knowingly does not implement.
const UNSUPPORTED_PREFIXES: &[&str] =
    &["ssl.", "client.secure", "quorum.auth.", "kerberos.", "dynamicConfigFile", "metricsProvider."];

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

/// Families of keys that take a free suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndexedKey {
    /// `authProvider.<n>=<class>`: an authentication provider (only the SASL one means anything here).
    AuthProvider,
    /// `superUser.<suffix>=<sasl id>`: more SASL super users besides `superUser`.
    SuperUser,
}

impl IndexedKey {
    const ALL: [IndexedKey; 2] = [IndexedKey::AuthProvider, IndexedKey::SuperUser];

    fn prefix(self) -> &'static str {
        match self {
            IndexedKey::AuthProvider => "authProvider.",
            IndexedKey::SuperUser => "superUser.",
        }
    }
}

/// Classifies a raw key (already trimmed).
pub fn classify(raw: &str) -> KeyClass {
    // A few Roost keys are Java system properties without the `zookeeper.` prefix (the JAAS file).
    if let Some(key) = Key::by_name(raw) {
        return KeyClass::Known(key);
    }
    if JVM_ONLY_PREFIXES.iter().any(|p| raw.starts_with(p)) {
        return KeyClass::JvmOnly;
    }
    let name = raw.strip_prefix("zookeeper.").unwrap_or(raw);
    if let Some(key) = Key::by_name(name) {
        return KeyClass::Known(key);
    }
    for family in IndexedKey::ALL {
        if let Some(suffix) = name.strip_prefix(family.prefix()).filter(|s| !s.is_empty()) {
            return KeyClass::Indexed(family, suffix.to_string());
        }
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
        assert_eq!(classify("ssl.keyStore.location"), KeyClass::Known(Key::SslKeyStoreLocation));
        assert_eq!(classify("zookeeper.ssl.quorum.keyStore.type"), KeyClass::Known(Key::SslQuorumKeyStoreType));
        assert_eq!(classify("ssl.noSuchThing"), KeyClass::Unsupported);
        assert_eq!(classify("serverCnxnFactory"), KeyClass::Known(Key::ServerCnxnFactory));
        assert_eq!(classify("authProvider.1"), KeyClass::Indexed(IndexedKey::AuthProvider, "1".into()));
        assert_eq!(classify("zookeeper.superUser.ops"), KeyClass::Indexed(IndexedKey::SuperUser, "ops".into()));
        assert_eq!(classify("zookeeper.superUser"), KeyClass::Known(Key::SuperUser));
        assert_eq!(classify("zookeeper.log.dir"), KeyClass::JvmOnly);
        assert_eq!(classify("file.encoding"), KeyClass::JvmOnly);
        assert_eq!(classify("java.security.auth.login.config"), KeyClass::Known(Key::JaasConfigFile));
        assert_eq!(classify("java.security.krb5.conf"), KeyClass::JvmOnly);
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
