//! The settings of `orders-worker`: the database and users settings orders reads, and the
//! worker's own.

use std::time::Duration;

use env_config::{ConfigError, at_least_one, optional, parsed};
use service_kit::CommonConfig;
use url::Url;

/// The variables the worker reads beyond [`service_kit::config::ENV_VARS`], the telemetry
/// ones, and orders' `USERS_URL` and `USERS_TIMEOUT_MS`.
pub const ENV_VARS: &[&str] = &[
    "ASYNC_CONTEXT",
    "DEMO_PITFALL",
    "OUTBOX_BATCH_SIZE",
    "OUTBOX_POLL_INTERVAL_MS",
    "OUTBOX_MAX_ATTEMPTS",
    "OUTBOX_RETRY_DELAY_MS",
];

/// What the consumer does with the context a message carries (`ASYNC_CONTEXT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncContext {
    /// `child` (default): each message's `process` span continues the producer's trace.
    Child,
    /// `link`: a new trace per batch, its span linked to every producer of the batch.
    Link,
    /// `off`: the headers are ignored; every message starts an unrelated trace.
    Off,
}

/// The workshop's Rust pitfalls (`DEMO_PITFALL`), each a way to lose a trace's parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pitfall {
    /// `spawn`: the users call moved to `tokio::spawn` without `.in_current_span()`.
    Spawn,
    /// `context`: the message's OpenTelemetry context attached to the thread, but never
    /// given to the tracing span.
    Context,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub common: CommonConfig,
    pub users_url: Url,
    pub users_timeout: Duration,
    /// `PROPAGATION`, as orders reads it: `off` sends the calls to users without context.
    pub propagation: bool,
    pub async_context: AsyncContext,
    pub pitfall: Option<Pitfall>,
    /// `OUTBOX_BATCH_SIZE` (default 10): messages claimed, and processed, together.
    pub batch_size: i64,
    /// `OUTBOX_POLL_INTERVAL_MS` (default 200): the pause after a poll that found nothing.
    pub poll_interval: Duration,
    /// `OUTBOX_MAX_ATTEMPTS` (default 5): tries before a message is parked.
    pub max_attempts: i32,
    /// `OUTBOX_RETRY_DELAY_MS` (default 500): the pause before the second try, doubled for
    /// each one after.
    pub retry_delay: Duration,
}

impl WorkerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let orders = crate::Config::from_env_as("orders-worker", "0.0.0.0:8082")?;
        let batch_size: i64 = at_least_one("OUTBOX_BATCH_SIZE", 10)?;
        if batch_size > 1000 {
            return Err(ConfigError::new("OUTBOX_BATCH_SIZE", "at most 1000"));
        }
        Ok(Self {
            common: orders.common,
            users_url: orders.users_url,
            users_timeout: orders.users_timeout,
            propagation: orders.propagation,
            async_context: async_context()?,
            pitfall: pitfall()?,
            batch_size,
            poll_interval: Duration::from_millis(at_least_one("OUTBOX_POLL_INTERVAL_MS", 200)?),
            max_attempts: at_least_one("OUTBOX_MAX_ATTEMPTS", 5)?,
            retry_delay: Duration::from_millis(parsed("OUTBOX_RETRY_DELAY_MS", 500)?),
        })
    }
}

fn async_context() -> Result<AsyncContext, ConfigError> {
    const VAR: &str = "ASYNC_CONTEXT";
    match optional(VAR)?.map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("child") => Ok(AsyncContext::Child),
        Some("link") => Ok(AsyncContext::Link),
        Some("off") => Ok(AsyncContext::Off),
        Some(other) => Err(ConfigError::new(
            VAR,
            format!("{other:?}: expected child, link or off"),
        )),
    }
}

fn pitfall() -> Result<Option<Pitfall>, ConfigError> {
    const VAR: &str = "DEMO_PITFALL";
    match optional(VAR)?.map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("off") => Ok(None),
        Some("spawn") => Ok(Some(Pitfall::Spawn)),
        Some("context") => Ok(Some(Pitfall::Context)),
        Some(other) => Err(ConfigError::new(
            VAR,
            format!("{other:?}: expected spawn, context or off"),
        )),
    }
}
