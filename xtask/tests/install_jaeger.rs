//! .ci/install-jaeger: the official release archive when it can be downloaded (checked
//! against the release's checksum file), otherwise Jaeger built from its Go module, and it
//! says which. Each test installs into a folder of its own (GOBIN), never the machine's.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Output},
};

const VERSION: &str = "2.12.0";

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A fresh folder under the temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn install(bin_dir: &Path, release_url: &str) -> Output {
    Command::new(project_root().join(".ci/install-jaeger"))
        .env("GOBIN", bin_dir)
        .env("JAEGER_RELEASE_URL", release_url)
        .output()
        .unwrap()
}

fn printed(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Whether the ELF file at `path` names a dynamic loader (a PT_INTERP program header), as a
/// binary linked against the C library does.
fn has_interpreter(path: &Path) -> bool {
    let elf = std::fs::read(path).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "{} is an ELF binary", path.display());
    assert_eq!(elf[4], 2, "64-bit");
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3
    })
}

#[test]
fn an_unreachable_release_falls_back_to_the_module_build_and_says_so() {
    let scratch = Scratch::new("install-jaeger-fallback");
    // Drawn for "nothing listens here": the download is refused at once.
    let port = testkit::free_port();
    let output = install(&scratch.0, &format!("http://127.0.0.1:{port}"));
    let (stdout, stderr) = printed(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "downloading http://127.0.0.1:{port}/jaeger-{VERSION}-"
        )) && stderr.contains("download failed")
            && stderr.contains(&format!(
                "falling back to building Jaeger v{VERSION} from its Go module"
            ))
            && stderr.contains("has no UI"),
        "{stderr}"
    );
    let binary = scratch.0.join("jaeger");
    assert_eq!(Path::new(&stdout), binary, "it prints the binary's path");
    assert_eq!(
        testkit::local_jaeger::version(&binary).unwrap(),
        VERSION,
        "{stderr}"
    );
    // Static, as Jaeger's release binaries are (CGO_ENABLED=0): an image without a C
    // library can run it.
    assert!(
        !has_interpreter(&binary),
        "{} is linked dynamically",
        binary.display()
    );

    // Installed already, it is kept, and the next run says why it still has no UI.
    let again = install(&scratch.0, &format!("http://127.0.0.1:{port}"));
    let (stdout, stderr) = printed(&again);
    assert!(again.status.success(), "{stderr}");
    assert_eq!(Path::new(&stdout), binary);
    assert!(
        stderr.contains("kept the build") && !stderr.contains("building"),
        "{stderr}"
    );
}

/// Serves each file of `dir` by name over HTTP/1.0 to `requests` requests; 404 otherwise.
fn serve(dir: PathBuf, requests: usize) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut request = String::new();
            BufReader::new(&stream).read_line(&mut request).unwrap();
            let name = request.split_whitespace().nth(1).unwrap_or("/");
            let file = dir.join(name.trim_start_matches('/'));
            let (status, body) = match std::fs::read(&file) {
                Ok(body) if file.parent() == Some(dir.as_path()) => ("200 OK", body),
                _ => ("404 Not Found", Vec::new()),
            };
            let head = format!(
                "HTTP/1.0 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (port, server)
}

#[test]
fn the_release_archive_is_installed_when_its_checksum_matches() {
    let scratch = Scratch::new("install-jaeger-release");
    // An archive laid out as Jaeger's release workflow packs it, holding a stand-in that
    // answers `version` as a release binary does (its commit stamped).
    let (os, arch) = match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => ("linux", "amd64"),
        ("linux", "aarch64") => ("linux", "arm64"),
        ("macos", "x86_64") => ("darwin", "amd64"),
        ("macos", "aarch64") => ("darwin", "arm64"),
        other => panic!("no Jaeger release archive for {other:?}"),
    };
    let package = format!("jaeger-{VERSION}-{os}-{arch}");
    let staging = scratch.0.join("staging");
    let served = scratch.0.join("served");
    let bin_dir = scratch.0.join("bin");
    std::fs::create_dir_all(staging.join(&package)).unwrap();
    std::fs::create_dir_all(&served).unwrap();
    let stand_in = staging.join(&package).join("jaeger");
    std::fs::write(
        &stand_in,
        format!(
            "#!/bin/sh\necho '{{\"gitCommit\":\"0123abc\",\"gitVersion\":\"v{VERSION}\",\
             \"buildDate\":\"2025-01-01T00:00:00Z\"}}'\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    let archive = format!("{package}.tar.gz");
    let tar = Command::new("tar")
        .arg("-czf")
        .arg(served.join(&archive))
        .arg("-C")
        .arg(&staging)
        .arg(&package)
        .status()
        .unwrap();
    assert!(tar.success());
    let sum = Command::new("sha256sum")
        .arg(served.join(&archive))
        .output()
        .unwrap();
    let hash = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    // As `shasum -b` writes it, another archive's line first.
    std::fs::write(
        served.join(format!("jaeger-{VERSION}.sha256sum.txt")),
        format!(
            "{} *jaeger-{VERSION}-windows-amd64.zip\n{hash} *{archive}\n",
            "0".repeat(64)
        ),
    )
    .unwrap();

    let (port, server) = serve(served, 2);
    let output = install(&bin_dir, &format!("http://127.0.0.1:{port}"));
    server.join().unwrap();
    let (stdout, stderr) = printed(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "installed the official release binary of Jaeger v{VERSION}"
        )) && !stderr.contains("Go module"),
        "{stderr}"
    );
    let installed = bin_dir.join("jaeger");
    assert_eq!(Path::new(&stdout), installed);
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&stand_in).unwrap(),
        "the archive's binary"
    );

    // Nothing is downloaded again (no server now).
    let again = install(&bin_dir, "http://127.0.0.1:9");
    let (_, stderr) = printed(&again);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("already installed"), "{stderr}");
}
