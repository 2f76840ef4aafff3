//! SASL on the client port (opcode 102), as ZooKeeper runs it: the JAAS `Server` section's
//! `user_<name>` entries are the DIGEST-MD5 users, each connection runs its own exchange, and a
//! completed one adds `sasl:<id>` (and `super` for the configured super users).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use roost_sasl::{DigestMd5Server, JaasConfig, JaasSection, SaslIdOptions, Step};

use super::SecurityError;
use crate::config::SaslConfig;
use crate::proto::types::Id;

/// DIGEST-MD5's protocol and server name on ZooKeeper's client port (`SecurityUtils.createSaslServer`).
const PROTOCOL: &str = "zookeeper";
const SERVER_NAME: &str = "zk-sasl-md5";
/// The JAAS section ZooKeeper reads when `zookeeper.sasl.serverconfig` is not set.
const DEFAULT_SECTION: &str = "Server";

/// The one mechanism a server offers, as in ZooKeeper: GSSAPI when the JAAS section logs in
/// with Kerberos, DIGEST-MD5 otherwise.
enum Mechanism {
    Digest(Arc<BTreeMap<String, String>>),
    #[cfg(feature = "gssapi")]
    Gssapi(roost_sasl::gssapi::GssapiCredentials),
}

/// The server's SASL setup, shared by all connections.
pub struct SaslServer {
    mechanism: Mechanism,
    ids: SaslIdOptions,
    super_users: Vec<String>,
}

impl std::fmt::Debug for SaslServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mechanism = match &self.mechanism {
            Mechanism::Digest(users) => format!("DIGEST-MD5 ({} users)", users.len()),
            #[cfg(feature = "gssapi")]
            Mechanism::Gssapi(creds) => format!("GSSAPI ({})", creds.principal()),
        };
        f.debug_struct("SaslServer").field("mechanism", &mechanism).finish_non_exhaustive()
    }
}

impl SaslServer {
    /// Reads the JAAS file. `Ok(None)` when no SASL is configured: no file, or a file without the
    /// section while its name was left at the default (kazoo's harness always passes an empty file).
    pub fn load(cfg: &SaslConfig) -> Result<Option<SaslServer>, SecurityError> {
        let Some(path) = &cfg.jaas_file else {
            return Ok(None);
        };
        let text = read_bounded(path)?;
        let jaas = JaasConfig::parse(&text).map_err(|source| SecurityError::Jaas { path: path.clone(), source })?;
        let name = cfg.section.as_deref().unwrap_or(DEFAULT_SECTION);
        let Some(section) = jaas.section(name) else {
            if cfg.section.is_some() {
                return Err(SecurityError::JaasSection {
                    path: path.clone(),
                    problem: format!("no section named {name:?} (zookeeper.sasl.serverconfig)"),
                });
            }
            tracing::info!(file = %path.display(), "no JAAS {DEFAULT_SECTION:?} section: SASL is off");
            return Ok(None);
        };
        let (mechanism, default_realm) = if section.modules.iter().any(|m| m.class.contains("Krb5LoginModule")) {
            kerberos(path, name, section)?
        } else {
            let mut users = section.digest_users();
            if let Some(password) = &cfg.super_password {
                users.insert("super".to_string(), password.expose().to_string());
            }
            tracing::info!(users = users.len(), "SASL DIGEST-MD5 enabled on the client port");
            (Mechanism::Digest(Arc::new(users)), None)
        };
        let rules = roost_sasl::AuthToLocal::parse(cfg.auth_to_local.as_deref().unwrap_or("DEFAULT"), default_realm)
            .map_err(SecurityError::AuthToLocal)?;
        Ok(Some(SaslServer {
            mechanism,
            ids: SaslIdOptions {
                rules,
                remove_host: cfg.remove_host_from_principal,
                remove_realm: cfg.remove_realm_from_principal,
            },
            super_users: cfg.super_users.clone(),
        }))
    }

    /// A new exchange for one connection.
    pub fn exchange(&self) -> SaslExchange {
        let server = match &self.mechanism {
            Mechanism::Digest(users) => Exchange::Digest(DigestMd5Server::new(PROTOCOL, SERVER_NAME, users.clone())),
            #[cfg(feature = "gssapi")]
            Mechanism::Gssapi(creds) => {
                Exchange::Gssapi(Box::new(roost_sasl::gssapi::GssapiServer::with_credentials(creds)))
            }
        };
        SaslExchange { server }
    }

    /// The identities a completed exchange gives: `sasl:<id>`, plus `super` for a super user.
    fn identities(&self, authentication_id: &str) -> Result<Vec<Id>, roost_sasl::SaslError> {
        let id = roost_sasl::sasl_identity(authentication_id, &self.ids)?;
        let mut ids = Vec::with_capacity(2);
        if roost_sasl::is_super_user(&id, &self.super_users) {
            ids.push(Id::new("super", ""));
        }
        ids.push(Id::new("sasl", id));
        Ok(ids)
    }
}

