use std::path::PathBuf;

/// Everything that can go wrong loading stores or building TLS configs.
///
/// Messages name the file and the problem; no variant ever carries a password.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("unable to read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unsupported store type {0:?} (supported: PEM, PKCS12, JKS)")]
    UnsupportedStoreType(String),
    #[error("unable to auto-detect store file type of {0} (use a .pem, .p12, .pfx or .jks suffix, or set the type)")]
    UnknownStoreSuffix(PathBuf),
    #[error("{path}: keystore password was incorrect")]
    WrongPassword { path: PathBuf },
    #[error("{path}: a password is required for this store")]
    PasswordRequired { path: PathBuf },
    #[error("{path}: JCEKS key stores are not supported (convert to PKCS12 or JKS)")]
    JceksNotSupported { path: PathBuf },
    #[error("{path}: malformed {format} store: {reason}")]
    Malformed { path: PathBuf, format: &'static str, reason: String },
    #[error("{path}: no private key entry found")]
    NoPrivateKey { path: PathBuf },
    #[error("{path}: no certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: unusable private key: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    #[error("none of the configured {what} are supported: {names:?}")]
    NoUsable { what: &'static str, names: Vec<String> },
    #[error("invalid ssl.clientAuth value {0:?} (expected none, want or need)")]
    InvalidClientAuth(String),
    #[error("TLS configuration rejected")]
    Rustls(#[from] rustls::Error),
}
