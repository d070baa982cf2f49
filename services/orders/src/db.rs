use chrono::{DateTime, Utc};
use serde::Serialize;
use service_kit::{Db, DbError};
use telemetry::{db::Query, messaging};
use tracing::Instrument as _;

use crate::outbox;

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

const INSERT_ORDER: Query = Query {
    operation: "INSERT",
    collection: "orders",
    text: "INSERT INTO orders (user_id, item, quantity, total_cents) VALUES ($1, $2, $3, $4) \
           RETURNING id, user_id, item, quantity, total_cents, created_at",
};

/// What `POST /orders` inserts, validated.
#[derive(Debug)]
pub struct NewOrder {
    pub user_id: i64,
    pub item: String,
    pub quantity: i32,
    pub total_cents: i64,
}

/// The order and its confirmation message, in one transaction: both or neither. The
/// message carries the context of its `send` span (see [`telemetry::messaging`]).
pub async fn place_order(db: &Db, new: &NewOrder) -> Result<Order, DbError> {
    let mut tx = db.pool().begin().await?;
    let order: Order = db
        .traced(
            INSERT_ORDER,
            sqlx::query_as(INSERT_ORDER.text)
                .bind(new.user_id)
                .bind(&new.item)
                .bind(new.quantity)
                .bind(new.total_cents)
                .fetch_one(&mut *tx),
        )
        .await?;
    let send = messaging::send_span(outbox::CONFIRMATIONS);
    let confirmation = outbox::Confirmation {
        order_id: order.id,
        user_id: order.user_id,
    };
    async {
        // Captured inside the send span: the consumer's parent, or its link, is this span.
        let headers = messaging::headers(&send);
        let id = db
            .traced(
                outbox::INSERT_MESSAGE,
                outbox::enqueue(&mut tx, outbox::CONFIRMATIONS, &confirmation, &headers),
            )
            .await?;
        send.record("messaging.message.id", id.to_string());
        Ok::<_, DbError>(())
    }
    .instrument(send.clone())
    .await?;
    tx.commit().await?;
    Ok(order)
}
