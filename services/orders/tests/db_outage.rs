//! Postgres stopped under a running service. Its own test binary: it stops the one
//! throwaway cluster of its process, which other tests must not share.

use serde_json::Value as Json;
use testkit::stack::Stack;

#[tokio::test]
async fn database_unavailable_is_a_503_and_readyz_says_not_ready() {
    let stack = Stack::start().await;
    assert_eq!(
        stack
            .client
            .get(format!("{}/readyz", stack.orders.url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    stack.postgres.stop().await;
    for _ in 0..3 {
        let response = stack
            .client
            .get(format!("{}/orders/6", stack.orders.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        let body: Json = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "database_unavailable");
    }
    let ready = stack
        .client
        .get(format!("{}/readyz", stack.orders.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(
        ready.headers().get("traceresponse").is_none(),
        "probes are not traced"
    );

    stack.postgres.start().await;
    let response = stack
        .client
        .get(format!("{}/orders/6", stack.orders.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "recovers by itself once the database is back"
    );
}
