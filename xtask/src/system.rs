//! The system as processes, shared by `soak` and `bench`: the services started with
//! compose's environment, and an OTLP receiver that counts the spans they send.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use otlp_receiver::{ReceivedSpan, Receiver, SpanKind};
use pg_cluster::Cluster;
use tokio::{io::AsyncReadExt as _, process::Child, task::JoinHandle, time::Instant};

use crate::{
    cargo::{build, target_dir},
    compose::{Compose, project_root},
    process::isolated_command,
};

/// What a long-running task (`soak`, `bench`) starts from: compose's settings, the binaries
/// (built, in release unless `debug`, when no folder is given), a folder for the services'
/// logs under the target folder, and a throwaway Postgres cluster of its own: never
/// `DATABASE_URL`'s server, which such a task may stop or load hard.
pub(crate) struct Setup {
    pub(crate) compose: Compose,
    pub(crate) root: PathBuf,
    pub(crate) target_dir: PathBuf,
    pub(crate) bin_dir: PathBuf,
    pub(crate) log_dir: PathBuf,
    pub(crate) cluster: Cluster,
}

impl Setup {
    pub(crate) async fn new(
        task: &str,
        bin_dir: Option<&Path>,
        debug: bool,
    ) -> Result<Self, String> {
        let root = project_root();
        let compose = Compose::load(&root)?;
        let target_dir = target_dir(&root);
        let bin_dir = match bin_dir {
            Some(dir) => dir.to_path_buf(),
            None => {
                build(&root, !debug).await?;
                target_dir.join(if debug { "debug" } else { "release" })
            }
        };
        let log_dir = target_dir.join(task);
        std::fs::create_dir_all(&log_dir)
            .map_err(|e| format!("create {}: {e}", log_dir.display()))?;
        let name = format!("{task}-pg");
        let cluster = tokio::task::spawn_blocking(move || Cluster::create(&name, None))
            .await
            .map_err(|e| e.to_string())??;
        Ok(Self {
            compose,
            root,
            target_dir,
            bin_dir,
            log_dir,
            cluster,
        })
    }
}

