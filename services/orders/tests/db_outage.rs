//! Postgres stopped under a running service. Its own test binary: it stops the one
//! throwaway cluster of its process, which other tests must not share.

use testkit::{stack::Stack, traced::get};

#[tokio::test]
async fn database_unavailable_is_a_503_and_readyz_says_not_ready() {
    let stack = Stack::start().await;
    let orders = |path: &str| format!("{}{path}", stack.orders.url());
    assert_eq!(
        get(&stack.client, &orders("/readyz"), &[]).await.status,
        200
    );

    stack.postgres.stop().await;
    for _ in 0..3 {
        let answer = get(&stack.client, &orders("/orders/6"), &[]).await;
        assert_eq!(answer.status, 503);
        assert_eq!(answer.body["error"]["code"], "database_unavailable");
        assert!(answer.trace.is_some(), "an outage answer is traced");
    }
    let ready = get(&stack.client, &orders("/readyz"), &[]).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.trace, None, "probes are not traced");

    stack.postgres.start().await;
    let answer = get(&stack.client, &orders("/orders/6"), &[]).await;
    assert_eq!(
        answer.status, 200,
        "recovers by itself once the database is back"
    );
}
