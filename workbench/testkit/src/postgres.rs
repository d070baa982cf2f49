//! PostgreSQL for tests: `DATABASE_URL` if set; else a throwaway cluster from initdb/pg_ctl;
//! else a throwaway container where a Docker engine runs. Each test asks for fresh
//! databases, so tests share the server but never data.

use pg_cluster::Cluster;
use std::{
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
        if pg_cluster::find_bin_dir().is_some() {
            return Self::start_cluster();
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
                tokio::task::spawn_blocking(move || cluster.stop())
                    .await
                    .expect("pg_ctl thread")
                    .unwrap_or_else(|e| panic!("{e}"));
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

    fn start_cluster() -> Self {
        let cluster = Cluster::create("testkit-pg", None)
            .unwrap_or_else(|e| panic!("could not start a throwaway PostgreSQL cluster: {e}"));
        let _ = CLEANUP.set(Cleanup::Cluster(cluster.clone()));
        // SAFETY: registers a plain `extern "C" fn` with no captured state.
        unsafe { libc::atexit(cleanup_at_exit) };
        Self {
            server_url: cluster.url("postgres"),
            owned: Some(Owned::Cluster(cluster)),
        }
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

extern "C" fn cleanup_at_exit() {
    match CLEANUP.get() {
        Some(Cleanup::Cluster(cluster)) => cluster.destroy(),
        Some(Cleanup::Container(id)) => {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        None => {}
    }
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
