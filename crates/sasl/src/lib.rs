//! SASL support for Roost: what a ZooKeeper-compatible server needs to accept the same
//! `sasl` clients and configuration files as Apache ZooKeeper 3.8.
//!
//! - [`jaas`]: JAAS login configuration files (`-Djava.security.auth.login.config`), where
//!   ZooKeeper deployments keep DIGEST-MD5 users and Kerberos settings.
//! - [`digest`]: the DIGEST-MD5 mechanism, server side exactly as the JDK server ZooKeeper uses,
//!   and a client for peer authentication.
//! - [`kerberos`]: principal names, auth_to_local rules, and the `sasl` ACL id of a connection.

pub mod digest;
pub mod error;
pub mod jaas;
pub mod kerberos;

pub use digest::{DigestMd5Client, DigestMd5Server, Step, MAX_TOKEN_LEN};
pub use error::{JaasError, SaslError};
pub use jaas::{ControlFlag, JaasConfig, JaasSection, LoginModule, MAX_JAAS_FILE_LEN};
pub use kerberos::{is_super_user, sasl_identity, AuthToLocal, KerberosName, SaslIdOptions, MAX_PRINCIPAL_LEN};
