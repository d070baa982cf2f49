//! `cargo xtask soak`: the load generator against orders (and so users) at a steady rate
//! for a long while, with Postgres and the OTLP receiver each taken away once, then a
//! report: requests, errors by kind, spans expected and received, and each service's
//! resident memory at start and end. Not part of the test run: it takes ten minutes.
//!
//! Postgres is always a throwaway cluster here, never `DATABASE_URL`'s server: the soak
//! stops and starts it, which it must not do to somebody else's database.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use pg_cluster::Cluster;
use serde_json::Value;
use tokio::{
    signal::unix::{SignalKind, signal},
    time::Instant,
};

use crate::{
    compose::Compose,
    database::{Database, prepare_database},
    process::{service_env, stop, wait_ready},
    system::{
        Collector, Setup, free_ports, load_summary, pid, rss_kb, secs, settle, spans_per_answer,
        spawn_service, start_load,
    },
};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// How long the load runs.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Requests per second, steady.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// How long Postgres, then the OTLP receiver, stays down.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub outage: Duration,
    /// Build and run debug binaries: quicker to build, but the numbers mean less.
    #[arg(long, conflicts_with = "bin_dir")]
    pub debug: bool,
    /// Run the binaries found in this directory instead of building them.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

/// Memory is flat when the end is below this many times the start, plus [`SLACK_KB`].
const GROWTH: f64 = 1.5;
const SLACK_KB: u64 = 5 * 1024;

/// `Ok(true)`: every check passed; `Ok(false)`: the report says what failed.
pub async fn run(options: Options) -> Result<bool, String> {
    // Both outages must fit between the start and the end of the load.
    if options.duration < options.outage * 4 || options.duration < Duration::from_secs(4) {
        return Err("--duration must be at least 4 s and 4 x --outage".to_owned());
    }
    if options.rate.is_nan() || options.rate <= 0.0 {
        return Err("--rate must be above 0".to_owned());
    }
    let Setup {
        compose,
        bin_dir,
        log_dir,
        cluster,
        ..
    } = Setup::new("soak", options.bin_dir.as_deref(), options.debug).await?;
    let database = Database::Cluster(cluster.clone());
    let result = run_with(&compose, &database, &cluster, &bin_dir, &log_dir, &options).await;
    cluster.destroy();
    result
}

