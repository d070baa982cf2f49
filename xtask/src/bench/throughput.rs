//! What one machine sustains: the doubling-then-bisecting search for each variant's
//! highest steady rate, and the CPU rounds at a fixed rate (CPU time per request), the
//! variants interleaved.

use super::*;

/// The doubling-then-bisecting search for one variant.
struct Search {
    pass: Option<f64>,
    fail: Option<f64>,
    bisected: usize,
}

impl Search {
    fn next(&self, options: &Options) -> Option<f64> {
        match (self.pass, self.fail) {
            (None, None) => Some(options.start_rate),
            (Some(pass), None) if pass * 2.0 <= options.max_rate => Some(pass * 2.0),
            (Some(_), None) => None,
            _ if self.bisected >= options.bisections => None,
            (None, Some(fail)) => Some(fail / 2.0),
            (Some(pass), Some(fail)) => Some((pass + fail) / 2.0),
        }
    }

    fn record(&mut self, rate: f64, steady: bool) {
        // Steps after the first failure narrow the gap.
        if self.fail.is_some() {
            self.bisected += 1;
        }
        if steady {
            self.pass = Some(rate);
        } else {
            self.fail = Some(rate);
        }
    }
}

pub(super) async fn measure(
    compose: &Compose,
    database: &Database,
    bin_dir: &Path,
    log_dir: &Path,
    options: &Options,
) -> Result<Results, String> {
    let server = prepare_database(compose, database).await?;
    let mut stacks = Vec::new();
    for variant in 0..VARIANTS.len() {
        let extra = &options.service_env;
        stacks.push(Stack::start(variant, compose, &server, bin_dir, log_dir, extra, None).await?);
    }
    let per_answer = spans_per_answer(&stacks[0].orders_url, &stacks[0].collector.counts).await?;
    let idle_rss_kb = [0, 1, 2].map(|i| stacks[i].pids.map(|pid| rss_kb(pid).unwrap_or(0)));
    println!(
        "bench: one GET /orders/{{id}} makes {per_answer} spans; service logs in {}",
        log_dir.display()
    );

    // Warm-up: connections opened, caches and allocator arenas at their working size.
    for stack in &mut stacks {
        let rate = options.cpu_rate;
        stack
            .load(bin_dir, Kind::WarmUp, rate, Duration::from_secs(2))
            .await?;
    }

    for round in 1..=options.rounds {
        for stack in &mut stacks {
            println!(
                "bench: cpu round {round}/{}: {} at {}/s",
                options.rounds, VARIANTS[stack.variant].name, options.cpu_rate
            );
            let (rate, duration) = (options.cpu_rate, options.cpu_duration);
            stack.load(bin_dir, Kind::Cpu, rate, duration).await?;
        }
    }

    let mut searches: Vec<Search> = (0..VARIANTS.len())
        .map(|_| Search {
            pass: None,
            fail: None,
            bisected: 0,
        })
        .collect();
    let mut searching = !options.cpu_only;
    while searching {
        let mut any = false;
        for (stack, search) in stacks.iter_mut().zip(&mut searches) {
            let Some(rate) = search.next(options) else {
                continue;
            };
            any = true;
            let name = VARIANTS[stack.variant].name;
            let run = stack
                .load(bin_dir, Kind::Search, rate, options.step_duration)
                .await?;
            let steady = run.steady(options.p99_limit_ms);
            println!(
                "bench: search: {name:<12} {rate:>7.0}/s  achieved {:>7.0}/s  p99 {:>8.2} ms  \
                 failed {:>6}  {}",
                run.achieved,
                run.p99,
                run.failed,
                if steady { "steady" } else { "NOT steady" }
            );
            search.record(rate, steady);
            // An overloaded run leaves queues behind: let them drain before the next one.
            tokio::time::sleep(Duration::from_secs(if steady { 1 } else { 3 })).await;
        }
        searching = any;
    }
    let highest = [0, 1, 2].map(|i| searches[i].pass.unwrap_or(0.0));

    // What this machine gives one HTTP hop with nothing behind it: the frame for the rates
    // above, each of which crosses four such hops and two queries.
    let mut ceiling = Search {
        pass: None,
        fail: None,
        bisected: 0,
    };
    let baseline = &mut stacks[2];
    while let Some(rate) = ceiling.next(options).filter(|_| !options.cpu_only) {
        let run = baseline
            .load(bin_dir, Kind::Ceiling, rate, options.step_duration)
            .await?;
        let steady = run.steady(options.p99_limit_ms);
        println!(
            "bench: ceiling: GET /healthz {rate:>7.0}/s  achieved {:>7.0}/s  p99 {:>8.2} ms  {}",
            run.achieved,
            run.p99,
            if steady { "steady" } else { "NOT steady" }
        );
        ceiling.record(rate, steady);
        tokio::time::sleep(Duration::from_secs(if steady { 1 } else { 3 })).await;
    }

    let shares: &[f64] = if options.cpu_only { &[] } else { &[0.5, 0.8] };
    for &share in shares {
        for stack in &mut stacks {
            let rate = (highest[stack.variant] * share).max(1.0);
            println!(
                "bench: {:.0}% of the highest steady rate: {} at {rate:.0}/s",
                share * 100.0,
                VARIANTS[stack.variant].name
            );
            let duration = options.hold_duration;
            stack
                .load(bin_dir, Kind::Hold(share), rate, duration)
                .await?;
        }
    }

    let mut runs = Vec::new();
    for stack in stacks {
        runs.extend(stack.shut_down().await?);
    }
    let of = |wanted: fn(Kind) -> bool| -> Vec<Run> {
        runs.iter().filter(|r| wanted(r.kind)).cloned().collect()
    };
    Ok(Results {
        per_answer,
        cpu: of(|k| k == Kind::Cpu),
        search: of(|k| k == Kind::Search),
        highest,
        ceiling: of(|k| k == Kind::Ceiling),
        highest_healthz: ceiling.pass.unwrap_or(0.0),
        hold: of(|k| matches!(k, Kind::Hold(_))),
        idle_rss_kb,
        criterion: Vec::new(),
        seed: None,
    })
}
