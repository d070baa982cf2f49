//! Against the tutorial's stack (issue 19): our `GET /orders/{id}` at 100% sampling next to
//! the same two services written the tutorial's way, FastAPI and uvicorn with two workers
//! and zero-code OpenTelemetry (`bench/seed-stack/`), on the same Postgres.
//!
//! The figures were measured closed-loop (a fixed number of connections, each
//! sending its next request when the last is answered: how fast each stack answers as many
//! requests as it can), so this part uses a closed-loop tool, not `load`, which sends at a
//! fixed rate. The two stacks take turns (ours, theirs, ours, theirs, ...), and the ratios
//! are the medians of each round's ratios, so the machine's drift falls on both.
//!
//! Each stack has its own counting receiver; a run's spans are those received from its
//! start to the start of the same stack's next run (or its shutdown), as for the variants.

use super::*;

use std::process::Output;

use tokio::process::Command;

/// wrk, the closed-loop load generator: Debian's package, 4.1.0, installed on demand (as
/// root, with apt-get). A closed-loop tool is what the figures were measured with
/// (oha there; oha 1.16 does not build without TLS, which doubles its build, and wrk is a
/// package away); its Lua script (`bench/seed-stack/orders.lua`) draws each request's
/// order id among the seeded ones and prints the summary as JSON.
pub(crate) const WRK_VERSION: &str = "4.1.0";

/// The tutorial's stack: where it lives, and the packages whose versions the report names.
const SEED_DIR: &str = "bench/seed-stack";
const REPORTED_PACKAGES: [&str; 10] = [
    "fastapi",
    "uvicorn",
    "asyncpg",
    "httpx",
    "opentelemetry-sdk",
    "opentelemetry-distro",
    "opentelemetry-exporter-otlp-proto-grpc",
    "opentelemetry-instrumentation-fastapi",
    "opentelemetry-instrumentation-httpx",
    "opentelemetry-instrumentation-asyncpg",
];

/// Ours or theirs; the index of each in [`Comparison::per_answer`].
pub(crate) const STACKS: [&str; 2] = ["ours (Rust)", "tutorial (Python)"];

/// What the comparison needs beyond the project's binaries, prepared before anything
/// starts so that a missing Python or an unreachable PyPI fails the bench at once.
pub(crate) struct Tools {
    venv: PathBuf,
    script: PathBuf,
    /// Python's version and each reported package's, as installed in the venv.
    pub(crate) versions: Vec<(String, String)>,
}

impl Tools {
    pub(crate) async fn prepare(root: &Path, target_dir: &Path) -> Result<Self, String> {
        let venv = ensure_venv(root, target_dir).await?;
        let versions = installed_versions(&venv).await?;
        ensure_wrk().await?;
        Ok(Self {
            venv,
            script: root.join(SEED_DIR).join("orders.lua"),
            versions,
        })
    }
}

async fn output(command: &mut Command, what: &str) -> Result<Output, String> {
    command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("{what}: {e}"))
}

