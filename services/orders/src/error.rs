use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use service_kit::{DbError, json_error};

use crate::users_client::UsersError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("order {0} not found")]
    OrderNotFound(i64),
    #[error("{0}")]
    InvalidQuery(&'static str),
    #[error("{0}")]
    InvalidOrder(&'static str),
    #[error("user {0} not found")]
    UserNotFound(i64),
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::OrderNotFound(_) => (StatusCode::NOT_FOUND, "order_not_found"),
            Self::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            Self::InvalidOrder(_) => (StatusCode::BAD_REQUEST, "invalid_order"),
            Self::UserNotFound(_) => (StatusCode::NOT_FOUND, "user_not_found"),
            Self::Users(UsersError::Timeout(_)) => (StatusCode::GATEWAY_TIMEOUT, "users_timeout"),
            Self::Users(_) => (StatusCode::BAD_GATEWAY, "users_unavailable"),
            Self::Db(e) => e.status_and_code(),
        };
        json_error(status, code, self.to_string())
    }
}
