//! Security at run time: TLS contexts built from the key and trust stores, the identities a TLS
//! client certificate or a SASL exchange gives a connection, and (see [`audit`]) the audit log.
//!
//! [`crate::config::SecurityConfig`] holds the settings as text; [`Security::load`] reads the files
//! they name once at start, and a reload task re-reads certificate files when they change.

pub mod audit;
pub mod sasl;
pub mod tls;

use std::sync::Arc;

use crate::config::SecurityConfig;
use crate::proto::types::Id;

/// Why the security settings could not be put to use.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    // Messages leave out their source: the start error prints the whole chain once.
    #[error("{what}")]
    Tls { what: &'static str, source: roost_tls::TlsError },
    #[error("{what} needs {key}")]
    Missing { what: &'static str, key: &'static str },
    #[error("cannot read {path}")]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("JAAS file {path}")]
    Jaas { path: std::path::PathBuf, source: roost_sasl::JaasError },
    #[error("JAAS file {path}: {problem}")]
    JaasSection { path: std::path::PathBuf, problem: String },
    #[error("security.auth_to_local")]
    AuthToLocal(#[source] roost_sasl::SaslError),
    #[error("audit log {path}")]
    Audit { path: std::path::PathBuf, source: std::io::Error },
}

/// The security state shared by every connection of a server.
pub struct Security {
    /// The client port's TLS (`ssl.*`), when `secureClientPort` or `client.portUnification` is set.
    pub client_tls: Option<Arc<roost_tls::ReloadingServerConfig>>,
    /// `client.portUnification`: the plain port also accepts TLS.
    pub port_unification: bool,
    /// `X509AuthenticationProvider.superUser`.
    x509_super_user: Option<String>,
    /// SASL on the client port; `None` when no JAAS `Server` section is configured.
    pub sasl: Option<sasl::SaslServer>,
    /// The SASL settings that hold even without a JAAS section (enforcement).
    pub sasl_required: bool,
    pub allow_sasl_failed_clients: bool,
    /// `audit.enable`: where audit lines go.
    pub audit: Option<Arc<audit::AuditLog>>,
}

impl Security {
    /// No TLS, no SASL, no audit: what a server without security settings runs with.
    pub fn none() -> Security {
        Security {
            client_tls: None,
            port_unification: false,
            x509_super_user: None,
            sasl: None,
            sasl_required: false,
            allow_sasl_failed_clients: false,
            audit: None,
        }
    }

    /// Reads the stores and the JAAS file the settings name.
    pub fn load(cfg: &SecurityConfig, default_audit_dir: &std::path::Path) -> Result<Security, SecurityError> {
        let client_tls = if cfg.client_tls_wanted() {
            let settings = tls::settings(&cfg.client_tls, "the secure client port", None)?;
            let reloading = roost_tls::ReloadingServerConfig::new(settings)
                .map_err(|source| SecurityError::Tls { what: "the secure client port", source })?;
            Some(Arc::new(reloading))
        } else {
            None
        };
        let sasl = sasl::SaslServer::load(&cfg.sasl)?;
        let audit = if cfg.audit_enabled {
            let path = cfg.audit_file.clone().unwrap_or_else(|| default_audit_dir.join("zookeeper_audit.log"));
            Some(Arc::new(audit::AuditLog::open(&path).map_err(|source| SecurityError::Audit { path, source })?))
        } else {
            None
        };
        Ok(Security {
            client_tls,
            port_unification: cfg.client_port_unification,
            x509_super_user: cfg.x509_super_user.clone(),
            sasl,
            sasl_required: cfg.sasl.required,
            allow_sasl_failed_clients: cfg.sasl.allow_failed_clients,
            audit,
        })
    }

    /// The identities a verified client certificate gives a connection: `x509:<subject>` and, for
    /// the configured super user, `super:<subject>` (`X509AuthenticationProvider.handleAuthentication`).
    pub fn x509_identities(&self, subject: &str) -> Vec<Id> {
        let mut ids = Vec::with_capacity(2);
        if self.x509_super_user.as_deref() == Some(subject) {
            ids.push(Id::new("super", subject));
        }
        ids.push(Id::new("x509", subject));
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_x509_super_user_also_gets_super() {
        let mut security = Security::none();
        security.x509_super_user = Some("CN=admin".into());
        assert_eq!(
            security.x509_identities("CN=admin"),
            vec![Id::new("super", "CN=admin"), Id::new("x509", "CN=admin")]
        );
        assert_eq!(security.x509_identities("CN=client"), vec![Id::new("x509", "CN=client")]);
    }
}
