//! The security settings: TLS for clients, peers and HTTPS, SASL, x509 and super users, audit.
//!
//! Every key is ZooKeeper's own (docs/SECURITY.md lists them). This module only resolves the text of
//! the settings; key stores and the JAAS file are read when the server starts (`crate::security`), so
//! that a certificate rotated on disk is read again without a restart.

use std::fmt;
use std::path::PathBuf;

use super::error::{ConfigError, ValueProblem};
use super::keys::{IndexedKey, Key};
use super::settings::Settings;
use super::values;

/// A password or other secret. Its `Debug` never shows the value, so it cannot reach a log through
/// a printed configuration (CVE-2026-24308: ZooKeeper logged its store passwords).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where a key or trust store is and how to open it (`ssl[.quorum].keyStore.*` / `trustStore.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub location: PathBuf,
    pub password: Option<Secret>,
    /// `passwordPath`: a file holding the password; it wins over `password`, as in ZooKeeper.
    pub password_path: Option<PathBuf>,
    /// `JKS`, `PEM` or `PKCS12`; `None` means "from the file name's suffix".
    pub store_type: Option<String>,
}

/// One TLS context: the `ssl.*` keys, or their `ssl.quorum.*` twins.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    pub key_store: Option<StoreConfig>,
    pub trust_store: Option<StoreConfig>,
    /// `clientAuth`: `none`, `want` or `need` (ZooKeeper's default, also for an empty value).
    pub client_auth: Option<String>,
    /// `enabledProtocols` (comma list of JDK names), else `protocol` alone if set.
    pub protocols: Option<Vec<String>>,
    pub cipher_suites: Option<Vec<String>>,
    /// `hostnameVerification` (default true): peers check each other's names against their certificates.
    pub hostname_verification: bool,
}

/// SASL on the client port (the JAAS `Server` section) and the `sasl` identities it gives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslConfig {
    /// `java.security.auth.login.config`.
    pub jaas_file: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig` (default `Server`); set explicitly, a missing section is an error.
    pub section: Option<String>,
    /// `SASLAuthenticationProvider.superPassword`: replaces the JAAS password of user `super`.
    pub super_password: Option<Secret>,
    /// `security.auth_to_local` (default `DEFAULT`).
    pub auth_to_local: Option<String>,
    pub remove_host_from_principal: bool,
    pub remove_realm_from_principal: bool,
    /// `allowSaslFailedClients`: a failed SASL exchange leaves the connection open, unauthenticated.
    pub allow_failed_clients: bool,
    /// `sessionRequireClientSASLAuth`, or `enforce.auth.enabled` with `sasl` among `enforce.auth.schemes`:
    /// every request but auth and SASL is refused until the connection authenticated with SASL.
    pub required: bool,
    /// `superUser` and every `superUser.<x>`: SASL ids that also get the `super` identity.
    pub super_users: Vec<String>,
}

/// `quorum.auth.enableSasl=true` and its companions (ZooKeeper's `QuorumAuth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumSaslConfig {
    /// `learnerRequireSasl`: a member dialling another must authenticate or give up.
    pub learner_required: bool,
    /// `serverRequireSasl`: members that do not authenticate are refused (else let in and logged).
    pub server_required: bool,
    /// `quorum.auth.learner.saslLoginContext` (default `QuorumLearner`): `username`, `password`.
    pub learner_section: String,
    /// `quorum.auth.server.saslLoginContext` (default `QuorumServer`): `user_<name>` entries.
    pub server_section: String,
}

