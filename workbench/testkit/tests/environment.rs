//! A service under test gets nothing from the shell that runs the tests: a developer who
//! exported the workshop's settings still tests the defaults. Its own test binary, since it
//! changes this process's environment.

use testkit::{stack::Stack, traced::get};

#[tokio::test]
async fn settings_exported_in_the_shell_do_not_reach_the_services() {
    // SAFETY: the only test in this binary, set before any other thread reads the
    // environment.
    unsafe {
        std::env::set_var("DEMO_FAULTS", "on");
        std::env::set_var("PROPAGATION", "off");
        std::env::set_var("OTEL_SDK_DISABLED", "true");
        std::env::set_var("MAX_CONCURRENT_REQUESTS", "not-a-number");
    }
    let stack = Stack::start().await;
    let answer = get(
        &stack.client,
        &format!("{}/orders/1", stack.orders.url()),
        &[("baggage", "demo.fail=users")],
    )
    .await;
    assert_eq!(
        answer.status, 200,
        "DEMO_FAULTS is off by default: {:?}",
        answer.body
    );
    let spans = stack
        .collector
        .wait_for_trace(&answer.trace_id(), 7, std::time::Duration::from_secs(20))
        .await
        .unwrap();
    assert!(
        spans.iter().any(|s| s.service_name == "users"),
        "the SDK is on and propagation too: one trace across both services"
    );
}
