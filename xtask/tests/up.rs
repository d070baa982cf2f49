//! The Docker-less runner, end to end: started, answering with a trace (in traceview, in a
//! named collector, in the real Jaeger), orders-worker beside orders, stopped by signal,
//! nothing left behind, and each start after the first works; stopped as cleanly once its
//! output is gone; refused in one line when its ports are taken.

mod common;

use std::{path::Path, time::Duration};

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

/// Issue 35: `cargo xtask up | tee up.log`, then Ctrl-C. tee ends first, and the runner's
/// next line goes into a closed pipe: `println!` panicked there before anything was
/// stopped, and the throwaway Postgres (in a session of its own, which Ctrl-C never
/// reaches) kept running. With its output gone the runner still serves, and Ctrl-C, or the
/// terminal closing (SIGHUP), still stops everything. The second round asks for traceview,
/// which prints its traces into the same closed pipe.
#[tokio::test]
async fn a_runner_whose_output_is_gone_still_stops_everything_on_ctrl_c_or_hangup() {
    for (signal, args) in [(libc::SIGINT, &[][..]), (libc::SIGHUP, &["--traceview"])] {
        let mut runner = Runner::start(&[], args).await;
        let cluster_dir = runner.cluster_dir.clone();
        let servers = [
            runner.orders_port,
            runner.users_port,
            runner.worker_port,
            runner.otlp_port,
        ];
        let postgres = processes_naming(&cluster_dir);
        assert!(
            !postgres.is_empty(),
            "signal {signal}: the cluster's server is found by its folder: {}",
            cluster_dir.display()
        );
        runner.close_stdout().await;
        // The services' lines, and a trace, now go into the closed pipe.
        let response = testkit::http_client()
            .get(format!("http://127.0.0.1:{}/orders/1", runner.orders_port))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "served with nobody reading");

        let stopped = runner.stop_with(signal).await;
        let stderr = stopped.stderr.join("\n");
        assert!(
            stopped.status.success(),
            "signal {signal} stops it as Ctrl-C always did: {:?}\n{stderr}",
            stopped.status
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "signal {signal}: {stderr}"
        );
        assert!(!cluster_dir.exists(), "{} removed", cluster_dir.display());
        let left = processes_naming(&cluster_dir);
        assert!(
            left.is_empty(),
            "signal {signal}: Postgres stopped, was {postgres:?}: {left:?}"
        );
        for port in servers {
            assert!(closed(port).await, "nothing listens on {port} any more");
        }
    }
}

/// Issue 35: a second runner beside a first (or beside compose) started Postgres, then
/// printed Jaeger's whole start-up log and 32 port leases before the one fact that
/// matters. It checks its ports before anything else and refuses in one line naming each
/// one taken, what holds it (here, this test's process) and the flag that moves it.
#[tokio::test]
async fn taken_ports_are_named_in_one_line_before_anything_starts() {
    let holder = format!("(pid {})", std::process::id());
    for single in [true, false] {
        // Fresh ports each round: a copy of a listener closed in the round before, in a
        // child another test forked meanwhile, could still listen (see ports.rs).
        let ports = testkit::free_ports::<7>();
        let [orders_port, users_port, _, _, otlp_http_port, ..] = ports;
        let (taken, says) = if single {
            (
                vec![(users_port, "users", "--users-port")],
                "is already in use, by ",
            )
        } else {
            (
                vec![
                    (orders_port, "orders", "--orders-port"),
                    (otlp_http_port, "OTLP/HTTP", "--otlp-http-port"),
                ],
                "already in use: ",
            )
        };
        // Held as a runner already there holds them.
        let _held: Vec<_> = taken
            .iter()
            .map(|(port, ..)| std::net::TcpListener::bind(("127.0.0.1", *port)).unwrap())
            .collect();
        let up = common::up_command(ports, &[], &[]).output();
        let output = tokio::time::timeout(Duration::from_secs(60), up)
            .await
            .expect("refused at once")
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(says), "{stderr}");
        for (port, what, flag) in &taken {
            assert!(
                stderr.contains(&format!("127.0.0.1:{port} ({what})")) && stderr.contains(flag),
                "names {port} and {flag}: {stderr}"
            );
        }
        assert_eq!(
            stderr.matches(&holder).count(),
            taken.len(),
            "by this test's process, each: {stderr}"
        );
        let free = ports
            .iter()
            .filter(|port| !taken.iter().any(|(taken, ..)| taken == *port));
        for port in free {
            assert!(
                !stderr.contains(&format!(":{port} ")),
                "{port} is free: {stderr}"
            );
        }
        // The runner says when it removes its cluster: it made none.
        assert!(
            output.stdout.is_empty(),
            "nothing was started: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

/// The processes whose command line names `dir`: the throwaway cluster's server, started
/// with `-D <dir>/data`, whatever session it runs in.
fn processes_naming(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(dir.as_ref())
                .then(|| format!("pid {}: {cmdline}", entry.file_name().to_string_lossy()))
        })
        .collect()
}
