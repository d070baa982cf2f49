use axum::{Json, Router, extract::State, routing::get};
use service_kit::extract::PathId;
use telemetry::OpenTelemetrySpanExt as _;

use crate::{
    AppState,
    db::{self, User},
    error::AppError,
};

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/users/{user_id}", get(get_user))
        .with_state(state.clone());
    service_kit::http::with_common_routes(routes, state.db)
}

async fn get_user(
    State(state): State<AppState>,
    PathId(user_id): PathId,
) -> Result<Json<User>, AppError> {
    // Business context on the server span itself: the tutorial's tree has no extra span here.
    tracing::Span::current().set_attribute("user.id", user_id);
    db::find_user(&state.db, user_id)
        .await?
        .map(Json)
        .ok_or(AppError::UserNotFound(user_id))
}
