//! The real Jaeger v2 binary, run on this machine as compose runs its image.
//!
//! Compose runs `jaegertracing/jaeger` with `deploy/jaeger/jaeger.yaml` (and, for tail
//! sampling, `deploy/jaeger/tail-sampling.yaml` over it). Here the same binary runs with the
//! same files; only addresses change, through the collector's own `--set` overrides: its
//! listeners, so that several copies (one per test) can run side by side and nothing
//! listens beyond 127.0.0.1, and the URLs it calls (Prometheus), which name compose's host
//! names. The ports compose publishes (UI 16686, OTLP 4317 and 4318) are the caller's
//! choice; every other listener, which compose keeps inside the container, gets a free port
//! ([`Jaeger::span_metrics_addr`] tells the one Prometheus scrapes).
//!
//! [`query`] reads what Jaeger stored through the HTTP API its UI reads; [`prometheus`]
//! runs the Prometheus its Monitor tab reads, as compose runs it.
//! [`wait_ready`] and [`terminate`] are how every process the workbench starts is waited
//! for and stopped, the runner's services as well as these two.

mod process;
pub mod prometheus;
pub mod query;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::process::{Child, Command};

use ports::free_ports;
use process::spawn_logged;
pub use process::{NotReady, READY_WITHIN, terminate, wait_ready};
pub use query::{Query, Span, Trace};

/// A line of the page a Jaeger binary without UI assets serves in place of its UI
/// (cmd/query/app/ui/placeholder/index.html in Jaeger's source).
pub const UI_PLACEHOLDER: &str = "This is not the Jaeger UI you are looking for";

/// How to install the binary, for every message that says it is missing.
pub const INSTALL_HINT: &str = concat!(
    "install it with .ci/install-jaeger (Jaeger v2's release binary, or a build of its Go ",
    "module), or set JAEGER_BIN"
);

/// The Jaeger binary: `JAEGER_BIN`, else `jaeger` on `PATH`, else Go's bin folder (where
/// `.ci/install-jaeger` puts it). `None` when there is none.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("JAEGER_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("jaeger"))
            .find(|candidate| is_executable(candidate))
    });
    on_path.or_else(|| {
        go_bin_dir()
            .map(|dir| dir.join("jaeger"))
            .filter(|p| is_executable(p))
    })
}

/// `GOBIN`, else `$GOPATH/bin`, else `~/go/bin` (Go's own defaults, without running `go`).
fn go_bin_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("GOBIN") {
        return Some(PathBuf::from(dir));
    }
    if let Some(gopath) = non_empty("GOPATH") {
        return std::env::split_paths(&gopath).next().map(|p| p.join("bin"));
    }
    non_empty("HOME").map(|home| PathBuf::from(home).join("go").join("bin"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The release a binary reports (`jaeger version` prints `"gitVersion":"v2.12.0"`), without
/// the `v`: the tag of the `jaegertracing/jaeger` image it matches.
pub fn version(binary: &Path) -> Result<String, String> {
    let output = std::process::Command::new(binary)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {} version: {e}", binary.display()))?;
    let printed: serde_json::Value = String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| serde_json::from_str(line).ok())
        .ok_or_else(|| format!("{} version printed no JSON", binary.display()))?;
    printed["gitVersion"]
        .as_str()
        .and_then(|v| v.strip_prefix('v'))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "{} reports no release (built without its version stamp; {INSTALL_HINT})",
                binary.display()
            )
        })
}

/// Which configuration Jaeger runs with: the files compose passes as `--config`, later
/// ones overriding earlier ones, and this machine's address for each `host:port` of
/// compose's that a URL in them names (`http://prometheus:9090`).
#[derive(Debug, Clone)]
pub struct Config {
    pub files: Vec<PathBuf>,
    pub hosts: BTreeMap<String, String>,
}

impl Config {
    /// deploy/jaeger/jaeger.yaml, the file docker-compose.yml mounts.
    pub fn project() -> Self {
        Self::files([project_root().join("deploy/jaeger/jaeger.yaml")])
    }

    pub fn files(files: impl IntoIterator<Item = PathBuf>) -> Self {
        Self {
            files: files.into_iter().collect(),
            hosts: BTreeMap::new(),
        }
    }

