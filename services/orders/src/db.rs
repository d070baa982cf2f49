use chrono::{DateTime, Utc};
use serde::Serialize;
use service_kit::{Db, DbError};
use telemetry::db::Query;

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Order {
    pub id: i64,
    pub user_id: i64,
    pub item: String,
    pub quantity: i32,
    pub total_cents: i64,
    pub created_at: DateTime<Utc>,
}

const SELECT_ORDER: Query = Query {
    operation: "SELECT",
    collection: "orders",
    text: "SELECT id, user_id, item, quantity, total_cents, created_at FROM orders WHERE id = $1",
};

pub async fn find_order(db: &Db, id: i64) -> Result<Option<Order>, DbError> {
    db.traced(
        SELECT_ORDER,
        sqlx::query_as::<_, Order>(SELECT_ORDER.text)
            .bind(id)
            .fetch_optional(db.pool()),
    )
    .await
}

const SELECT_USER_ORDERS: Query = Query {
    operation: "SELECT",
    collection: "orders",
    text: "SELECT id, user_id, item, quantity, total_cents, created_at FROM orders \
           WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
};

/// A user's most recent orders.
pub async fn find_orders_of_user(db: &Db, user_id: i64, limit: i64) -> Result<Vec<Order>, DbError> {
    db.traced(
        SELECT_USER_ORDERS,
        sqlx::query_as::<_, Order>(SELECT_USER_ORDERS.text)
            .bind(user_id)
            .bind(limit)
            .fetch_all(db.pool()),
    )
    .await
}
