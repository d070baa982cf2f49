//! The project's binaries as child processes, started the way compose starts them: settings
//! from the environment only, logs as JSON lines on stdout.

use std::{
    ffi::OsStr,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

pub struct ServiceProcess {
    pub addr: SocketAddr,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    /// The stdout and stderr readers: they end at EOF, once the process has exited.
    readers: Vec<tokio::task::JoinHandle<()>>,
    exit: Option<ExitStatus>,
}

/// Locates a binary of the workspace, building the workspace's binaries once per test
/// process. An `orders` test needs the `users` binary of another package, which
/// `CARGO_BIN_EXE_*` does not cover. The build asks for the same targets `cargo test
/// --workspace` builds (bins and tests), so Cargo resolves the same features and finds
/// everything fresh; `cargo build -p users` would resolve fewer features and compile a
/// second copy of the dependencies.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
        let mut command = std::process::Command::new(cargo);
        command.args([
            "build",
            "--quiet",
            "--workspace",
            "--bins",
            "--tests",
            "--manifest-path",
            manifest,
        ]);
        if !cfg!(debug_assertions) {
            command.arg("--release");
        }
        match command.status() {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!("cargo build of the workspace binaries: {status}")),
            Err(e) => Err(format!("run cargo: {e}")),
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    // target/<profile>/deps/<test binary> -> target/<profile>/<name>
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

fn command(program: &Path, env: &[(&str, String)]) -> Command {
    let mut command = Command::new(program);
    // Nothing of the shell's: an exported DEMO_FAULTS or OTEL_* would change what the
    // process under test does. PATH only, as xtask's runner gives its children.
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

fn collect_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    logs: Arc<Mutex<Vec<String>>>,
    listening: Option<mpsc::UnboundedSender<SocketAddr>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let (Some(tx), Some(addr)) = (&listening, listening_addr(&line)) {
                let _ = tx.send(addr);
            }
            logs.lock().expect("log lock").push(line);
        }
    })
}

/// The services log `{"message":"listening","addr":"127.0.0.1:PORT",...}` once bound, or
/// `... listening addr=127.0.0.1:PORT` in the human format.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
        let mut words = line.split_whitespace().skip_while(|w| *w != "listening");
        return words.find_map(|w| w.strip_prefix("addr=")?.parse().ok());
    };
    if json.get("message")?.as_str()? != "listening" {
        return None;
    }
    json.get("addr")?.as_str()?.parse().ok()
}

/// Starts `name` with `LISTEN_ADDR=127.0.0.1:0`, JSON logs and `env` (which wins), and
/// waits until it says where it listens: migrations are applied by then.
pub async fn spawn_service(name: &str, env: &[(&str, String)]) -> ServiceProcess {
    let path_name = name.to_owned();
    let path = tokio::task::spawn_blocking(move || binary(&path_name))
        .await
        .expect("build thread");
    spawn_program(name, &path, &[], env).await
}

/// [`spawn_service`] for a program that is not a workspace binary (the Python users
/// service: its interpreter and script), started and awaited the same way: it logs the same
/// `listening` line.
pub async fn spawn_program(
    name: &str,
    program: &Path,
    args: &[&OsStr],
    env: &[(&str, String)],
) -> ServiceProcess {
    let mut child = command(program, env)
        .args(args)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The logs (and so the `listening` line) are on stderr; stdout is read too, so nothing
    // a binary prints is lost from a failure message.
    let readers = vec![
        collect_lines(
            child.stdout.take().expect("piped stdout"),
            logs.clone(),
            None,
        ),
        collect_lines(
            child.stderr.take().expect("piped stderr"),
            logs.clone(),
            Some(tx),
        ),
    ];

    tokio::select! {
        Some(addr) = rx.recv() => ServiceProcess { addr, child, logs, readers, exit: None },
        status = child.wait() => {
            // Let the readers drain what the process printed before it died.
            tokio::time::sleep(Duration::from_millis(200)).await;
            panic!("{name} exited before listening ({status:?}):\n{}", logs.lock().unwrap().join("\n"));
        }
        () = tokio::time::sleep(Duration::from_secs(60)) => {
            panic!("{name} did not report listening within 60 s:\n{}", logs.lock().unwrap().join("\n"));
        }
    }
}

/// Runs `name` until it exits by itself (start-up failures); its status and output lines.
pub async fn run_to_exit(
    name: &str,
    env: &[(&str, String)],
    timeout: Duration,
) -> (ExitStatus, Vec<String>) {
    let path_name = name.to_owned();
    let path = tokio::task::spawn_blocking(move || binary(&path_name))
        .await
        .expect("build thread");
    let child = command(&path, env)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{name} still running after {timeout:?}"))
        .expect("wait for the child");
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&output.stderr).lines())
        .map(str::to_owned)
        .collect();
    (output.status, lines)
}

/// An output whose reader has gone, as `| head -1` leaves it once it has its line: every
/// write to it fails with EPIPE (a Rust program ignores SIGPIPE, so it is not killed).
pub fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    writer.into()
}

impl ServiceProcess {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("a running child has a pid")
    }

    /// Every line the process wrote so far, stdout and stderr.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("log lock").clone()
    }

    /// SIGTERM, as compose and Kubernetes stop a container; waits for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        match local_jaeger::terminate(&mut self.child, Duration::from_secs(30)).await {
            Some(status) => self.exited(status).await,
            None => panic!(
                "process did not exit within 30 s of SIGTERM (killed):\n{}",
                self.logs().join("\n")
            ),
        }
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
        self.exit = self.child.wait().await.ok();
    }

    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()?
            .ok()?;
        Some(self.exited(status).await)
    }

    /// Records the exit once every line the process wrote is in the logs, that is once its
    /// readers reach EOF (bounded: a grandchild holding the pipe open must not hang the
    /// test).
    async fn exited(&mut self, status: ExitStatus) -> ExitStatus {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        self.exit = Some(status);
        status
    }
}
