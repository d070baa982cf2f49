//! The request path of `GET /orders/{order_id}`, top to bottom.

use axum::{Json, Router, extract::State, routing::get};
use serde::Serialize;
use service_kit::extract::PathId;

use crate::{
    AppState,
    db::{self, Order},
    error::AppError,
    users_client::User,
};

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/orders/{order_id}", get(get_order))
        .with_state(state.clone());
    service_kit::http::with_common_routes(routes, state.db)
}

/// `user` is `null` when the users service has no such user: the order still exists and is
/// worth answering, and the dangling reference is visible in the answer and in the trace
/// (the users server span answered 404, the enrich-order span says `user.found=false`).
#[derive(Debug, Serialize)]
pub struct OrderWithUser {
    pub order: Order,
    pub user: Option<User>,
}

async fn get_order(
    State(state): State<AppState>,
    PathId(order_id): PathId,
) -> Result<Json<OrderWithUser>, AppError> {
    let order = fetch_order(&state, order_id).await?;
    let user = enrich_order(&state, &order).await?;
    Ok(Json(OrderWithUser { order, user }))
}

#[tracing::instrument(name = "fetch-order", skip_all, fields(order.id = order_id))]
async fn fetch_order(state: &AppState, order_id: i64) -> Result<Order, AppError> {
    db::find_order(&state.db, order_id)
        .await?
        .ok_or(AppError::OrderNotFound(order_id))
}

#[tracing::instrument(
    name = "enrich-order",
    skip_all,
    fields(user.id = order.user_id, user.found = tracing::field::Empty)
)]
async fn enrich_order(state: &AppState, order: &Order) -> Result<Option<User>, AppError> {
    let user = state.users.get_user(order.user_id).await?;
    tracing::Span::current().record("user.found", user.is_some());
    Ok(user)
}
