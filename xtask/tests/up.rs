//! The Docker-less runner, end to end: started, answering with a trace, stopped by signal,
//! nothing left behind, and a second start works.

mod common;

use std::time::Duration;

use common::Runner;
use otlp_receiver::Receiver;

async fn closed(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
}

#[tokio::test]
async fn the_runner_serves_a_trace_stops_on_sigterm_and_starts_again() {
    let receiver = Receiver::start().await;
    for round in 1..=2 {
        // Round 1: no collector named, so the runner shows traces with traceview. Round 2:
        // spans to the test's receiver, and the load generator too.
        let runner = if round == 1 {
            Runner::start(&[], &[]).await
        } else {
            Runner::start(
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint())],
                &["--load"],
            )
            .await
        };
        let (orders_port, users_port) = (runner.orders_port, runner.users_port);
        let response = testkit::http_client()
            .get(format!("http://127.0.0.1:{orders_port}/orders/1"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "round {round}");
        let traceresponse = response.headers()["traceresponse"]
            .to_str()
            .unwrap()
            .to_owned();
        let trace_id = traceresponse.split('-').nth(1).unwrap().to_owned();
        if round == 2 {
            let spans = receiver
                .wait_for_trace(&trace_id, 7, Duration::from_secs(30))
                .await
                .unwrap();
            assert!(spans.iter().any(|s| s.service_name == "users"));
            receiver
                .wait_for(
                    |spans| {
                        spans
                            .iter()
                            .any(|s| s.service_name == "load" && s.parent_span_id.is_none())
                    },
                    Duration::from_secs(30),
                )
                .await
                .expect("load's own traces arrive");
        }

        let cluster_dir = runner.cluster_dir.clone();
        let (status, rest) = runner.stop().await;
        assert!(status.success(), "round {round}: {status:?}\n{rest:#?}");
        if round == 1 {
            let printed = rest.join("\n");
            assert!(
                printed.contains(&format!("trace {trace_id}  7 spans")),
                "traceview printed the request's trace:\n{printed}"
            );
            assert!(printed.contains("enrich-order"), "{printed}");
        }
        assert!(
            closed(orders_port).await && closed(users_port).await,
            "services stopped"
        );
        assert!(!cluster_dir.exists(), "{} removed", cluster_dir.display());
    }
}
