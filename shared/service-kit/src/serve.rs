//! Serving with graceful shutdown, and the exit codes of every service's `main`.

use std::{future::Future, net::SocketAddr, process::ExitCode};

use axum::Router;
use tokio::net::TcpListener;

use crate::StartupError;

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let addr = listener.local_addr().map_err(StartupError::Serve)?;
    tracing::info!(addr = %addr, "listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(StartupError::Serve)?;
    tracing::info!("stopped accepting; in-flight requests finished");
    Ok(())
}

/// Binds `addr`, then [`serve`]s.
pub async fn serve_on(
    addr: SocketAddr,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    serve(bind(addr).await?, router, shutdown).await
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })
}

/// SIGTERM (docker stop, compose) or Ctrl-C.
pub async fn shutdown_signal() {
    telemetry::signal::stop_requested().await;
    tracing::info!("shutdown signal received");
}

/// The process's exit for what `run` returned: success, or the error on stderr and code 1.
/// (A bad setting exits earlier, with code 2: see each `main.rs`.)
pub fn exit_code(served: Result<(), StartupError>) -> ExitCode {
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// A setting that cannot be used (or telemetry that cannot start): the reason on stderr,
/// exit code 2.
pub fn bad_setting(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("{error}");
    ExitCode::from(2)
}
