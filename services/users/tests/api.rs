//! The users service alone: a real process, a real Postgres, spans over OTLP.

use std::time::Duration;

use otlp_receiver::Receiver;
use serde_json::{Value, json};
use testkit::stack::spawn_users;

const WAIT: Duration = Duration::from_secs(20);

fn trace_id_of(response: &reqwest::Response) -> String {
    testkit::traced::traceresponse(response)
        .expect("a traced answer")
        .trace_id
}

#[tokio::test]
async fn a_user_is_served_with_a_server_span_and_a_db_span_and_no_personal_data_leaks() {
    let receiver = Receiver::start().await;
    let db = testkit::postgres().await.create_database("users").await;
    let mut users = spawn_users(&receiver, &db, &[("RUST_LOG", "debug".into())]).await;
    let client = testkit::http_client();

    let response = client
        .get(format!("{}/users/42", users.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let trace_id = trace_id_of(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": 42, "name": "user-42", "email": "user-42@example.com"})
    );

    let spans = receiver.wait_for_trace(&trace_id, 2, WAIT).await.unwrap();
    let server = spans
        .iter()
        .find(|s| s.name == "GET /users/{user_id}")
        .unwrap();
    assert_eq!(
        server.int_attr("user.id"),
        Some(42),
        "business context on the server span"
    );
    let db_span = spans.iter().find(|s| s.name == "db-query").unwrap();
    assert_eq!(
        db_span.parent_span_id.as_deref(),
        Some(server.span_id.as_str())
    );
    assert_eq!(
        db_span.str_attr("db.query.text"),
        Some("SELECT id, name, email FROM users WHERE id = $1")
    );

    assert!(users.terminate().await.success());
    let exported = format!("{:?}", receiver.spans());
    let logs = users.logs().join("\n");
    for secret in ["user-42@example.com", "user-42\""] {
        assert!(!exported.contains(secret), "spans leak {secret}");
        assert!(!logs.contains(secret), "logs leak {secret}: {logs}");
    }
}

/// Starts users with `log_format` and makes one request fail for real inside it (its table
/// is dropped, so the query fails and users logs a WARN): the failed request's trace id.
async fn users_with_a_failed_request(log_format: &str) -> (testkit::ServiceProcess, String) {
    let receiver = Receiver::start().await;
    let db = testkit::postgres().await.create_database("users").await;
    let users = spawn_users(&receiver, &db, &[("LOG_FORMAT", log_format.into())]).await;
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&db)
        .await
        .unwrap();
    sqlx::raw_sql("DROP TABLE users")
        .execute(&mut admin)
        .await
        .unwrap();
    let answer = testkit::traced::get(
        &testkit::http_client(),
        &format!("{}/users/1", users.url()),
        &[],
    )
    .await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.body["error"]["code"], "internal");
    (users, answer.trace_id())
}

#[tokio::test]
async fn log_lines_written_inside_a_request_carry_its_trace_id() {
    let (users, trace_id) = users_with_a_failed_request("json").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let line = loop {
        let found = users.logs().into_iter().find_map(|line| {
            let json: Value = serde_json::from_str(&line).ok()?;
            (json["level"] == "WARN" && json["trace_id"] == trace_id.as_str()).then_some(json)
        });
        match found {
            Some(line) => break line,
            None if tokio::time::Instant::now() > deadline => {
                panic!("no WARN line with trace_id {trace_id}: {:#?}", users.logs())
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert_eq!(line["span_id"].as_str().map(str::len), Some(16), "{line}");
    assert_eq!(line["error.type"], "internal", "{line}");
}

#[tokio::test]
async fn human_logs_carry_the_trace_id_too() {
    let (users, trace_id) = users_with_a_failed_request("text").await;
    let expected = format!("trace_id={trace_id} ");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !users
        .logs()
        .iter()
        .any(|l| l.starts_with(&expected) && l.contains("WARN"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no line with {expected}: {:#?}",
            users.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_taken_listen_address_stops_start_up_clearly() {
    let db = testkit::postgres().await.create_database("users").await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (status, lines) = testkit::run_to_exit(
        "users",
        &[("DATABASE_URL", db), ("LISTEN_ADDR", addr.to_string())],
        WAIT,
    )
    .await;
    assert!(!status.success());
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("cannot listen on {addr}"))),
        "{lines:?}"
    );
}
