//! Database client spans with the current database semantic conventions. The query text is
//! the statement with `$1` placeholders; values are bound separately and never recorded.

use std::future::Future;

use sqlx::postgres::PgConnectOptions;
use tracing::{Instrument as _, field::Empty};

/// Where the queries go, recorded on every span (`db.namespace`, `server.*`).
#[derive(Debug, Clone)]
pub struct DbTarget {
    namespace: String,
    address: String,
    port: i64,
}

impl DbTarget {
    pub fn from_options(options: &PgConnectOptions) -> Self {
        Self {
            namespace: options.get_database().unwrap_or("postgres").to_owned(),
            address: options.get_host().to_owned(),
            port: i64::from(options.get_port()),
        }
    }
}

/// A statement known at compile time: its text doubles as the low-cardinality span data.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    pub operation: &'static str,
    pub collection: &'static str,
    pub text: &'static str,
}

impl DbTarget {
    /// Runs `future` (the sqlx call for `query`) inside a `db-query` client span, marking the
    /// span as failed with `error.type` when it returns an error.
    pub async fn run_in_span<T>(
        &self,
        query: Query,
        future: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        let span = tracing::info_span!(
            "db-query",
            otel.kind = "client",
            db.system.name = "postgresql",
            db.namespace = self.namespace.as_str(),
            db.operation.name = query.operation,
            db.collection.name = query.collection,
            db.query.summary = format_args!("{} {}", query.operation, query.collection),
            db.query.text = query.text,
            server.address = self.address.as_str(),
            server.port = self.port,
            db.response.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
            otel.status_description = Empty,
        );
        let result = future.instrument(span.clone()).await;
        if let Err(error) = &result {
            let sqlstate = match error {
                sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
                _ => None,
            };
            if let Some(code) = &sqlstate {
                span.record("db.response.status_code", code.as_str());
            }
            crate::error::record(
                &span,
                sqlstate.as_deref().unwrap_or(error_type(error)),
                &error.to_string(),
            );
        }
        result
    }
}

/// A low-cardinality class for a sqlx failure that carries no SQLSTATE.
pub fn error_type(error: &sqlx::Error) -> &'static str {
    match error {
        sqlx::Error::PoolTimedOut => "pool_timeout",
        sqlx::Error::PoolClosed => "pool_closed",
        sqlx::Error::Io(_) => "io",
        sqlx::Error::Tls(_) => "tls",
        sqlx::Error::Protocol(_) => "protocol",
        sqlx::Error::RowNotFound => "row_not_found",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "decode",
        sqlx::Error::Database(_) => "database",
        _ => "other",
    }
}
