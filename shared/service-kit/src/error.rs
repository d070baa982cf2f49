//! The one JSON error shape both services answer with, and start-up failures.

use std::time::Duration;

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;
use telemetry::server::ErrorDescription;

/// `{"error": {"code": "...", "message": "..."}}` with `status`. A 5xx also tells the server
/// span what went wrong (span status Error, `error.type` = `code`) and is logged.
pub fn json_error(status: StatusCode, code: &'static str, message: String) -> Response {
    if status.is_server_error() {
        tracing::warn!(error.type = code, status = status.as_u16(), "{message}");
    }
    let body = Json(json!({ "error": { "code": code, "message": message } }));
    let mut response = (status, body).into_response();
    if status.is_server_error() {
        response.extensions_mut().insert(ErrorDescription {
            error_type: code.into(),
            message,
        });
    }
    response
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database not reachable after {waited:?}: {last_error}")]
    DatabaseUnreachable {
        waited: Duration,
        last_error: String,
    },
    #[error("database refused the connection: {0}")]
    Database(String),
    #[error("database migrations failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
}
