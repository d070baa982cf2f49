//! What tail sampling keeps, read from Jaeger's query API: every error trace, every slow
//! trace, about a tenth of the rest, and every kept trace whole. Shared by the runner's
//! test (tail_sampling.rs) and compose's (compose_up.rs).

use std::{collections::BTreeMap, time::Duration};

use serde_json::Value;
use testkit::local_jaeger::{Query, Trace, query::Search};
use xtask::compose::{Compose, project_root};

/// Where the traffic goes: orders' base URL and the OTLP endpoint `load` exports to.
pub struct Traffic<'a> {
    pub orders: &'a str,
    pub otlp: &'a str,
}

/// Runs `load` as compose runs it (its environment, spans to `otlp`) against `orders` with
/// `args`; its JSON summary.
async fn load(traffic: &Traffic<'_>, args: &[&str]) -> Value {
    let compose = Compose::load(&project_root()).unwrap();
    let mut env = compose.environment("load").unwrap();
    env.insert(
        "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
        traffic.otlp.to_owned(),
    );
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(testkit::binary("load"))
            .env_clear()
            .envs(&env)
            .args(["--target", traffic.orders, "--output", "json"])
            .args(args)
            .output(),
    )
    .await
    .expect("load finishes")
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// 30 requests at 10/s, each carrying `baggage` to users (demo faults are on in compose).
async fn thirty_with_baggage(traffic: &Traffic<'_>, baggage: &str) -> Value {
    load(
        traffic,
        &["--requests", "30", "--rate", "10", "--baggage", baggage],
    )
    .await
}

fn status_count(summary: &Value, status: &str) -> usize {
    summary["status_codes"][status].as_u64().unwrap_or(0) as usize
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Error,
    Slow,
    Fast,
}

/// What the policies look at: an error anywhere, else the root's duration.
fn class(trace: &Trace) -> Class {
    let spans = trace.spans();
    if spans.iter().any(|s| s.is_error()) {
        return Class::Error;
    }
    let start = spans.iter().map(|s| s.start_us()).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_us()).max().unwrap_or(0);
    if end - start >= 500_000 {
        Class::Slow
    } else {
        Class::Fast
    }
}

/// Sends 300 traces through `traffic` (240 fast, 30 failing in users, 30 slow) and checks
/// what `jaeger`, behind tail sampling, kept of them.
pub async fn check_what_tail_sampling_keeps(jaeger: &Query, traffic: &Traffic<'_>) {
    // 300 traces: 240 fast and fine, 30 failing in users, 30 slowed down in users.
    let (fast, errors, slow) = tokio::join!(
        load(
            traffic,
            &["--requests", "240", "--rate", "60", "--mix", "ok=100"]
        ),
        thirty_with_baggage(traffic, "demo.fail=users"),
        thirty_with_baggage(traffic, "demo.delay_ms=600"),
    );
    let sent = BTreeMap::from([
        (Class::Fast, status_count(&fast, "200")),
        (Class::Error, status_count(&errors, "502")),
        (Class::Slow, status_count(&slow, "200")),
    ]);
    assert_eq!(sent[&Class::Fast], 240, "{fast}");
    assert_eq!(sent[&Class::Error], 30, "{errors}");
    assert_eq!(sent[&Class::Slow], 30, "{slow}");

    // Kept traces appear once decided: poll until every error and slow trace is there and
    // the number kept has not moved over three polls.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut stable = 0;
    let mut last = usize::MAX;
    let traces = loop {
        let traces = jaeger.search(&Search::recent("load")).await.unwrap();
        let count = |c: Class| traces.iter().filter(|t| class(t) == c).count();
        let complete = count(Class::Error) >= 30 && count(Class::Slow) >= 30;
        stable = if complete && traces.len() == last {
            stable + 1
        } else {
            0
        };
        last = traces.len();
        if stable >= 3 {
            break traces;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "kept traces did not settle within 90 s: {} errors, {} slow, {} fast of {sent:?}",
            count(Class::Error),
            count(Class::Slow),
            count(Class::Fast)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };

    let mut kept: BTreeMap<Class, usize> = BTreeMap::new();
    for trace in &traces {
        let class = class(trace);
        *kept.entry(class).or_default() += 1;
        // Whole: load's root above orders and users, every span's parent present, and the
        // span count of its kind (an answered request is 8: load's and the seven of the
        // services; a slow one adds users' demo-delay; a failing one has users' demo-fault
        // in place of its query).
        let expected = match class {
            Class::Fast | Class::Error => 8,
            Class::Slow => 9,
        };
        assert_eq!(
            trace.spans.len(),
            expected,
            "a kept {class:?} trace misses a span:\n{}",
            trace.outline()
        );
        assert_eq!(trace.roots().len(), 1, "{}", trace.outline());
        assert_eq!(trace.roots()[0].service, "load");
        assert_eq!(trace.services(), ["load", "orders", "users"]);
    }
    assert_eq!(
        kept.get(&Class::Error),
        Some(&30),
        "every error trace is kept"
    );
    assert_eq!(
        kept.get(&Class::Slow),
        Some(&30),
        "every slow trace is kept"
    );
    let fast_kept = kept.get(&Class::Fast).copied().unwrap_or(0);
    assert!(
        (5..=60).contains(&fast_kept),
        "about 10% of 240 fast traces kept (2-25% allowed): {fast_kept}"
    );
}
