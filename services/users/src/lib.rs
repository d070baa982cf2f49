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
}

pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let db = Db::connect(&config.common).await?;
    db.migrate(&MIGRATOR).await?;
    let listener = service_kit::bind(config.common.listen_addr).await?;
    service_kit::serve(listener, routes::router(AppState { db }), shutdown).await
}
