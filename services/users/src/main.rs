#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_kit::main(users::Config::from_env, users::run).await
}