    /// Where compose's `compose_host` (`prometheus:9090`) is on this machine.
    pub fn with_host(mut self, compose_host: &str, local: &str) -> Self {
        self.hosts.insert(compose_host.to_owned(), local.to_owned());
        self
    }
}

/// The workspace root, where deploy/ lives.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workbench/local-jaeger lives two levels below the workspace root")
        .to_path_buf()
}

/// Where the listeners compose publishes go.
#[derive(Debug, Clone)]
pub struct Ports {
    pub otlp_grpc: u16,
    pub otlp_http: u16,
    pub query_http: u16,
}

impl Ports {
    /// Three ports that were free a moment ago.
    pub fn free() -> Self {
        let [otlp_grpc, otlp_http, query_http] = free_ports();
        Self {
            otlp_grpc,
            otlp_http,
            query_http,
        }
    }
}

const OTLP_GRPC: &str = "receivers::otlp::protocols::grpc::endpoint";
const OTLP_HTTP: &str = "receivers::otlp::protocols::http::endpoint";
const QUERY_HTTP: &str = "extensions::jaeger_query::http::endpoint";
const QUERY_GRPC: &str = "extensions::jaeger_query::grpc::endpoint";
const HEALTH_HTTP: &str = "extensions::healthcheckv2::http::endpoint";
/// Where the spanmetrics' Prometheus exporter serves the metrics Prometheus scrapes.
pub const SPAN_METRICS: &str = "exporters::prometheus::endpoint";

/// What the files name, as `--set` keys: every listener (an `endpoint` that is an address),
/// plus the query's gRPC listener, which Jaeger opens on 16685 when no file names it; and
/// every URL they call (an `endpoint` with a scheme), with its value.
#[derive(Debug, Default)]
struct Endpoints {
    listeners: Vec<String>,
    urls: Vec<(String, String)>,
}

fn endpoints(files: &[PathBuf]) -> Result<Endpoints, String> {
    let mut found = Endpoints::default();
    for path in files {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
        let file: serde_json::Value =
            serde_saphyr::from_str(&text).map_err(|e| format!("parse {}: {e}", path.display()))?;
        collect_endpoints(&file, &mut Vec::new(), &mut found);
        if file.pointer("/extensions/jaeger_query").is_some()
            && !found.listeners.iter().any(|k| k == QUERY_GRPC)
        {
            found.listeners.push(QUERY_GRPC.to_owned());
        }
    }
    found.listeners.sort();
    found.listeners.dedup();
    for needed in [OTLP_GRPC, HEALTH_HTTP, QUERY_HTTP] {
        if !found.listeners.iter().any(|k| k == needed) {
            return Err(format!("{files:?} name no {needed}"));
        }
    }
    Ok(found)
}

fn collect_endpoints(value: &serde_json::Value, path: &mut Vec<String>, out: &mut Endpoints) {
    if let serde_json::Value::Object(map) = value {
        for (key, child) in map {
            path.push(key.clone());
            match child.as_str() {
                Some(url) if key == "endpoint" && url.contains("://") => {
                    out.urls.push((path.join("::"), url.to_owned()))
                }
                Some(_) if key == "endpoint" => out.listeners.push(path.join("::")),
                _ => collect_endpoints(child, path, out),
            }
            path.pop();
        }
    }
}

/// A running Jaeger, stopped (killed) when dropped.
pub struct Jaeger {
    child: Child,
    pub ports: Ports,
    health_port: u16,
    /// Every listener's port, by `--set` key.
    listeners: BTreeMap<String, u16>,
    pub version: String,
    pub log: PathBuf,
}

