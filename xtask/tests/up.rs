//! The Docker-less runner, end to end: started, answering with a trace, stopped by signal,
//! nothing left behind, and a second start works.

use std::{path::PathBuf, process::Stdio, time::Duration};

use otlp_receiver::Receiver;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::Command,
};

async fn closed(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
}

#[tokio::test]
async fn the_runner_serves_a_trace_stops_on_sigterm_and_starts_again() {
    let receiver = Receiver::start().await;
    let bin_dir = testkit::binary("orders").parent().unwrap().to_path_buf();
    testkit::binary("users");
    testkit::binary("load");
    testkit::binary("traceview");
    for round in 1..=2 {
        let [orders_port, users_port, otlp_port, _] = testkit::free_ports();
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        // Round 1: no collector named, so the runner shows traces with traceview. Round 2:
        // spans to the test's receiver, and the load generator too.
        if round == 1 {
            command.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        } else {
            command.env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint());
        }
        let mut runner = command
            .args(["up", "--orders-port", &orders_port.to_string()])
            .args(["--users-port", &users_port.to_string()])
            .arg("--bin-dir")
            .arg(&bin_dir)
            // The second round also starts the load generator, with compose's flags.
            .args(if round == 2 { &["--load"][..] } else { &[] })
            .args(["--otlp-port", &otlp_port.to_string()])
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(runner.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        let cluster_dir = tokio::time::timeout(Duration::from_secs(120), async {
            let mut cluster_dir = None;
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(dir) = line.split("throwaway cluster in ").nth(1) {
                    cluster_dir = Some(PathBuf::from(dir.trim_end_matches(')')));
                }
                let ready = line.starts_with("ready:");
                seen.push(line);
                if ready {
                    return cluster_dir;
                }
            }
            panic!("runner stopped before ready: {seen:#?}");
        })
        .await
        .expect("ready within 120 s")
        .expect("the runner names its throwaway cluster");
        // Keep draining so the runner never blocks on a full pipe.
        let drain = tokio::spawn(async move {
            let mut rest = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                rest.push(line);
            }
            rest
        });

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

        // SAFETY: signalling our own child.
        unsafe { libc::kill(runner.id().unwrap() as i32, libc::SIGTERM) };
        let status = tokio::time::timeout(Duration::from_secs(60), runner.wait())
            .await
            .expect("stops within 60 s")
            .unwrap();
        let rest = drain.await.unwrap();
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