fn failed(what: &str, out: &Output) -> String {
    format!(
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The venv under the target folder with `requirements.txt` installed (the one venv
/// helper, crate::python::venv), reinstalled when the file changes.
async fn ensure_venv(root: &Path, target_dir: &Path) -> Result<PathBuf, String> {
    let requirements = root.join(SEED_DIR).join("requirements.txt");
    let venv = target_dir.join("seed-stack-venv");
    println!(
        "bench: the tutorial's stack in {} (pip, from PyPI, when requirements.txt changed)",
        venv.display()
    );
    tokio::task::spawn_blocking(move || crate::python::venv(&requirements, &venv))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| {
            format!(
                "{e}\nthe comparison with the tutorial's stack needs python3 with venv and \
                 pip, and PyPI (or `--skip-seed`)"
            )
        })
}

/// Python's version and the reported packages', read from the venv itself.
async fn installed_versions(venv: &Path) -> Result<Vec<(String, String)>, String> {
    let script = format!(
        "import importlib.metadata as m, platform\n\
         print('python', platform.python_version())\n\
         for name in {REPORTED_PACKAGES:?}:\n    print(name, m.version(name))"
    );
    let out = output(
        Command::new(venv.join("bin/python")).args(["-c", &script]),
        "read the venv's versions",
    )
    .await?;
    if !out.status.success() {
        return Err(failed("read the venv's versions", &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(name, version)| (name.to_owned(), version.to_owned()))
        .collect())
}

/// wrk [`WRK_VERSION`] on the PATH, installed with apt-get when missing.
async fn ensure_wrk() -> Result<(), String> {
    // `wrk --version` prints its version and exits 1.
    let version = async || {
        output(Command::new("wrk").arg("--version"), "wrk")
            .await
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    if let Ok(text) = version().await {
        return if text.contains(WRK_VERSION) {
            Ok(())
        } else {
            Err(format!("wrk {WRK_VERSION} wanted, found: {}", text.trim()))
        };
    }
    println!("bench: installing wrk (Debian's package)");
    let installed = output(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", "wrk"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install wrk",
    )
    .await;
    match installed {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{}
the comparison with the tutorial's stack needs wrk {WRK_VERSION} \
             (`apt-get install wrk`), or `--skip-seed`",
            failed("apt-get install wrk", &out)
        )),
        Err(e) => Err(format!(
            "{e}: install wrk {WRK_VERSION}, or use `--skip-seed`"
        )),
    }
}

/// The tutorial's users and orders, each `uvicorn --workers 2` under
/// `opentelemetry-instrument`, and their receiver.
struct Tutorial {
    orders: Group,
    users: Group,
    orders_url: String,
    collector: Collector,
}

/// A uvicorn and its workers. Dropping a `Child` kills uvicorn's parent only, which would
/// leave its workers serving (on Ctrl-C, or an error): each service is its own process
/// group, so the group is killed.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            // SAFETY: signalling our own child's process group.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
    }
}

impl Tutorial {
    async fn start(
        compose: &Compose,
        server: &crate::database::Server,
        root: &Path,
        tools: &Tools,
        log_dir: &Path,
        extra: &[(String, String)],
    ) -> Result<Self, String> {
        let [orders_port, users_port, grpc_port, http_port] = free_ports();
        let mut collector = Collector::new(grpc_port, http_port);
        collector.start().await?;
        let endpoint = format!("http://{}", collector.grpc);
        let app_dir = root.join(SEED_DIR);
        let logs = log_dir.join("seed-stack");
        std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
        let spawn = |service: &str, port: u16| -> Result<Group, String> {
            // Our services' settings from compose (the database, users' address, the
            // OTEL_* variables, with variant 0's sampling): the same configuration, read by
            // the OpenTelemetry distro instead of our telemetry crate.
            let mut env = service_env(compose, service, server, [port, users_port], &endpoint)?;
            for (key, value) in VARIANTS[0].env {
                env.insert((*key).to_owned(), (*value).to_owned());
            }
            for (key, value) in [
                ("OTEL_TRACES_EXPORTER", "otlp"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                // Ours export traces only.
                ("OTEL_METRICS_EXPORTER", "none"),
                ("OTEL_LOGS_EXPORTER", "none"),
                // Ours route the probes outside their tracing layers.
                ("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "readyz"),
            ] {
                env.insert(key.to_owned(), value.to_owned());
            }
            // `--service-env` too: the OTEL_BSP_* settings mean the same to both SDKs.
            env.extend(extra.iter().cloned());
            let path = logs.join(format!("{service}.log"));
            let log =
                std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let err = log.try_clone().map_err(|e| e.to_string())?;
            let uvicorn = tools.venv.join("bin/uvicorn");
            isolated_command(&tools.venv.join("bin/opentelemetry-instrument"), &env)
                .arg(&uvicorn)
                .arg(format!("{service}:app"))
                .arg("--app-dir")
                .arg(&app_dir)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--workers", "2", "--no-access-log"])
                // A worker that does not answer its parent's health check within the
                // default 5 s is restarted: on a busy 2-core machine starting two
                // interpreters, that happens.
                .args(["--timeout-worker-healthcheck", "30"])
                .current_dir(&app_dir)
                .stdout(log)
                .stderr(err)
                .spawn()
                .map(Group)
                .map_err(|e| format!("start the tutorial's {service}: {e}"))
        };
        let mut users = spawn("users", users_port)?;
        wait_ready(&mut users.0, users_port).await?;
        let mut orders = spawn("orders", orders_port)?;
        wait_ready(&mut orders.0, orders_port).await?;
        Ok(Self {
            orders,
            users,
            orders_url: format!("http://127.0.0.1:{orders_port}"),
            collector,
        })
    }

    /// SIGTERM to each uvicorn, which stops its workers; each worker's SDK sends its last
    /// spans as it exits. Then the receiver, once they have arrived.
    async fn shut_down(mut self) {
        stop(&mut self.orders.0).await;
        stop(&mut self.users.0).await;
        settle(&self.collector.counts).await;
        self.collector.stop().await;
    }
}

/// One closed-loop run of one stack.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeedRun {
    /// 0: ours, 1: the tutorial's (see [`STACKS`]).
    pub(crate) stack: usize,
    pub(crate) round: usize,
    pub(crate) per_s: f64,
    /// Answered with 200.
    pub(crate) answered: u64,
    /// Any other status, and requests that got no answer (timeouts, resets).
    pub(crate) errors: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) spans: u64,
}

