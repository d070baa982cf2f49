//! `cargo xtask up`: the system of docker-compose.yml without Docker. Postgres is the server
//! named by `DATABASE_URL`, or a throwaway local cluster; users, orders and orders-worker run
//! with the environment compose gives them, only with this machine's addresses in place of
//! compose's host names. Spans go to `OTEL_EXPORTER_OTLP_ENDPOINT` when set; otherwise to the
//! real Jaeger when its binary is found, with the configuration compose gives the image (and
//! Prometheus for its Monitor tab, when Debian's binary is found), or to traceview when it
//! is not. Ctrl-C (or SIGTERM, or SIGHUP when the terminal closes) stops the services
//! gracefully, then the collector, then Postgres; whatever happened to the runner's output
//! first (`cargo xtask up | tee up.log` ends tee with the same Ctrl-C).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use pg_cluster::Cluster;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, BufReader},
    process::{Child, Command},
    signal::unix::{Signal, SignalKind, signal},
};
use url::Url;

use crate::{
    cargo::{build, build_packages, target_dir},
    compose::{Compose, project_root},
    database::{Database, prepare_database, redact},
    process::{isolated_command, service_env, stop, wait_ready},
};

/// `println!` for every line the runner prints, the services' own among them. Its output
/// can go away before it does (`| tee` ended by the same Ctrl-C, `| head`): a line it cannot
/// write is dropped, where `println!` would panic before the runner had stopped what it
/// started (and its Postgres, in a session of its own, would outlive it).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Port for orders (compose publishes 8080).
    #[arg(long, default_value_t = 8080)]
    pub orders_port: u16,
    /// Port for users (compose publishes 8081).
    #[arg(long, default_value_t = 8081)]
    pub users_port: u16,
    /// Port for orders-worker's health probes, its only HTTP (8082 in compose, unpublished).
    #[arg(long, default_value_t = 8082)]
    pub worker_port: u16,
    /// Build and run optimised binaries.
    #[arg(long)]
    pub release: bool,
    /// Also start the load generator, with compose's flags (its rate: LOAD_RATE in .env).
    #[arg(long)]
    pub load: bool,
    /// Port for OTLP/gRPC into Jaeger (or traceview), started when OTEL_EXPORTER_OTLP_ENDPOINT
    /// is unset (compose publishes 4317).
    #[arg(long, default_value_t = 4317)]
    pub otlp_port: u16,
    /// Port for OTLP/HTTP into the same collector (compose publishes 4318).
    #[arg(long, default_value_t = 4318)]
    pub otlp_http_port: u16,
    /// Port for Jaeger's UI and query API (compose publishes 16686).
    #[arg(long, default_value_t = 16686)]
    pub jaeger_port: u16,
    /// Port for Prometheus, which holds the Monitor tab's metrics (compose publishes 9090).
    /// Started with Jaeger when Debian's prometheus binary is found.
    #[arg(long, default_value_t = 9090)]
    pub prometheus_port: u16,
    /// Jaeger with tail sampling: the configuration docker-compose.tail-sampling.yml mounts.
    #[arg(long, conflicts_with = "traceview")]
    pub tail_sampling: bool,
    /// Print traces in this terminal with traceview even when a Jaeger binary is found.
    #[arg(long)]
    pub traceview: bool,
    /// Run the binaries found in this directory instead of building them.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<std::path::PathBuf>,
    /// Which users service: `rust` (services/users) or `python` (services/users-python, in
    /// a virtualenv made from PyPI on first use), as docker-compose.python.yml swaps it.
    #[arg(long, value_enum, default_value_t = crate::python::Users::Rust)]
    pub users: crate::python::Users,
}

pub async fn run(options: Options) -> Result<(), String> {
    // Refused before anything is built or started.
    let plan = plan_collector(&options)?;
    check_ports(&listeners(&options, &plan))?;
    let mut stop_signals = StopSignals::install()?;
    let root = project_root();
    let compose = Compose::load(&root)?;
    if options.bin_dir.is_none() {
        build(&root, options.release).await?;
    }

    let database = match std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(url) => Database::External(
            Url::parse(&url).map_err(|_| "DATABASE_URL is not a postgres:// URL".to_owned())?,
        ),
        None => Database::Cluster(
            tokio::task::spawn_blocking(|| Cluster::create("workshop-pg", None))
                .await
                .map_err(|e| e.to_string())??,
        ),
    };
    let removal = ClusterRemoval::of(&database);
    let result = run_with(
        &root,
        &compose,
        &database,
        &options,
        &plan,
        &mut stop_signals,
    )
    .await;
    drop(removal);
    result
}

