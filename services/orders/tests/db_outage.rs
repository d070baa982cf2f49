//! Postgres stopped and restarted under a running service. Its own test binary: it stops
//! the one throwaway cluster of its process, which other tests must not share.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use testkit::{stack::Stack, traced::get};

#[tokio::test]
async fn a_database_restart_under_load_is_503_then_recovers_by_itself() {
    let stack = Stack::start().await;
    let orders = |path: &str| format!("{}{path}", stack.orders.url());
    assert_eq!(
        get(&stack.client, &orders("/readyz"), &[]).await.status,
        200
    );

    // Load throughout the outage: every request gets an answer, 200 or a JSON error, never
    // a hang (the client gives up after 10 s; the pool's acquire timeout is far shorter).
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|worker| {
            let client = stack.client.clone();
            let url = orders("/orders/");
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut ok, mut unavailable) = (0, 0);
                for n in 0_u64.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let id = worker * 2000 + n % 2000 + 1;
                    let answer = get(&client, &format!("{url}{id}"), &[]).await;
                    match answer.status {
                        200 => ok += 1,
                        503 => {
                            assert_eq!(answer.body["error"]["code"], "database_unavailable");
                            assert!(answer.trace.is_some(), "an outage answer is traced");
                            unavailable += 1;
                        }
                        // Users' database is on the same server: orders read its order
                        // in time, then users answered 503 (retried) until the budget ran out.
                        502 | 504 => {
                            let code = &answer.body["error"]["code"];
                            assert!(code == "users_unavailable" || code == "users_timeout");
                            unavailable += 1;
                        }
                        other => panic!("order {id}: {other} {:?}", answer.body),
                    }
                }
                (ok, unavailable)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    stack.postgres.stop().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let ready = get(&stack.client, &orders("/readyz"), &[]).await;
    assert_eq!(ready.status, 503, "not ready while the database is down");
    assert_eq!(ready.trace, None, "probes are not traced");
    stack.postgres.start().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);

    let (mut ok, mut unavailable) = (0, 0);
    for worker in load {
        let (o, u) = worker.await.expect("load worker");
        ok += o;
        unavailable += u;
    }
    assert!(unavailable > 0, "the outage was seen: {ok} ok");
    assert!(ok > 0, "{unavailable} unavailable");

    // No restart: within a few seconds every request succeeds again.
    let mut consecutive = 0;
    for _ in 0..200 {
        let answer = get(&stack.client, &orders("/orders/6"), &[]).await;
        consecutive = if answer.status == 200 {
            consecutive + 1
        } else {
            0
        };
        if consecutive == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        consecutive, 20,
        "recovers by itself once the database is back"
    );
    assert_eq!(
        get(&stack.client, &orders("/readyz"), &[]).await.status,
        200
    );
}
