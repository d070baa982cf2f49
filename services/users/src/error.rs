use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use service_kit::{DbError, json_error};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("user {0} not found")]
    UserNotFound(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::UserNotFound(_) => (StatusCode::NOT_FOUND, "user_not_found"),
            Self::Db(e) => e.status_and_code(),
        };
        json_error(status, code, self.to_string())
    }
}
