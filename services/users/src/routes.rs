use std::collections::HashMap;

use axum::{
    Extension, Json, Router,
    extract::{Query, State},
    routing::get,
};
use service_kit::{
    demo::{FailAt, Faults},
    extract::{PathId, parse_id},
};
use telemetry::OpenTelemetrySpanExt as _;

use crate::{
    AppState,
    db::{self, User},
    error::AppError,
};

/// The batch endpoint takes at most this many ids (orders asks for at most 50).
const MAX_IDS: usize = 100;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/users/{user_id}", get(get_user))
        .route("/users", get(get_users))
        .with_state(state.clone());
    service_kit::http::with_common_routes(routes, state.db, state.route_settings)
}

async fn get_user(
    State(state): State<AppState>,
    faults: Option<Extension<Faults>>,
    PathId(user_id): PathId,
) -> Result<Json<User>, AppError> {
    // Business context on the server span itself: the tutorial's tree has no extra span here.
    tracing::Span::current().set_attribute("user.id", user_id);
    if let Some(Extension(faults)) = faults {
        apply_faults(&state, faults, user_id).await?;
    }
    db::find_user(&state.db, user_id)
        .await?
        .map(Json)
        .ok_or(AppError::UserNotFound(user_id))
}

/// `GET /users?ids=1,2,3`: the batched side of the N+1 lesson, one query for all.
async fn get_users(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<User>>, AppError> {
    let raw = params.get("ids").map(String::as_str).unwrap_or_default();
    let ids: Vec<i64> = raw
        .split(',')
        .map(|id| parse_id(id.trim()))
        .collect::<Option<_>>()
        .filter(|ids: &Vec<i64>| (1..=MAX_IDS).contains(&ids.len()))
        .ok_or(AppError::InvalidIds(MAX_IDS))?;
    tracing::Span::current().set_attribute("users.count", ids.len() as i64);
    Ok(Json(db::find_users(&state.db, &ids).await?))
}

async fn apply_faults(state: &AppState, faults: Faults, user_id: i64) -> Result<(), AppError> {
    if let Some(delay) = faults.delay {
        demo_delay(delay).await;
    }
    match faults.fail {
        Some(FailAt::Users) => Err(demo_fault()),
        Some(FailAt::Db) => db::failing_query(&state.db, user_id)
            .await
            .map_err(AppError::from),
        None => Ok(()),
    }
}

#[tracing::instrument(name = "demo-delay", skip_all, fields(demo.delay_ms = delay.as_millis() as i64))]
async fn demo_delay(delay: std::time::Duration) {
    tokio::time::sleep(delay).await;
}

fn demo_fault() -> AppError {
    let span = tracing::info_span!(
        "demo-fault",
        error.type = "demo_fault",
        otel.status_code = "ERROR",
        otel.status_description = "failure injected by baggage demo.fail=users",
    );
    let _entered = span.enter();
    AppError::DemoFault
}
