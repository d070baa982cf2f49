//! PostgreSQL for tests: `DATABASE_URL` if set; else a throwaway cluster from initdb/pg_ctl;
//! else a throwaway container where a Docker engine runs. Each test asks for fresh
//! databases, so tests share the server but never data.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

use sqlx::Connection as _;
use tokio::sync::OnceCell;

pub struct Postgres {
    server_url: String,
    owned: Option<Owned>,
}

enum Owned {
    Cluster(Cluster),
    Container(String),
}

/// Cleaned up by an `atexit` handler: statics are never dropped, and the test harness
/// leaves through `exit`, which runs those handlers.
static CLEANUP: OnceLock<Cleanup> = OnceLock::new();

enum Cleanup {
    Cluster(Cluster),
    Container(String),
}

#[derive(Clone)]
struct Cluster {
    bin_dir: PathBuf,
    root: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

pub async fn postgres() -> &'static Postgres {
    static SERVER: OnceCell<Postgres> = OnceCell::const_new();
    SERVER
        .get_or_init(|| async {
            tokio::task::spawn_blocking(Postgres::provide)
                .await
                .expect("postgres provisioning thread")
        })
        .await
}

impl Postgres {
    fn provide() -> Self {
        if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            return Self {
                server_url: url,
                owned: None,
            };
        }
        if let Some(bin_dir) = find_bin_dir() {
            return Self::start_cluster(bin_dir);
        }
        if docker_engine_answers() {
            return Self::start_container();
        }
        panic!(
            "no PostgreSQL for tests: set DATABASE_URL to a server where tests may create \
             databases, or install the PostgreSQL server (Debian: apt-get install postgresql, \
             which provides initdb and pg_ctl), or run a Docker engine"
        );
    }

    /// The server's admin URL (its default database).
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// A new, empty database whose name starts with `prefix`; its full URL.
    pub async fn create_database(&self, prefix: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = sqlx::PgConnection::connect(&self.server_url)
            .await
            .unwrap_or_else(|e| panic!("connect to test Postgres {}: {e}", self.server_url));
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        with_database(&self.server_url, &name)
    }

    /// Stops the server (fault tests). Only for a server the tests own.
    pub async fn stop(&self) {
        match &self.owned {
            Some(Owned::Cluster(cluster)) => {
                let cluster = cluster.clone();
                tokio::task::spawn_blocking(move || cluster.pg_ctl(&["stop", "-m", "fast", "-w"]))
                    .await
                    .expect("pg_ctl thread");
            }
            Some(Owned::Container(id)) => docker(&["stop", id]),
            None => panic!(
                "cannot stop the DATABASE_URL server: this test needs its own cluster (unset DATABASE_URL)"
            ),
        }
    }

    pub async fn start(&self) {
        match &self.owned {
            Some(Owned::Cluster(cluster)) => {
                let cluster = cluster.clone();
                tokio::task::spawn_blocking(move || cluster.start())
                    .await
                    .expect("pg_ctl thread")
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            Some(Owned::Container(id)) => docker(&["start", id]),
            None => panic!("cannot start the DATABASE_URL server"),
        }
    }

    fn start_cluster(bin_dir: PathBuf) -> Self {
        let as_postgres_user = unsafe { libc::geteuid() } == 0;
        let root = std::env::temp_dir().join(format!("testkit-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("create the cluster directory");
        if as_postgres_user {
            // initdb refuses to run as root; the Debian package's `postgres` user owns it.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&root)
                .status()
                .expect("run chown");
            assert!(status.success(), "chown the cluster directory to postgres");
        }
        let mut cluster = Cluster {
            bin_dir,
            root,
            port: 0,
            as_postgres_user,
        };
        cluster.run(
            "initdb",
            &[
                OsStr::new("-D"),
                cluster.data_dir().as_os_str(),
                OsStr::new("--auth=trust"),
                OsStr::new("-U"),
                OsStr::new("postgres"),
                OsStr::new("-E"),
                OsStr::new("UTF8"),
            ],
        );
        let mut last_error = String::new();
        for _ in 0..5 {
            cluster.port = crate::free_port();
            match cluster.start() {
                Ok(()) => {
                    let _ = CLEANUP.set(Cleanup::Cluster(cluster.clone()));
                    unsafe { libc::atexit(cleanup_at_exit) };
                    return Self {
                        server_url: format!(
                            "postgres://postgres@127.0.0.1:{}/postgres",
                            cluster.port
                        ),
                        owned: Some(Owned::Cluster(cluster)),
                    };
                }
                Err(e) => last_error = e,
            }
        }
        panic!("could not start a throwaway PostgreSQL cluster: {last_error}");
    }

    /// The testcontainers crate would bring an HTTP Docker client (bollard) into every test
    /// build for a path these machines never take; the docker CLI does the same in a few lines.
    fn start_container() -> Self {
        let output = Command::new("docker")
            .args([
                "run",
                "-d",
                "--rm",
                "-e",
                "POSTGRES_HOST_AUTH_METHOD=trust",
                "-p",
                "127.0.0.1::5432",
                "postgres:16",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=300",
            ])
            .output()
            .expect("run docker");
        assert!(
            output.status.success(),
            "docker run postgres: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let _ = CLEANUP.set(Cleanup::Container(id.clone()));
        unsafe { libc::atexit(cleanup_at_exit) };
        let port = String::from_utf8_lossy(
            &Command::new("docker")
                .args(["port", &id, "5432/tcp"])
                .output()
                .expect("docker port")
                .stdout,
        )
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.lines().next().map(str::to_owned))
        .expect("published port");
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        // The image restarts the server once after initialising: wait until it stays up.
        for _ in 0..120 {
            let ready = Command::new("docker")
                .args([
                    "exec",
                    &id,
                    "pg_isready",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                ])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        Self {
            server_url: url,
            owned: Some(Owned::Container(id)),
        }
    }
}

impl Cluster {
    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin_dir.join(program);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&OsStr]) {
        let output = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data_dir();
        let mut full: Vec<&OsStr> = vec![OsStr::new("-D"), data.as_os_str()];
        full.extend(args.iter().map(OsStr::new));
        self.run("pg_ctl", &full);
    }

    fn start(&self) -> Result<(), String> {
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
            Err(format!(
                "pg_ctl start on port {}: {}\n{}",
                self.port,
                String::from_utf8_lossy(&output.stderr),
                tail(&self.log_file())
            ))
        }
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

extern "C" fn cleanup_at_exit() {
    match CLEANUP.get() {
        Some(Cleanup::Cluster(cluster)) => {
            let _ = cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(cluster.data_dir())
                .args(["stop", "-m", "immediate", "-w"])
                .output();
            let _ = std::fs::remove_dir_all(&cluster.root);
        }
        Some(Cleanup::Container(id)) => {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        None => {}
    }
}

/// `initdb` on PATH, or the newest /usr/lib/postgresql/<version>/bin (Debian's layout).
fn find_bin_dir() -> Option<PathBuf> {
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

fn docker_engine_answers() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn docker(args: &[&str]) {
    let status = Command::new("docker")
        .args(args)
        .status()
        .expect("run docker");
    assert!(status.success(), "docker {args:?}");
}

fn with_database(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    // postgres://user@host:port/db: replace the path after the authority.
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_urls_swap_the_database_name() {
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres", "x"),
            "postgres://u:p@h:5/x"
        );
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
