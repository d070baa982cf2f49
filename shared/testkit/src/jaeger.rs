//! The real Jaeger for tests: every claim about what the learner sees in Jaeger is checked
//! through its query API. A test that needs it fails, saying how to install it, when the
//! binary is missing: it is never skipped.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicUsize, Ordering},
};

use local_jaeger::{Config, INSTALL_HINT, Jaeger, Ports};

/// The Jaeger binary; panics with how to install it when there is none.
pub fn jaeger_binary() -> PathBuf {
    local_jaeger::find_binary().unwrap_or_else(|| {
        panic!(
            "this test needs the Jaeger v2 binary (JAEGER_BIN, `jaeger` on PATH or Go's bin \
             folder) and found none: {INSTALL_HINT}"
        )
    })
}

/// A Jaeger with the image's built-in all-in-one configuration, on free ports.
pub async fn jaeger() -> Jaeger {
    start_jaeger(&Config::AllInOne, Ports::free()).await
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