/// Every security setting of a server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityConfig {
    /// `secureClientPort`: a TLS-only client listener.
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress` (default: the client bind address).
    pub secure_client_bind: Option<String>,
    /// `client.portUnification`: the plain client port also accepts TLS, told apart by the first byte.
    pub client_port_unification: bool,
    /// `ssl.*`: the client port's TLS.
    pub client_tls: TlsConfig,
    /// `ssl.quorum.*`: the peer port's TLS, also HTTPS on the admin port (as ZooKeeper's AdminServer).
    pub quorum_tls: TlsConfig,
    /// `sslQuorum`: mutual TLS between members.
    pub ssl_quorum: bool,
    /// `quorum.auth.*`: SASL (DIGEST-MD5) between members.
    pub quorum_sasl: Option<QuorumSaslConfig>,
    /// `portUnification`: the peer port accepts TLS and plain connections (rolling enablement).
    pub quorum_port_unification: bool,
    /// `X509AuthenticationProvider.superUser`: the certificate subject that is a super user.
    pub x509_super_user: Option<String>,
    /// `authProvider.N` class names (ZooKeeper needs the SASL provider registered for `sasl` ACLs).
    pub auth_providers: Vec<String>,
    pub sasl: SaslConfig,
    /// `audit.enable`.
    pub audit_enabled: bool,
    /// `audit.file` (Roost's key; ZooKeeper configures the file through logback).
    pub audit_file: Option<PathBuf>,
    /// `admin.forceHttps`: the HTTP port speaks HTTPS only.
    pub admin_force_https: bool,
    /// `admin.portUnification`: the HTTP port speaks HTTP and HTTPS.
    pub admin_port_unification: bool,
    /// `admin.needClientAuth`: HTTPS clients must present a certificate.
    pub admin_need_client_auth: bool,
}

impl SecurityConfig {
    /// Whether the client port needs a TLS context at all.
    pub fn client_tls_wanted(&self) -> bool {
        self.secure_client_port.is_some() || self.client_port_unification
    }

    /// Whether the HTTP port serves HTTPS.
    pub fn admin_https(&self) -> bool {
        self.admin_force_https || self.admin_port_unification
    }
}

/// The keys of one TLS context (`ssl.` or `ssl.quorum.`).
struct TlsKeys {
    key_location: Key,
    key_password: Key,
    key_password_path: Key,
    key_type: Key,
    trust_location: Key,
    trust_password: Key,
    trust_password_path: Key,
    trust_type: Key,
    client_auth: Key,
    protocol: Key,
    enabled_protocols: Key,
    cipher_suites: Key,
    hostname_verification: Key,
}

const CLIENT_TLS_KEYS: TlsKeys = TlsKeys {
    key_location: Key::SslKeyStoreLocation,
    key_password: Key::SslKeyStorePassword,
    key_password_path: Key::SslKeyStorePasswordPath,
    key_type: Key::SslKeyStoreType,
    trust_location: Key::SslTrustStoreLocation,
    trust_password: Key::SslTrustStorePassword,
    trust_password_path: Key::SslTrustStorePasswordPath,
    trust_type: Key::SslTrustStoreType,
    client_auth: Key::SslClientAuth,
    protocol: Key::SslProtocol,
    enabled_protocols: Key::SslEnabledProtocols,
    cipher_suites: Key::SslCipherSuites,
    hostname_verification: Key::SslHostnameVerification,
};

const QUORUM_TLS_KEYS: TlsKeys = TlsKeys {
    key_location: Key::SslQuorumKeyStoreLocation,
    key_password: Key::SslQuorumKeyStorePassword,
    key_password_path: Key::SslQuorumKeyStorePasswordPath,
    key_type: Key::SslQuorumKeyStoreType,
    trust_location: Key::SslQuorumTrustStoreLocation,
    trust_password: Key::SslQuorumTrustStorePassword,
    trust_password_path: Key::SslQuorumTrustStorePasswordPath,
    trust_type: Key::SslQuorumTrustStoreType,
    client_auth: Key::SslQuorumClientAuth,
    protocol: Key::SslQuorumProtocol,
    enabled_protocols: Key::SslQuorumEnabledProtocols,
    cipher_suites: Key::SslQuorumCipherSuites,
    hostname_verification: Key::SslQuorumHostnameVerification,
};

fn text(value: &str) -> Result<String, ValueProblem> {
    Ok(value.trim().to_string())
}

fn list(value: &str) -> Result<Vec<String>, ValueProblem> {
    Ok(value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
}

fn path(value: &str) -> Result<PathBuf, ValueProblem> {
    values::non_empty(value).map(PathBuf::from)
}

fn client_auth(value: &str) -> Result<String, ValueProblem> {
    let v = value.trim().to_ascii_lowercase();
    match v.as_str() {
        "" | "need" | "want" | "none" => Ok(v),
        _ => Err(ValueProblem::NotOneOf { expected: "none, want or need" }),
    }
}

fn store(
    s: &Settings,
    location: Key,
    password: Key,
    password_path: Key,
    kind: Key,
) -> Result<Option<StoreConfig>, ConfigError> {
    let Some(location) = s.get(location, text)?.map(|l| l.value).filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    Ok(Some(StoreConfig {
        location: PathBuf::from(location),
        password: s.get(password, |v| Ok(Secret::new(v)))?.map(|p| p.value).filter(|p| !p.expose().is_empty()),
        password_path: s.get(password_path, text)?.map(|p| p.value).filter(|p| !p.is_empty()).map(PathBuf::from),
        store_type: s.get(kind, text)?.map(|t| t.value).filter(|t| !t.is_empty()),
    }))
}

fn tls(s: &Settings, keys: &TlsKeys) -> Result<TlsConfig, ConfigError> {
    let enabled = s.get(keys.enabled_protocols, list)?.map(|p| p.value).filter(|p| !p.is_empty());
    let protocol = s.get(keys.protocol, list)?.map(|p| p.value).filter(|p| !p.is_empty());
    Ok(TlsConfig {
        key_store: store(s, keys.key_location, keys.key_password, keys.key_password_path, keys.key_type)?,
        trust_store: store(s, keys.trust_location, keys.trust_password, keys.trust_password_path, keys.trust_type)?,
        client_auth: s.get(keys.client_auth, client_auth)?.map(|c| c.value),
        protocols: enabled.or(protocol),
        cipher_suites: s.get(keys.cipher_suites, list)?.map(|c| c.value).filter(|c| !c.is_empty()),
        hostname_verification: s.get_or(keys.hostname_verification, true, values::boolean)?.value,
    })
}

/// ZooKeeper's Boolean.parseBoolean-style flags: only "true" (any case) is true.
fn java_flag(value: &str) -> Result<bool, ValueProblem> {
    Ok(value.trim().eq_ignore_ascii_case("true"))
}

/// `ssl.authProvider`: only ZooKeeper's own x509 provider exists here.
fn x509_provider(value: &str) -> Result<String, ValueProblem> {
    match value.trim() {
        "" | "x509" => Ok("x509".to_string()),
        _ => Err(ValueProblem::NotOneOf { expected: "x509 (custom X509 authentication providers are Java classes)" }),
    }
}

/// The quorum SASL settings, with ZooKeeper's start-up checks (`QuorumPeerConfig.parseProperties`).
fn quorum_sasl(s: &Settings) -> Result<Option<QuorumSaslConfig>, ConfigError> {
    let enabled = s.get_or(Key::QuorumAuthEnableSasl, false, java_flag)?;
    let learner = s.get_or(Key::QuorumAuthLearnerRequireSasl, false, java_flag)?;
    let server = s.get_or(Key::QuorumAuthServerRequireSasl, false, java_flag)?;
    let refuse = |key: Key, origin, problem: &'static str| ConfigError::BadValue {
        origin,
        key: key.name().to_string(),
        value: "true".to_string(),
        problem: ValueProblem::NotOneOf { expected: problem },
    };
    if !enabled.value {
        if learner.value {
            return Err(refuse(
                Key::QuorumAuthLearnerRequireSasl,
                learner.origin,
                "false without quorum.auth.enableSasl",
            ));
        }
        if server.value {
            return Err(refuse(
                Key::QuorumAuthServerRequireSasl,
                server.origin,
                "false without quorum.auth.enableSasl",
            ));
        }
        return Ok(None);
    }
    if server.value && !learner.value {
        return Err(refuse(Key::QuorumAuthServerRequireSasl, server.origin, "false while learnerRequireSasl is false"));
    }
    Ok(Some(QuorumSaslConfig {
        learner_required: learner.value,
        server_required: server.value,
        learner_section: s
            .get(Key::QuorumAuthLearnerLoginContext, text)?
            .map_or_else(|| "QuorumLearner".to_string(), |v| v.value),
        server_section: s
            .get(Key::QuorumAuthServerLoginContext, text)?
            .map_or_else(|| "QuorumServer".to_string(), |v| v.value),
    }))
}

/// Resolves the security settings from the merged layers.
pub(crate) fn resolve(s: &Settings) -> Result<SecurityConfig, ConfigError> {
    s.get(Key::SslAuthProvider, x509_provider)?;
    let quorum_sasl = quorum_sasl(s)?;
    let enforce = s.get_or(Key::EnforceAuthEnabled, false, java_flag)?.value
        && s.get(Key::EnforceAuthSchemes, list)?.is_some_and(|l| l.value.iter().any(|x| x == "sasl"));
    let mut super_users: Vec<String> = s.get(Key::SuperUser, text)?.map(|u| u.value).into_iter().collect();
    super_users.extend(s.indexed(IndexedKey::SuperUser).map(|e| e.value.trim().to_string()));
    super_users.retain(|u| !u.is_empty());
    let sasl = SaslConfig {
        jaas_file: s.get(Key::JaasConfigFile, text)?.map(|f| f.value).filter(|f| !f.is_empty()).map(PathBuf::from),
        section: s.get(Key::SaslServerSection, text)?.map(|v| v.value).filter(|v| !v.is_empty()),
        super_password: s.get(Key::SaslSuperPassword, |v| Ok(Secret::new(v)))?.map(|p| p.value),
        auth_to_local: s.get(Key::AuthToLocal, text)?.map(|v| v.value).filter(|v| !v.is_empty()),
        remove_host_from_principal: s.get_or(Key::KerberosRemoveHost, false, java_flag)?.value,
        remove_realm_from_principal: s.get_or(Key::KerberosRemoveRealm, false, java_flag)?.value,
        allow_failed_clients: s.get_or(Key::AllowSaslFailedClients, false, java_flag)?.value,
        required: s.get_or(Key::SessionRequireClientSaslAuth, false, java_flag)?.value || enforce,
        super_users,
    };
    Ok(SecurityConfig {
        secure_client_port: s.get(Key::SecureClientPort, values::port)?.map(|p| p.value),
        secure_client_bind: s.get(Key::SecureClientPortAddress, values::non_empty)?.map(|a| a.value),
        client_port_unification: s.get_or(Key::ClientPortUnification, false, java_flag)?.value,
        client_tls: tls(s, &CLIENT_TLS_KEYS)?,
        quorum_tls: tls(s, &QUORUM_TLS_KEYS)?,
        ssl_quorum: s.get_or(Key::SslQuorum, false, java_flag)?.value,
        quorum_sasl,
        quorum_port_unification: s.get_or(Key::QuorumPortUnification, false, java_flag)?.value,
        x509_super_user: s.get(Key::X509SuperUser, text)?.map(|u| u.value).filter(|u| !u.is_empty()),
        auth_providers: s.indexed(IndexedKey::AuthProvider).map(|e| e.value.trim().to_string()).collect(),
        sasl,
        audit_enabled: s.get_or(Key::AuditEnable, false, java_flag)?.value,
        audit_file: s.get(Key::AuditFile, path)?.map(|p| p.value),
        admin_force_https: s.get_or(Key::AdminForceHttps, false, java_flag)?.value,
        admin_port_unification: s.get_or(Key::AdminPortUnification, false, java_flag)?.value,
        admin_need_client_auth: s.get_or(Key::AdminNeedClientAuth, false, java_flag)?.value,
    })
}
