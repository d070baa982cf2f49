// The same allocator as the services (see main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_kit::main(orders::worker::WorkerConfig::from_env, orders::worker::run).await
}
