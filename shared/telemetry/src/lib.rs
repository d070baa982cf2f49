//! Everything OpenTelemetry, shared by every binary of the project: `init` once in `main`,
//! then the server layer, the traced HTTP client and the database span helper.

pub mod baggage;
pub mod client;
pub mod config;
pub mod db;
mod export;
mod head_sampling;
mod init;
mod logs;
pub mod messaging;
pub mod propagation;
pub mod server;
pub mod signal;

pub use config::TelemetryConfig;
#[doc(hidden)]
pub use export::CountingExporter;
pub use init::{InitError, TelemetryGuard, init};
#[doc(hidden)]
pub use init::{install_propagators, provider_with, subscriber};
pub use tracing_opentelemetry::OpenTelemetrySpanExt;
