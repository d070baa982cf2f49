//! docker-compose.python.yml on the real engine: orders and orders-worker call the Python users
//! service (services/users-python, its own image), and one trace crosses both languages in
//! compose's Jaeger. Needs an engine, the compose plugin and the images (where no registry
//! answers, workbench/stand-in-images/build makes python:3.11-slim-bookworm from Debian's
//! python3). Uses compose's published ports: not at the same time as compose_up.rs.

mod common;

use std::process::Command;

use common::{
    engine::{
        JAEGER, Stack, compose, curl, docker, require_engine, run_check, sh, succeed, trace_id,
    },
    guide::command as guide_command,
};
use testkit::local_jaeger::Query;

const FILES: &[&str] = &["docker-compose.yml", "docker-compose.python.yml"];

#[test]
fn plain_docker_compose_up_is_unchanged() {
    let services = String::from_utf8(
        succeed(compose(&["docker-compose.yml"], &["config", "--services"])).stdout,
    )
    .unwrap();
    assert!(!services.lines().any(|s| s == "users-python"), "{services}");
    let config =
        String::from_utf8(succeed(compose(&["docker-compose.yml"], &["config"])).stdout).unwrap();
    assert!(!config.contains("users-python"), "{config}");
}

#[tokio::test]
async fn compose_with_users_in_python_makes_one_trace() {
    require_engine();
    let _stack = Stack;
    drop(compose(&[], &["down", "-v", "--remove-orphans"]).output());
    // The workspace's image as it is here when there is one (its build is compose_up.rs'
    // to time); users-python's own image is built.
    let have_image = Command::new("docker")
        .args(["image", "inspect", "tracing-workshop:dev"])
        .output()
        .is_ok_and(|o| o.status.success());
    let policy = if have_image { "never" } else { "build" };
    succeed(compose(FILES, &["build", "users-python"]));
    let mut up = compose(FILES, &["up", "--wait", "--detach"]);
    up.env("WORKSHOP_PULL_POLICY", policy);
    succeed(up);

    // users-python answers as users does, on 8083.
    let (status, _) = curl(&["localhost:8083/users/abc"]);
    assert_eq!(status, 400);

    let jaeger = Query::new(JAEGER);
    let (status, headers) = curl(&["localhost:8080/orders/1"]);
    assert_eq!(status, 200, "{headers:?}");
    let trace = jaeger.trace_of(&trace_id(&headers), 7).await.unwrap();
    assert_eq!(trace.spans.len(), 7, "{}", trace.outline());
    assert_eq!(
        trace.services(),
        ["orders", "users-python"],
        "{}",
        trace.outline()
    );
    let client = trace.only("orders", "GET");
    let server = trace.only("users-python", "GET /users/{user_id}");
    assert_eq!(
        server.parent(),
        Some(client.span_id()),
        "{}",
        trace.outline()
    );
    let query = trace.only("users-python", "db-query");
    assert_eq!(
        query.parent(),
        Some(server.span_id()),
        "{}",
        trace.outline()
    );

    // Baggage from the caller reaches Python through orders.
    let (status, headers) = curl(&[
        "-H",
        "baggage: demo.delay_ms=150",
        "localhost:8080/orders/2",
    ]);
    assert_eq!(status, 200, "{headers:?}");
    let trace = jaeger.trace_of(&trace_id(&headers), 8).await.unwrap();
    let delay = trace.only("users-python", "demo-delay");
    assert_eq!(delay.tag("demo.delay_ms"), Some(&serde_json::json!(150)));

    // flags 00 from the caller: neither language records a span.
    let unsampled = "5bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("traceparent: 00-{unsampled}-00f067aa0ba902b7-00");
    let (status, _) = curl(&["-H", &traceparent, "localhost:8080/orders/3"]);
    assert_eq!(status, 200);
    let (_, headers) = curl(&["localhost:8080/orders/4"]);
    jaeger.trace_of(&trace_id(&headers), 7).await.unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let found = jaeger.trace(unsampled).await.unwrap();
    assert!(
        found.is_none(),
        "{}",
        found.map(|t| t.outline()).unwrap_or_default()
    );

    // Exercise 15 as the guide sends it, checked from the image (`docker compose run --rm
    // check 15`): the curl's trace, then load's baggage fault reaching Python.
    succeed(sh(&guide_command(15, 0)));
    let said = run_check(FILES, &["15", "--part", "1"], 0);
    assert!(said.contains("exercise 15: pass: "), "{said}");
    let load = guide_command(15, 1);
    let args: Vec<&str> = load
        .strip_prefix("docker compose run --rm ")
        .expect("exercise 15 runs compose's load")
        .split_whitespace()
        .collect();
    succeed(compose(FILES, &[&["run", "--rm"][..], &args].concat()));
    let said = run_check(FILES, &["15", "--part", "2"], 0);
    assert!(said.contains("exercise 15: pass: "), "{said}");
    eprintln!("{}", docker(&["compose", "version", "--short"]));
}