/// Spans one answered GET /orders/1 makes, counted on a request with a known trace id
/// rather than hard-coded, so the expectation follows the services as they change.
pub(crate) async fn spans_per_answer(
    orders_url: &str,
    counts: &Mutex<Counts>,
) -> Result<u64, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(1);
    let trace_id = format!("{:032x}", nanos | 1);
    counts.lock().expect("counts").probe = Some(trace_id.clone());
    let response = reqwest::Client::new()
        .get(format!("{orders_url}/orders/1"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("warm-up request: {e}"))?;
    if response.status() != 200 {
        return Err(format!("warm-up request answered {}", response.status()));
    }
    // Each service's server span ends after its children, so once both have arrived the
    // whole trace has (exporters send in order).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = {
            let c = counts.lock().expect("counts");
            ["orders", "users"].iter().all(|service| {
                c.probe_spans
                    .iter()
                    .any(|(s, kind)| s == service && *kind == SpanKind::Server)
            })
        };
        if done {
            let mut c = counts.lock().expect("counts");
            c.probe = None;
            return Ok(c.probe_spans.len() as u64);
        }
        if Instant::now() > deadline {
            return Err("the warm-up request's spans did not arrive within 30 s".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until no span has arrived for a second (at most 15 s): the services have exited,
/// but their last export may still be in the receiver's queue.
pub(crate) async fn settle(counts: &Mutex<Counts>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = u64::MAX;
    while Instant::now() < deadline {
        let now = counts.lock().expect("counts").total;
        if now == last {
            return;
        }
        last = now;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) total: u64,
    pub(crate) by_service: BTreeMap<String, u64>,
    /// Spans without a parent: one per trace kept, when the callers send no traceparent.
    pub(crate) roots: u64,
    /// The trace id of the warm-up request, while it is being counted.
    probe: Option<String>,
    probe_spans: Vec<(String, SpanKind)>,
}

impl Counts {
    fn add(&mut self, spans: &[ReceivedSpan]) {
        self.total += spans.len() as u64;
        for span in spans {
            self.roots += u64::from(span.parent_span_id.is_none());
            *self
                .by_service
                .entry(span.service_name.clone())
                .or_default() += 1;
            if self.probe.as_deref() == Some(span.trace_id.as_str()) {
                self.probe_spans
                    .push((span.service_name.clone(), span.kind));
            }
        }
    }
}

/// The OTLP receiver, counting spans across restarts. `Receiver::shutdown` closes the
/// exporters' open connections too, so a stop is an outage as a collector that goes away
/// would cause.
pub(crate) struct Collector {
    pub(crate) grpc: SocketAddr,
    pub(crate) http: SocketAddr,
    pub(crate) counts: Arc<Mutex<Counts>>,
    running: Option<(Receiver, tokio::task::JoinHandle<()>)>,
}

impl Collector {
    pub(crate) fn new(grpc_port: u16, http_port: u16) -> Self {
        Self {
            grpc: SocketAddr::from(([127, 0, 0, 1], grpc_port)),
            http: SocketAddr::from(([127, 0, 0, 1], http_port)),
            counts: Arc::default(),
            running: None,
        }
    }

    /// Listens on the collector's ports: those of its previous incarnation, if any, which
    /// `stop` left free (and which stay leased to this process: ports.rs).
    pub(crate) async fn start(&mut self) -> Result<(), String> {
        let (receiver, mut batches) =
            Receiver::streaming(self.grpc, self.http)
                .await
                .map_err(|e| {
                    format!(
                        "OTLP receiver on {} / {}: {e}\n{}",
                        self.grpc,
                        self.http,
                        ports::holders(&[self.grpc.port(), self.http.port()])
                    )
                })?;
        let counts = self.counts.clone();
        let drain = tokio::spawn(async move {
            while let Some(spans) = batches.recv().await {
                counts.lock().expect("counts").add(&spans);
            }
        });
        self.running = Some((receiver, drain));
        Ok(())
    }

    pub(crate) async fn stop(&mut self) {
        if let Some((receiver, drain)) = self.running.take() {
            receiver.shutdown().await;
            // The stream ends with the receiver; what it had accepted is counted by then.
            let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
        }
    }
}

/// Starts a service, under `valgrind --tool=callgrind` writing its counts to `callgrind`
/// when that is given (`bench --instructions`).
pub(crate) fn spawn_service(
    bin_dir: &Path,
    name: &str,
    env: &BTreeMap<String, String>,
    log_dir: &Path,
    callgrind: Option<&Path>,
) -> Result<Child, String> {
    // A file, not the terminal: minutes of two services' logs would bury the report.
    let path = log_dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let binary = bin_dir.join(name);
    let mut command = match callgrind {
        None => isolated_command(&binary, env),
        Some(out) => {
            let mut command = isolated_command(Path::new("valgrind"), env);
            command
                .arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(&binary);
            command
        }
    };
    command
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("start {}: {e}", binary.display()))
}

pub(crate) fn pid(child: &Child) -> Result<u32, String> {
    child
        .id()
        .ok_or_else(|| "a service exited at start".to_owned())
}

/// VmRSS in kB; `None` once the process is gone.
pub(crate) fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub(crate) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The tests' port picker: ports below the ephemeral range, free a moment ago.
pub(crate) use ports::free_ports;

/// User plus system CPU time of a process and all its threads, in clock ticks
/// (`sysconf(_SC_CLK_TCK)`, 100 per second on Linux); `None` once the process is gone.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, field 2, is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Fields 14 (utime) and 15 (stime) are the 12th and 13th after the name.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

pub(crate) fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// `load` against orders with `args` and a JSON summary, and the task collecting its
/// stdout. Only the services' spans are counted: load's own would blur expected vs
/// received, and without them it sends no traceparent, so orders' sampler decides alone.
pub(crate) fn start_load(
    bin_dir: &Path,
    orders_url: &str,
    args: &[String],
    stderr: std::process::Stdio,
) -> Result<(Child, JoinHandle<String>), String> {
    let env = BTreeMap::from([("OTEL_SDK_DISABLED".to_owned(), "true".to_owned())]);
    let mut load = isolated_command(&bin_dir.join("load"), &env)
        .args(["--target", orders_url, "--output", "json"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("start load: {e}"))?;
    let mut stdout = load.stdout.take().expect("piped");
    let text = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text).await;
        text
    });
    Ok((load, text))
}

/// The JSON summary `load` printed last.
pub(crate) async fn load_summary(
    status: std::process::ExitStatus,
    text: JoinHandle<String>,
) -> Result<serde_json::Value, String> {
    let text = text.await.map_err(|e| e.to_string())?;
    text.lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .ok_or_else(|| format!("load ({status}) printed no JSON summary: {text}"))
}