/// Stops and removes the throwaway cluster when dropped: at the end of [`run`], and on the
/// way out of a panic too, for its server is in a session of its own and nothing else would
/// ever stop it.
struct ClusterRemoval(Option<Cluster>);

impl ClusterRemoval {
    fn of(database: &Database) -> Self {
        match database {
            Database::Cluster(cluster) => Self(Some(cluster.clone())),
            Database::External(_) => Self(None),
        }
    }
}

impl Drop for ClusterRemoval {
    fn drop(&mut self) {
        if let Some(cluster) = &self.0 {
            cluster.destroy();
            say!("postgres  stopped; {} removed", cluster.root().display());
        }
    }
}

/// The signals that stop the runner: Ctrl-C; SIGTERM (a script, a service manager); SIGHUP
/// (the terminal closed, and the output with it). Installed before anything starts: until a
/// handler is, each of them ends the runner outright and leaves its Postgres running. One
/// that arrives during start-up stops everything as soon as the runner is up.
struct StopSignals([Signal; 3]);

impl StopSignals {
    fn install() -> Result<Self, String> {
        let install = |kind| signal(kind).map_err(|e| format!("handle signal {kind:?}: {e}"));
        Ok(Self([
            install(SignalKind::interrupt())?,
            install(SignalKind::terminate())?,
            install(SignalKind::hangup())?,
        ]))
    }

    /// Until one of them arrives.
    async fn recv(&mut self) {
        let [interrupt, terminate, hangup] = &mut self.0;
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
        }
    }
}

