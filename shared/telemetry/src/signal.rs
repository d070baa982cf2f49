//! When a binary is asked to stop. Every binary of ours that exports spans stops the same
//! way on SIGTERM as on Ctrl-C, then flushes its spans: in a container the binary is PID 1,
//! which the kernel gives no default action for SIGTERM, so without a handler `docker
//! compose stop` waits its 10 s, kills the process, and the last spans (and `load`'s
//! summary) are lost.

/// Completes on the first SIGTERM or Ctrl-C (SIGINT).
pub async fn stop_requested() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
