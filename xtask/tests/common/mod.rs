//! Starting `cargo xtask up` (the built binary) the way a learner does, on free ports.

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
    task::JoinHandle,
};

pub struct Runner {
    child: Child,
    pub orders_port: u16,
    pub users_port: u16,
    /// The throwaway cluster's directory, as the runner printed it.
    pub cluster_dir: PathBuf,
    drain: JoinHandle<Vec<String>>,
}

impl Runner {
    /// `env` is added to the runner's environment; `args` to `up`.
    pub async fn start(env: &[(&str, String)], args: &[&str]) -> Self {
        let bin_dir = testkit::binary("orders").parent().unwrap().to_path_buf();
        for bin in ["users", "load", "traceview"] {
            testkit::binary(bin);
        }
        let [orders_port, users_port, otlp_port, _] = testkit::free_ports();
        let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["up", "--orders-port", &orders_port.to_string()])
            .args(["--users-port", &users_port.to_string()])
            .args(["--otlp-port", &otlp_port.to_string()])
            .arg("--bin-dir")
            .arg(&bin_dir)
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        let cluster_dir = tokio::time::timeout(Duration::from_secs(120), async {
            let mut cluster_dir = None;
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(dir) = line.split("throwaway cluster in ").nth(1) {
                    cluster_dir = Some(PathBuf::from(dir.trim_end_matches(')')));
                }
                let ready = line.starts_with("ready:");
                seen.push(line);
                if ready {
                    return cluster_dir;
                }
            }
            panic!("runner stopped before ready: {seen:#?}");
        })
        .await
        .expect("ready within 120 s")
        .expect("the runner names its throwaway cluster");
        // Keep draining so the runner never blocks on a full pipe.
        let drain = tokio::spawn(async move {
            let mut rest = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                rest.push(line);
            }
            rest
        });
        Self {
            child,
            orders_port,
            users_port,
            cluster_dir,
            drain,
        }
    }

    /// SIGTERM, as Ctrl-C would; the exit status and everything printed after `ready:`.
    pub async fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id().unwrap() as i32, libc::SIGTERM) };
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("stops within 60 s")
            .unwrap();
        (status, self.drain.await.unwrap())
    }
}
