//! Test-only helpers (a dev-dependency, never a dependency): real parts for real tests.
//! - [`postgres`]: one PostgreSQL server per test process, fresh databases per test;
//! - [`spawn_service`]: a project binary as a child process on a random port;
//! - [`stack`]: both services wired to a database each and a collector (our OTLP receiver
//!   or the real Jaeger);
//! - [`jaeger`]: the real Jaeger v2 binary, read through its query API.

mod jaeger;
mod postgres;
mod process;
pub mod stack;
pub mod traced;

pub use jaeger::{jaeger, jaeger_binary, start_jaeger};
pub use local_jaeger;
pub use otlp_receiver::Receiver;
pub use postgres::{Postgres, postgres};
pub use process::{ServiceProcess, binary, run_to_exit, spawn_service};

/// A port that was free a moment ago, for "nothing listens here" tests.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port on 127.0.0.1")
        .port()
}

/// `N` distinct ports that were free a moment ago: all are held until all are chosen, so
/// two calls cannot hand out the same one.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local addr").port())
}

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

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("static client settings")
}