/// Everything the comparison's table shows.
pub(crate) struct Comparison {
    pub(crate) runs: Vec<SeedRun>,
    /// Spans one answered `GET /orders/1` makes, counted on a probe: ours, theirs.
    pub(crate) per_answer: [u64; 2],
    pub(crate) versions: Vec<(String, String)>,
    pub(crate) connections: usize,
    pub(crate) duration: Duration,
}

impl Comparison {
    fn rounds(&self, stack: usize) -> impl Iterator<Item = &SeedRun> {
        self.runs.iter().filter(move |r| r.stack == stack)
    }

    pub(crate) fn expected_spans(&self, run: &SeedRun) -> u64 {
        run.answered * self.per_answer[run.stack]
    }

    /// The median over rounds of `f(ours, theirs)`, each round's pair run back to back.
    fn median_ratio(&self, f: impl Fn(&SeedRun, &SeedRun) -> f64) -> f64 {
        let ratios = self
            .rounds(0)
            .zip(self.rounds(1))
            .map(|(ours, theirs)| f(ours, theirs))
            .collect();
        super::stats::median(ratios)
    }

    /// How many times the tutorial's throughput ours is (median of the rounds).
    pub(crate) fn throughput_ratio(&self) -> f64 {
        self.median_ratio(|ours, theirs| ours.per_s / theirs.per_s)
    }

    /// How many times ours the tutorial's p99 is: at least 15 means ours is at most 1/15.
    pub(crate) fn p99_ratio(&self) -> f64 {
        self.median_ratio(|ours, theirs| theirs.p99_ms / ours.p99_ms)
    }

    pub(crate) fn errors(&self, stack: usize) -> u64 {
        self.rounds(stack).map(|r| r.errors).sum()
    }

    /// Expected minus received over every round (negative: more arrived than expected).
    pub(crate) fn lost(&self, stack: usize) -> i64 {
        self.rounds(stack)
            .map(|r| self.expected_spans(r) as i64 - r.spans as i64)
            .sum()
    }

    pub(crate) fn median(&self, stack: usize, f: impl Fn(&SeedRun) -> f64) -> f64 {
        super::stats::median(self.rounds(stack).map(f).collect())
    }
}

/// Spans counted from a run's start until the same stack's next run: the open window.
struct Window {
    run: SeedRun,
    spans_at_start: u64,
}

fn received(collector: &Collector) -> u64 {
    collector.counts.lock().expect("counts").total
}

