//! The workshop kit (`deploy/kit`), for real: written from the images compose uses, every one
//! of them removed from the engine, loaded back from the kit, `docker compose up --no-build
//! --pull never`, curl, and the trace in Jaeger: a room without network. And a kit that is
//! truncated, damaged or without its checksum refused with one line naming the file, before
//! Docker sees it.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Instant,
};

use common::engine::{JAEGER, Stack, compose, curl, docker, require_engine, succeed, trace_id};
use testkit::local_jaeger::Query;
use xtask::compose::project_root;

fn kit(args: &[&str]) -> Output {
    Command::new(project_root().join("deploy/kit"))
        .args(args)
        .current_dir(project_root())
        .output()
        .unwrap()
}

/// A folder of this test's own, removed with it.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("kit-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn checksum(file: &Path) {
    let output = Command::new("sha256sum")
        .arg(file.file_name().unwrap())
        .current_dir(file.parent().unwrap())
        .output()
        .unwrap();
    assert!(output.status.success());
    std::fs::write(file.with_extension("gz.sha256"), output.stdout).unwrap();
}

/// `deploy/kit load file` refuses: exit 1, nothing on stdout, one line naming the file and
/// saying `why`.
fn refused(file: &Path, why: &str) {
    let output = kit(&["load", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("kit: {}", file.display())) && stderr.contains(why),
        "expected `kit: {}...{why}`, got: {stderr}",
        file.display()
    );
}

#[test]
fn a_damaged_kit_is_refused_with_one_line_naming_the_file() {
    let scratch = Scratch::new("damaged");
    let file = scratch.0.join("workshop-kit-amd64.tar.gz");
    refused(&file, "no such file");

    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    refused(&file, "checksum file");
    checksum(&file);

    // Truncated on the way (a copy stopped early).
    std::fs::write(&file, &bytes[..150_000]).unwrap();
    refused(&file, "does not match its checksum");
    // Damaged: one byte changed, the size unchanged.
    let mut damaged = bytes.clone();
    damaged[1000] ^= 1;
    std::fs::write(&file, &damaged).unwrap();
    refused(&file, "does not match its checksum");
    // A checksum file that holds no checksum.
    std::fs::write(&file, &bytes).unwrap();
    std::fs::write(file.with_extension("gz.sha256"), "not a checksum\n").unwrap();
    let output = kit(&["load", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(".sha256 holds no SHA-256 checksum"),
        "{stderr}"
    );

    let output = kit(&["unpack"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("kit: usage: "));
}

/// Every compose file: the kit holds the images of all of them.
const FILES: &[&str] = &[
    "docker-compose.yml",
    "docker-compose.tail-sampling.yml",
    "docker-compose.python.yml",
];

/// The images compose uses (the `tools` profile's and the overlays' too), each with its id.
fn images() -> Vec<(String, String)> {
    let output = succeed(compose(
        FILES,
        &["--profile", "tools", "config", "--images"],
    ));
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let id = Command::new("docker")
                .args(["image", "inspect", "--format", "{{.Id}}", &name])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default();
            (name, id)
        })
        .collect()
}

/// Loads the kit back if the test ends with any image of it missing: the engine keeps what
/// it had whatever happens.
struct Restore(PathBuf);

impl Drop for Restore {
    fn drop(&mut self) {
        if images().iter().any(|(_, id)| id.is_empty()) {
            let _ = Command::new("docker")
                .args(["load", "-i"])
                .arg(&self.0)
                .output();
        }
    }
}

#[tokio::test]
async fn a_kit_starts_the_workshop_with_nothing_built_or_pulled() {
    require_engine();
    let _stack = Stack;
    drop(compose(&[], &["down", "-v", "--remove-orphans"]).output());
    // Our images, as an instructor has them before writing the kit (cached after
    // compose_up and compose_python).
    succeed(compose(FILES, &["build"]));
    let before = images();
    for (name, id) in &before {
        assert!(
            !id.is_empty(),
            "{name} is not on this machine: workbench/stand-in-images/build or docker compose pull"
        );
    }
    assert!(before.len() >= 5, "{before:?}");

    let scratch = Scratch::new("write");
    let file = scratch.0.join("workshop-kit.tar.gz");
    let started = Instant::now();
    let output = kit(&["write", file.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = started.elapsed();
    let size = std::fs::metadata(&file).unwrap().len();
    let _restore = Restore(file.clone());

    // A room without network: none of the images is on the engine any more.
    let names: Vec<&str> = before.iter().map(|(name, _)| name.as_str()).collect();
    docker(&[&["rmi"][..], &names].concat());
    assert!(
        images().iter().all(|(_, id)| id.is_empty()),
        "{:?}",
        images()
    );

    let started = Instant::now();
    let output = kit(&["load", file.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && said.contains("docker compose up --no-build --pull never"),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let loaded = started.elapsed();
    assert_eq!(images(), before, "the kit holds the very images");

    // The command the kit prints, nothing built and nothing pulled.
    succeed(compose(
        &[],
        &["up", "--no-build", "--pull", "never", "--wait", "--detach"],
    ));
    let (status, headers) = curl(&["localhost:8080/orders/1"]);
    assert_eq!(status, 200, "{headers:?}");
    let trace = Query::new(JAEGER)
        .trace_of(&trace_id(&headers), 7)
        .await
        .unwrap();
    assert_eq!(trace.services(), ["orders", "users"], "{}", trace.outline());
    let first_trace = started.elapsed();
    eprintln!(
        "kit: {:.0} MB ({} images), written in {:.0} s; docker load {:.0} s; from load to \
         the first trace in Jaeger {:.0} s",
        size as f64 / 1e6,
        before.len(),
        written.as_secs_f64(),
        loaded.as_secs_f64(),
        first_trace.as_secs_f64(),
    );
}
