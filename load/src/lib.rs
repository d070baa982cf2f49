//! `load`: open-loop HTTP load that starts one trace per request.
//!
//! Requests leave at scheduled instants whatever the server's speed; latency is measured
//! from the scheduled instant (corrected for coordinated omission) and from the actual send.
//! Every request is the root client span of its own trace, exported like any service's.

pub mod cli;
mod report;
mod run;
pub mod schedule;
mod stats;

pub use report::counts;
pub use run::run;

/// What `load` reads from the environment besides the telemetry variables.
pub const ENV_VARS: &[&str] = &["JAEGER_UI_URL"];
