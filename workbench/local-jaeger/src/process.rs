//! The processes the workbench starts (Jaeger, Prometheus, the runner's services): started
//! with their output in a log, waited for until they answer, stopped as compose stops them.

use std::{
    path::Path,
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tokio::{
    process::{Child, Command},
    time::Instant,
};

/// How long a process may take to become ready: on a shared machine under load, Jaeger,
/// Prometheus and a service running its migrations have each taken tens of seconds.
pub const READY_WITHIN: Duration = Duration::from_secs(60);

/// Why [`wait_ready`] gave up.
#[derive(Debug)]
pub enum NotReady {
    /// The process exited before it was ready.
    Exited(ExitStatus),
    /// It kept running, but was not ready within this long.
    TimedOut(Duration),
}

/// Polls `url` every 100 ms until it answers with a success that `ready` accepts (for
/// checks whose body says more than the status does), `child` exits, or [`READY_WITHIN`]
/// passes.
pub async fn wait_ready(
    child: &mut Child,
    url: &str,
    ready: impl AsyncFn(reqwest::Response) -> bool,
) -> Result<(), NotReady> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
            && ready(response).await
        {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(NotReady::Exited(status));
        }
        if Instant::now() > deadline {
            return Err(NotReady::TimedOut(READY_WITHIN));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What to say when `name` exited while it started: its log's last lines, and who held its
/// `ports` when the log says one was taken.
pub(crate) fn exited_during_start(
    name: &str,
    status: ExitStatus,
    log: &Path,
    ports: &[u16],
) -> String {
    let tail = tail(log);
    format!(
        "{name} exited during start-up ({status}); its log: {}\n{tail}{}",
        log.display(),
        ports::holders_if_in_use(&tail, ports)
    )
}

/// Starts `command` with its stdout and stderr in `log` (truncated, or appended to when
/// `append`), in its own process group so that a terminal's Ctrl-C reaches only whoever
/// started it, and killed if dropped.
pub(crate) fn spawn_logged(
    command: &mut Command,
    log: &Path,
    append: bool,
) -> Result<Child, String> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(log)
        .map_err(|e| format!("open {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("open {}: {e}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("start {:?}: {e}", command.as_std().get_program()))
}

/// How every process the workbench starts is stopped (Jaeger, Prometheus, the runner's and
/// the tests' services): SIGTERM, as compose and Kubernetes send it, then up to `grace` to
/// exit, then killed. The exit status, or none when it had to be killed.
pub async fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Some(pid) = child.id() {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    }
}

/// The last lines of a log, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A server on a leased port that answers every request with 200 and `body`.
    async fn answering(body: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", ports::free_port()))
            .await
            .unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.read(&mut [0; 4096]).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        url
    }

    fn sleeper() -> Child {
        Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    #[tokio::test]
    async fn ready_once_the_answer_is_accepted() {
        let url = answering("ready").await;
        let mut child = sleeper();
        let accept = async |r: reqwest::Response| r.text().await.is_ok_and(|t| t == "ready");
        assert!(wait_ready(&mut child, &url, accept).await.is_ok());
        terminate(&mut child, Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn a_process_that_exits_first_is_reported_with_its_status() {
        let url = format!("http://127.0.0.1:{}/", ports::free_port());
        let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        match wait_ready(&mut child, &url, async |_| true).await {
            Err(NotReady::Exited(status)) => assert_eq!(status.code(), Some(3)),
            other => panic!("{other:?}"),
        }
    }
}
