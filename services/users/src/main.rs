// glibc's malloc was a sixth of a service's instructions per request under callgrind, and
// tracing allocates per span: mimalloc is the measured choice (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

/// The users service's lifecycle, in order.
#[tokio::main]
async fn main() -> ExitCode {
    // 1. Settings, from the environment only (as compose gives them).
    let config = match users::Config::from_env() {
        Ok(config) => config,
        Err(error) => return service_kit::bad_setting(error),
    };
    // 2. Tracing and logs: the OpenTelemetry pipeline (shared/telemetry/src/init.rs).
    let telemetry = match telemetry::init(&config.common.telemetry) {
        Ok(telemetry) => telemetry,
        Err(error) => return service_kit::bad_setting(format_args!("telemetry: {error}")),
    };
    // 3. The app, served until SIGTERM (docker stop) or Ctrl-C.
    let served = users::run(config, service_kit::shutdown_signal()).await;
    if let Err(error) = &served {
        tracing::error!(error = %error, "service stopped");
    }
    // 4. Flush: the spans of the last requests are exported before the process ends.
    telemetry.shutdown().await;
    service_kit::exit_code(served)
}
