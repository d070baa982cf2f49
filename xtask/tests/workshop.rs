//! docs/workshop.md never rots: every `sh` command in it runs against the Docker-less
//! runner, and every `console` line (how to start the system) is one this test performs
//! itself or a compose command that a compose implementation accepts.

mod common;

use std::time::Duration;

use common::Runner;
use xtask::compose::project_root;

#[derive(Debug)]
enum Block {
    Sh(Vec<String>),
    Console(Vec<String>),
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in markdown.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim().to_owned(), Vec::new())),
            (Some(_), Some(_)) => {
                let (lang, lines) = current.take().unwrap();
                match lang.as_str() {
                    "sh" => out.push(Block::Sh(lines)),
                    "console" => out.push(Block::Console(lines)),
                    other => panic!("workshop.md: unexpected code block language {other:?}"),
                }
            }
            (Some((_, lines)), None) if !line.trim().is_empty() => {
                lines.push(line.trim().to_owned())
            }
            _ => {}
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    out
}

async fn run(command: &str, runner: &Runner) {
    let local = command
        .replace(
            "localhost:8080",
            &format!("127.0.0.1:{}", runner.orders_port),
        )
        .replace(
            "localhost:8081",
            &format!("127.0.0.1:{}", runner.users_port),
        );
    let local = match local.strip_prefix("cargo run --release -p load -- ") {
        // The built binary, and a short run: the point is that the flags work.
        Some(args) => format!(
            "{} --target http://127.0.0.1:{} {}",
            testkit::binary("load").display(),
            runner.orders_port,
            args.replace("--duration 10s", "--duration 1s")
        ),
        None => local,
    };
    assert!(
        local.starts_with("curl ") || local.contains("/load "),
        "workshop.md: a command this test does not know how to run: {command}"
    );
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("sh")
            .args(["-c", &local])
            .output(),
    )
    .await
    .expect("finishes")
    .unwrap();
    assert!(
        output.status.success() && !output.stdout.is_empty(),
        "{command}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn every_command_of_the_workshop_guide_runs() {
    let guide = std::fs::read_to_string(project_root().join("docs/workshop.md")).unwrap();
    let blocks = blocks(&guide);
    assert!(blocks.iter().filter(|b| matches!(b, Block::Sh(_))).count() >= 8);

    let compose = xtask::compose::Compose::load(&project_root()).unwrap();
    let mut runner = Runner::start(&[], &[]).await;
    let mut commands_run = 0;
    for block in blocks {
        match block {
            Block::Console(lines) => {
                for line in lines {
                    match line.as_str() {
                        "docker compose up" => {}
                        "PROPAGATION=off cargo xtask up" => {
                            let dir = runner.cluster_dir.clone();
                            let (status, _) = runner.stop().await;
                            assert!(status.success() && !dir.exists());
                            runner = Runner::start(&[("PROPAGATION", "off".to_owned())], &[]).await;
                        }
                        other if other.starts_with("docker compose -f ") => {
                            for file in other.split(" -f ").skip(1) {
                                let file = file.split_whitespace().next().unwrap();
                                assert!(
                                    project_root().join(file).is_file(),
                                    "{other}: {file} exists"
                                );
                            }
                        }
                        // Stopping a container is the learner's fault injection; the tests
                        // inject the same faults for real (services/orders/tests/faults.rs).
                        other
                            if other.starts_with("docker compose stop ")
                                || other.starts_with("docker compose start ") =>
                        {
                            let service = other.rsplit(' ').next().unwrap();
                            assert!(
                                compose.service(service).is_some(),
                                "{other}: no compose service {service}"
                            );
                        }
                        other => panic!("workshop.md: unknown console command {other:?}"),
                    }
                }
            }
            Block::Sh(lines) => {
                for line in lines {
                    run(&line, &runner).await;
                    commands_run += 1;
                }
            }
        }
    }
    let dir = runner.cluster_dir.clone();
    let (status, _) = runner.stop().await;
    assert!(status.success() && !dir.exists());
    assert!(commands_run >= 12, "{commands_run} commands");
}