async fn run_with(
    root: &Path,
    compose: &Compose,
    database: &Database,
    options: &Options,
    plan: &CollectorPlan,
    stop_signals: &mut StopSignals,
) -> Result<(), String> {
    let server = prepare_database(compose, database).await?;
    let profile = if options.release { "release" } else { "debug" };
    let bin_dir = options
        .bin_dir
        .clone()
        .unwrap_or_else(|| target_dir(root).join(profile));
    let bin = |name: &str| bin_dir.join(name);

    let mut collector = match plan {
        CollectorPlan::Named(endpoint) => Collector::Named(endpoint.clone()),
        CollectorPlan::Jaeger { binary, prometheus } => {
            start_jaeger(root, options, binary, prometheus.as_deref()).await?
        }
        CollectorPlan::Traceview => start_traceview(root, options, &bin("traceview")).await?,
    };
    let otlp = collector.endpoint(options);
    let local = |service: &str, port: u16| -> Result<BTreeMap<String, String>, String> {
        let mut env = service_env(compose, service, &server, [port, options.users_port], &otlp)?;
        // load's links open the Jaeger this runner started.
        if let (Some(url), Collector::Jaeger { jaeger, .. }) =
            (env.get_mut("JAEGER_UI_URL"), &collector)
        {
            *url = jaeger.ui_url();
        }
        Ok(env)
    };
    let mut users = match options.users {
        crate::python::Users::Rust => {
            start("users", &bin("users"), &local("users", options.users_port)?)?
        }
        crate::python::Users::Python => {
            let (python, app, env) =
                crate::python::prepare(root, local("users", options.users_port)?).await?;
            start_with_args("users", &python, &[app], &env)?
        }
    };
    let ready = wait_ready(&mut users, options.users_port).await;
    let mut orders = match ready {
        Ok(()) => start(
            "orders",
            &bin("orders"),
            &local("orders", options.orders_port)?,
        )?,
        Err(e) => {
            stop(&mut users).await;
            return Err(e);
        }
    };
    if let Err(e) = wait_ready(&mut orders, options.orders_port).await {
        stop(&mut orders).await;
        stop(&mut users).await;
        return Err(e);
    }
    // After orders, as compose starts it: orders' migrations create the outbox it reads.
    // Its log lines say `[worker]`, short enough to line up with the others'.
    let started =
        local(WORKER, options.worker_port).and_then(|env| start("worker", &bin(WORKER), &env));
    let mut worker = match started {
        Ok(child) => child,
        Err(e) => {
            stop(&mut orders).await;
            stop(&mut users).await;
            return Err(e);
        }
    };
    if let Err(e) = wait_ready(&mut worker, options.worker_port).await {
        stop(&mut worker).await;
        stop(&mut orders).await;
        stop(&mut users).await;
        return Err(e);
    }

    let mut load = None;
    if options.load {
        let orders_url = format!("http://127.0.0.1:{}", options.orders_port);
        let args: Vec<String> = compose
            .command("load")?
            .into_iter()
            .skip(1)
            .map(|arg| arg.replace("http://orders:8080", &orders_url))
            .collect();
        match start_with_args("load", &bin("load"), &args, &local("load", 0)?) {
            Ok(child) => load = Some(child),
            Err(e) => {
                stop(&mut worker).await;
                stop(&mut orders).await;
                stop(&mut users).await;
                return Err(e);
            }
        }
    }

    match database {
        Database::Cluster(c) => say!(
            "postgres  127.0.0.1:{}  (throwaway cluster in {})",
            c.port(),
            c.root().display()
        ),
        Database::External(_) => say!("postgres  {}  (from DATABASE_URL)", redact(&server.url)),
    }
    let pid = |child: &Child| {
        child
            .id()
            .map_or_else(String::new, |p| format!("  (pid {p})"))
    };
    say!(
        "users     http://127.0.0.1:{}{}",
        options.users_port,
        pid(&users)
    );
    say!(
        "orders    http://127.0.0.1:{}{}",
        options.orders_port,
        pid(&orders)
    );
    say!(
        "{WORKER} sends the confirmations POST /orders queues; health on \
         http://127.0.0.1:{}/readyz{}",
        options.worker_port,
        pid(&worker)
    );
    if options.load {
        say!("load      sending to orders (see its progress lines)");
    }
    match &collector {
        Collector::Named(endpoint) => say!("spans  -> {endpoint}"),
        Collector::Jaeger {
            jaeger,
            described,
            prometheus,
        } => {
            say!(
                "jaeger    {}  (Jaeger {}, {described}; its log: {})",
                jaeger.ui_url(),
                jaeger.version,
                jaeger.log.display()
            );
            if let Ok(false) = jaeger.serves_ui().await {
                let ui = jaeger.ui_url();
                say!(
                    "no UI     this Jaeger was built from its Go module, which has no UI: {ui} \
                     shows a placeholder page; see traces with traceview (cargo xtask up \
                     --traceview) or in the query API ({ui}/api/traces?service=orders)"
                );
            }
            match prometheus {
                Some(p) => say!(
                    "prometheus {}  (Prometheus {}, deploy/prometheus/prometheus.yml; scrapes {}; \
                     its log: {}/prometheus.log): Jaeger's Monitor tab reads it",
                    p.url(),
                    p.version,
                    jaeger.span_metrics_addr().unwrap_or_default(),
                    p.dir.display()
                ),
                None => say!(
                    "prometheus not found, so Jaeger's Monitor tab stays empty: {}",
                    local_jaeger::prometheus::INSTALL_HINT
                ),
            }
            say!("spans  -> {otlp}");
        }
        Collector::Traceview(_) if options.traceview => {
            say!("spans  -> {otlp}  (traceview prints each trace here)")
        }
        Collector::Traceview(_) => say!(
            "spans  -> {otlp}  (traceview prints each trace here; for Jaeger, {})",
            local_jaeger::INSTALL_HINT
        ),
    }
    say!(
        "ready: curl -i localhost:{}/orders/1   (Ctrl-C stops everything)",
        options.orders_port
    );

    let (mut users_up, mut orders_up, mut worker_up) = (true, true, true);
    let outcome = {
        let load_exit = async {
            match load.as_mut() {
                Some(child) => child.wait().await,
                None => std::future::pending().await,
            }
        };
        // A service that exits (the learner stops users in exercise 9) leaves the rest running,
        // as compose does; Ctrl-C still stops everything.
        let mut load_exit = std::pin::pin!(load_exit);
        loop {
            tokio::select! {
                () = stop_signals.recv() => break Ok(()),
                status = users.wait(), if users_up => {
                    users_up = false;
                    say!("users     exited ({}); the others keep running", describe(status));
                }
                status = orders.wait(), if orders_up => {
                    orders_up = false;
                    say!("orders    exited ({}); the others keep running", describe(status));
                }
                status = worker.wait(), if worker_up => {
                    worker_up = false;
                    say!("{WORKER} exited ({}); the others keep running", describe(status));
                }
                status = &mut load_exit => {
                    break Err(format!("load exited unexpectedly: {status:?}"));
                }
            }
        }
    };
    say!("stopping: {WORKER}, load, orders, then users, then the collector, then postgres");
    // The worker first: it finishes the message in hand, commits, and leaves the rest
    // queued. Then callers first, so no request finds the service it calls already gone.
    stop(&mut worker).await;
    if let Some(load) = load.as_mut() {
        stop(load).await;
    }
    stop(&mut orders).await;
    stop(&mut users).await;
    // Last, so it has the spans the services flushed on their way out.
    collector.stop().await;
    outcome
}

