//! The users service: `GET /users/{user_id}` from its own database.

mod config;
mod db;
mod error;
mod routes;

use std::future::Future;

pub use config::Config;
use service_kit::{Db, StartupError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/users");

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub serving: service_kit::http::Serving,
}

pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let db = Db::start(&config.common, &MIGRATOR).await?;
    let serving = config.common.serving();
    let router = routes::router(AppState { db, serving });
    service_kit::serve_on(config.common.listen_addr, router, shutdown).await
}
