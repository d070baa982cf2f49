//! The services as child processes: started as compose starts their containers (with its
//! environment, this machine's addresses in place of its host names), waited for until
//! they say they are ready, stopped as compose stops them.

use std::{collections::BTreeMap, path::Path, process::Stdio, time::Duration};

use local_jaeger::NotReady;
use tokio::process::{Child, Command};

use crate::{
    compose::Compose,
    database::{Server, local_database_url},
};

/// `binary` with only `env` (and PATH): a container does not inherit the learner's shell.
/// Its own process group, so a terminal's Ctrl-C reaches only the runner, which then stops
/// the children in order; killed if the runner drops it.
pub(crate) fn isolated_command(binary: &Path, env: &BTreeMap<String, String>) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    command
}

/// Compose's environment for `service`, with this machine's addresses in place of compose's
/// host names: its own port, users' port, the local database and the collector's endpoint.
pub(crate) fn service_env(
    compose: &Compose,
    service: &str,
    server: &Server,
    [port, users_port]: [u16; 2],
    endpoint: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut env = compose.environment(service)?;
    for (key, value) in env.iter_mut() {
        *value = match key.as_str() {
            "DATABASE_URL" => local_database_url(value, server)?,
            "LISTEN_ADDR" => format!("127.0.0.1:{port}"),
            "USERS_URL" => format!("http://127.0.0.1:{users_port}"),
            "OTEL_EXPORTER_OTLP_ENDPOINT" => endpoint.to_owned(),
            _ => continue,
        };
    }
    Ok(env)
}

/// Waits until the service listening on `port` answers its `/readyz`.
pub(crate) async fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}/readyz");
    local_jaeger::wait_ready(child, &url, async |_| true)
        .await
        .map_err(|not_ready| match not_ready {
            NotReady::Exited(status) => {
                format!("service on port {port} exited during start-up: {status}")
            }
            NotReady::TimedOut(within) => {
                format!("{url} not ready within {} s", within.as_secs())
            }
        })
}

/// SIGTERM, then up to 30 s for in-flight requests and the span flush. The exit status,
/// or `None` when it had to be killed.
pub(crate) async fn stop(child: &mut Child) -> Option<std::process::ExitStatus> {
    local_jaeger::terminate(child, Duration::from_secs(30)).await
}
