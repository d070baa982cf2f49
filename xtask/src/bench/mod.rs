//! `cargo xtask bench`: what tracing costs and how far one machine goes.
//!
//! Three copies of the system run side by side, one per variant (export at 100% sampling,
//! at 10% head sampling, and `OTEL_SDK_DISABLED=true`), each with its own counting OTLP
//! receiver, all on one throwaway Postgres. `load` is pointed at one copy at a time, and
//! every measurement visits the variants in turn (A, B, C, A, B, C): throughput on a
//! shared machine drifts by +-20% from one minute to the next, and interleaving makes the
//! drift fall on every variant alike.
//!
//! Then, in the same run, our `GET /orders/{id}` at 100% sampling against the tutorial's
//! stack (`bench/seed-stack/`, FastAPI), closed-loop: see [`seed`].
//!
//! A run's CPU time and spans are counted from its start to the start of the same
//! variant's next run (or the end): spans of a run's last batch arrive up to
//! `OTEL_BSP_SCHEDULE_DELAY` after it, while the other variants run, and belong to it.

mod criterion;
mod instructions;
mod plot;
mod report;
mod seed;
mod stack;
mod stats;
mod throughput;

use stack::Stack;

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
    database::{Database, prepare_database},
    process::{isolated_command, service_env, stop, wait_ready},
    system::{
        Collector, Setup, cpu_ticks, free_ports, load_summary, pid, rss_kb, settle,
        spans_per_answer, spawn_service, start_load,
    },
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
    /// Only the comparison with the tutorial's stack (`bench/seed-stack/`): printed, and
    /// written to `target/bench/seed-stack.md`; docs/benchmarks.md is left as it is.
    #[arg(long, conflicts_with_all = ["cpu_only", "instructions", "skip_seed"])]
    pub seed_only: bool,
    /// Leave out the comparison with the tutorial's stack (it needs Python and PyPI).
    #[arg(long)]
    pub skip_seed: bool,
    /// How many times each stack's closed-loop run is repeated (interleaved).
    #[arg(long, default_value_t = 3)]
    pub seed_rounds: usize,
    /// How long each closed-loop run lasts.
    #[arg(long, default_value = "12s", value_parser = humantime::parse_duration)]
    pub seed_duration: Duration,
    /// Connections the closed-loop tool keeps busy, each sending its next request when the
    /// last is answered.
    #[arg(long, default_value_t = 32)]
    pub seed_connections: usize,
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
    /// Against the tutorial's stack, unless `--skip-seed`.
    pub(crate) seed: Option<seed::Comparison>,
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
    if options.rounds == 0 || options.seed_rounds == 0 || options.seed_connections == 0 {
        return Err("--rounds, --seed-rounds and --seed-connections must be at least 1".to_owned());
    }
    for (name, value) in [
        ("--cpu-duration", options.cpu_duration),
        ("--step-duration", options.step_duration),
        ("--hold-duration", options.hold_duration),
        ("--instructions-duration", options.instructions_duration),
        ("--seed-duration", options.seed_duration),
    ] {
        // `load --duration 0` runs until Ctrl-C: a bench that never ends.
        if value < Duration::from_secs(1) {
            return Err(format!("{name} must be at least 1s"));
        }
    }
    // Python, the venv and wrk before anything is built or started: a machine without them
    // fails here, in seconds, with what is missing.
    let with_seed =
        options.seed_only || !(options.skip_seed || options.cpu_only || options.instructions);
    let tools = if with_seed {
        let root = crate::compose::project_root();
        Some(seed::Tools::prepare(&root, &crate::cargo::target_dir(&root)).await?)
    } else {
        None
    };
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
    let compare = async |tools: &seed::Tools| {
        seed::measure(
            &compose, &database, &root, &bin_dir, &log_dir, tools, &options,
        )
        .await
    };
    if let (true, Some(tools)) = (options.seed_only, &tools) {
        let compared = tokio::select! {
            compared = compare(tools) => compared,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
            _ = sigterm.recv() => Err("interrupted".to_owned()),
        };
        cluster.destroy();
        let table = report::seed_report(&compared?);
        println!("{table}");
        let path = log_dir.join("seed-stack.md");
        std::fs::write(&path, &table).map_err(|e| format!("{}: {e}", path.display()))?;
        println!(
            "bench: table in {} (docs/benchmarks.md unchanged)",
            path.display()
        );
        return Ok(());
    }
    let measured = tokio::select! {
        measured = async {
            let mut results = throughput::measure(&compose, &database, &bin_dir, &log_dir, &options).await?;
            if let Some(tools) = &tools {
                results.seed = Some(compare(tools).await?);
            }
            Ok(results)
        } => measured,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
        _ = sigterm.recv() => Err("interrupted".to_owned()),
    };
    cluster.destroy();
    let mut results = measured?;
    if !options.skip_criterion {
        results.criterion = criterion::run(&root, &target_dir).await?;
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
