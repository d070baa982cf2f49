//! Test-only helpers (a dev-dependency, never a dependency): real parts for real tests.
//! - [`postgres`]: one PostgreSQL server per test process, fresh databases per test;
//! - [`spawn_service`]: a project binary as a child process on a random port (and
//!   [`closed_pipe`], an output nobody reads any more);
//! - [`stack`]: both services wired to a database each and a collector (our OTLP receiver
//!   or the real Jaeger);
//! - [`jaeger`]: the real Jaeger v2 binary, read through its query API;
//! - [`wiretap`]: a relay that records what a service sent on the wire.

mod jaeger;
mod postgres;
mod process;
pub mod stack;
pub mod traced;
pub mod wiretap;

pub use jaeger::{
    jaeger, jaeger_binary, monitored_jaeger, prometheus_binary, start_jaeger, start_prometheus,
};
pub use local_jaeger;
pub use otlp_receiver::Receiver;
pub use postgres::{Postgres, postgres};
pub use process::{ServiceProcess, binary, closed_pipe, run_to_exit, spawn_program, spawn_service};

/// Ports free when drawn and leased to the test process (the picker Jaeger's listeners
/// get too); also for "nothing listens here" tests, where no other test may start a server.
pub use ports::{free_port, free_ports};

/// The one span of `service` named `name` among `spans`; fails the test, listing what
/// arrived, when there is none or more than one.
pub fn only<'a>(
    spans: &'a [otlp_receiver::ReceivedSpan],
    service: &str,
    name: &str,
) -> &'a otlp_receiver::ReceivedSpan {
    let found: Vec<_> = spans
        .iter()
        .filter(|s| s.service_name == service && s.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one {service}/{name} span in {spans:#?}"
    );
    found[0]
}

/// Polls `check` every 100 ms until it gives a value, for things that happen in their own
/// time (a log line, a trace in Jaeger, a process gone); panics after `timeout` with
/// `failure()`, which can show what was seen instead.
pub async fn eventually<T, F, Fut>(
    timeout: std::time::Duration,
    mut check: F,
    failure: impl Fn() -> String,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {timeout:?}: {}",
            failure()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("static client settings")
}
