use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use service_kit::{db::is_unavailable, json_error};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("user {0} not found")]
    UserNotFound(i64),
    #[error("database unavailable")]
    DatabaseUnavailable,
    #[error("internal error")]
    Internal,
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            Self::DatabaseUnavailable
        } else {
            // The db-query span already carries the details; the client gets no internals.
            Self::Internal
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = match self {
            Self::UserNotFound(_) => (StatusCode::NOT_FOUND, "user_not_found"),
            Self::DatabaseUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        json_error(status, code, self.to_string())
    }
}
