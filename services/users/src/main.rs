// glibc's malloc was a sixth of a service's instructions per request under callgrind, and
// tracing allocates per span: mimalloc is the measured choice (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_kit::main(users::Config::from_env, users::run).await
}
