//! Error types. Messages name the offending directive or rule but never a password or digest,
//! because they end up in logs.

use thiserror::Error;

/// A JAAS file that could not be parsed. `line` and `column` are 1-based (column counts
/// characters), so an operator can find the mistake in their editor.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("JAAS configuration error at line {line}, column {column}: {message}")]
pub struct JaasError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Why a SASL exchange or a principal mapping failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SaslError {
    /// The peer's token is not a well-formed DIGEST-MD5 message (RFC 2831 syntax, sizes, encodings).
    #[error("DIGEST-MD5: malformed token: {0}")]
    Malformed(String),
    /// A directive is well-formed but its value is not one this exchange accepts.
    #[error("DIGEST-MD5: {0}")]
    Rejected(String),
    /// The credentials did not check out. Deliberately vague: an unknown user and a wrong
    /// password look the same to the peer.
    #[error("DIGEST-MD5: authentication failed")]
    AuthenticationFailed,
    /// `step` was called after the exchange had already succeeded or failed.
    #[error("DIGEST-MD5: the exchange is already {0}")]
    Finished(&'static str),
    /// The server's `rspauth` did not prove it knows the password.
    #[error("DIGEST-MD5: server's rspauth does not match")]
    BadRspauth,
    /// A Kerberos principal that has an '@' but is not `primary[/instance]@REALM`.
    #[error("malformed Kerberos name: {0}")]
    MalformedKerberosName(String),
    /// An auth_to_local rule string that does not parse.
    #[error("invalid auth_to_local rule: {0}")]
    InvalidRule(String),
    /// A rule's format string refers to a component that does not exist, or is not `$<digits>`.
    #[error("bad auth_to_local format string: {0}")]
    BadFormatString(String),
    /// A rule's replacement refers to a group that does not exist, or its format to the
    /// component just past the last. ZooKeeper hits a runtime exception there, which fails the
    /// authentication, instead of the `BadFormatString` it logs and ignores.
    #[error("auth_to_local rule cannot be applied: {0}")]
    RuleFailed(String),
    /// No auth_to_local rule produced a simple name for the principal.
    #[error("no auth_to_local rule applies to {0}")]
    NoMatchingRule(String),
    /// A GSS-API call failed: acquiring the acceptor's credentials, accepting the client's context
    /// token, or unwrapping its messages. The text names the step and GSS-API's status messages
    /// (which may name principals and key table files, never keys or tokens).
    #[error("GSSAPI: {0}")]
    Gssapi(String),
    /// A well-formed GSSAPI exchange asking for something Roost does not grant: a security layer,
    /// or an authorization id other than the authenticated principal.
    #[error("GSSAPI: {0}")]
    GssapiRejected(String),
}
