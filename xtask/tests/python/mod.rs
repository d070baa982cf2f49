//! The Python users service as a child process of a test, beside the Rust services: its
//! virtualenv from xtask::python, its settings from the environment only, killed on drop.
// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;

use testkit::{ServiceProcess, local_jaeger::Jaeger, stack};
use xtask::compose::project_root;

/// target/users-python/venv's interpreter, made on first use (from PyPI) and reused.
pub async fn python() -> PathBuf {
    static VENV: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    VENV.get_or_init(|| async {
        tokio::task::spawn_blocking(|| xtask::python::ensure_venv(&project_root()))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}"))
    })
    .await
    .clone()
}

/// `python app.py` with `env` (and PATH) only, on a free port of 127.0.0.1, started and
/// awaited as the Rust services are; SIGTERM (`terminate`) flushes its spans.
pub async fn spawn_python_users(env: &[(&str, String)]) -> ServiceProcess {
    let app = xtask::python::app(&project_root());
    testkit::spawn_program("users-python", &python().await, &[app.as_os_str()], env).await
}

/// The settings compose gives users-python, pointed at `jaeger` and `database_url`.
pub fn python_env(jaeger: &Jaeger, database_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_SERVICE_NAME", "users-python".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.otlp_endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
        ("DATABASE_URL", database_url.to_owned()),
        ("DEMO_FAULTS", "on".to_owned()),
    ]
}

/// The real Jaeger; the Rust users service (which migrates the users database, and answers
/// for comparison); the Python one on the same database; Rust orders calling the Python one.
pub struct System {
    pub jaeger: Jaeger,
    pub rust_users: String,
    pub python_users: String,
    pub client: reqwest::Client,
    // Dropped in this order: callers first.
    orders: ServiceProcess,
    python: ServiceProcess,
    users: ServiceProcess,
}

impl System {
    pub async fn start() -> Self {
        let (jaeger, postgres, _) = tokio::join!(testkit::jaeger(), testkit::postgres(), python());
        let (users_db, orders_db) = tokio::join!(
            postgres.create_database("users"),
            postgres.create_database("orders")
        );
        let users =
            stack::spawn_users(&jaeger, &users_db, &[("DEMO_FAULTS", "on".to_owned())]).await;
        let python = spawn_python_users(&python_env(&jaeger, &users_db)).await;
        let orders = stack::spawn_orders(
            &jaeger,
            &orders_db,
            &python.url(),
            &[("DEMO_FAULTS", "on".to_owned())],
        )
        .await;
        Self {
            rust_users: users.url(),
            python_users: python.url(),
            jaeger,
            client: testkit::http_client(),
            orders,
            python,
            users,
        }
    }

    pub fn orders_url(&self, path: &str) -> String {
        format!("{}{path}", self.orders.url())
    }

    pub fn jaeger(&self) -> testkit::local_jaeger::Query {
        self.jaeger.query()
    }

    /// Every service stopped gracefully (spans flushed).
    pub async fn stop(mut self) {
        self.orders.terminate().await;
        self.python.terminate().await;
        self.users.terminate().await;
    }
}
