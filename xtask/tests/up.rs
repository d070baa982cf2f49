//! The Docker-less runner, end to end: started, answering with a trace (in traceview, in a
//! named collector, in the real Jaeger), orders-worker beside orders, stopped by signal,
//! nothing left behind, and each start after the first works.

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
async fn contradictory_collector_flags_are_refused_at_once_naming_them() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("up")
            .args(args)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let both = run(&["--tail-sampling", "--traceview"], &[]);
    assert_eq!(both.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&both.stderr);
    assert!(
        stderr.contains("--tail-sampling") && stderr.contains("--traceview"),
        "{stderr}"
    );

    let named = run(
        &["--tail-sampling"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")],
    );
    assert_eq!(named.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&named.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_ENDPOINT") && stderr.contains("--tail-sampling"),
        "{stderr}"
    );
    assert!(named.stdout.is_empty(), "nothing was started");
}

#[tokio::test]
async fn the_runner_serves_a_trace_stops_on_sigterm_and_starts_again() {
    let receiver = Receiver::start().await;
    for round in 1..=3 {
        // Round 1: traceview asked for, so the runner shows traces in its terminal. Round 2:
        // spans to the test's receiver, and the load generator too. Round 3: nothing named,
        // so the runner starts the real Jaeger it finds.
        let runner = match round {
            1 => Runner::start(&[], &["--traceview"]).await,
            2 => {
                Runner::start(
                    &[("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint())],
                    &["--load"],
                )
                .await
            }
            _ => Runner::start(&[], &[]).await,
        };
        assert_eq!(
            runner.jaeger_url.is_some(),
            round == 3,
            "round {round}: Jaeger only when nothing else is named: {:#?}",
            runner.started
        );
        let (orders_port, users_port, worker_port) =
            (runner.orders_port, runner.users_port, runner.worker_port);
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
        // orders-worker runs beside orders, ready, and the runner says so with its pid.
        let worker_ready = testkit::http_client()
            .get(format!("http://127.0.0.1:{worker_port}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            worker_ready.status(),
            200,
            "round {round}: orders-worker ready"
        );
        assert!(runner.pid("orders-worker") > 0);
        if round != 2 {
            // The collector the runner started takes OTLP/HTTP on the port given for it.
            let export = testkit::http_client()
                .post(format!(
                    "http://127.0.0.1:{}/v1/traces",
                    runner.otlp_http_port
                ))
                .header("content-type", "application/x-protobuf")
                .send()
                .await
                .unwrap();
            assert_eq!(export.status(), 200, "round {round}: OTLP/HTTP export");
        }
        if round == 1 {
            // The worker stopped, as `docker compose stop orders-worker` would: the runner
            // says so and the others keep running.
            runner.stop_service("orders-worker").await;
            let again = testkit::http_client()
                .get(format!("http://127.0.0.1:{orders_port}/orders/1"))
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 200, "orders keeps running");
        }
        if round == 2 {
            // A new order's confirmation is sent by orders-worker, in the order's trace
            // (compose's ASYNC_CONTEXT=child): it reads orders' database, calls users and
            // exports where the services do.
            let created = testkit::http_client()
                .post(format!("http://127.0.0.1:{orders_port}/orders"))
                .json(&serde_json::json!({"user_id": 1, "item": "xtask-up", "quantity": 2}))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 201);
            let order_trace = created.headers()["traceresponse"]
                .to_str()
                .unwrap()
                .split('-')
                .nth(1)
                .unwrap()
                .to_owned();
            receiver
                .wait_for(
                    |spans| {
                        spans.iter().any(|s| {
                            s.service_name == "orders-worker"
                                && s.trace_id == order_trace
                                && s.name.starts_with("process ")
                        })
                    },
                    Duration::from_secs(30),
                )
                .await
                .expect("orders-worker processes the order in its trace");
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
        let mut jaeger_port = None;
        if round == 3 {
            testkit::jaeger_binary();
            let jaeger = runner.jaeger();
            let trace = jaeger.trace_of(&trace_id, 7).await.unwrap();
            assert_eq!(trace.services(), ["orders", "users"]);
            let started = runner.started.join("\n");
            assert!(
                started.contains("listening") && !started.contains("TracerProvider.GlobalSet"),
                "compose's log settings keep our INFO lines, not the SDK's: {started}"
            );
            assert!(
                started.contains("Jaeger 2.12.0, deploy/jaeger/jaeger.yaml;")
                    && started.contains("Prometheus 2.42.0, deploy/prometheus/prometheus.yml;"),
                "the runner says what it started, with compose's files: {started}"
            );
            // A Jaeger built from its Go module (.ci/install-jaeger's fallback, the only
            // way where github.com is out of reach) serves a placeholder page in place of
            // its UI: the runner says so in one line, naming what shows the traces instead.
            let ui = runner.jaeger_url.clone().unwrap();
            let page = testkit::http_client()
                .get(format!("{ui}/"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let placeholder = page.contains(testkit::local_jaeger::UI_PLACEHOLDER);
            let version = std::process::Command::new(testkit::jaeger_binary())
                .arg("version")
                .output()
                .unwrap();
            // Jaeger's release build stamps its commit; the module build has none to stamp.
            if String::from_utf8_lossy(&version.stdout).contains(r#""gitCommit":"""#) {
                assert!(placeholder, "a module build serves no UI: {page}");
            }
            let said: Vec<&String> = runner
                .started
                .iter()
                .filter(|line| line.starts_with("no UI "))
                .collect();
            assert_eq!(
                said.len(),
                usize::from(placeholder),
                "the runner says there is no UI exactly when there is none: {started}"
            );
            if let Some(line) = said.first() {
                assert!(
                    line.contains("placeholder")
                        && line.contains("traceview (cargo xtask up --traceview)")
                        && line.contains(&format!("{ui}/api/traces?service=orders")),
                    "{line}"
                );
            }
            assert!(
                runner.prometheus_url.is_some(),
                "Prometheus is found here (.ci/run installs it): {started}"
            );
            // Jaeger's own log goes to its file, not over the services' lines.
            let log = started
                .split("its log: ")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
                .expect("the runner names Jaeger's log");
            let text = std::fs::read_to_string(log).unwrap();
            assert!(text.contains("Everything is ready"), "{text}");
            assert!(!started.contains("Everything is ready"), "{started}");
            jaeger_port = runner
                .jaeger_url
                .as_deref()
                .and_then(|url| url.rsplit(':').next())
                .and_then(|port| port.parse::<u16>().ok());
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
            closed(orders_port).await && closed(users_port).await && closed(worker_port).await,
            "services stopped"
        );
        if let Some(port) = jaeger_port {
            assert!(closed(port).await, "Jaeger stopped");
        }
        assert!(!cluster_dir.exists(), "{} removed", cluster_dir.display());
    }
}
