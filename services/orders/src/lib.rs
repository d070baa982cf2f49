//! The orders service: `GET /orders/{order_id}` reads the order from its own database and
//! asks the users service for the order's user; `POST /orders` places an order and queues
//! its confirmation, which the service's second binary, `orders-worker` ([`worker`]),
//! sends.

pub mod config;
mod db;
mod error;
mod outbox;
mod routes;
mod users_client;
pub mod worker;

use std::future::Future;

pub use config::Config;
use service_kit::{Db, StartupError};
use users_client::UsersClient;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/orders");

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub users: UsersClient,
    pub route_settings: service_kit::http::RouteSettings,
}

pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let db = Db::start(&config.common, &MIGRATOR).await?;
    let users = UsersClient::new(config.users_url, config.users_timeout, config.propagation);
    let route_settings = config.common.route_settings();
    let router = routes::router(AppState {
        db,
        users,
        route_settings,
    });
    service_kit::serve_on(config.common.listen_addr, router, shutdown).await
}
