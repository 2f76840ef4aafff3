//! SASL support for Roost: what a ZooKeeper-compatible server needs to accept the same
//! `sasl` clients and configuration files as Apache ZooKeeper 3.8.
//!
//! - [`jaas`]: JAAS login configuration files (`-Djava.security.auth.login.config`), where
//!   ZooKeeper deployments keep DIGEST-MD5 users and Kerberos settings.
//! - [`digest`]: the DIGEST-MD5 mechanism, server side exactly as the JDK server ZooKeeper uses,
//!   and a client for peer authentication.
//! - [`kerberos`]: principal names, auth_to_local rules, and the `sasl` ACL id of a connection.
//! - `gssapi` (cargo feature `gssapi`): the GSSAPI (Kerberos V5) mechanism, server side, over the
//!   system's MIT GSS-API library.

pub mod digest;
pub mod error;
#[cfg(feature = "gssapi")]
pub mod gssapi;
pub mod jaas;
pub mod kerberos;

pub use digest::{DigestMd5Client, DigestMd5Server, MAX_TOKEN_LEN};
pub use error::{JaasError, SaslError};
#[cfg(feature = "gssapi")]
pub use gssapi::{default_realm, GssapiCredentials, GssapiServer, MAX_GSSAPI_TOKEN_LEN};
pub use jaas::{ControlFlag, JaasConfig, JaasSection, LoginModule, MAX_JAAS_FILE_LEN};
pub use kerberos::{is_super_user, sasl_identity, AuthToLocal, KerberosName, SaslIdOptions, MAX_PRINCIPAL_LEN};

/// The outcome of a server step, for every mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this token to the client and wait for its reply.
    Challenge(Vec<u8>),
    /// The client is authenticated. Send `token` as the final message: DIGEST-MD5 has one (the
    /// `rspauth`); GSSAPI has none, which ZooKeeper's wire shows as a null buffer (length -1).
    Success { token: Option<Vec<u8>>, authentication_id: String },
}
