//! Request limits: each refusal is a JSON error with its own status, and the service goes
//! on serving.

use serde_json::Value as Json;
use testkit::{stack::Stack, traced::get};

async fn refused(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status().as_u16(), status);
    assert!(
        testkit::traced::traceresponse(&response).is_some(),
        "a refusal is traced"
    );
    let body: Json = response.json().await.expect("a JSON error");
    assert_eq!(body["error"]["code"], code, "{body}");
}

#[tokio::test]
async fn oversized_headers_and_bodies_are_refused_and_the_service_keeps_serving() {
    let stack = Stack::start().await;
    let url = format!("{}/orders/1", stack.orders.url());

    let big = "x".repeat(20 * 1024);
    let response = stack
        .client
        .get(&url)
        .header("x-padding", &big)
        .send()
        .await
        .unwrap();
    refused(response, 431, "headers_too_large").await;

    // Its own client: a server that refuses to read a body then closes the connection, and
    // a pooled client could try its next request on it.
    let response = testkit::http_client()
        .get(&url)
        .body(vec![b'x'; 64 * 1024])
        .send()
        .await
        .unwrap();
    refused(response, 413, "body_too_large").await;

    assert_eq!(get(&stack.client, &url, &[]).await.status, 200);
}

#[tokio::test]
async fn a_request_over_its_time_is_408_and_one_too_many_is_503() {
    let users_env = [("DEMO_FAULTS", "on".to_owned())];
    let orders_env = [
        ("DEMO_FAULTS", "on".to_owned()),
        ("REQUEST_TIMEOUT_MS", "800".to_owned()),
        ("MAX_CONCURRENT_REQUESTS", "2".to_owned()),
    ];
    let stack = Stack::start_with(&users_env, &orders_env).await;
    let url = format!("{}/orders/1", stack.orders.url());

    // Users waits 2 s, within its own 2 s budget, longer than the request may take.
    let response = stack
        .client
        .get(&url)
        .header("baggage", "demo.delay_ms=1900")
        .send()
        .await
        .unwrap();
    refused(response, 408, "request_timeout").await;

    // Six at once against a cap of two: the extra ones are refused at once, not queued.
    let slow = |client: reqwest::Client, url: String| async move {
        client
            .get(url)
            .header("baggage", "demo.delay_ms=300")
            .send()
            .await
            .unwrap()
    };
    let responses =
        futures_util::future::join_all((0..6).map(|_| slow(stack.client.clone(), url.clone())))
            .await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&200) && statuses.contains(&503),
        "{statuses:?}"
    );
    for response in responses {
        if response.status() == 503 {
            refused(response, 503, "overloaded").await;
        }
    }
    // Probes are never refused for load; the service still answers.
    assert_eq!(
        get(
            &stack.client,
            &format!("{}/healthz", stack.orders.url()),
            &[]
        )
        .await
        .status,
        200
    );
    assert_eq!(get(&stack.client, &url, &[]).await.status, 200);
}