/// orders' second binary, and its service in docker-compose.yml.
const WORKER: &str = "orders-worker";

/// `OTEL_EXPORTER_OTLP_ENDPOINT`, when the learner names a collector of their own.
fn named_collector() -> Option<String> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty())
}

/// Where the spans will go, decided before anything starts: the ports to check first depend
/// on it.
enum CollectorPlan {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`'s collector: nothing to start.
    Named(String),
    /// The Jaeger binary found, and Prometheus's when found too.
    Jaeger {
        binary: PathBuf,
        prometheus: Option<PathBuf>,
    },
    Traceview,
}

/// Jaeger when its binary is found (and not `--traceview`), else traceview; neither when the
/// learner names a collector. `--tail-sampling` without a Jaeger to start is refused here,
/// before anything is built or started.
fn plan_collector(options: &Options) -> Result<CollectorPlan, String> {
    if let Some(endpoint) = named_collector() {
        if options.tail_sampling {
            return Err(format!(
                "--tail-sampling starts a Jaeger of its own, but OTEL_EXPORTER_OTLP_ENDPOINT \
                 ({endpoint}) names a collector already"
            ));
        }
        return Ok(CollectorPlan::Named(endpoint));
    }
    match local_jaeger::find_binary() {
        Some(binary) if !options.traceview => Ok(CollectorPlan::Jaeger {
            binary,
            prometheus: local_jaeger::prometheus::find_binary(),
        }),
        _ if options.tail_sampling => Err(format!(
            "--tail-sampling needs the Jaeger binary and none was found: {}",
            local_jaeger::INSTALL_HINT
        )),
        _ => Ok(CollectorPlan::Traceview),
    }
}

/// A port the runner will listen on: what listens there, and the flag that moves it.
struct Listener {
    port: u16,
    what: &'static str,
    flag: &'static str,
}

/// Every port the runner will listen on with `options` and `plan` (Jaeger's internal
/// listeners pick free ports of their own).
fn listeners(options: &Options, plan: &CollectorPlan) -> Vec<Listener> {
    let listener = |port, what, flag| Listener { port, what, flag };
    let mut listeners = vec![
        listener(options.orders_port, "orders", "--orders-port"),
        listener(options.users_port, "users", "--users-port"),
        listener(
            options.worker_port,
            "orders-worker's probes",
            "--worker-port",
        ),
    ];
    if !matches!(plan, CollectorPlan::Named(_)) {
        listeners.push(listener(options.otlp_port, "OTLP/gRPC", "--otlp-port"));
        listeners.push(listener(
            options.otlp_http_port,
            "OTLP/HTTP",
            "--otlp-http-port",
        ));
    }
    if let CollectorPlan::Jaeger { prometheus, .. } = plan {
        listeners.push(listener(options.jaeger_port, "Jaeger UI", "--jaeger-port"));
        if prometheus.is_some() {
            listeners.push(listener(
                options.prometheus_port,
                "Prometheus",
                "--prometheus-port",
            ));
        }
    }
    listeners
}

/// Refuses, in one line, when something already listens on a port of `listeners`, naming
/// each such port and what holds it where `ss` can tell. A second runner (or compose) holds
/// them all; found only once Postgres was up, the one fact came after Jaeger's whole
/// start-up log.
fn check_ports(listeners: &[Listener]) -> Result<(), String> {
    let taken: Vec<(&Listener, String)> = listeners
        .iter()
        .filter(|l| !ports::is_free(l.port))
        .map(|l| {
            let by = ports::listener(l.port)
                .map(|holder| format!(", by {holder}"))
                .unwrap_or_default();
            (l, by)
        })
        .collect();
    let flags = taken
        .iter()
        .map(|(l, _)| l.flag)
        .collect::<Vec<_>>()
        .join(", ");
    match taken.as_slice() {
        [] => Ok(()),
        [(l, by)] => Err(format!(
            "127.0.0.1:{} ({}) is already in use{by}; stop it or choose another port with \
             {flags}",
            l.port, l.what
        )),
        many => Err(format!(
            "already in use: {}; stop them or choose other ports with {flags}",
            many.iter()
                .map(|(l, by)| format!("127.0.0.1:{} ({}){by}", l.port, l.what))
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

/// Where the spans go.
enum Collector {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, someone else's.
    Named(String),
    /// The real Jaeger, with a description of its configuration, and the Prometheus its
    /// Monitor tab reads when that binary is found.
    Jaeger {
        jaeger: Box<local_jaeger::Jaeger>,
        described: String,
        prometheus: Option<local_jaeger::prometheus::Prometheus>,
    },
    /// The terminal trace view.
    Traceview(Child),
}

impl Collector {
    fn endpoint(&self, options: &Options) -> String {
        match self {
            Self::Named(endpoint) => endpoint.clone(),
            Self::Jaeger { jaeger, .. } => jaeger.otlp_endpoint(),
            Self::Traceview(_) => format!("http://127.0.0.1:{}", options.otlp_port),
        }
    }

    async fn stop(&mut self) {
        match self {
            Self::Named(_) => {}
            Self::Jaeger {
                jaeger, prometheus, ..
            } => {
                jaeger.stop().await;
                if let Some(prometheus) = prometheus {
                    prometheus.stop().await;
                }
            }
            Self::Traceview(child) => {
                stop(child).await;
            }
        }
    }
}

/// Jaeger from `binary`, with the Prometheus its Monitor tab reads when that binary is found.
async fn start_jaeger(
    root: &Path,
    options: &Options,
    binary: &Path,
    prometheus: Option<&Path>,
) -> Result<Collector, String> {
    let files = jaeger_config_files(root, options.tail_sampling)?;
    let described = files
        .iter()
        .map(|f| f.strip_prefix(root).unwrap_or(f).display().to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    let prometheus_addr = format!("127.0.0.1:{}", options.prometheus_port);
    let config = local_jaeger::Config::files(files).with_host(PROMETHEUS, &prometheus_addr);
    let ports = local_jaeger::Ports {
        otlp_grpc: options.otlp_port,
        otlp_http: options.otlp_http_port,
        query_http: options.jaeger_port,
    };
    let log = target_dir(root).join("up").join("jaeger.log");
    let jaeger = local_jaeger::Jaeger::start(binary, &config, ports, &log)
        .await
        .map_err(|e| {
            format!(
                "{e}\n(to send spans to a collector already running, set \
                 OTEL_EXPORTER_OTLP_ENDPOINT; --traceview prints them here instead)"
            )
        })?;
    let prometheus = match prometheus {
        Some(binary) => {
            let dir = target_dir(root).join("up").join("prometheus");
            // A fresh start, as a new container has: no series of an earlier run.
            let _ = std::fs::remove_dir_all(&dir);
            let targets = jaeger
                .span_metrics_addr()
                .map(|addr| (SPAN_METRICS.to_owned(), addr))
                .into_iter()
                .collect();
            let config = local_jaeger::prometheus::project_config();
            let started = local_jaeger::prometheus::Prometheus::start(
                binary,
                &config,
                options.prometheus_port,
                &targets,
                &dir,
            )
            .await
            .map_err(|e| format!("{e}\n(--prometheus-port picks another port)"));
            match started {
                Ok(prometheus) => Some(prometheus),
                Err(e) => {
                    let mut jaeger = jaeger;
                    jaeger.stop().await;
                    return Err(e);
                }
            }
        }
        None => None,
    };
    Ok(Collector::Jaeger {
        jaeger: Box::new(jaeger),
        described,
        prometheus,
    })
}

/// Compose's address of Prometheus, as deploy/jaeger/jaeger.yaml's metric backend names it.
const PROMETHEUS: &str = "prometheus:9090";
/// Compose's address of Jaeger's spanmetrics, as deploy/prometheus/prometheus.yml scrapes it.
const SPAN_METRICS: &str = "jaeger:8889";

/// The files compose gives Jaeger as `--config` (docker-compose.yml, with
/// docker-compose.tail-sampling.yml over it for tail sampling), found through the volumes
/// that mount them, so both paths run the very same configuration.
pub fn jaeger_config_files(root: &Path, tail_sampling: bool) -> Result<Vec<PathBuf>, String> {
    let mut files = vec!["docker-compose.yml"];
    if tail_sampling {
        files.push("docker-compose.tail-sampling.yml");
    }
    let (mut command, mut mounts) = (Vec::new(), BTreeMap::new());
    for name in files {
        let path = root.join(name);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
        let file: serde_json::Value =
            serde_saphyr::from_str(&text).map_err(|e| format!("parse {}: {e}", path.display()))?;
        let jaeger = &file["services"]["jaeger"];
        // As compose merges: a later file's command replaces, its volumes add.
        if let Some(args) = jaeger["command"].as_array() {
            command = args
                .iter()
                .filter_map(|a| a.as_str())
                .map(str::to_owned)
                .collect();
        }
        for volume in jaeger["volumes"].as_array().into_iter().flatten() {
            let mut parts = volume.as_str().unwrap_or_default().split(':');
            if let (Some(source), Some(target)) = (parts.next(), parts.next()) {
                mounts.insert(target.to_owned(), root.join(source));
            }
        }
    }
    let configs: Vec<PathBuf> = command
        .iter()
        .zip(command.iter().skip(1))
        .filter(|(flag, _)| *flag == "--config")
        .map(|(_, file)| {
            mounts
                .get(file.trim_start_matches("file:"))
                .cloned()
                .ok_or_else(|| format!("jaeger's --config {file} is not a file compose mounts"))
        })
        .collect::<Result<_, _>>()?;
    if configs.is_empty() {
        return Err("docker-compose.yml gives jaeger no --config".to_owned());
    }
    Ok(configs)
}

async fn start_traceview(
    root: &Path,
    options: &Options,
    binary: &Path,
) -> Result<Collector, String> {
    // `build` leaves traceview out: the receiver's dependencies would change the features
    // the services are compiled with, and the benchmarks build through it too.
    if !binary.is_file() && options.bin_dir.is_none() {
        build_packages(root, options.release, &["traceview"]).await?;
    }
    let grpc = format!("127.0.0.1:{}", options.otlp_port);
    let http = format!("127.0.0.1:{}", options.otlp_http_port);
    let mut child = Command::new(binary)
        .args(["--grpc", &grpc, "--http", &http])
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("start traceview: {e}"))?;
    // It exits at once when the port is taken (say, by a Jaeger already running).
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Ok(Some(status)) = child.try_wait() {
        return Err(format!(
            "traceview could not listen on {grpc} and {http} ({status}); to send spans \
             to a collector already there, set OTEL_EXPORTER_OTLP_ENDPOINT=http://{grpc}"
        ));
    }
    Ok(Collector::Traceview(child))
}

fn describe(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(e) => e.to_string(),
    }
}

fn start(name: &str, binary: &Path, env: &BTreeMap<String, String>) -> Result<Child, String> {
    start_with_args(name, binary, &[], env)
}

fn start_with_args(
    name: &str,
    binary: &Path,
    args: &[String],
    env: &BTreeMap<String, String>,
) -> Result<Child, String> {
    let mut child = isolated_command(binary, env)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start {}: {e}", binary.display()))?;
    prefix_lines(name, child.stdout.take().expect("piped"));
    prefix_lines(name, child.stderr.take().expect("piped"));
    Ok(child)
}

/// Relays a child's lines with its name in front. It reads to the end even once the runner's
/// output is gone: a child whose pipe stopped being read would block on it, or lose its
/// stdout, while it still runs.
fn prefix_lines(name: &str, stream: impl AsyncRead + Unpin + Send + 'static) {
    let prefix = format!("[{name:>6}] ");
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            say!("{prefix}{line}");
        }
    });
}
