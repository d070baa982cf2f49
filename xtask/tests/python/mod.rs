//! The Python users service as a child process of a test, beside the Rust services: its
//! virtualenv from xtask::python, its settings from the environment only, killed on drop.
// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use testkit::{ServiceProcess, local_jaeger::Jaeger, stack};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

/// The workspace's target folder: test binaries are in target/<profile>/deps.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// target/users-python/venv's interpreter, made on first use (from PyPI) and reused.
pub async fn python() -> PathBuf {
    static VENV: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    VENV.get_or_init(|| async {
        tokio::task::spawn_blocking(|| {
            xtask::python::ensure_venv(&xtask::compose::project_root(), &target_dir())
        })
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"))
    })
    .await
    .clone()
}

pub struct PythonUsers {
    pub url: String,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl PythonUsers {
    /// `python app.py` with `env` (and PATH) only, on a free port of 127.0.0.1; returns once
    /// it says it listens (its database answers by then).
    pub async fn start(env: &[(&str, String)]) -> Self {
        let python = python().await;
        let mut child = Command::new(python)
            .arg(xtask::python::app(&xtask::compose::project_root()))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the Python users service");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (logs, tx) = (Arc::clone(&logs), tx.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
                        && json["message"] == "listening"
                        && let Some(addr) = json["addr"].as_str()
                    {
                        let _ = tx.send(addr.to_owned());
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        tokio::select! {
            Some(addr) = rx.recv() => Self { url: format!("http://{addr}"), child, logs },
            status = child.wait() => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                panic!("users-python exited before listening ({status:?}):\n{}", logs.lock().unwrap().join("\n"));
            }
            () = tokio::time::sleep(Duration::from_secs(60)) => {
                panic!("users-python did not listen within 60 s:\n{}", logs.lock().unwrap().join("\n"));
            }
        }
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// SIGTERM, as compose stops it; its spans are flushed once this returns.
    pub async fn terminate(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
            panic!(
                "users-python did not stop within 15 s of SIGTERM:\n{}",
                self.logs().join("\n")
            );
        }
    }
}

/// The settings compose gives users-python, pointed at `jaeger` and `database_url`.
pub fn python_env(jaeger: &Jaeger, database_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_SERVICE_NAME", "users-python".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.otlp_endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
        ("DATABASE_URL", database_url.to_owned()),
        ("DEMO_FAULTS", "on".to_owned()),
    ]
}

/// The real Jaeger; the Rust users service (which migrates the users database, and answers
/// for comparison); the Python one on the same database; Rust orders calling the Python one.
pub struct System {
    pub jaeger: Jaeger,
    pub rust_users: String,
    pub python_users: String,
    pub client: reqwest::Client,
    // Dropped in this order: callers first.
    orders: ServiceProcess,
    python: PythonUsers,
    users: ServiceProcess,
}

impl System {
    pub async fn start() -> Self {
        let (jaeger, postgres, _) = tokio::join!(testkit::jaeger(), testkit::postgres(), python());
        let (users_db, orders_db) = tokio::join!(
            postgres.create_database("users"),
            postgres.create_database("orders")
        );
        let users =
            stack::spawn_users(&jaeger, &users_db, &[("DEMO_FAULTS", "on".to_owned())]).await;
        let python = PythonUsers::start(&python_env(&jaeger, &users_db)).await;
        let orders = stack::spawn_orders(
            &jaeger,
            &orders_db,
            &python.url,
            &[("DEMO_FAULTS", "on".to_owned())],
        )
        .await;
        Self {
            rust_users: users.url(),
            python_users: python.url.clone(),
            jaeger,
            client: testkit::http_client(),
            orders,
            python,
            users,
        }
    }

    pub fn orders_url(&self, path: &str) -> String {
        format!("{}{path}", self.orders.url())
    }

    pub fn jaeger(&self) -> testkit::local_jaeger::Query {
        self.jaeger.query()
    }

    /// Every service stopped gracefully (spans flushed).
    pub async fn stop(mut self) {
        self.orders.terminate().await;
        self.python.terminate().await;
        self.users.terminate().await;
    }
}