async fn run_with(
    compose: &Compose,
    database: &Database,
    cluster: &Cluster,
    bin_dir: &Path,
    log_dir: &Path,
    options: &Options,
) -> Result<bool, String> {
    let server = prepare_database(compose, database).await?;
    let [orders_port, users_port, grpc_port, http_port] = free_ports();
    let mut collector = Collector::new(grpc_port, http_port);
    collector.start().await?;
    let endpoint = format!("http://{}", collector.grpc);

    let env = |service: &str, port: u16| {
        service_env(compose, service, &server, [port, users_port], &endpoint)
    };
    let mut users = spawn_service(bin_dir, "users", &env("users", users_port)?, log_dir, None)?;
    wait_ready(&mut users, users_port).await?;
    let mut orders = spawn_service(
        bin_dir,
        "orders",
        &env("orders", orders_port)?,
        log_dir,
        None,
    )?;
    wait_ready(&mut orders, orders_port).await?;
    let orders_url = format!("http://127.0.0.1:{orders_port}");
    let pids = [pid(&orders)?, pid(&users)?];
    println!(
        "soak: {:?} at {}/s against {orders_url}; postgres 127.0.0.1:{}; spans -> {endpoint}; \
         service logs in {}",
        options.duration,
        options.rate,
        cluster.port(),
        log_dir.display()
    );

    let per_answer = spans_per_answer(&orders_url, &collector.counts).await?;
    println!("soak: one GET /orders/1 makes {per_answer} spans; starting the load");

    let sample_every =
        (options.duration / 10).clamp(Duration::from_secs(1), Duration::from_secs(30));
    // The warm-up's spans are not the load's.
    let (spans_before, by_service_before) = {
        let c = collector.counts.lock().expect("counts");
        (c.total, c.by_service.clone())
    };
    let args = [
        format!("--rate={}", options.rate),
        format!("--duration={}ms", options.duration.as_millis()),
    ];
    // Its progress lines show the soak is alive during the long run.
    let (mut load, summary) = start_load(bin_dir, &orders_url, &args, Stdio::inherit())?;

    let started = Instant::now();
    let mut timeline = vec![(0.0, pids.map(rss_kb))];
    let mut next_sample = sample_every;
    let mut postgres: Option<(f64, f64)> = None;
    let mut otlp: Option<(f64, f64, u64)> = None;
    let mut crashed: Vec<String> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let load_status = loop {
        tokio::select! {
            status = load.wait() => break status.map_err(|e| format!("wait for load: {e}"))?,
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => return Err("interrupted".to_owned()),
            _ = sigterm.recv() => return Err("interrupted".to_owned()),
        }
        let now = started.elapsed();
        if crashed.is_empty() {
            for (name, child) in [("orders", &mut orders), ("users", &mut users)] {
                if let Ok(Some(status)) = child.try_wait() {
                    crashed.push(format!("{name} exited at {:.1} s: {status}", secs(now)));
                }
            }
            if !crashed.is_empty() {
                // Load prints its summary on Ctrl-C: the report still gets its numbers.
                if let Some(pid) = load.id() {
                    // SAFETY: signalling our own child.
                    unsafe { libc::kill(pid as i32, libc::SIGINT) };
                }
                continue;
            }
        }
        if now >= next_sample {
            timeline.push((secs(now), pids.map(rss_kb)));
            // An outage holds this loop up: skip the samples it missed, not bunch them.
            while next_sample <= now {
                next_sample += sample_every;
            }
        }
        if postgres.is_none() && now >= options.duration / 3 {
            let down = secs(started.elapsed());
            println!("soak: stopping postgres for {:?}", options.outage);
            let c = cluster.clone();
            tokio::task::spawn_blocking(move || c.stop())
                .await
                .map_err(|e| e.to_string())??;
            tokio::time::sleep(options.outage).await;
            let c = cluster.clone();
            tokio::task::spawn_blocking(move || c.start())
                .await
                .map_err(|e| e.to_string())??;
            postgres = Some((down, secs(started.elapsed())));
            println!("soak: postgres started again");
        }
        if otlp.is_none() && now >= options.duration * 2 / 3 {
            let down = secs(started.elapsed());
            println!("soak: stopping the OTLP receiver for {:?}", options.outage);
            collector.stop().await;
            tokio::time::sleep(options.outage).await;
            collector.start().await?;
            let at_restart = collector.counts.lock().expect("counts").total;
            otlp = Some((down, secs(started.elapsed()), at_restart));
            println!("soak: OTLP receiver started again on {}", collector.grpc);
        }
    };
    let end = pids.map(rss_kb);
    timeline.push((secs(started.elapsed()), end));
    let summary = load_summary(load_status, summary).await?;

    // Callers first, so no request finds the service it calls already gone; both flush
    // their spans on SIGTERM.
    let mut exits = Vec::new();
    for (name, child) in [("orders", &mut orders), ("users", &mut users)] {
        let alive =
            crashed.iter().all(|c| !c.starts_with(name)) && matches!(child.try_wait(), Ok(None));
        exits.push((name, alive, stop(child).await));
    }
    settle(&collector.counts).await;
    collector.stop().await;
    let counts = collector.counts.lock().expect("counts");
    let by_service: BTreeMap<String, u64> = counts
        .by_service
        .iter()
        .map(|(k, v)| (k.clone(), v - by_service_before.get(k).unwrap_or(&0)))
        .collect();

    let report = Report {
        options,
        load_status: load_status.success(),
        summary: &summary,
        per_answer,
        received: counts.total - spans_before,
        by_service: &by_service,
        after_otlp_restart: otlp.map(|(_, _, at)| counts.total - at),
        postgres,
        otlp: otlp.map(|(down, up, _)| (down, up)),
        grpc: collector.grpc,
        timeline: &timeline,
        exits: &exits,
        crashed: &crashed,
    };
    let (text, pass) = report.render();
    print!("{text}");
    Ok(pass)
}

struct Report<'a> {
    options: &'a Options,
    load_status: bool,
    summary: &'a Value,
    per_answer: u64,
    received: u64,
    by_service: &'a BTreeMap<String, u64>,
    after_otlp_restart: Option<u64>,
    postgres: Option<(f64, f64)>,
    otlp: Option<(f64, f64)>,
    grpc: SocketAddr,
    timeline: &'a [(f64, [Option<u64>; 2])],
    exits: &'a [(&'static str, bool, Option<std::process::ExitStatus>)],
    crashed: &'a [String],
}