impl Jaeger {
    /// Starts `binary` with `config`, its log (stdout and stderr) in `log`, and waits until
    /// its health check says it is ready (at most 60 s). Its internal listeners get ports
    /// leased to this process (the ports crate); the published `ports` are the caller's.
    pub async fn start(
        binary: &Path,
        config: &Config,
        ports: Ports,
        log: &Path,
    ) -> Result<Self, String> {
        let version = version(binary)?;
        let endpoints = endpoints(&config.files)?;
        // Distinct, and never one this process handed out before (the ports crate).
        let published = [ports.otlp_grpc, ports.otlp_http, ports.query_http];
        let mut internal = free_ports::<32>()
            .into_iter()
            .filter(|port| !published.contains(port));
        let mut listeners = BTreeMap::new();
        let mut args: Vec<String> = config
            .files
            .iter()
            .map(|path| format!("--config=file:{}", path.display()))
            .collect();
        for key in &endpoints.listeners {
            let port = match key.as_str() {
                OTLP_GRPC => ports.otlp_grpc,
                OTLP_HTTP => ports.otlp_http,
                QUERY_HTTP => ports.query_http,
                _ => internal
                    .next()
                    .ok_or_else(|| format!("more than 32 listeners in {config:?}"))?,
            };
            listeners.insert(key.clone(), port);
            args.push(format!("--set={key}=127.0.0.1:{port}"));
        }
        for (key, url) in &endpoints.urls {
            if let Some(local) = config.hosts.iter().find_map(|(compose, local)| {
                url.contains(&format!("://{compose}"))
                    .then(|| url.replacen(compose.as_str(), local, 1))
            }) {
                args.push(format!("--set={key}={local}"));
            }
        }
        let health_port = listeners[HEALTH_HTTP];

        let mut command = Command::new(binary);
        command.args(&args);
        // Jaeger's own OpenTelemetry SDK (its query API's self-tracing, when a configuration
        // turns it on) sees compose's container environment: no OTEL_ variable, so it exports
        // to localhost:4317, Jaeger's own receiver there. The same here, not the test's or
        // the learner's OTEL_ settings, so it never reports into someone else's collector.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OTEL_") {
                command.env_remove(name);
            }
        }
        command.env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", ports.otlp_grpc),
        );
        let child = spawn_logged(&mut command, log, false)?;
        let mut jaeger = Self {
            child,
            ports,
            health_port,
            listeners,
            version,
            log: log.to_path_buf(),
        };
        jaeger.wait_healthy().await?;
        Ok(jaeger)
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let url = format!("http://127.0.0.1:{}/status", self.health_port);
        let healthy = async |response: reqwest::Response| {
            response
                .json::<serde_json::Value>()
                .await
                .is_ok_and(|status| status["healthy"] == true)
        };
        wait_ready(&mut self.child, &url, healthy)
            .await
            .map_err(|not_ready| match not_ready {
                NotReady::Exited(status) => {
                    let ports: Vec<u16> = self.listeners.values().copied().collect();
                    process::exited_during_start("jaeger", status, &self.log, &ports)
                }
                NotReady::TimedOut(within) => format!(
                    "jaeger not healthy within {} s; its log: {}",
                    within.as_secs(),
                    self.log.display()
                ),
            })
    }

    /// Where services send spans: OTLP/gRPC, as `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn otlp_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.otlp_grpc)
    }

    /// OTLP/HTTP, as `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter appends `/v1/traces`).
    pub fn otlp_http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.otlp_http)
    }

    /// Where the spanmetrics are served for Prometheus to scrape (`jaeger:8889` in compose),
    /// when the configuration has them.
    pub fn span_metrics_addr(&self) -> Option<String> {
        self.listeners
            .get(SPAN_METRICS)
            .map(|port| format!("127.0.0.1:{port}"))
    }

    /// The UI's (and its query API's) base URL.
    pub fn ui_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.query_http)
    }

    /// Whether its UI is the real one: a binary built from Jaeger's Go module has no UI
    /// assets (the release build compiles them from another repository) and serves a
    /// placeholder page instead; its query API is the same.
    pub async fn serves_ui(&self) -> Result<bool, String> {
        let url = format!("{}/", self.ui_url());
        let page = reqwest::get(&url)
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("GET {url}: {e}"))?
            .text()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        Ok(!page.contains(UI_PLACEHOLDER))
    }

    /// A client of the query API.
    pub fn query(&self) -> Query {
        Query::new(&self.ui_url())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM, then up to 10 s to exit (killed after that). Its in-memory traces are gone.
    pub async fn stop(&mut self) -> Option<std::process::ExitStatus> {
        terminate(&mut self.child, Duration::from_secs(10)).await
    }

    /// Whether it has exited (and how), without waiting.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}
