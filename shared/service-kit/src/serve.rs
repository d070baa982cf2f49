//! Serving with graceful shutdown, and the skeleton every service's `main` shares.

use std::{future::Future, net::SocketAddr, process::ExitCode};

use axum::Router;
use tokio::net::TcpListener;

use crate::{StartupError, config::ServiceConfig};

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

/// The body of every service's `main`: read the config (a bad setting is one line on stderr
/// and exit code 2), set up telemetry, run until a shutdown signal, flush every span.
pub async fn main<C, F, Fut>(
    read_config: impl FnOnce() -> Result<C, env_config::ConfigError>,
    run: F,
) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = Result<(), StartupError>>,
{
    let config = match read_config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match telemetry::init(config.telemetry()) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("telemetry: {error}");
            return ExitCode::from(2);
        }
    };
    let result = run(config, Box::pin(shutdown_signal())).await;
    if let Err(error) = &result {
        tracing::error!(error = %error, "service stopped");
    }
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
