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
    /// Reads those lines; `None` once [`Runner::close_stdout`] has ended it.
    drain: Option<JoinHandle<()>>,
    /// Everything the runner wrote on stderr, as it arrives (also shown in the test's output).
    stderr: Arc<Mutex<Vec<String>>>,
    stderr_drain: JoinHandle<()>,
}

/// The flags of `up`'s ports, in the order [`up_command`] takes them.
pub const PORT_FLAGS: [&str; 7] = [
    "--orders-port",
    "--users-port",
    "--worker-port",
    "--otlp-port",
    "--otlp-http-port",
    "--jaeger-port",
    "--prometheus-port",
];

/// `cargo xtask up` (the built binary) on `ports` (in [`PORT_FLAGS`]' order), `args` added;
/// no database or collector of the shell's, `env` added.
pub fn up_command(ports: [u16; 7], env: &[(&str, String)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.arg("up");
    for (flag, port) in PORT_FLAGS.into_iter().zip(ports) {
        command.args([flag, &port.to_string()]);
    }
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    command
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
            ..,
        ] = drawn;
        let mut child = up_command(drawn, env, args)
            .arg("--bin-dir")
            .arg(&bin_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_drain = collect_stderr(child.stderr.take().unwrap(), Arc::clone(&stderr));
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
            let _ = tokio::time::timeout(Duration::from_secs(5), stderr_drain).await;
            seen.extend(stderr.lock().unwrap().iter().cloned());
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
            drain: Some(drain),
            stderr,
            stderr_drain,
        })
    }

    /// Stops reading the runner's stdout, as `| head -1` does once it has its line (and `|
    /// tee` when Ctrl-C ends it first): the runner's next line goes to a closed pipe.
    pub async fn close_stdout(&mut self) {
        if let Some(drain) = self.drain.take() {
            drain.abort();
            // Ended, its reader dropped: the pipe is closed when this returns.
            let _ = drain.await;
        }
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
    pub async fn stop(self) -> (std::process::ExitStatus, Vec<String>) {
        let stopped = self.stop_with(libc::SIGTERM).await;
        (stopped.status, stopped.printed)
    }

    /// `signal` to the runner (SIGINT: Ctrl-C's; SIGHUP: the terminal's closing), and what
    /// it left once it exited.
    pub async fn stop_with(mut self, signal: i32) -> Stopped {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id().unwrap() as i32, signal) };
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("stops within 60 s")
            .unwrap();
        if let Some(drain) = self.drain.take() {
            drain.await.unwrap();
        }
        // Bounded: a child the runner left behind could hold its stderr open, and the test
        // is to say so, not hang.
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.stderr_drain).await;
        Stopped {
            status,
            printed: self.printed.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        }
    }
}

/// A runner's end: its exit status, what it printed after `ready:` and all it wrote on
/// stderr.
pub struct Stopped {
    pub status: std::process::ExitStatus,
    pub printed: Vec<String>,
    pub stderr: Vec<String>,
}

/// Reads the runner's stderr into `lines`, and shows each line in the test's output, which
/// the harness prints when the test fails.
fn collect_stderr(
    stderr: tokio::process::ChildStderr,
    lines: Arc<Mutex<Vec<String>>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            eprintln!("[xtask up stderr] {line}");
            lines.lock().unwrap().push(line);
        }
    })
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
