//! The Prometheus that Jaeger's Monitor tab reads, run on this machine as compose runs its
//! image: Debian's `prometheus` binary with deploy/prometheus/prometheus.yml, where each
//! scrape target of compose's (`jaeger:8889`) is replaced by this machine's address.
//! Prometheus has no flag to override one setting, so the file is written again, with only
//! the targets changed, into the folder that also holds its data and log.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::process::{Child, Command};

use crate::{NotReady, process};

/// How to install it, for every message that says it is missing.
pub const INSTALL_HINT: &str =
    "install Debian's prometheus package (apt-get install prometheus), or set PROMETHEUS_BIN";

/// `PROMETHEUS_BIN`, else `prometheus` on `PATH`.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PROMETHEUS_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("prometheus"))
            .find(|candidate| crate::is_executable(candidate))
    })
}

/// The release a binary reports (`prometheus, version 2.42.0+ds (...)`), without Debian's
/// suffix: the tag of the `prom/prometheus` image it matches, less its `v`.
pub fn version(binary: &Path) -> Result<String, String> {
    let output = std::process::Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {} --version: {e}", binary.display()))?;
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    printed
        .split_whitespace()
        .skip_while(|word| *word != "version")
        .nth(1)
        .map(|v| v.split('+').next().unwrap_or(v).to_owned())
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .ok_or_else(|| format!("{} --version printed no version", binary.display()))
}

/// deploy/prometheus/prometheus.yml, the file docker-compose.yml mounts.
pub fn project_config() -> PathBuf {
    crate::project_root().join("deploy/prometheus/prometheus.yml")
}

/// `config` with every scrape target found in `targets` (compose's `host:port`) replaced by
/// its value; as JSON, which Prometheus reads as the YAML it is a subset of.
pub fn local_config(config: &Path, targets: &BTreeMap<String, String>) -> Result<String, String> {
    let text =
        std::fs::read_to_string(config).map_err(|e| format!("read {}: {e}", config.display()))?;
    let mut file: serde_json::Value =
        serde_saphyr::from_str(&text).map_err(|e| format!("parse {}: {e}", config.display()))?;
    let jobs = file
        .get_mut("scrape_configs")
        .and_then(|jobs| jobs.as_array_mut())
        .ok_or_else(|| format!("{} has no scrape_configs", config.display()))?;
    for job in jobs {
        let groups = job
            .get_mut("static_configs")
            .and_then(|g| g.as_array_mut())
            .into_iter()
            .flatten();
        for target in groups
            .filter_map(|group| group.get_mut("targets")?.as_array_mut())
            .flatten()
        {
            if let Some(local) = target.as_str().and_then(|t| targets.get(t)) {
                *target = serde_json::Value::String(local.clone());
            }
        }
    }
    serde_json::to_string_pretty(&file).map_err(|e| e.to_string())
}

/// A running Prometheus, stopped (killed) when dropped.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    pub version: String,
    /// Its configuration as run, its data and its log (`prometheus.log`).
    pub dir: PathBuf,
}

impl Prometheus {
    /// Starts `binary` on 127.0.0.1:`port` with `config`, its scrape `targets` replaced,
    /// keeping everything in `dir` (its data survives a restart in the same folder), and
    /// waits until it says it is ready (at most 60 s).
    pub async fn start(
        binary: &Path,
        config: &Path,
        port: u16,
        targets: &BTreeMap<String, String>,
        dir: &Path,
    ) -> Result<Self, String> {
        let version = version(binary)?;
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let local = dir.join("prometheus.yml");
        std::fs::write(&local, local_config(config, targets)?)
            .map_err(|e| format!("write {}: {e}", local.display()))?;
        // Appended to: a restart in the same folder keeps the earlier run's lines.
        let child = process::spawn_logged(
            Command::new(binary)
                .arg(format!("--config.file={}", local.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                )),
            &dir.join("prometheus.log"),
            true,
        )?;
        let mut prometheus = Self {
            child,
            port,
            version,
            dir: dir.to_path_buf(),
        };
        prometheus.wait_ready().await?;
        Ok(prometheus)
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let url = format!("{}/-/ready", self.url());
        crate::wait_ready(&mut self.child, &url, async |_| true)
            .await
            .map_err(|not_ready| match not_ready {
                NotReady::Exited(status) => {
                    let log = self.dir.join("prometheus.log");
                    process::exited_during_start("prometheus", status, &log, &[self.port])
                }
                NotReady::TimedOut(within) => {
                    format!("{url} not ready within {} s", within.as_secs())
                }
            })
    }

    /// Its base URL: its own UI, and what jaeger_query reads.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The sum of an instant PromQL query's values (0 when it matches no series).
    pub async fn sum(&self, promql: &str) -> Result<f64, String> {
        let mut url =
            url::Url::parse(&format!("{}/api/v1/query", self.url())).map_err(|e| e.to_string())?;
        url.query_pairs_mut().append_pair("query", promql);
        let response: serde_json::Value = reqwest::get(url)
            .await
            .map_err(|e| format!("query prometheus: {e}"))?
            .json()
            .await
            .map_err(|e| format!("read prometheus' answer: {e}"))?;
        let series = response["data"]["result"]
            .as_array()
            .ok_or_else(|| format!("prometheus answered {response}"))?;
        Ok(series
            .iter()
            .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
            .sum())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM, then up to 10 s to exit (killed after that).
    pub async fn stop(&mut self) -> Option<std::process::ExitStatus> {
        process::terminate(&mut self.child, Duration::from_secs(10)).await
    }
}
