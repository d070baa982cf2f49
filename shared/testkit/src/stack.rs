//! The project's system under test: the OTLP receiver, a database per service, and the
//! users and orders binaries wired to them, each on a random port.

use std::process::ExitStatus;

use otlp_receiver::Receiver;

use crate::{Postgres, ServiceProcess, http_client, postgres, spawn_service};

/// Settings every service under test gets: spans to the test receiver, exported quickly.
fn otel_env(receiver: &Receiver, service: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_SERVICE_NAME", service.to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint()),
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
    receiver: &Receiver,
    database_url: &str,
    extra: &[(&'static str, String)],
) -> ServiceProcess {
    let mut env = otel_env(receiver, "users");
    env.push(("DATABASE_URL", database_url.to_owned()));
    spawn_service("users", &with_extra(env, extra)).await
}

pub async fn spawn_orders(
    receiver: &Receiver,
    database_url: &str,
    users_url: &str,
    extra: &[(&'static str, String)],
) -> ServiceProcess {
    let mut env = otel_env(receiver, "orders");
    env.push(("DATABASE_URL", database_url.to_owned()));
    env.push(("USERS_URL", users_url.to_owned()));
    spawn_service("orders", &with_extra(env, extra)).await
}

pub struct Stack {
    pub postgres: &'static Postgres,
    pub receiver: Receiver,
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
        let postgres = postgres().await;
        let receiver = Receiver::start().await;
        let (users_db, orders_db) = tokio::join!(
            postgres.create_database("users"),
            postgres.create_database("orders")
        );
        let users = spawn_users(&receiver, &users_db, users_env).await;
        let orders = spawn_orders(&receiver, &orders_db, &users.url(), orders_env).await;
        Self {
            postgres,
            receiver,
            users_db,
            orders_db,
            users,
            orders,
            client: http_client(),
        }
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
