//! ZooKeeper 3.9's AdminServer authentication for the commands that need it (`snapshot`,
//! `restore`): `Authorization: <scheme>[ <credential>]`, then every bit of the required
//! permission checked on its own against the ACL of a path (ZOOKEEPER-4964: one matching
//! bit of a combined mask is not enough).
//!
//! Schemes: `digest user:password` (the digest identity, plus `super` on a superDigest
//! match), `ip` (the socket's peer address; `X-Forwarded-For` is never trusted) and
//! `x509` (the subject of the HTTPS client certificate). Missing header: 401 "Auth info is
//! missing for the command"; a bad scheme or credential: 401 "Not authenticated"; the
//! ACL says no: 403 "Not authorized".

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};

use super::{ClientCertificate, State};
use crate::proto::types::{perms, Id};

/// Why a command was refused before it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdminRefusal {
    #[error("Auth info is missing for the command")]
    Missing,
    #[error("Not authenticated")]
    NotAuthenticated,
    #[error("Not authorized")]
    NotAuthorized,
}

impl AdminRefusal {
    pub fn status(self) -> StatusCode {
        match self {
            AdminRefusal::Missing | AdminRefusal::NotAuthenticated => StatusCode::UNAUTHORIZED,
            AdminRefusal::NotAuthorized => StatusCode::FORBIDDEN,
        }
    }
}

/// The identities the `Authorization` header proves, ZooKeeper's way.
pub fn authenticate(state: &State, parts: &Parts) -> Result<Vec<Id>, AdminRefusal> {
    let header = parts.headers.get(header::AUTHORIZATION).ok_or(AdminRefusal::Missing)?;
    let text = std::str::from_utf8(header.as_bytes()).map_err(|_| AdminRefusal::NotAuthenticated)?;
    // Java's `split(" ")`: one or two fields, trailing empty ones dropped.
    let mut fields: Vec<&str> = text.split(' ').collect();
    while fields.len() > 1 && fields.last() == Some(&"") {
        fields.pop();
    }
    let (scheme, credential) = match fields[..] {
        [scheme] => (scheme, None),
        [scheme, credential] => (scheme, Some(credential)),
        _ => return Err(AdminRefusal::NotAuthenticated),
    };
    let ids = match (scheme, credential) {
        ("digest", Some(user_password)) if user_password.contains(':') => state.backend.login_ids(user_password),
        ("ip", _) => parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| vec![Id::new("ip", addr.ip().to_string())])
            .unwrap_or_default(),
        ("x509", _) => parts
            .extensions
            .get::<ClientCertificate>()
            .map(|ClientCertificate(subject)| vec![Id::new("x509", subject.clone())])
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    state.backend.audit_auth(&ids, !ids.is_empty());
    if ids.is_empty() {
        return Err(AdminRefusal::NotAuthenticated);
    }
    Ok(ids)
}

/// Whether `ids` hold every bit of `perm` on `path`, each checked on its own.
pub fn authorize(state: &State, ids: &[Id], perm: i32, path: &str) -> Result<(), AdminRefusal> {
    let superuser = [Id::new("super", "")];
    let (acl, _) = state.backend.get_acl(path, &superuser).map_err(|_| AdminRefusal::NotAuthorized)?;
    let every_bit = (0..i32::BITS).map(|b| 1i32 << b).filter(|bit| perm & bit != 0);
    for bit in every_bit {
        if !state.backend.check_perm(&acl, ids, bit) {
            return Err(AdminRefusal::NotAuthorized);
        }
    }
    Ok(())
}

/// Authentication, then ALL on `/`: what `snapshot` and `restore` require.
pub fn require_all_on_root(state: &State, parts: &Parts) -> Result<Vec<Id>, AdminRefusal> {
    let ids = authenticate(state, parts)?;
    authorize(state, &ids, perms::ALL, "/")?;
    Ok(ids)
}
