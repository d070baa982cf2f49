//! `cargo xtask bench`: what tracing costs and how far one machine goes.
//!
//! Three copies of the system run side by side, one per variant (export at 100% sampling,
//! at 10% head sampling, and `OTEL_SDK_DISABLED=true`), each with its own counting OTLP
//! receiver, all on one throwaway Postgres. `load` is pointed at one copy at a time, and
//! every measurement visits the variants in turn (A, B, C, A, B, C): throughput on a
//! shared machine drifts by +-20% from one minute to the next, and interleaving makes the
//! drift fall on every variant alike.
//!
//! A run's CPU time and spans are counted from its start to the start of the same
//! variant's next run (or the end): spans of a run's last batch arrive up to
//! `OTEL_BSP_SCHEDULE_DELAY` after it, while the other variants run, and belong to it.

mod instructions;
mod plot;
mod report;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::Value;
use tokio::{
    process::Child,
    signal::unix::{SignalKind, signal},
    time::Instant,
};

use crate::{
    compose::Compose,
    system::{
        Collector, Setup, cpu_ticks, free_ports, load_summary, pid, rss_kb, service_env, settle,
        spans_per_answer, spawn_service, start_load,
    },
    up::{Database, prepare_database, stop, wait_ready},
};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// The fixed rate, requests per second, at which CPU time per request is compared.
    #[arg(long, default_value_t = 1000.0)]
    pub cpu_rate: f64,
    /// How long each CPU run lasts.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub cpu_duration: Duration,
    /// How many times each variant's CPU run is repeated (interleaved).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// The first rate the search for the highest steady rate tries; it doubles from there
    /// until a run fails, then halves the gap `--bisections` times.
    #[arg(long, default_value_t = 500.0)]
    pub start_rate: f64,
    /// The search stops doubling here.
    #[arg(long, default_value_t = 80_000.0)]
    pub max_rate: f64,
    #[arg(long, default_value_t = 3)]
    pub bisections: usize,
    /// How long each step of the search lasts.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub step_duration: Duration,
    /// How long the runs at 50% and 80% of the highest steady rate last.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub hold_duration: Duration,
    /// A steady run's p99 must stay under this many milliseconds.
    #[arg(long, default_value_t = 20.0)]
    pub p99_limit_ms: f64,
    /// Where the report goes; the plot is written beside it. Only the part between the
    /// `bench:begin` and `bench:end` markers is replaced, so notes around it stay.
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub report: PathBuf,
    /// An extra variable for every service of every variant, `KEY=VALUE` (repeatable):
    /// to try a setting (`OTEL_BSP_MAX_QUEUE_SIZE`, `TOKIO_WORKER_THREADS`, ...) before
    /// shipping it in docker-compose.yml.
    #[arg(long = "service-env", value_name = "KEY=VALUE", value_parser = key_value)]
    pub service_env: Vec<(String, String)>,
    /// Only the CPU rounds: a quick before/after figure while profiling.
    #[arg(long)]
    pub cpu_only: bool,
    /// Instead of timing anything: instructions per request of each variant, counted by
    /// callgrind (valgrind), which the machine's other load does not change. Printed only.
    #[arg(long, conflicts_with = "cpu_only")]
    pub instructions: bool,
    /// The rate of the counted run (callgrind slows a service some fifty times).
    #[arg(long, default_value_t = 100.0)]
    pub instructions_rate: f64,
    /// How long the counted run lasts.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub instructions_duration: Duration,
    /// Skip the Criterion benchmark of the telemetry helpers.
    #[arg(long)]
    pub skip_criterion: bool,
    /// Build and run debug binaries: quicker to build, but the numbers mean little.
    #[arg(long, conflicts_with = "bin_dir")]
    pub debug: bool,
    /// Run the binaries found in this directory instead of building them.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

