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
