//! The real Jaeger for tests: every claim about what the learner sees in Jaeger is checked
//! through its query API. A test that needs it fails, saying how to install it, when the
//! binary is missing: it is never skipped.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicUsize, Ordering},
};

use local_jaeger::{Config, INSTALL_HINT, Jaeger, Ports, prometheus::Prometheus};

/// The Jaeger binary; panics with how to install it when there is none.
pub fn jaeger_binary() -> PathBuf {
    local_jaeger::find_binary().unwrap_or_else(|| {
        panic!(
            "this test needs the Jaeger v2 binary (JAEGER_BIN, `jaeger` on PATH or Go's bin \
             folder) and found none: {INSTALL_HINT}"
        )
    })
}

/// A Jaeger with the configuration compose gives the image, on free ports. No Prometheus:
/// its Monitor tab has nothing to read (see [`monitored_jaeger`]).
pub async fn jaeger() -> Jaeger {
    start_jaeger(&Config::project(), Ports::free()).await
}

/// The Prometheus binary; panics with how to install it when there is none.
pub fn prometheus_binary() -> PathBuf {
    local_jaeger::prometheus::find_binary().unwrap_or_else(|| {
        panic!(
            "this test needs the Prometheus binary (PROMETHEUS_BIN or `prometheus` on PATH) \
             and found none: {}",
            local_jaeger::prometheus::INSTALL_HINT
        )
    })
}

/// Jaeger and the Prometheus its Monitor tab reads, as compose runs them, on free ports.
pub async fn monitored_jaeger() -> (Jaeger, Prometheus) {
    let [port] = ports::free_ports();
    let config = Config::project().with_host("prometheus:9090", &format!("127.0.0.1:{port}"));
    let jaeger = start_jaeger(&config, Ports::free()).await;
    let prometheus = start_prometheus(&jaeger, port).await;
    (jaeger, prometheus)
}

/// Prometheus on `port`, scraping `jaeger`'s spanmetrics; its data in a folder of the
/// temp dir kept across restarts on the same port (as a container's is).
pub async fn start_prometheus(jaeger: &Jaeger, port: u16) -> Prometheus {
    let targets = [(
        "jaeger:8889".to_owned(),
        jaeger
            .span_metrics_addr()
            .expect("deploy/jaeger/jaeger.yaml serves spanmetrics"),
    )]
    .into();
    let dir = std::env::temp_dir().join(format!("prometheus-test-{}-{port}", std::process::id()));
    Prometheus::start(
        &prometheus_binary(),
        &local_jaeger::prometheus::project_config(),
        port,
        &targets,
        &dir,
    )
    .await
    .unwrap_or_else(|e| panic!("start Prometheus: {e}"))
}

/// A Jaeger with `config` on `ports`; its log in the temp folder, named in every failure.
pub async fn start_jaeger(config: &Config, ports: Ports) -> Jaeger {
    try_start(config, ports)
        .await
        .unwrap_or_else(|e| panic!("start Jaeger: {e}"))
}

async fn try_start(config: &Config, ports: Ports) -> Result<Jaeger, String> {
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    let log = std::env::temp_dir().join(format!(
        "jaeger-test-{}-{}.log",
        std::process::id(),
        STARTED.fetch_add(1, Ordering::Relaxed)
    ));
    Jaeger::start(&jaeger_binary(), config, ports, &log).await
}