/// One way of running the services, applied on top of compose's environment.
pub(crate) struct Variant {
    pub(crate) name: &'static str,
    pub(crate) env: &'static [(&'static str, &'static str)],
    /// Share of requests whose spans are exported.
    pub(crate) sampling: f64,
}

pub(crate) const VARIANTS: [Variant; 3] = [
    Variant {
        name: "export 100%",
        env: &[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.0"),
        ],
        sampling: 1.0,
    },
    Variant {
        name: "export 10%",
        env: &[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
        ],
        sampling: 0.1,
    },
    Variant {
        name: "SDK disabled",
        env: &[("OTEL_SDK_DISABLED", "true")],
        sampling: 0.0,
    },
];

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) enum Kind {
    #[default]
    WarmUp,
    Cpu,
    Search,
    /// The same search on `GET /healthz`: an answer with no database and no users behind it.
    Ceiling,
    /// At this share of the highest steady rate.
    Hold(f64),
}

/// What `load` reported for one run, and what the run cost.
#[derive(Debug, Clone, Default)]
pub(crate) struct Run {
    pub(crate) kind: Kind,
    pub(crate) variant: usize,
    pub(crate) asked: f64,
    pub(crate) achieved: f64,
    pub(crate) completed: u64,
    /// Non-2xx answers, transport errors and requests that never started.
    pub(crate) failed: u64,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    /// The highest resident memory seen during the run, kB: orders, users.
    pub(crate) rss_kb: [u64; 2],
    /// CPU seconds of orders + users over the run's window.
    pub(crate) cpu_s: f64,
    pub(crate) spans: u64,
    /// Traces kept: spans without a parent (`load` sends no traceparent).
    pub(crate) roots: u64,
}

impl Run {
    pub(crate) fn steady(&self, p99_limit_ms: f64) -> bool {
        self.failed == 0 && self.p99 < p99_limit_ms && self.achieved >= self.asked * 0.97
    }

    pub(crate) fn cpu_us_per_request(&self) -> f64 {
        self.cpu_s * 1e6 / self.completed.max(1) as f64
    }
}

