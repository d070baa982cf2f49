//! One copy of the system under measurement: users and orders of one variant with their
//! counting receiver, and each run's window of CPU time and spans.

use super::*;

/// One copy of the system: users, orders and their receiver.
pub(super) struct Stack {
    pub(super) variant: usize,
    pub(super) orders: Child,
    pub(super) users: Child,
    pub(super) pids: [u32; 2],
    pub(super) orders_url: String,
    pub(super) collector: Collector,
    /// The run whose window is still open: its CPU and span counts at its start.
    pub(super) open: Option<(Run, u64, u64, u64)>,
    /// When the open run's load ended.
    pub(super) ended: Instant,
    /// How long after a run its last spans may still arrive.
    pub(super) flush_delay: Duration,
    pub(super) closed: Vec<Run>,
}

impl Stack {
    pub(super) async fn start(
        variant: usize,
        compose: &Compose,
        server: &crate::database::Server,
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

    pub(super) fn snapshot(&self) -> Result<(u64, u64, u64), String> {
        let mut ticks = 0;
        for (pid, name) in self.pids.iter().zip(["orders", "users"]) {
            ticks += cpu_ticks(*pid)
                .ok_or_else(|| format!("{name} of '{}' is gone", VARIANTS[self.variant].name))?;
        }
        let counts = self.collector.counts.lock().expect("counts");
        Ok((ticks, counts.total, counts.roots))
    }

    /// Ends the open run's window here, once its last spans can have arrived.
    pub(super) async fn close(&mut self) -> Result<(), String> {
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
    pub(super) async fn load(
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

    pub(super) async fn shut_down(mut self) -> Result<Vec<Run>, String> {
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