pub(crate) async fn measure(
    compose: &Compose,
    database: &Database,
    root: &Path,
    bin_dir: &Path,
    log_dir: &Path,
    tools: &Tools,
    options: &Options,
) -> Result<Comparison, String> {
    let server = prepare_database(compose, database).await?;
    // Ours first: their start-up applies the migrations and the seed data the tutorial's
    // stack reads.
    let extra = &options.service_env;
    let ours = Stack::start(0, compose, &server, bin_dir, log_dir, extra, None).await?;
    let theirs = Tutorial::start(compose, &server, root, tools, log_dir, extra).await?;
    let per_answer = [
        spans_per_answer(&ours.orders_url, &ours.collector.counts).await?,
        spans_per_answer(&theirs.orders_url, &theirs.collector.counts).await?,
    ];
    println!(
        "bench: one GET /orders/{{id}} makes {} spans in ours, {} in the tutorial's stack",
        per_answer[0], per_answer[1]
    );
    let urls = [ours.orders_url.clone(), theirs.orders_url.clone()];
    let collectors = [&ours.collector, &theirs.collector];
    // Connections opened, both uvicorn workers up, caches warm.
    for url in &urls {
        wrk(tools, url, options.seed_connections, Duration::from_secs(3)).await?;
    }
    // The warm-up's last batches land before the first window opens.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut windows: [Option<Window>; 2] = [None, None];
    let mut runs = Vec::new();
    for round in 1..=options.seed_rounds {
        for stack in 0..2 {
            if let Some(open) = windows[stack].take() {
                let mut run = open.run;
                run.spans = received(collectors[stack]) - open.spans_at_start;
                runs.push(run);
            }
            let spans_at_start = received(collectors[stack]);
            let summary = wrk(
                tools,
                &urls[stack],
                options.seed_connections,
                options.seed_duration,
            )
            .await?;
            let mut run = parse_wrk(&summary)?;
            run.stack = stack;
            run.round = round;
            println!(
                "bench: seed round {round}/{}: {:<17} {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  \
                 errors {}",
                options.seed_rounds, STACKS[stack], run.per_s, run.p50_ms, run.p99_ms, run.errors
            );
            windows[stack] = Some(Window {
                run,
                spans_at_start,
            });
            // Whatever a saturated stack still has queued drains before the other starts.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let ours_collector_counts = ours.collector.counts.clone();
    let theirs_collector_counts = theirs.collector.counts.clone();
    // Stopping flushes the last batches; the receivers count them before they stop.
    ours.shut_down().await?;
    theirs.shut_down().await;
    for (stack, counts) in [ours_collector_counts, theirs_collector_counts]
        .iter()
        .enumerate()
    {
        if let Some(open) = windows[stack].take() {
            let mut run = open.run;
            run.spans = counts.lock().expect("counts").total - open.spans_at_start;
            runs.push(run);
        }
    }
    runs.sort_by_key(|r| (r.round, r.stack));
    Ok(Comparison {
        runs,
        per_answer,
        versions: tools.versions.clone(),
        connections: options.seed_connections,
        duration: options.seed_duration,
    })
}

/// wrk, closed loop: `connections` connections on two threads for `duration`. Requests
/// still in flight at the end are not counted (wrk does not wait for them): their spans
/// arrive all the same, up to `connections` requests' worth more than expected.
async fn wrk(
    tools: &Tools,
    orders_url: &str,
    connections: usize,
    duration: Duration,
) -> Result<Value, String> {
    let out = output(
        Command::new("wrk")
            .args(["-t", "2", "-c", &connections.to_string()])
            .args(["-d", &format!("{}s", duration.as_secs().max(1))])
            .args(["--timeout", "10s", "-s"])
            .arg(&tools.script)
            .arg(orders_url)
            .kill_on_drop(true),
        "run wrk",
    )
    .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok());
    match summary {
        Some(summary) if out.status.success() => Ok(summary),
        _ => Err(failed("wrk", &out)),
    }
}

/// Throughput, latency and errors from the script's JSON (its times are in µs).
pub(crate) fn parse_wrk(summary: &Value) -> Result<SeedRun, String> {
    let number = |key: &str| {
        summary[key]
            .as_u64()
            .ok_or_else(|| format!("wrk's summary has no {key}: {summary}"))
    };
    let requests = number("requests")?;
    // `status`: answers of 400 and above, counted in `requests` too.
    let status = number("status")?;
    let mut errors = status;
    for key in ["connect", "read", "write", "timeout"] {
        errors += number(key)?;
    }
    Ok(SeedRun {
        per_s: requests as f64 / (number("duration_us")?.max(1) as f64 / 1e6),
        answered: requests - status,
        errors,
        p50_ms: number("p50_us")? as f64 / 1e3,
        p99_ms: number("p99_us")? as f64 / 1e3,
        ..SeedRun::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_summary_counts_status_and_socket_errors_and_reads_microseconds() {
        let summary = serde_json::json!({
            "requests": 1200, "duration_us": 2_000_000, "connect": 0, "read": 2, "write": 0,
            "status": 5, "timeout": 1, "p50_us": 1500, "p99_us": 12_250
        });
        let run = parse_wrk(&summary).unwrap();
        assert_eq!(run.per_s, 600.0);
        assert_eq!(
            run.answered, 1195,
            "answers of 400 and above are not answers"
        );
        assert_eq!(run.errors, 8);
        assert_eq!((run.p50_ms, run.p99_ms), (1.5, 12.25));
        assert!(parse_wrk(&serde_json::json!({"requests": 1})).is_err());
    }
}