/// Everything the report shows.
pub(crate) struct Results {
    pub(crate) per_answer: u64,
    pub(crate) cpu: Vec<Run>,
    pub(crate) search: Vec<Run>,
    pub(crate) highest: [f64; 3],
    pub(crate) ceiling: Vec<Run>,
    pub(crate) highest_healthz: f64,
    pub(crate) hold: Vec<Run>,
    pub(crate) idle_rss_kb: [[u64; 2]; 3],
    pub(crate) criterion: Vec<(String, f64)>,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

pub async fn run(options: Options) -> Result<(), String> {
    for (name, value) in [
        ("--cpu-rate", options.cpu_rate),
        ("--start-rate", options.start_rate),
        ("--max-rate", options.max_rate),
        ("--p99-limit-ms", options.p99_limit_ms),
        ("--instructions-rate", options.instructions_rate),
    ] {
        if value.is_nan() || value <= 0.0 {
            return Err(format!("{name} must be above 0"));
        }
    }
    if options.rounds == 0 {
        return Err("--rounds must be at least 1".to_owned());
    }
    for (name, value) in [
        ("--cpu-duration", options.cpu_duration),
        ("--step-duration", options.step_duration),
        ("--hold-duration", options.hold_duration),
        ("--instructions-duration", options.instructions_duration),
    ] {
        // `load --duration 0` runs until Ctrl-C: a bench that never ends.
        if value < Duration::from_secs(1) {
            return Err(format!("{name} must be at least 1s"));
        }
    }
    let Setup {
        compose,
        root,
        target_dir,
        bin_dir,
        log_dir,
        cluster,
    } = Setup::new("bench", options.bin_dir.as_deref(), options.debug).await?;
    let database = Database::Cluster(cluster.clone());
    let started = Instant::now();
    // On Ctrl-C or SIGTERM the measuring stops where it is: dropping it kills the services
    // and `load` (their commands kill on drop), and the cluster goes below.
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    if options.instructions {
        let counted = tokio::select! {
            counted = instructions::measure(&compose, &database, &bin_dir, &log_dir, &options) => counted,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
            _ = sigterm.recv() => Err("interrupted".to_owned()),
        };
        cluster.destroy();
        println!("{}", instructions::table(&counted?));
        println!(
            "bench: callgrind's files in {}",
            log_dir.join("callgrind").display()
        );
        return Ok(());
    }
    let measured = tokio::select! {
        measured = measure(&compose, &database, &bin_dir, &log_dir, &options) => measured,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
        _ = sigterm.recv() => Err("interrupted".to_owned()),
    };
    cluster.destroy();
    let mut results = measured?;
    if !options.skip_criterion {
        results.criterion = criterion(&root, &target_dir).await?;
    }

    let report_path = root.join(&options.report);
    let plot_path = report_path.with_file_name("benchmarks-latency.svg");
    if let Some(dir) = report_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    plot::write(&plot_path, &results, &options)?;
    let report = report::Report {
        results: &results,
        options: &options,
        elapsed: started.elapsed(),
        plot: plot_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    println!("{}", report.table());
    report.write(&report_path)?;
    println!(
        "bench: report in {}, plot in {}",
        report_path.display(),
        plot_path.display()
    );
    Ok(())
}

/// One copy of the system: users, orders and their receiver.
struct Stack {
    variant: usize,
    orders: Child,
    users: Child,
    pids: [u32; 2],
    orders_url: String,
    collector: Collector,
    /// The run whose window is still open: its CPU and span counts at its start.
    open: Option<(Run, u64, u64, u64)>,
    /// When the open run's load ended.
    ended: Instant,
    /// How long after a run its last spans may still arrive.
    flush_delay: Duration,
    closed: Vec<Run>,
}

impl Stack {
    async fn start(
        variant: usize,
        compose: &Compose,
        server: &crate::up::Server,
        bin_dir: &Path,
        log_dir: &Path,
        extra: &[(String, String)],
        callgrind: Option<&Path>,
    ) -> Result<Self, String> {
        let [orders_port, users_port, grpc_port, http_port] = free_ports();
        let mut collector = Collector::new(grpc_port, http_port);
        collector.start().await?;
        let endpoint = format!("http://{}", collector.grpc);
        let env = |service: &str, port: u16| -> Result<BTreeMap<String, String>, String> {
            let mut env = service_env(compose, service, server, [port, users_port], &endpoint)?;
            for (key, value) in VARIANTS[variant].env {
                env.insert((*key).to_owned(), (*value).to_owned());
            }
            env.extend(extra.iter().cloned());
            Ok(env)
        };
        let logs = log_dir.join(format!("variant-{variant}"));
        std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
        let spawn = |service: &str, port: u16| {
            let counts = callgrind.map(|dir| instructions::out_file(dir, variant, service));
            spawn_service(
                bin_dir,
                service,
                &env(service, port)?,
                &logs,
                counts.as_deref(),
            )
        };
        let mut users = spawn("users", users_port)?;
        wait_ready(&mut users, users_port).await?;
        let mut orders = spawn("orders", orders_port)?;
        wait_ready(&mut orders, orders_port).await?;
        let pids = [pid(&orders)?, pid(&users)?];
        // A batch leaves at the latest one schedule delay after its first span; a second
        // on top for the export itself.
        let flush_delay = if VARIANTS[variant].sampling > 0.0 {
            let delay_ms = env("orders", orders_port)?
                .get("OTEL_BSP_SCHEDULE_DELAY")
                .and_then(|v| v.parse().ok())
                .unwrap_or(5000);
            Duration::from_millis(delay_ms + 1000)
        } else {
            Duration::ZERO
        };
        Ok(Self {
            variant,
            orders,
            users,
            pids,
            orders_url: format!("http://127.0.0.1:{orders_port}"),
            collector,
            open: None,
            ended: Instant::now(),
            flush_delay,
            closed: Vec::new(),
        })
    }

    fn snapshot(&self) -> Result<(u64, u64, u64), String> {
        let mut ticks = 0;
        for (pid, name) in self.pids.iter().zip(["orders", "users"]) {
            ticks += cpu_ticks(*pid)
                .ok_or_else(|| format!("{name} of '{}' is gone", VARIANTS[self.variant].name))?;
        }
        let counts = self.collector.counts.lock().expect("counts");
        Ok((ticks, counts.total, counts.roots))
    }

    /// Ends the open run's window here, once its last spans can have arrived.
    async fn close(&mut self) -> Result<(), String> {
        if let Some((mut run, ticks, spans, roots)) = self.open.take() {
            tokio::time::sleep_until(self.ended + self.flush_delay).await;
            let (now_ticks, now_spans, now_roots) = self.snapshot()?;
            run.cpu_s = (now_ticks - ticks) as f64 / crate::system::ticks_per_second();
            run.spans = now_spans - spans;
            run.roots = now_roots - roots;
            self.closed.push(run);
        }
        Ok(())
    }

    /// `load` against this copy at `rate` for `duration`. The run is complete once its
    /// window closes, at this copy's next run or its shutdown.
    async fn load(
        &mut self,
        bin_dir: &Path,
        kind: Kind,
        rate: f64,
        duration: Duration,
    ) -> Result<&Run, String> {
        self.close().await?;
        let (ticks, spans, roots) = self.snapshot()?;
        let path = if kind == Kind::Ceiling {
            "/healthz"
        } else {
            "/orders/{id}"
        };
        let args = [
            format!("--rate={rate:.0}"),
            format!("--duration={}ms", duration.as_millis()),
            format!("--path={path}"),
            "--slowest=0".to_owned(),
            "--timeout=2s".to_owned(),
        ];
        let (mut load, text) = start_load(bin_dir, &self.orders_url, &args, Stdio::null())?;
        let mut rss = [0u64; 2];
        let mut ticker = tokio::time::interval(Duration::from_millis(250));
        let status = loop {
            tokio::select! {
                status = load.wait() => break status.map_err(|e| format!("wait for load: {e}"))?,
                _ = ticker.tick() => {
                    for (max, pid) in rss.iter_mut().zip(self.pids) {
                        *max = (*max).max(rss_kb(pid).unwrap_or(0));
                    }
                }
            }
        };
        let summary = load_summary(status, text).await?;
        self.ended = Instant::now();
        let mut run = parse_summary(&summary, self.variant, rate);
        run.kind = kind;
        run.rss_kb = rss;
        let (run, ..) = self.open.insert((run, ticks, spans, roots));
        Ok(run)
    }

    async fn shut_down(mut self) -> Result<Vec<Run>, String> {
        // The last window's spans may still be in the services' batches: they flush on
        // SIGTERM (callers first). Its CPU is read before, while the processes exist.
        let ticks_now = self.snapshot()?.0;
        stop(&mut self.orders).await;
        stop(&mut self.users).await;
        settle(&self.collector.counts).await;
        if let Some((mut run, ticks, spans, roots)) = self.open.take() {
            let counts = self.collector.counts.lock().expect("counts");
            run.cpu_s = (ticks_now - ticks) as f64 / crate::system::ticks_per_second();
            run.spans = counts.total - spans;
            run.roots = counts.roots - roots;
            self.closed.push(run);
        }
        self.collector.stop().await;
        Ok(self.closed)
    }
}

fn parse_summary(s: &Value, variant: usize, asked: f64) -> Run {
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    let r = &s["requests"];
    let errors: u64 = s["errors"]
        .as_object()
        .map(|m| m.values().map(count).sum())
        .unwrap_or(0);
    let p = &s["latency_ms"]["from_schedule"];
    let ms = |v: &Value| v.as_f64().unwrap_or(f64::INFINITY);
    Run {
        variant,
        asked,
        achieved: s["rate"]["achieved_per_s"].as_f64().unwrap_or(0.0),
        completed: count(&r["completed"]),
        failed: count(&r["failed"]).max(errors) + count(&r["missed"]),
        p50: ms(&p["p50"]),
        p99: ms(&p["p99"]),
        p999: ms(&p["p99_9"]),
        ..Run::default()
    }
}

/// The doubling-then-bisecting search for one variant.
struct Search {
    pass: Option<f64>,
    fail: Option<f64>,
    bisected: usize,
}

impl Search {
    fn next(&self, options: &Options) -> Option<f64> {
        match (self.pass, self.fail) {
            (None, None) => Some(options.start_rate),
            (Some(pass), None) if pass * 2.0 <= options.max_rate => Some(pass * 2.0),
            (Some(_), None) => None,
            _ if self.bisected >= options.bisections => None,
            (None, Some(fail)) => Some(fail / 2.0),
            (Some(pass), Some(fail)) => Some((pass + fail) / 2.0),
        }
    }

    fn record(&mut self, rate: f64, steady: bool) {
        // Steps after the first failure narrow the gap.
        if self.fail.is_some() {
            self.bisected += 1;
        }
        if steady {
            self.pass = Some(rate);
        } else {
            self.fail = Some(rate);
        }
    }
}

async fn measure(
    compose: &Compose,
    database: &Database,
    bin_dir: &Path,
    log_dir: &Path,
    options: &Options,
) -> Result<Results, String> {
    let server = prepare_database(compose, database).await?;
    let mut stacks = Vec::new();
    for variant in 0..VARIANTS.len() {
        let extra = &options.service_env;
        stacks.push(Stack::start(variant, compose, &server, bin_dir, log_dir, extra, None).await?);
    }
    let per_answer = spans_per_answer(&stacks[0].orders_url, &stacks[0].collector.counts).await?;
    let idle_rss_kb = [0, 1, 2].map(|i| stacks[i].pids.map(|pid| rss_kb(pid).unwrap_or(0)));
    println!(
        "bench: one GET /orders/{{id}} makes {per_answer} spans; service logs in {}",
        log_dir.display()
    );

    // Warm-up: connections opened, caches and allocator arenas at their working size.
    for stack in &mut stacks {
        let rate = options.cpu_rate;
        stack
            .load(bin_dir, Kind::WarmUp, rate, Duration::from_secs(2))
            .await?;
    }

    for round in 1..=options.rounds {
        for stack in &mut stacks {
            println!(
                "bench: cpu round {round}/{}: {} at {}/s",
                options.rounds, VARIANTS[stack.variant].name, options.cpu_rate
            );
            let (rate, duration) = (options.cpu_rate, options.cpu_duration);
            stack.load(bin_dir, Kind::Cpu, rate, duration).await?;
        }
    }

    let mut searches: Vec<Search> = (0..VARIANTS.len())
        .map(|_| Search {
            pass: None,
            fail: None,
            bisected: 0,
        })
        .collect();
    let mut searching = !options.cpu_only;
    while searching {
        let mut any = false;
        for (stack, search) in stacks.iter_mut().zip(&mut searches) {
            let Some(rate) = search.next(options) else {
                continue;
            };
            any = true;
            let name = VARIANTS[stack.variant].name;
            let run = stack
                .load(bin_dir, Kind::Search, rate, options.step_duration)
                .await?;
            let steady = run.steady(options.p99_limit_ms);
            println!(
                "bench: search: {name:<12} {rate:>7.0}/s  achieved {:>7.0}/s  p99 {:>8.2} ms  \
                 failed {:>6}  {}",
                run.achieved,
                run.p99,
                run.failed,
                if steady { "steady" } else { "NOT steady" }
            );
            search.record(rate, steady);
            // An overloaded run leaves queues behind: let them drain before the next one.
            tokio::time::sleep(Duration::from_secs(if steady { 1 } else { 3 })).await;
        }
        searching = any;
    }
    let highest = [0, 1, 2].map(|i| searches[i].pass.unwrap_or(0.0));

    // What this machine gives one HTTP hop with nothing behind it: the frame for the rates
    // above, each of which crosses four such hops and two queries.
    let mut ceiling = Search {
        pass: None,
        fail: None,
        bisected: 0,
    };
    let baseline = &mut stacks[2];
    while let Some(rate) = ceiling.next(options).filter(|_| !options.cpu_only) {
        let run = baseline
            .load(bin_dir, Kind::Ceiling, rate, options.step_duration)
            .await?;
        let steady = run.steady(options.p99_limit_ms);
        println!(
            "bench: ceiling: GET /healthz {rate:>7.0}/s  achieved {:>7.0}/s  p99 {:>8.2} ms  {}",
            run.achieved,
            run.p99,
            if steady { "steady" } else { "NOT steady" }
        );
        ceiling.record(rate, steady);
        tokio::time::sleep(Duration::from_secs(if steady { 1 } else { 3 })).await;
    }

    let shares: &[f64] = if options.cpu_only { &[] } else { &[0.5, 0.8] };
    for &share in shares {
        for stack in &mut stacks {
            let rate = (highest[stack.variant] * share).max(1.0);
            println!(
                "bench: {:.0}% of the highest steady rate: {} at {rate:.0}/s",
                share * 100.0,
                VARIANTS[stack.variant].name
            );
            let duration = options.hold_duration;
            stack
                .load(bin_dir, Kind::Hold(share), rate, duration)
                .await?;
        }
    }

    let mut runs = Vec::new();
    for stack in stacks {
        runs.extend(stack.shut_down().await?);
    }
    let of = |wanted: fn(Kind) -> bool| -> Vec<Run> {
        runs.iter().filter(|r| wanted(r.kind)).cloned().collect()
    };
    Ok(Results {
        per_answer,
        cpu: of(|k| k == Kind::Cpu),
        search: of(|k| k == Kind::Search),
        highest,
        ceiling: of(|k| k == Kind::Ceiling),
        highest_healthz: ceiling.pass.unwrap_or(0.0),
        hold: of(|k| matches!(k, Kind::Hold(_))),
        idle_rss_kb,
        criterion: Vec::new(),
    })
}

/// Runs the Criterion benchmark of the telemetry helpers and reads each benchmark's
/// median back from the estimates Criterion writes, in nanoseconds.
async fn criterion(root: &Path, target_dir: &Path) -> Result<Vec<(String, f64)>, String> {
    println!("bench: cargo bench -p telemetry --bench telemetry");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = tokio::process::Command::new(cargo)
        .current_dir(root)
        .args([
            "bench",
            "--quiet",
            "-p",
            "telemetry",
            "--bench",
            "telemetry",
        ])
        .stdout(Stdio::null())
        .status()
        .await
        .map_err(|e| format!("run cargo bench: {e}"))?;
    if !status.success() {
        return Err("cargo bench -p telemetry failed".to_owned());
    }
    let mut medians = Vec::new();
    let dir = target_dir.join("criterion");
    collect_estimates(&dir, &dir, &mut medians)?;
    medians.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(medians)
}

fn collect_estimates(base: &Path, dir: &Path, out: &mut Vec<(String, f64)>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() || path.file_name().is_some_and(|n| n == "report") {
            continue;
        }
        let estimates = path.join("new").join("estimates.json");
        if estimates.is_file() {
            let text = std::fs::read_to_string(&estimates)
                .map_err(|e| format!("{}: {e}", estimates.display()))?;
            let json: Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", estimates.display()))?;
            if let Some(ns) = json["median"]["point_estimate"].as_f64() {
                let name = path
                    .strip_prefix(base)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push((name, ns));
            }
        } else {
            collect_estimates(base, &path, out)?;
        }
    }
    Ok(())
}