/// GSSAPI from a Kerberos login section (`principal` and `keyTab`, as the JDK's Krb5LoginModule
/// reads them); the Kerberos configuration's default realm is `auth_to_local`'s DEFAULT realm.
#[cfg(feature = "gssapi")]
fn kerberos(path: &Path, name: &str, section: &JaasSection) -> Result<(Mechanism, Option<String>), SecurityError> {
    let problem = |problem: String| SecurityError::JaasSection { path: path.into(), problem };
    let principal = section.option("principal").ok_or_else(|| problem(format!("section {name:?} has no principal")))?;
    let keytab = section.option("keyTab").map(Path::new);
    let creds = roost_sasl::gssapi::GssapiCredentials::acquire(principal, keytab)
        .map_err(|e| problem(format!("Kerberos credentials of {principal}: {e}")))?;
    tracing::info!(principal, "SASL GSSAPI (Kerberos) enabled on the client port");
    Ok((Mechanism::Gssapi(creds), roost_sasl::gssapi::default_realm()))
}

#[cfg(not(feature = "gssapi"))]
fn kerberos(path: &Path, name: &str, _section: &JaasSection) -> Result<(Mechanism, Option<String>), SecurityError> {
    Err(SecurityError::JaasSection {
        path: path.into(),
        problem: format!("section {name:?} uses Kerberos (GSSAPI); this build has no GSSAPI (cargo feature gssapi)"),
    })
}

/// Quorum SASL from the JAAS file: `username`/`password` of the learner section and the
/// `user_<name>` entries of the server section (ZooKeeper's `QuorumLearner`/`QuorumServer`).
pub fn quorum(
    cfg: &SaslConfig,
    quorum: &crate::config::QuorumSaslConfig,
) -> Result<crate::consensus::transport::PeerSasl, SecurityError> {
    let Some(path) = &cfg.jaas_file else {
        return Err(SecurityError::Missing {
            what: "quorum.auth.enableSasl",
            key: "a JAAS file (java.security.auth.login.config)",
        });
    };
    let text = read_bounded(path)?;
    let jaas = JaasConfig::parse(&text).map_err(|source| SecurityError::Jaas { path: path.clone(), source })?;
    let missing = |name: &str| SecurityError::JaasSection {
        path: path.clone(),
        problem: format!("no section named {name:?} (quorum SASL)"),
    };
    let server = jaas.section(&quorum.server_section).ok_or_else(|| missing(&quorum.server_section))?;
    let learner = jaas.section(&quorum.learner_section).ok_or_else(|| missing(&quorum.learner_section))?;
    if [server, learner].iter().any(|s| s.modules.iter().any(|m| m.class.contains("Krb5LoginModule"))) {
        return Err(SecurityError::JaasSection {
            path: path.clone(),
            problem: "Kerberos between members is not supported (quorum SASL is DIGEST-MD5)".to_string(),
        });
    }
    let credentials = match (learner.option("username"), learner.option("password")) {
        (Some(user), Some(password)) => Some((user.to_string(), password.to_string())),
        _ => {
            return Err(SecurityError::JaasSection {
                path: path.clone(),
                problem: format!("section {:?} needs username and password", quorum.learner_section),
            })
        }
    };
    tracing::info!(users = server.digest_users().len(), "quorum SASL (DIGEST-MD5) enabled on the peer port");
    Ok(crate::consensus::transport::PeerSasl {
        learner: credentials,
        learner_required: quorum.learner_required,
        users: Arc::new(server.digest_users()),
        server_required: quorum.server_required,
    })
}

/// The JAAS file is small; a huge one is a mistake, not a configuration.
fn read_bounded(path: &Path) -> Result<String, SecurityError> {
    let len = std::fs::metadata(path).map_err(|source| SecurityError::Read { path: path.into(), source })?.len();
    if len > roost_sasl::MAX_JAAS_FILE_LEN as u64 {
        return Err(SecurityError::JaasSection { path: path.into(), problem: format!("{len} bytes is too large") });
    }
    std::fs::read_to_string(path).map_err(|source| SecurityError::Read { path: path.into(), source })
}

/// What one SASL request leads to.
pub enum SaslOutcome {
    /// Send this token; the exchange goes on.
    Continue(Vec<u8>),
    /// Authenticated: send the token (GSSAPI ends with none), add the identities.
    Done { token: Option<Vec<u8>>, identities: Vec<Id> },
    /// Authentication failed (AuthFailed, null token, then the connection closes).
    Failed,
}

enum Exchange {
    Digest(DigestMd5Server),
    #[cfg(feature = "gssapi")]
    Gssapi(Box<roost_sasl::gssapi::GssapiServer>),
}

/// One connection's SASL exchange.
pub struct SaslExchange {
    server: Exchange,
}

impl SaslExchange {
    pub fn step(&mut self, setup: &SaslServer, token: &[u8]) -> SaslOutcome {
        let step = match &mut self.server {
            Exchange::Digest(server) => server.step(token),
            #[cfg(feature = "gssapi")]
            Exchange::Gssapi(server) => server.step(token),
        };
        match step {
            Ok(Step::Challenge(token)) => SaslOutcome::Continue(token),
            Ok(Step::Success { token, authentication_id }) => match setup.identities(&authentication_id) {
                Ok(identities) => SaslOutcome::Done { token, identities },
                Err(e) => {
                    tracing::warn!(error = %e, "SASL: no identity for an authenticated user");
                    SaslOutcome::Failed
                }
            },
            Err(e) => {
                // Never the token: it could carry what a client mistook for a password.
                tracing::warn!(error = %e, "SASL authentication failed");
                SaslOutcome::Failed
            }
        }
    }
}
