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
