use std::time::Duration;

use env_config::{ConfigError, on_off, optional, parsed};
use service_kit::CommonConfig;
use url::Url;

/// The variables orders reads beyond [`service_kit::config::ENV_VARS`] and the telemetry ones.
pub const ENV_VARS: &[&str] = &["USERS_URL", "USERS_TIMEOUT_MS", "PROPAGATION"];

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// `USERS_URL` (default `http://localhost:8081`).
    pub users_url: Url,
    /// `USERS_TIMEOUT_MS` (default 2000): past it, orders answers 504.
    pub users_timeout: Duration,
    /// `PROPAGATION=off` (default on): calls to users carry no trace context, so the same
    /// request shows up as two unrelated traces. Everything is still traced.
    pub propagation: bool,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_as("orders", "0.0.0.0:8080")
    }

    /// The same settings for another binary of the orders service (`orders-worker`), with
    /// its own service name and listen address.
    pub fn from_env_as(service_name: &str, default_listen_addr: &str) -> Result<Self, ConfigError> {
        const USERS_URL: &str = "USERS_URL";
        let raw = optional(USERS_URL)?.unwrap_or_else(|| "http://localhost:8081".to_owned());
        let users_url = Url::parse(&raw)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
            .ok_or_else(|| {
                ConfigError::new(
                    USERS_URL,
                    format!("{raw:?}: expected an http:// URL with a host"),
                )
            })?;
        let timeout_ms: u64 = parsed("USERS_TIMEOUT_MS", 2000)?;
        if timeout_ms == 0 {
            return Err(ConfigError::new("USERS_TIMEOUT_MS", "must be at least 1"));
        }
        Ok(Self {
            common: CommonConfig::from_env(
                service_name,
                env!("CARGO_PKG_VERSION"),
                default_listen_addr,
            )?,
            users_url,
            users_timeout: Duration::from_millis(timeout_ms),
            propagation: on_off("PROPAGATION", true)?,
        })
    }
}
