//! The project's system under test: a collector (our OTLP receiver, or the real Jaeger), a
//! database per service, and the users and orders binaries wired to them, each on a random
//! port.

use std::process::ExitStatus;

use local_jaeger::Jaeger;
use otlp_receiver::Receiver;

use crate::{Postgres, ServiceProcess, http_client, postgres, spawn_service};

/// Where the services' spans go: our receiver (every span, counted) or Jaeger (what the
/// learner sees).
pub trait Collector {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for OTLP/gRPC.
    fn otlp_endpoint(&self) -> String;
}

impl Collector for Receiver {
    fn otlp_endpoint(&self) -> String {
        self.grpc_endpoint()
    }
}

impl Collector for Jaeger {
    fn otlp_endpoint(&self) -> String {
        Jaeger::otlp_endpoint(self)
    }
}

/// Settings every service under test gets: spans to the collector, exported quickly.
fn otel_env(collector: &impl Collector, service: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_SERVICE_NAME", service.to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.otlp_endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
    ]
}

fn with_extra(
    mut env: Vec<(&'static str, String)>,
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    env.extend(extra.iter().cloned());
    env
}

pub async fn spawn_users(
    collector: &impl Collector,
    database_url: &str,
    extra: &[(&'static str, String)],
) -> ServiceProcess {
    let mut env = otel_env(collector, "users");
    env.push(("DATABASE_URL", database_url.to_owned()));
    spawn_service("users", &with_extra(env, extra)).await
}

pub async fn spawn_orders(
    collector: &impl Collector,
    database_url: &str,
    users_url: &str,
    extra: &[(&'static str, String)],
) -> ServiceProcess {
    let mut env = otel_env(collector, "orders");
    env.push(("DATABASE_URL", database_url.to_owned()));
    env.push(("USERS_URL", users_url.to_owned()));
    spawn_service("orders", &with_extra(env, extra)).await
}

/// `orders-worker` on orders' database, calling users at `users_url`: it consumes what
/// `POST /orders` queued.
pub async fn spawn_worker(
    collector: &impl Collector,
    orders_database_url: &str,
    users_url: &str,
    extra: &[(&'static str, String)],
) -> ServiceProcess {
    let mut env = otel_env(collector, "orders-worker");
    env.push(("DATABASE_URL", orders_database_url.to_owned()));
    env.push(("USERS_URL", users_url.to_owned()));
    // Polled often, so a test does not wait for the next poll.
    env.push(("OUTBOX_POLL_INTERVAL_MS", "50".to_owned()));
    spawn_service("orders-worker", &with_extra(env, extra)).await
}

pub struct Stack<C = Receiver> {
    pub postgres: &'static Postgres,
    pub collector: C,
    pub users_db: String,
    pub orders_db: String,
    pub users: ServiceProcess,
    pub orders: ServiceProcess,
    pub client: reqwest::Client,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(&[], &[]).await
    }

    /// `users_env` and `orders_env` are added to (and override) each service's settings.
    pub async fn start_with(
        users_env: &[(&'static str, String)],
        orders_env: &[(&'static str, String)],
    ) -> Self {
        Self::assemble(Receiver::start().await, users_env, orders_env).await
    }
}

impl Stack<Jaeger> {
    /// The services sending their spans to a real Jaeger (all-in-one configuration).
    pub async fn in_jaeger(
        users_env: &[(&'static str, String)],
        orders_env: &[(&'static str, String)],
    ) -> Self {
        Self::assemble(crate::jaeger().await, users_env, orders_env).await
    }

    /// Jaeger's query API.
    pub fn jaeger(&self) -> local_jaeger::Query {
        self.collector.query()
    }
}

impl<C: Collector> Stack<C> {
    pub async fn assemble(
        collector: C,
        users_env: &[(&'static str, String)],
        orders_env: &[(&'static str, String)],
    ) -> Self {
        let postgres = postgres().await;
        let (users_db, orders_db) = tokio::join!(
            postgres.create_database("users"),
            postgres.create_database("orders")
        );
        let users = spawn_users(&collector, &users_db, users_env).await;
        let orders = spawn_orders(&collector, &orders_db, &users.url(), orders_env).await;
        Self {
            postgres,
            collector,
            users_db,
            orders_db,
            users,
            orders,
            client: http_client(),
        }
    }

    /// An `orders-worker` for this stack's orders; `env` is added to its settings.
    pub async fn spawn_worker(&self, env: &[(&'static str, String)]) -> ServiceProcess {
        spawn_worker(&self.collector, &self.orders_db, &self.users.url(), env).await
    }

    pub fn users_db_name(&self) -> &str {
        database_name(&self.users_db)
    }

    pub fn orders_db_name(&self) -> &str {
        database_name(&self.orders_db)
    }

    pub fn postgres_port(&self) -> u16 {
        let url = reqwest::Url::parse(&self.orders_db).expect("database URLs parse");
        url.port().unwrap_or(5432)
    }

    pub async fn orders_sql(&self, sql: &str) {
        execute(&self.orders_db, sql).await;
    }

    pub async fn users_sql(&self, sql: &str) {
        execute(&self.users_db, sql).await;
    }

    /// SIGTERM to orders, then users (callers first, as compose stops them); their exit
    /// statuses. Every span they answered for has been flushed once this returns.
    pub async fn shutdown(&mut self) -> Vec<ExitStatus> {
        vec![self.orders.terminate().await, self.users.terminate().await]
    }
}

fn database_name(url: &str) -> &str {
    url.rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .expect("a database URL ends with its name")
}

async fn execute(url: &str, sql: &str) {
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    sqlx::raw_sql(sql)
        .execute(&mut connection)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
