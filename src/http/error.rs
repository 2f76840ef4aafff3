//! API errors and their HTTP mapping: a ZooKeeper error code becomes a precise status
//! (404 NoNode, 409 NodeExists/BadVersion/NotEmpty, 403 NoAuth, ...) and a JSON body
//! `{ "error": "NoNode", "code": -101, "message": ..., "path": ... }`. Client mistakes
//! never produce a 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::proto::types::ErrorCode;

/// Everything a handler can fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// ZooKeeper said no; `index` is the failing op of a multi.
    #[error("{code}")]
    Zk { code: ErrorCode, path: Option<String>, index: Option<usize> },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    /// The HTTP port itself requires a login (token) that was not given.
    #[error("login required")]
    Unauthorized,
    /// Refused by the HTTP layer's own protection (read-only mode, CSRF).
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    /// Too many subtree jobs are running (429).
    #[error("{0}")]
    Busy(String),
    /// Too many ZooKeeper sessions held for one client address's browser sessions (429).
    #[error("{0}")]
    TooManySessions(String),
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }
    pub fn zk(code: ErrorCode, path: &str) -> Self {
        ApiError::Zk { code, path: Some(path.to_owned()), index: None }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Zk { code, .. } => zk_status(*code),
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Busy(_) | ApiError::TooManySessions(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        match self {
            ApiError::Zk { code, path, index } => ErrorBody {
                error: format!("{code:?}"),
                code: Some(code.as_i32()),
                message: zk_message(*code, path.as_deref()),
                path: path.clone(),
                index: *index,
            },
            other => ErrorBody {
                error: match other {
                    ApiError::BadRequest(_) => "BadRequest",
                    ApiError::TooLarge(_) => "TooLarge",
                    ApiError::Unauthorized => "Unauthorized",
                    ApiError::Forbidden(_) => "Forbidden",
                    ApiError::Busy(_) => "TooManyJobs",
                    ApiError::TooManySessions(_) => "TooManySessions",
                    _ => "NotFound",
                }
                .to_owned(),
                code: None,
                message: other.to_string(),
                path: None,
                index: None,
            },
        }
    }
}

/// The error body of every failed API call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorBody {
    /// ZooKeeper's code name (`NoNode`, `BadVersion`, ...) or an HTTP-level name.
    pub error: String,
    /// ZooKeeper's numeric code, for ZooKeeper errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Index of the failing op in a multi.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

fn zk_message(code: ErrorCode, path: Option<&str>) -> String {
    // ZooKeeper's text ("not a read-only call") does not tell a UI user what is going on.
    let what = match code {
        ErrorCode::NotReadOnly => "this server is read-only (cut off from the ensemble's quorum); not written",
        _ => return path.map_or_else(|| code.to_string(), |p| format!("{code} for {p}")),
    };
    path.map_or_else(|| what.to_owned(), |p| format!("{what}: {p}"))
}

/// ZooKeeper error code -> HTTP status.
pub fn zk_status(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        NoNode => StatusCode::NOT_FOUND,
        NodeExists | BadVersion | NotEmpty => StatusCode::CONFLICT,
        NoAuth => StatusCode::FORBIDDEN,
        AuthFailed => StatusCode::UNAUTHORIZED,
        BadArguments | InvalidAcl | NoChildrenForEphemerals | Unimplemented | ApiError => StatusCode::BAD_REQUEST,
        MarshallingError | QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
        Throttled => StatusCode::TOO_MANY_REQUESTS,
        ConnectionLoss | OperationTimeout | RequestTimeout | NotReadOnly | SessionExpired | SessionMoved
        | NewConfigNoQuorum | ReconfigInProgress => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(r.body_text())
        } else {
            ApiError::BadRequest(r.body_text())
        }
    }
}

/// Parses a JSON request body with a JSON error on failure.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_map_to_4xx() {
        assert_eq!(zk_status(ErrorCode::NoNode), StatusCode::NOT_FOUND);
        assert_eq!(zk_status(ErrorCode::NodeExists), StatusCode::CONFLICT);
        assert_eq!(zk_status(ErrorCode::BadVersion), StatusCode::CONFLICT);
        assert_eq!(zk_status(ErrorCode::NotEmpty), StatusCode::CONFLICT);
        assert_eq!(zk_status(ErrorCode::NoAuth), StatusCode::FORBIDDEN);
        assert_eq!(zk_status(ErrorCode::InvalidAcl), StatusCode::BAD_REQUEST);
        let body = ApiError::zk(ErrorCode::NoNode, "/x").body();
        assert_eq!(body.error, "NoNode");
        assert_eq!(body.code, Some(-101));
        assert_eq!(body.message, "no node for /x");
    }

    #[test]
    fn a_read_only_server_is_503_not_read_only_with_a_message_that_says_why() {
        let e = ApiError::zk(ErrorCode::NotReadOnly, "/x");
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = e.body();
        assert_eq!((body.error.as_str(), body.code), ("NotReadOnly", Some(-119)));
        assert_eq!(body.message, "this server is read-only (cut off from the ensemble's quorum); not written: /x");
    }
}
