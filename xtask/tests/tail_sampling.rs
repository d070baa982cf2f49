//! Tail sampling run for real: `cargo xtask up --tail-sampling` starts Jaeger with
//! deploy/jaeger/tail-sampling.yaml (the file compose mounts), the services and `load` run
//! with compose's environment (its batch delay included), and Jaeger's query API says what
//! was kept: every error trace, every slow trace, about a tenth of the rest, and every kept
//! trace whole.

mod common;

use common::{
    Runner,
    tail::{Traffic, check_what_tail_sampling_keeps},
};

#[tokio::test]
async fn tail_sampling_keeps_every_error_and_slow_trace_and_a_tenth_of_the_rest_whole() {
    testkit::jaeger_binary();
    let runner = Runner::start(&[], &["--tail-sampling"]).await;
    let started = runner.started.join("\n");
    assert!(
        started.contains("deploy/jaeger/tail-sampling.yaml"),
        "the runner says which configuration Jaeger runs: {started}"
    );

    let orders = format!("http://127.0.0.1:{}", runner.orders_port);
    let otlp = format!("http://127.0.0.1:{}", runner.otlp_port);
    let traffic = Traffic {
        orders: &orders,
        otlp: &otlp,
    };
    check_what_tail_sampling_keeps(&runner.jaeger(), &traffic).await;
    let (status, _) = runner.stop().await;
    assert!(status.success());
}
