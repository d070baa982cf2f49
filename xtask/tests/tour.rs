//! docs/how-it-works.md names files and functions for a learner to open: every one must
//! exist, or the tour sends them to code that moved.

use xtask::compose::project_root;

/// The code spans of `markdown` that name a file of ours, with the item after `::`, if any.
fn references(markdown: &str) -> Vec<(String, Option<String>)> {
    markdown
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| {
            let (path, item) = match span.split_once("::") {
                Some((path, item)) => (path, Some(item.to_owned())),
                None => (span, None),
            };
            let ours = path.ends_with(".rs") || path.ends_with(".md");
            (ours && !path.contains(' ')).then(|| (path.to_owned(), item))
        })
        .collect()
}

/// `fn name`, `struct name`, `enum name` or `trait name`, as a whole word.
fn defines(source: &str, name: &str) -> bool {
    ["fn ", "struct ", "enum ", "trait "].iter().any(|keyword| {
        source
            .match_indices(&format!("{keyword}{name}"))
            .any(|(at, found)| {
                let after = source[at + found.len()..].chars().next();
                !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
    })
}

#[test]
fn every_file_and_function_the_tour_names_exists() {
    let root = project_root();
    let tour = std::fs::read_to_string(root.join("docs/how-it-works.md")).unwrap();
    let references = references(&tour);
    assert!(
        references.iter().filter(|(_, item)| item.is_some()).count() >= 20,
        "the tour names the functions to open: {references:?}"
    );
    let mut stale = Vec::new();
    for (path, item) in &references {
        let Ok(source) = std::fs::read_to_string(root.join(path)) else {
            stale.push(format!("{path}: no such file"));
            continue;
        };
        if let Some(item) = item
            && !defines(&source, item)
        {
            stale.push(format!("{path}: defines no {item}"));
        }
    }
    assert!(
        stale.is_empty(),
        "docs/how-it-works.md is stale:\n{}",
        stale.join("\n")
    );
}

#[test]
fn the_workshop_sends_the_learner_to_the_tour() {
    let guide = std::fs::read_to_string(project_root().join("docs/workshop.md")).unwrap();
    let first = guide
        .split("\n## 2.")
        .next()
        .expect("the guide has exercises");
    assert!(
        first.contains("how-it-works.md"),
        "exercise 1 links to the tour"
    );
}

#[test]
fn a_stale_reference_is_caught() {
    let refs = references("open `shared/telemetry/src/server.rs::trace_http` and `a b.rs`");
    assert_eq!(
        refs,
        [(
            "shared/telemetry/src/server.rs".to_owned(),
            Some("trace_http".to_owned())
        )]
    );
    assert!(defines("pub async fn trace_http(", "trace_http"));
    assert!(!defines("pub async fn trace_http_inner(", "trace_http"));
    assert!(!defines("let trace_http = 1;", "trace_http"));
}

/// The body of `fn name` in `source`: from its line to the closing brace at the same
/// indentation.
fn body<'a>(source: &'a str, name: &str) -> Option<&'a str> {
    let start = source.lines().position(|line| {
        let line = line.trim_start();
        [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "async fn ",
            "pub async fn ",
            "pub(super) async fn ",
        ]
        .iter()
        .any(|prefix| {
            line.strip_prefix(prefix).is_some_and(|rest| {
                rest.strip_prefix(name)
                    .is_some_and(|after| after.starts_with(['(', '<']))
            })
        })
    })?;
    let lines: Vec<&str> = source.lines().collect();
    let indent = lines[start].len() - lines[start].trim_start().len();
    let end = (start + 1..lines.len()).find(|&i| {
        let line = lines[i];
        line.len() - line.trim_start().len() == indent && line.trim_start().starts_with('}')
    })?;
    // Byte offsets of those lines (every line ends with one `\n`).
    let offset = |line: usize| lines[..line].iter().map(|l| l.len() + 1).sum::<usize>();
    Some(&source[offset(start)..offset(end)])
}

/// What the tour says each function does, as the code that must be in it.
const CLAIMS: &[(&str, &[&str])] = &[
    (
        "shared/telemetry/src/server.rs::trace_http",
        &[
            "propagator.extract",
            "set_parent",
            ".instrument(",
            "record_response",
            "traceresponse",
        ],
    ),
    (
        "services/orders/src/users_client.rs::get",
        &["self.propagation", "DisableOtelPropagation"],
    ),
    (
        "shared/telemetry/src/client.rs::http_client",
        &["RetryTransientMiddleware", "TracingMiddleware"],
    ),
    (
        "shared/telemetry/src/init.rs::propagator",
        &["W3cTraceContext", "W3cBaggage"],
    ),
    (
        "shared/telemetry/src/db.rs::run_in_span",
        &["\"db-query\"", "otel.kind = \"client\"", ".instrument("],
    ),
    (
        "services/orders/src/main.rs::main",
        &[
            "from_env()",
            "telemetry::init",
            "shutdown_signal()",
            "telemetry.shutdown()",
        ],
    ),
    (
        "shared/telemetry/src/init.rs::init",
        &[
            "otlp_exporter(",
            "provider(",
            "set_text_map_propagator",
            "subscriber(",
        ],
    ),
    (
        "shared/telemetry/src/init.rs::provider",
        &[
            "BatchConfigBuilder::default()",
            "BatchSpanProcessor",
            "with_resource",
            "with_sampler",
        ],
    ),
    ("shared/telemetry/src/config.rs::from_env", &["Self::read("]),
    (
        "shared/telemetry/src/init.rs::subscriber",
        &["EnvFilter", "tracing_opentelemetry::layer()"],
    ),
    (
        "services/orders/src/worker/process.rs::message_span",
        &[
            "AsyncContext::Child",
            "AsyncContext::Off",
            "AsyncContext::Link",
            "set_parent",
        ],
    ),
];

#[test]
fn each_function_the_tour_names_does_what_the_tour_says() {
    let root = project_root();
    let tour = std::fs::read_to_string(root.join("docs/how-it-works.md")).unwrap();
    let mut wrong = Vec::new();
    for (reference, snippets) in CLAIMS {
        assert!(
            tour.contains(&format!("`{reference}`")),
            "the tour names {reference}"
        );
        let (path, item) = reference.split_once("::").unwrap();
        let source = std::fs::read_to_string(root.join(path)).unwrap();
        let Some(body) = body(&source, item) else {
            wrong.push(format!("{reference}: no such function"));
            continue;
        };
        for snippet in snippets.iter().filter(|s| !body.contains(**s)) {
            wrong.push(format!("{reference} does not contain `{snippet}`"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_function_body_ends_at_its_own_brace() {
    let source = "fn a() {\n    x();\n}\n\nfn b() {\n    y();\n}\n";
    assert_eq!(body(source, "a"), Some("fn a() {\n    x();\n"));
    assert!(!body(source, "a").unwrap().contains("y()"));
    assert_eq!(body(source, "c"), None);
}
