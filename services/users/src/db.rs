use serde::Serialize;
use service_kit::{Db, DbError};
use telemetry::db::Query;

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
}

const SELECT_USER: Query = Query {
    operation: "SELECT",
    collection: "users",
    text: "SELECT id, name, email FROM users WHERE id = $1",
};

pub async fn find_user(db: &Db, id: i64) -> Result<Option<User>, DbError> {
    db.traced(
        SELECT_USER,
        sqlx::query_as::<_, User>(SELECT_USER.text)
            .bind(id)
            .fetch_optional(db.pool()),
    )
    .await
}

const SELECT_USERS: Query = Query {
    operation: "SELECT",
    collection: "users",
    text: "SELECT id, name, email FROM users WHERE id = ANY($1) ORDER BY id",
};

pub async fn find_users(db: &Db, ids: &[i64]) -> Result<Vec<User>, DbError> {
    db.traced(
        SELECT_USERS,
        sqlx::query_as::<_, User>(SELECT_USERS.text)
            .bind(ids)
            .fetch_all(db.pool()),
    )
    .await
}

/// `demo.fail=db`: the user query with a division by zero the server really executes.
const FAILING_SELECT: Query = Query {
    operation: "SELECT",
    collection: "users",
    text: "SELECT id, name, email FROM users WHERE id = $1 / 0",
};

pub async fn failing_query(db: &Db, id: i64) -> Result<(), DbError> {
    db.traced(
        FAILING_SELECT,
        sqlx::query(FAILING_SELECT.text).bind(id).execute(db.pool()),
    )
    .await
    .map(drop)
}
