use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use service_kit::{DbError, json_error};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("user {0} not found")]
    UserNotFound(i64),
    #[error("ids must be 1 to {0} positive 64-bit integers, comma-separated")]
    InvalidIds(usize),
    #[error("failure injected by baggage demo.fail=users")]
    DemoFault,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::UserNotFound(_) => (StatusCode::NOT_FOUND, "user_not_found"),
            Self::InvalidIds(_) => (StatusCode::BAD_REQUEST, "invalid_ids"),
            Self::DemoFault => (StatusCode::INTERNAL_SERVER_ERROR, "demo_fault"),
            Self::Db(e) => e.status_and_code(),
        };
        json_error(status, code, self.to_string())
    }
}
