//! Settings both services read; each service's `Config` embeds this one.

use std::{net::SocketAddr, str::FromStr as _, time::Duration};

use sqlx::postgres::PgConnectOptions;

use crate::{http::RouteSettings, limits::Limits};
use env_config::{ConfigError, at_least_one, on_off, parsed, required};
use telemetry::TelemetryConfig;

/// Every variable [`CommonConfig::from_env`] reads itself (besides the telemetry ones).
pub const ENV_VARS: &[&str] = &[
    "DATABASE_URL",
    "LISTEN_ADDR",
    "DATABASE_STARTUP_TIMEOUT_MS",
    "DATABASE_MAX_CONNECTIONS",
    "DEMO_FAULTS",
    "REQUEST_TIMEOUT_MS",
    "MAX_CONCURRENT_REQUESTS",
];

#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// `DATABASE_URL` (required).
    pub database: PgConnectOptions,
    /// `LISTEN_ADDR`.
    pub listen_addr: SocketAddr,
    /// `DATABASE_STARTUP_TIMEOUT_MS` (default 30000): how long start-up waits for Postgres,
    /// which compose starts beside the services.
    pub database_startup_timeout: Duration,
    /// `DATABASE_MAX_CONNECTIONS` (default 10).
    pub database_max_connections: u32,
    /// `DEMO_FAULTS=on`: the workshop's baggage-driven faults (see [`crate::demo`]).
    pub demo_faults: bool,
    pub limits: Limits,
    pub telemetry: TelemetryConfig,
}

impl CommonConfig {
    pub fn from_env(
        service_name: &str,
        service_version: &str,
        default_listen_addr: &str,
    ) -> Result<Self, ConfigError> {
        const DATABASE_URL: &str = "DATABASE_URL";
        let url = required(DATABASE_URL)?;
        // sqlx's parse errors can echo the URL, password included: say only what is wrong.
        let not_postgres = || {
            ConfigError::new(
                DATABASE_URL,
                "not a postgres://user:password@host:port/db URL",
            )
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(not_postgres());
        }
        let database = PgConnectOptions::from_str(&url).map_err(|_| not_postgres())?;
        let max_connections = at_least_one("DATABASE_MAX_CONNECTIONS", 10)?;
        Ok(Self {
            database,
            listen_addr: parsed(
                "LISTEN_ADDR",
                default_listen_addr
                    .parse()
                    .expect("default listen address is valid"),
            )?,
            database_startup_timeout: Duration::from_millis(parsed(
                "DATABASE_STARTUP_TIMEOUT_MS",
                30_000,
            )?),
            database_max_connections: max_connections,
            demo_faults: on_off("DEMO_FAULTS", false)?,
            limits: Limits {
                request_timeout: Duration::from_millis(parsed("REQUEST_TIMEOUT_MS", 10_000)?),
                max_concurrent_requests: at_least_one("MAX_CONCURRENT_REQUESTS", 1024)?,
            },
            telemetry: TelemetryConfig::from_env(service_name, service_version)?,
        })
    }

    /// What [`crate::http::with_common_routes`] needs.
    pub fn route_settings(&self) -> RouteSettings {
        RouteSettings {
            demo_faults: self.demo_faults,
            limits: self.limits,
        }
    }
}
