//! docs/workshop.md asks for Docker only: no exercise's first command needs `cargo`. Every
//! code block is a command a participant with only Docker can run; a `cargo` command appears
//! in the prose only as the second form, after "without Docker" in the same paragraph; each
//! exercise's check is `docker compose run --rm check N` first.

use workshop::guide::{self, Block, GUIDE};

/// The guide's prose (outside code blocks), one paragraph a string, lines joined.
fn paragraphs(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code || line.starts_with("```") || line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        current.push_str(line.trim());
        current.push(' ');
    }
    out.push(current);
    out
}

/// The `code` spans of a paragraph, each with its offset.
fn code_spans(paragraph: &str) -> Vec<(usize, &str)> {
    let mut spans = Vec::new();
    let mut rest = paragraph;
    let mut offset = 0;
    while let Some(start) = rest.find('`') {
        let Some(length) = rest[start + 1..].find('`') else {
            break;
        };
        spans.push((offset + start, &rest[start + 1..start + 1 + length]));
        offset += start + length + 2;
        rest = &rest[start + length + 2..];
    }
    spans
}

/// What breaks the rule in `markdown`, one line each.
fn needs_cargo_first(markdown: &str) -> Vec<String> {
    let mut broken = Vec::new();
    for (exercise, block) in guide::blocks(markdown).unwrap() {
        let (Block::Sh(lines) | Block::Console(lines)) = block;
        for line in lines.iter().filter(|l| l.contains("cargo ")) {
            broken.push(format!("exercise {exercise}: a code block runs `{line}`"));
        }
    }
    for paragraph in paragraphs(markdown) {
        for (at, code) in code_spans(&paragraph) {
            let marked = paragraph[..at].to_lowercase().contains("without docker");
            if code.contains("cargo ") && !marked {
                broken.push(format!("`{code}` without \"without Docker\" before it"));
            }
        }
        if let Some(check) = paragraph.strip_prefix("Check: ") {
            let first = code_spans(check).first().map(|(_, code)| *code);
            if !first.is_some_and(|code| code.starts_with("docker compose run --rm check ")) {
                broken.push(format!("a check whose first form is not Docker's: {check}"));
            }
        }
    }
    broken
}

#[test]
fn every_exercise_starts_with_a_command_that_needs_only_docker() {
    assert_eq!(needs_cargo_first(GUIDE), Vec::<String>::new());
    for (n, title) in guide::titles(GUIDE) {
        assert!(
            GUIDE.contains(&format!("`docker compose run --rm check {n}`"))
                || GUIDE.contains(&format!("`docker compose run --rm check {n} --part")),
            "exercise {n} ({title}) has its check in Docker's form"
        );
    }
    assert_eq!(guide::titles(GUIDE).len(), workshop::EXERCISES as usize);
}

#[test]
fn the_rule_catches_a_cargo_command_first() {
    let guide = "## 1. One\n\n```sh\ncargo run -p load -- --rate 5\n```\n\n\
                 Run `cargo xtask up` first.\n\n\
                 Check: `cargo xtask check 1` (without Docker: `cargo xtask check 1`)\n";
    let broken = needs_cargo_first(guide);
    assert_eq!(broken.len(), 4, "{broken:#?}");
    let fine = "## 1. One\n\n```sh\ndocker compose run --rm load --rate 5\n```\n\n\
                (without Docker:\n`cargo run -p load -- --rate 5`)\n\n\
                Check: `docker compose run --rm check 1` (without Docker: `cargo xtask check 1`)\n";
    assert_eq!(needs_cargo_first(fine), Vec::<String>::new());
}
