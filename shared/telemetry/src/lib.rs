//! Everything OpenTelemetry, shared by every binary of the project: [`init`] once in
//! `main` (init.rs: the whole pipeline), then the server layer, the traced HTTP client,
//! the database and messaging spans.

pub mod baggage;
pub mod client;
pub mod config;
pub mod db;
pub mod error;
mod init;
mod logs;
pub mod messaging;
pub mod propagation;
pub mod server;
pub mod signal;

pub use config::TelemetryConfig;
pub use init::{InitError, RETRY, TelemetryGuard, init, propagator, provider, subscriber};
pub use tracing_opentelemetry::OpenTelemetrySpanExt;