impl Report<'_> {
    fn render(&self) -> (String, bool) {
        let mut out = String::new();
        let mut line = |label: &str, text: String| {
            out.push_str(&format!("  {label:<12} {text}\n"));
        };
        let s = self.summary;
        let r = &s["requests"];
        line(
            "run",
            format!(
                "{:.1} s at {}/s asked, {}/s achieved, against orders (users behind it){}",
                s["elapsed_s"].as_f64().unwrap_or_default(),
                self.options.rate,
                s["rate"]["achieved_per_s"],
                if s["interrupted"] == true {
                    "  (cut short)"
                } else {
                    ""
                }
            ),
        );
        line(
            "requests",
            format!(
                "sent {}  completed {}  ok {}  failed {}  missed {}",
                r["sent"], r["completed"], r["ok"], r["failed"], r["missed"]
            ),
        );
        line("status", load::counts(&s["status_codes"]));
        line("errors", load::counts(&s["errors"]));
        let p = &s["latency_ms"]["from_schedule"];
        line(
            "latency ms",
            format!("p50 {}  p99 {}  max {}", p["p50"], p["p99"], p["max"]),
        );

        let answered_200 = s["status_codes"]["200"].as_u64().unwrap_or(0);
        let expected = answered_200 * self.per_answer;
        line(
            "spans",
            format!(
                "expected for the 200 answers: {answered_200} x {} = {expected}",
                self.per_answer
            ),
        );
        let services = self
            .by_service
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let share = if expected == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}%", self.received as f64 * 100.0 / expected as f64)
        };
        line(
            "",
            format!(
                "received: {} ({services}), {share} of expected",
                self.received
            ),
        );
        line(
            "",
            "(non-200 answers make other numbers of spans; while the receiver is down each \
             service holds up to OTEL_BSP_MAX_QUEUE_SIZE spans and drops the oldest beyond \
             that, so an outage longer than that many spans' worth shows as a shortfall)"
                .to_owned(),
        );

        let at = |event: Option<(f64, f64)>, what: &str| match event {
            Some((down, up)) => format!("restarted: stopped at {down:.1} s, {what} at {up:.1} s"),
            None => "NOT restarted (the run ended first)".to_owned(),
        };
        line("postgres", at(self.postgres, "started again"));
        line(
            "otlp",
            at(self.otlp, &format!("listening again on {}", self.grpc)),
        );
        if let Some(after) = self.after_otlp_restart {
            line("", format!("spans received after its restart: {after}"));
        }

        let mb = |kb: Option<u64>| match kb {
            Some(kb) => format!("{:.1} MB", kb as f64 / 1024.0),
            None => "-".to_owned(),
        };
        // The first sample is taken once the load has run a while: pools and allocator
        // arenas have grown to their working size by then, which is not a leak.
        let start = self.timeline.get(1).map(|(_, kb)| *kb).unwrap_or([None; 2]);
        let end = self.timeline.last().map(|(_, kb)| *kb).unwrap_or([None; 2]);
        let mut flat = true;
        for (i, name) in ["orders", "users"].into_iter().enumerate() {
            let (text, ok) = match (start[i], end[i]) {
                (Some(a), Some(b)) => {
                    let limit = (a as f64 * GROWTH) as u64 + SLACK_KB;
                    (
                        format!(
                            "{name:<7} start {}  end {}  x{:.2}  (limit {})",
                            mb(Some(a)),
                            mb(Some(b)),
                            b as f64 / a as f64,
                            mb(Some(limit))
                        ),
                        b < limit,
                    )
                }
                _ => (format!("{name:<7} not measured (process gone)"), false),
            };
            flat &= ok;
            line(if i == 0 { "memory" } else { "" }, text);
        }
        line(
            "",
            format!(
                "(start: {:.0} s into the load, once pools have grown; end: as the load ended)",
                self.timeline.get(1).map(|(t, _)| *t).unwrap_or_default()
            ),
        );
        line("timeline", "t s      orders    users".to_owned());
        for (t, kb) in self.timeline {
            line("", format!("{t:<8.0} {:>9} {:>8}", mb(kb[0]), mb(kb[1])));
        }

        let mut alive = true;
        for (i, (name, up, status)) in self.exits.iter().enumerate() {
            alive &= *up;
            let exit = match status {
                Some(status) => status.to_string(),
                None => "killed after 30 s".to_owned(),
            };
            let state = if *up { "alive at the end" } else { "DIED" };
            line(
                if i == 0 { "services" } else { "" },
                format!("{name}: {state}; on SIGTERM: {exit}"),
            );
        }
        for crash in self.crashed {
            line("", crash.clone());
        }

        let restarted = self.postgres.is_some() && self.otlp.is_some();
        let mut failures = Vec::new();
        if !alive {
            failures.push("a service died");
        }
        if !flat {
            failures.push("memory grew");
        }
        if !restarted {
            failures.push("a restart did not happen");
        }
        if !self.load_status {
            failures.push("load failed");
        }
        let pass = failures.is_empty();
        line(
            "verdict",
            if pass {
                format!(
                    "PASS: both services stayed up; memory flat (end < {GROWTH} x start + {} MB)",
                    SLACK_KB / 1024
                )
            } else {
                format!("FAIL: {}", failures.join(", "))
            },
        );
        (format!("soak report\n{out}"), pass)
    }
}
