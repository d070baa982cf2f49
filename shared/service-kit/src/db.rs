//! The Postgres pool: connected with bounded retries at start-up, migrated, and every query
//! run inside a `db-query` span.

use std::{future::Future, time::Duration};

use sqlx::{
    Connection as _, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use telemetry::db::{DbTarget, Query};
use tokio::time::Instant;

use crate::{CommonConfig, StartupError};

/// A request waits at most this long for a connection, so a database outage answers 503
/// quickly instead of hanging: well inside a caller's budget (orders gives users 2 s), and
/// fewer requests pile up while the outage lasts.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct Db {
    pool: PgPool,
    target: DbTarget,
}

impl Db {
    /// Connects, retrying with backoff until `database_startup_timeout`, because compose may
    /// start a service before Postgres accepts connections.
    pub async fn connect(config: &CommonConfig) -> Result<Self, StartupError> {
        let options: PgConnectOptions = config.database.clone();
        let target = DbTarget::from_options(&options);
        let pool_options = PgPoolOptions::new()
            .max_connections(config.database_max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // The default pings the server every time a connection is handed out: one extra
            // round trip per query. Ping only connections that sat idle (as HikariCP does), so
            // a busy service pays nothing and one that lived through a database restart
            // discards its dead connections instead of failing a request on each.
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_IF_IDLE_FOR {
                        connection.ping().await?;
                    }
                    Ok(true)
                })
            });

        let deadline = Instant::now() + config.database_startup_timeout;
        let mut backoff = Duration::from_millis(100);
        loop {
            match pool_options.clone().connect_with(options.clone()).await {
                Ok(pool) => return Ok(Self { pool, target }),
                Err(error) if is_permanent(&error) => {
                    return Err(StartupError::Database(error.to_string()));
                }
                Err(error) if Instant::now() + backoff >= deadline => {
                    return Err(StartupError::DatabaseUnreachable {
                        waited: config.database_startup_timeout,
                        last_error: error.to_string(),
                    });
                }
                Err(error) => {
                    tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "database not reachable yet");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Connects (with retries) and applies the service's migrations: a service's start.
    pub async fn start(config: &CommonConfig, migrator: &Migrator) -> Result<Self, StartupError> {
        let db = Self::connect(config).await?;
        db.migrate(migrator).await?;
        Ok(db)
    }

    /// Applies the service's migrations. sqlx holds a Postgres advisory lock while it
    /// migrates, so two replicas starting at once apply each migration exactly once.
    pub async fn migrate(&self, migrator: &Migrator) -> Result<(), StartupError> {
        migrator
            .run(&self.pool)
            .await
            .map_err(StartupError::Migrate)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs one query inside a `db-query` span (see [`telemetry::db`]); the span keeps the
    /// details of a failure, the caller gets what to answer.
    pub async fn traced<T>(
        &self,
        query: Query,
        future: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, DbError> {
        Ok(self.target.run_in_span(query, future).await?)
    }

    /// For `/readyz`: deliberately untraced.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop)
    }
}

/// Wrong credentials or a missing database will not fix themselves by waiting.
fn is_permanent(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("28") || code == "3D000"),
        sqlx::Error::Configuration(_) | sqlx::Error::Tls(_) => true,
        _ => false,
    }
}

/// What a failed query means for the answer; both services map it the same way.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable")]
    Unavailable,
    /// The db-query span carries the details; the client gets no internals.
    #[error("internal error")]
    Internal,
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            Self::Unavailable
        } else {
            Self::Internal
        }
    }
}

impl DbError {
    pub fn status_and_code(&self) -> (axum::http::StatusCode, &'static str) {
        match self {
            Self::Unavailable => (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
            ),
            Self::Internal => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// Errors that mean "the database cannot be reached right now": answered with 503.
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_) => true,
        // Class 08: connection exception; 57P0x: shutting down / cannot connect now.
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}
