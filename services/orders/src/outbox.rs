//! The transactional outbox in orders' database: a message is written in the transaction
//! that writes its order, and `orders-worker` claims pending messages with
//! `FOR UPDATE SKIP LOCKED`, so several workers never take the same one and a worker that
//! dies mid-batch releases its claim with its transaction.
//!
//! Our own few statements rather than a queue crate: the lesson is what a message carries
//! and what the consumer does with it (one trace, links, nothing), and the job runners on
//! crates.io (graphile_worker, apalis, sqlxmq) own the consuming loop and run one job per
//! task, so the batch that links its producers could not be written; pgmq needs a Postgres
//! extension that Debian's server package does not ship.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, types::Json};
use telemetry::{db::Query, messaging::Headers};

/// Where order confirmations are queued (`messaging.destination.name`).
pub const CONFIRMATIONS: &str = "order-confirmations";

/// What a confirmation message says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    pub order_id: i64,
    pub user_id: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub struct Message {
    pub id: i64,
    pub payload: Json<Confirmation>,
    pub headers: Json<Headers>,
    /// Tries before this one.
    pub attempts: i32,
}

pub const INSERT_MESSAGE: Query = Query {
    operation: "INSERT",
    collection: "outbox",
    text: "INSERT INTO outbox (destination, payload, headers) VALUES ($1, $2, $3) RETURNING id",
};

pub async fn enqueue(
    connection: &mut PgConnection,
    destination: &str,
    payload: &Confirmation,
    headers: &Headers,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(INSERT_MESSAGE.text)
        .bind(destination)
        .bind(Json(payload))
        .bind(Json(headers))
        .fetch_one(connection)
        .await
}

/// Untraced: the worker polls several times a second, and an empty poll is not a trace.
const CLAIM: &str = "SELECT id, payload, headers, attempts FROM outbox \
     WHERE destination = $1 AND processed_at IS NULL AND parked_at IS NULL \
       AND available_at <= now() \
     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED";

/// Up to `limit` pending messages, locked until the transaction of `connection` ends.
pub async fn claim(
    connection: &mut PgConnection,
    destination: &str,
    limit: i64,
) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as(CLAIM)
        .bind(destination)
        .bind(limit)
        .fetch_all(connection)
        .await
}

pub const CONFIRM: Query = Query {
    operation: "INSERT",
    collection: "order_confirmations",
    text: "WITH sent AS (INSERT INTO order_confirmations (message_id, order_id) \
           VALUES ($1, $2)) \
           UPDATE outbox SET processed_at = now(), attempts = attempts + 1 WHERE id = $1",
};

/// The message's work is done: its confirmation is recorded and it is never claimed again.
pub async fn confirm(connection: &mut PgConnection, message: &Message) -> Result<(), sqlx::Error> {
    sqlx::query(CONFIRM.text)
        .bind(message.id)
        .bind(message.payload.order_id)
        .execute(connection)
        .await
        .map(drop)
}

pub const RETRY: Query = Query {
    operation: "UPDATE",
    collection: "outbox",
    text: "UPDATE outbox SET attempts = attempts + 1, last_error = $2, \
           available_at = now() + $3 * interval '1 millisecond' WHERE id = $1",
};

/// The try failed: claimable again after `after`.
pub async fn retry(
    connection: &mut PgConnection,
    message: &Message,
    error: &str,
    after: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(RETRY.text)
        .bind(message.id)
        .bind(error)
        .bind(after.as_millis() as f64)
        .execute(connection)
        .await
        .map(drop)
}

pub const PARK: Query = Query {
    operation: "UPDATE",
    collection: "outbox",
    text: "UPDATE outbox SET attempts = attempts + 1, last_error = $2, parked_at = now() \
           WHERE id = $1",
};

/// The message is given up on: kept, with its last error, for a person to look at.
pub async fn park(
    connection: &mut PgConnection,
    message: &Message,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(PARK.text)
        .bind(message.id)
        .bind(error)
        .execute(connection)
        .await
        .map(drop)
}
