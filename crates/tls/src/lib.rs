//! TLS for Roost, configured the way Apache ZooKeeper is.
//!
//! ZooKeeper takes `ssl.keyStore.*`, `ssl.trustStore.*`, `ssl.clientAuth`, `ssl.enabledProtocols` and
//! `ssl.ciphersuites` (and the same under `ssl.quorum.`), with stores in JKS, PKCS#12 or PEM. This
//! crate reads those stores, builds rustls configs from them, and verifies certificates the way a
//! Java peer would — including X.509 v1 certificates, which webpki refuses but the kazoo/ZooKeeper
//! test harness (and many real deployments) use.

mod config;
mod dn;
mod error;
mod jks;
mod reload;
mod store;
mod verify;

pub use config::{client_config, server_config, ClientAuth, TlsSettings};
pub use dn::java_subject_dn;
pub use error::TlsError;
pub use reload::ReloadingServerConfig;
pub use store::{load_key_store, load_trust_store, KeyMaterial, StoreSpec, StoreType};
pub use verify::cert_matches_name;

/// Re-exported so callers name the same rustls the configs come from.
pub use rustls;
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer};
