//! The orders service: `GET /orders/{order_id}` reads the order from its own database and
//! asks the users service for the order's user.

pub mod config;
mod db;
mod error;
mod routes;
mod users_client;

use std::future::Future;

pub use config::Config;
use service_kit::{Db, StartupError};
use users_client::UsersClient;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/orders");

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub users: UsersClient,
    pub demo_faults: bool,
}

pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let db = Db::start(&config.common, &MIGRATOR).await?;
    let users = UsersClient::new(config.users_url, config.users_timeout, config.propagation);
    let demo_faults = config.common.demo_faults;
    let router = routes::router(AppState {
        db,
        users,
        demo_faults,
    });
    service_kit::serve_on(config.common.listen_addr, router, shutdown).await
}
