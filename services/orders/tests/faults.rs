//! Faults injected for real: the OTLP collector missing or restarted, SIGTERM under load.
//! The services must keep answering and keep every span they could keep.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use testkit::{Receiver, free_ports, stack::Stack, traced::get};

/// Spans of one `GET /orders/{id}` across both services (see e2e.rs).
const SPANS_PER_ORDER: usize = 7;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Both services exporting to ports where the test may or may not run a receiver.
async fn stack_exporting_to(grpc: u16) -> Stack {
    let env = [(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://127.0.0.1:{grpc}"),
    )];
    Stack::start_with(&env, &env).await
}

async fn answer_orders(stack: &Stack, ids: std::ops::RangeInclusive<u64>) {
    for id in ids {
        let answer = get(
            &stack.client,
            &format!("{}/orders/{id}", stack.orders.url()),
            &[],
        )
        .await;
        assert_eq!(answer.status, 200, "order {id}: {:?}", answer.body);
    }
}

async fn wait_for_count(receiver: &Receiver, count: usize, stack: &Stack) {
    if let Err(e) = receiver
        .wait_for(|spans| spans.len() >= count, Duration::from_secs(30))
        .await
    {
        panic!(
            "waiting for {count} spans: {e}\norders logs:\n{}\nusers logs:\n{}",
            stack.orders.logs().join("\n"),
            stack.users.logs().join("\n")
        );
    }
}

/// No collector when the services start: the exporter's retry (telemetry's `RETRY`) keeps
/// each failed batch and tries again with backoff, so a collector that comes up within it
/// gets every span, once.
#[tokio::test]
async fn a_collector_down_at_start_gets_every_span_once_it_is_up() {
    let [grpc, http] = free_ports::<2>();
    let mut stack = stack_exporting_to(grpc).await;

    answer_orders(&stack, 1..=20).await;
    // Let a few scheduled exports fail (the test stack exports every 50 ms).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let receiver = Receiver::start_on(local(grpc), local(http)).await;
    wait_for_count(&receiver, 20 * SPANS_PER_ORDER, &stack).await;
    let statuses = stack.shutdown().await;
    assert!(statuses.iter().all(|s| s.success()), "{statuses:?}");
    assert_eq!(
        receiver.span_count(),
        20 * SPANS_PER_ORDER,
        "every span retried through the outage, none twice"
    );
}

#[tokio::test]
async fn a_collector_restarted_mid_run_loses_no_span() {
    let [grpc, http] = free_ports::<2>();
    let first = Receiver::start_on(local(grpc), local(http)).await;
    let mut stack = stack_exporting_to(grpc).await;

    answer_orders(&stack, 1..=10).await;
    wait_for_count(&first, 10 * SPANS_PER_ORDER, &stack).await;
    first.shutdown().await;

    answer_orders(&stack, 11..=20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = Receiver::start_on(local(grpc), local(http)).await;
    answer_orders(&stack, 21..=30).await;
    wait_for_count(&second, 20 * SPANS_PER_ORDER, &stack).await;
    stack.shutdown().await;
    assert_eq!(
        second.span_count(),
        20 * SPANS_PER_ORDER,
        "the spans answered while the collector was gone arrive after it returns"
    );
}

#[tokio::test]
async fn sigterm_under_load_answers_in_flight_requests_and_flushes_their_spans() {
    // A long batch delay: only the flush on shutdown exports anything.
    let env = [("OTEL_BSP_SCHEDULE_DELAY", "60000".to_owned())];
    let mut stack = Stack::start_with(&env, &env).await;
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let client = reqwest::Client::new();
            let url = stack.orders.url();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut answered = 0;
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let id = worker * 1000 + n + 1;
                    match client.get(format!("{url}/orders/{id}")).send().await {
                        Ok(response) => {
                            assert_eq!(response.status(), 200, "an answer during shutdown");
                            // The answer counts once its body is read whole.
                            response.bytes().await.expect("a started answer completes");
                            answered += 1;
                        }
                        // Refused once orders stopped listening, or a keep-alive connection
                        // it closed as idle just as this request went out (HTTP/1.1 allows
                        // that race). Either way orders never ran the request: had it run,
                        // its spans would break the count below.
                        Err(_) => break,
                    }
                }
                answered
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let statuses = stack.shutdown().await;
    stop.store(true, Ordering::Relaxed);
    let mut answered = 0;
    for worker in workers {
        answered += worker.await.expect("worker");
    }
    assert!(statuses.iter().all(|s| s.success()), "{statuses:?}");
    assert!(answered > 8, "the load ran: {answered} answers");
    assert_eq!(
        stack.collector.span_count(),
        answered * SPANS_PER_ORDER,
        "sent requests x spans per request == spans received"
    );
}
