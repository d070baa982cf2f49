//! A throwaway PostgreSQL cluster: `initdb` into a temporary directory, `pg_ctl start` on
//! 127.0.0.1, trust authentication, removed by [`Cluster::destroy`]. Shared by the test kit
//! and the Docker-less runner so both start Postgres the same way.
//!
//! Finds the server binaries on `PATH` or in Debian's `/usr/lib/postgresql/<version>/bin`.
//! initdb refuses to run as root, so as root every command runs as the `postgres` user
//! that Debian's package creates.

use std::{
    ffi::OsStr,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Command,
};

#[derive(Debug, Clone)]
pub struct Cluster {
    bin_dir: PathBuf,
    root: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

impl Cluster {
    /// `initdb` and start on `port` (a free one when `None`). `tag` names the directory.
    pub fn create(tag: &str, port: Option<u16>) -> Result<Self, String> {
        let bin_dir = find_bin_dir().ok_or_else(|| {
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under \
             /usr/lib/postgresql/*/bin; install the postgresql package"
                .to_owned()
        })?;
        // SAFETY: geteuid has no preconditions.
        let as_postgres_user = unsafe { libc::geteuid() } == 0;
        let root = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&root)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err("chown the cluster directory to the postgres user failed".into());
            }
        }
        let mut cluster = Self {
            bin_dir,
            root,
            port: 0,
            as_postgres_user,
        };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("--auth=trust"),
                OsStr::new("-U"),
                OsStr::new("postgres"),
                OsStr::new("-E"),
                OsStr::new("UTF8"),
            ],
        )?;
        let mut last_error = String::new();
        // A free port can be taken between finding it and binding it: try a few.
        let attempts = if port.is_some() { 1 } else { 5 };
        for _ in 0..attempts {
            cluster.port = match port {
                Some(port) => port,
                None => ports::free_port(),
            };
            match cluster.start() {
                Ok(()) => return Ok(cluster),
                Err(e) => last_error = e,
            }
        }
        cluster.destroy();
        Err(last_error)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The superuser's URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
            self.port,
            self.root.display()
        );
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .output()
            .map_err(|e| format!("run pg_ctl: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            let log = self.log_tail();
            Err(format!(
                "pg_ctl start on port {}: {}\n{log}{}",
                self.port,
                String::from_utf8_lossy(&output.stderr),
                ports::holders_if_in_use(&log, &[self.port])
            ))
        }
    }

    /// A fast shutdown: sessions are disconnected, as when an operator stops the server.
    pub fn stop(&self) -> Result<(), String> {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("stop"),
                OsStr::new("-m"),
                OsStr::new("fast"),
                OsStr::new("-w"),
            ],
        )
    }

    /// Stops the server at once and removes its directory. Never fails: it runs on exit paths.
    pub fn destroy(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["stop", "-m", "immediate", "-w"])
            .output();
        // A server process can still be writing a file (its statistics, its log) for a
        // moment after pg_ctl returns, and a removal racing it fails with "directory not
        // empty": try again briefly rather than leave the cluster behind.
        for _ in 0..20 {
            match std::fs::remove_dir_all(&self.root) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                _ => return,
            }
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin_dir.join(program);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        // The server pg_ctl forks must not share our process group: a terminal's Ctrl-C
        // would stop it before the services that use it have shut down.
        command.process_group(0);
        command
    }

    fn run(&self, program: &str, args: &[&OsStr]) -> Result<(), String> {
        let output = self
            .command(program)
            .args(args)
            .output()
            .map_err(|e| format!("run {program}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}

/// `initdb` on PATH, or the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout).
pub fn find_bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    })
}
