//! What both services need around their handlers, written once: configuration from the
//! environment, the Postgres pool with start-up retries and migrations, the JSON error
//! shape, the id extractor, health probes, graceful serving, and the exit codes of `main`.

pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod extract;
pub mod http;
pub mod limits;
mod serve;

pub use config::CommonConfig;
pub use db::{Db, DbError};
pub use error::{StartupError, json_error};
pub use serve::{bad_setting, bind, exit_code, serve, serve_on, shutdown_signal};
