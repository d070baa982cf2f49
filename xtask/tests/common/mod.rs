//! Starting `cargo xtask up` (the built binary) the way a learner does, on free ports.
// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

pub mod engine;
pub mod guide;
pub mod tail;

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
    task::JoinHandle,
};

pub struct Runner {
    child: Child,
    pub orders_port: u16,
    pub users_port: u16,
    /// orders-worker's health probes.
    pub worker_port: u16,
    /// Where the runner's collector takes OTLP/gRPC (when none is named).
    pub otlp_port: u16,
    /// Where it takes OTLP/HTTP.
    pub otlp_http_port: u16,
    /// The throwaway cluster's directory, as the runner printed it.
    pub cluster_dir: PathBuf,
    /// Jaeger's UI, when the runner started one (it says so).
    pub jaeger_url: Option<String>,
    /// Prometheus, when the runner started one (it says so).
    pub prometheus_url: Option<String>,
    /// Every line the runner printed before `ready:`.
    pub started: Vec<String>,
    /// What the runner printed after `ready:`, as it arrives.
    printed: Arc<Mutex<Vec<String>>>,
    drain: JoinHandle<()>,
}

impl Runner {
    /// `env` is added to the runner's environment; `args` to `up`, on ports leased to this
    /// test process (ports.rs). A runner that stops before it is ready fails the test with
    /// what it printed, and who held its ports when one was taken.
    pub async fn start(env: &[(&str, String)], args: &[&str]) -> Self {
        Self::try_start(env, args)
            .await
            .unwrap_or_else(|lines| panic!("runner stopped before ready: {lines:#?}"))
    }

    async fn try_start(env: &[(&str, String)], args: &[&str]) -> Result<Self, Vec<String>> {
        let bin_dir = testkit::binary("orders").parent().unwrap().to_path_buf();
        for bin in ["orders-worker", "users", "load", "traceview"] {
            testkit::binary(bin);
        }
        let drawn = testkit::free_ports::<7>();
        let [
            orders_port,
            users_port,
            worker_port,
            otlp_port,
            otlp_http_port,
            jaeger_port,
            prometheus_port,
        ] = drawn;
        let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["up", "--orders-port", &orders_port.to_string()])
            .args(["--users-port", &users_port.to_string()])
            .args(["--worker-port", &worker_port.to_string()])
            .args(["--otlp-port", &otlp_port.to_string()])
            .args(["--otlp-http-port", &otlp_http_port.to_string()])
            .args(["--jaeger-port", &jaeger_port.to_string()])
            .args(["--prometheus-port", &prometheus_port.to_string()])
            .arg("--bin-dir")
            .arg(&bin_dir)
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        let ready = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let ready = line.starts_with("ready:");
                seen.push(line);
                if ready {
                    return true;
                }
            }
            false
        })
        .await
        .expect("ready within 120 s");
        if !ready {
            // The runner stopped what it had started before exiting.
            let _ = child.wait().await;
            seen.push(ports::holders_if_in_use(&seen.join("\n"), &drawn));
            return Err(seen);
        }
        let cluster_dir = seen
            .iter()
            .find_map(|line| line.split("throwaway cluster in ").nth(1))
            .map(|dir| PathBuf::from(dir.trim_end_matches(')')))
            .expect("the runner names its throwaway cluster");
        let jaeger_url = seen
            .iter()
            .find_map(|line| line.strip_prefix("jaeger    "))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned);
        let prometheus_url = seen
            .iter()
            .find_map(|line| line.strip_prefix("prometheus "))
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|url| url.starts_with("http://"))
            .map(str::to_owned);
        // Keep draining so the runner never blocks on a full pipe.
        let printed = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&printed);
        let drain = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Ok(Self {
            child,
            orders_port,
            users_port,
            worker_port,
            otlp_port,
            otlp_http_port,
            cluster_dir,
            jaeger_url,
            prometheus_url,
            started: seen,
            printed,
            drain,
        })
    }

    /// Every line printed after `ready:` so far (the services' logs among them).
    pub fn printed(&self) -> Vec<String> {
        self.printed.lock().unwrap().clone()
    }

    /// Stops the runner's `service` process, as `docker compose stop` would, and waits until
    /// the runner says it exited.
    pub async fn stop_service(&self, service: &str) {
        // SAFETY: signalling a process the runner started for this test.
        unsafe { libc::kill(self.pid(service), libc::SIGTERM) };
        let exited = format!("{service:<9} exited");
        testkit::eventually(
            Duration::from_secs(30),
            || async {
                self.printed()
                    .iter()
                    .any(|line| line.starts_with(&exited))
                    .then_some(())
            },
            || format!("the runner says {service} exited: {:#?}", self.printed()),
        )
        .await;
    }

    /// The pid the runner printed for `service`.
    pub fn pid(&self, service: &str) -> i32 {
        // The name then a space: `orders` is not `orders-worker`.
        let named = format!("{service} ");
        self.started
            .iter()
            .filter(|line| line.starts_with(&named))
            .find_map(|line| line.split("(pid ").nth(1))
            .and_then(|rest| rest.trim_end_matches(')').parse().ok())
            .unwrap_or_else(|| panic!("the runner prints {service}'s pid: {:#?}", self.started))
    }

    /// Jaeger's query API; panics when the runner started none.
    pub fn jaeger(&self) -> testkit::local_jaeger::Query {
        let url = self
            .jaeger_url
            .as_deref()
            .unwrap_or_else(|| panic!("the runner started no Jaeger: {:#?}", self.started));
        testkit::local_jaeger::Query::new(url)
    }

    /// SIGTERM, as Ctrl-C would; the exit status and everything printed after `ready:`.
    pub async fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id().unwrap() as i32, libc::SIGTERM) };
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("stops within 60 s")
            .unwrap();
        (&mut self.drain).await.unwrap();
        let printed = self.printed.lock().unwrap().clone();
        (status, printed)
    }
}

/// A test that fails before `stop` still stops the runner gracefully: killed outright (as
/// `kill_on_drop` would), it could not stop its Postgres and services, which then outlived
/// the test run holding their ports (seen on a failed run).
impl Drop for Runner {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        if let Some(pid) = self.child.id() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        for _ in 0..200 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
