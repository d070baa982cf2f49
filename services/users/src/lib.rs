//! The users service, over its own database: `GET /users/{user_id}` (the tutorial's
//! second service) and `GET /users?ids=` (the batched call of the N+1 lesson), with the
//! workshop's baggage-driven faults (`demo.delay_ms`, `demo.fail`).

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
    pub route_settings: service_kit::http::RouteSettings,
}

pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let db = Db::start(&config.common, &MIGRATOR).await?;
    let route_settings = config.common.route_settings();
    let router = routes::router(AppState { db, route_settings });
    service_kit::serve_on(config.common.listen_addr, router, shutdown).await
}
