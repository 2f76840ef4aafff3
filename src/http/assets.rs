//! Embedded static assets (`static/`): the UI's JS and CSS and the OpenAPI spec.
//! Embedded at compile time so a node is one self-contained binary.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use super::error::ApiError;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// Content type by file extension.
fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "html" => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The bytes of an embedded file.
pub fn get(name: &str) -> Option<Vec<u8>> {
    Assets::get(name).map(|f| f.data.into_owned())
}

fn respond(name: &str) -> Response {
    match Assets::get(name) {
        Some(f) => {
            let etag = format!(
                "\"{}\"",
                f.metadata.sha256_hash().iter().take(8).map(|b| format!("{b:02x}")).collect::<String>()
            );
            (
                [
                    (header::CONTENT_TYPE, content_type(name).to_owned()),
                    (header::CACHE_CONTROL, "no-cache".to_owned()),
                    (header::ETAG, etag),
                ],
                f.data.into_owned(),
            )
                .into_response()
        }
        None => ApiError::NotFound.into_response(),
    }
}

/// `GET /static/<file>`
pub async fn static_file(Path(file): Path<String>) -> Response {
    respond(&file)
}

/// `GET /api/v1/openapi.json`
pub async fn openapi() -> Response {
    respond("openapi.json")
}
