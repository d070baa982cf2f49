//! The routes of orders, each handler top to bottom: `GET /orders/{order_id}` (the
//! tutorial's trace), `GET /orders?user_id=` (the N+1 lesson) and `POST /orders` (the
//! queued confirmation: the async lesson).

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Deserialize, Serialize};
use service_kit::extract::{JsonBody, PathId, parse_id};
use telemetry::OpenTelemetrySpanExt as _;

use crate::{
    AppState,
    db::{self, NewOrder, Order},
    error::AppError,
    users_client::User,
};

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/orders/{order_id}", get(get_order))
        .route("/orders", get(list_orders).post(create_order))
        .with_state(state.clone());
    service_kit::http::with_common_routes(routes, state.db, state.route_settings)
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
    fetch_order(&state, order_id).await.map(Json)
}

/// The tutorial's `with fetch-order:` block: the query and the enrichment both happen
/// inside it, so Jaeger nests `db-query` and `enrich-order` (and the users call) under it.
#[tracing::instrument(name = "fetch-order", skip_all, fields(order.id = order_id))]
async fn fetch_order(state: &AppState, order_id: i64) -> Result<OrderWithUser, AppError> {
    let order = db::find_order(&state.db, order_id)
        .await?
        .ok_or(AppError::OrderNotFound(order_id))?;
    let user = enrich_order(state, &order).await?;
    Ok(OrderWithUser { order, user })
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

/// One order of a list, in the tutorial's shape: `fetch-order` (order.id) around
/// `enrich-order` and its users call. The list's one query already read the order, so no
/// `db-query` sits in it; the batched strategy has no per-order work and so no such span.
#[tracing::instrument(name = "fetch-order", skip_all, fields(order.id = order.id))]
async fn listed_order(state: &AppState, order: &Order) -> Result<Option<User>, AppError> {
    enrich_order(state, order).await
}

/// How `GET /orders?user_id=` fetches the users of the orders: the N+1 lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    /// One users call after another: a staircase in Jaeger.
    Sequential,
    /// All calls at once: spans side by side.
    Parallel,
    /// One call to `GET /users?ids=...`, answered by one query.
    Batched,
}

const MAX_LIMIT: i64 = 50;

#[derive(Debug, Serialize)]
pub struct OrderList {
    pub orders: Vec<OrderWithUser>,
}

/// `GET /orders?user_id=<id>&limit=<n>&strategy=sequential|parallel|batched`.
async fn list_orders(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<OrderList>, AppError> {
    let user_id =
        params
            .get("user_id")
            .and_then(|raw| parse_id(raw))
            .ok_or(AppError::InvalidQuery(
                "user_id must be a positive 64-bit integer",
            ))?;
    let limit = match params.get("limit") {
        None => 10,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or(AppError::InvalidQuery("limit must be between 1 and 50"))?,
    };
    let strategy = match params.get("strategy").map(String::as_str) {
        None | Some("batched") => Strategy::Batched,
        Some("sequential") => Strategy::Sequential,
        Some("parallel") => Strategy::Parallel,
        Some(_) => {
            return Err(AppError::InvalidQuery(
                "strategy must be sequential, parallel or batched",
            ));
        }
    };
    tracing::Span::current().set_attribute("user.id", user_id);
    let orders = db::find_orders_of_user(&state.db, user_id, limit).await?;
    let users = enrich_orders(&state, &orders, strategy).await?;
    let orders = orders
        .into_iter()
        .zip(users)
        .map(|(order, user)| OrderWithUser { order, user })
        .collect();
    Ok(Json(OrderList { orders }))
}

#[tracing::instrument(
    name = "enrich-orders",
    skip_all,
    fields(fanout.strategy = ?strategy, orders.count = orders.len() as i64)
)]
async fn enrich_orders(
    state: &AppState,
    orders: &[Order],
    strategy: Strategy,
) -> Result<Vec<Option<User>>, AppError> {
    match strategy {
        Strategy::Sequential => {
            let mut users = Vec::with_capacity(orders.len());
            for order in orders {
                users.push(listed_order(state, order).await?);
            }
            Ok(users)
        }
        Strategy::Parallel => {
            let calls = orders.iter().map(|order| listed_order(state, order));
            Ok(futures_util::future::try_join_all(calls).await?)
        }
        Strategy::Batched => {
            let mut ids: Vec<i64> = orders.iter().map(|o| o.user_id).collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let found = state.users.get_users(&ids).await?;
            Ok(orders
                .iter()
                .map(|order| found.iter().find(|u| u.id == order.user_id).cloned())
                .collect())
        }
    }
}

/// The body of `POST /orders`. Unknown fields are refused: a typo (`"quantiy"`) must not
/// become an order of the default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    pub user_id: i64,
    pub item: String,
    pub quantity: i32,
}

/// The demo has no catalogue: every item costs the same.
pub const UNIT_PRICE_CENTS: i64 = 250;
pub const MAX_QUANTITY: i32 = 100;
pub const MAX_ITEM_CHARS: usize = 100;

impl OrderRequest {
    fn validate(self) -> Result<NewOrder, AppError> {
        if self.user_id < 1 {
            return Err(AppError::InvalidOrder(
                "user_id must be a positive 64-bit integer",
            ));
        }
        if !(1..=MAX_QUANTITY).contains(&self.quantity) {
            return Err(AppError::InvalidOrder("quantity must be between 1 and 100"));
        }
        let item = self.item.trim();
        if item.is_empty()
            || item.chars().count() > MAX_ITEM_CHARS
            || item.chars().any(char::is_control)
        {
            return Err(AppError::InvalidOrder(
                "item must be 1 to 100 characters, none of them control characters",
            ));
        }
        Ok(NewOrder {
            user_id: self.user_id,
            item: item.to_owned(),
            quantity: self.quantity,
            total_cents: i64::from(self.quantity) * UNIT_PRICE_CENTS,
        })
    }
}

/// `POST /orders`: checks the user with users, then writes the order and its confirmation
/// message in one transaction; `orders-worker` sends the confirmation later. 201 with the
/// order and where to read it.
async fn create_order(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<OrderRequest>,
) -> Result<Response, AppError> {
    let order = place_order(&state, request.validate()?).await?;
    let location = format!("/orders/{}", order.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(order),
    )
        .into_response())
}

#[tracing::instrument(
    name = "place-order",
    skip_all,
    fields(user.id = new.user_id, order.id = tracing::field::Empty)
)]
async fn place_order(state: &AppState, new: NewOrder) -> Result<Order, AppError> {
    // users owns its data: an order for a user it does not know is refused here.
    if state.users.get_user(new.user_id).await?.is_none() {
        return Err(AppError::UserNotFound(new.user_id));
    }
    let order = db::place_order(&state.db, &new).await?;
    tracing::Span::current().record("order.id", order.id);
    Ok(order)
}
