#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_kit::main(orders::Config::from_env, orders::run).await
}
