//! The Python users service (services/users-python) outside Docker: a virtualenv with its
//! pinned requirements, created from PyPI on first use and reused while requirements.txt is
//! unchanged. `cargo xtask up --users python` and the tests start it through here.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The service's folder in the workspace.
pub fn service_dir(root: &Path) -> PathBuf {
    root.join("services/users-python")
}

/// The app the interpreter runs.
pub fn app(root: &Path) -> PathBuf {
    service_dir(root).join("app.py")
}

/// Where the service's virtualenv lives: `target/users-python/venv`.
fn venv_dir(root: &Path) -> PathBuf {
    crate::cargo::target_dir(root).join("users-python/venv")
}

/// The virtualenv's `bin/python`, with every package of requirements.txt installed.
pub fn ensure_venv(root: &Path) -> Result<PathBuf, String> {
    let venv = venv(&service_dir(root).join("requirements.txt"), &venv_dir(root))
        .map_err(|e| format!("the Python users service's virtualenv: {e}"))?;
    Ok(venv.join("bin/python"))
}

/// A virtualenv at `venv` with every package of `requirements` installed: made with
/// `python3 -m venv` and `pip install -r` when missing or when the file changed (a copy kept
/// in the venv says which it was made from). Made in place, since a virtualenv cannot be
/// moved (its scripts, `uvicorn` and the like, name their interpreter by its full path);
/// under a lock file beside it, so two runs at once do not both build it; and the copy of
/// requirements.txt is written last, so a build stopped half-way is never taken as done.
/// Used for the Python users service and for the bench's tutorial stack.
pub(crate) fn venv(requirements_path: &Path, venv: &Path) -> Result<PathBuf, String> {
    let requirements = std::fs::read_to_string(requirements_path)
        .map_err(|e| format!("read {}: {e}", requirements_path.display()))?;
    let ready = |venv: &Path| {
        venv.join("bin/python").is_file()
            && std::fs::read_to_string(venv.join("requirements.txt"))
                .is_ok_and(|made_from| made_from == requirements)
    };
    if ready(venv) {
        return Ok(venv.to_owned());
    }
    let base = venv.parent().ok_or("a venv needs a parent folder")?;
    std::fs::create_dir_all(base).map_err(|e| format!("create {}: {e}", base.display()))?;
    let lock_path = venv.with_extension("lock");
    let lock = std::fs::File::create(&lock_path)
        .and_then(|file| file.lock().map(|()| file))
        .map_err(|e| format!("lock {}: {e}", lock_path.display()))?;
    // Another run may have built it while this one waited for the lock.
    if ready(venv) {
        return Ok(venv.to_owned());
    }
    let _ = std::fs::remove_dir_all(venv);
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let made = run(Command::new(&python).args(["-m", "venv"]).arg(venv))
        .map_err(|e| format!("{e} (Debian: apt-get install python3 python3-venv)"))
        .and_then(|()| {
            run(Command::new(venv.join("bin/python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["--no-input", "-r"])
                .arg(requirements_path))
        })
        .and_then(|()| {
            std::fs::write(venv.join("requirements.txt"), &requirements).map_err(|e| e.to_string())
        });
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(venv);
        return Err(e);
    }
    drop(lock);
    Ok(venv.to_owned())
}

/// Runs `command`; on failure, its status and the last 20 lines it wrote on stderr.
fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let output = command.output().map_err(|e| format!("run {shown}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    Err(format!("{shown}: {}\n{tail}", output.status))
}

/// Which users service `cargo xtask up` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Users {
    Rust,
    Python,
}

/// For `cargo xtask up --users python`: the venv's interpreter, the app and the environment
/// compose gives users-python (users' own, named users-python). The users database is
/// migrated first with the Rust service's migrations, as compose's users service does before
/// users-python starts: the Python service reads that database, it never migrates it.
pub async fn prepare(
    root: &Path,
    mut env: std::collections::BTreeMap<String, String>,
) -> Result<(PathBuf, String, std::collections::BTreeMap<String, String>), String> {
    let database_url = env
        .get("DATABASE_URL")
        .cloned()
        .ok_or("users has no DATABASE_URL in docker-compose.yml")?;
    let pool = sqlx::PgPool::connect(&database_url)
        .await
        .map_err(|e| format!("connect to the users database: {e}"))?;
    // The same folder the users service compiles in (`sqlx::migrate!`), read here at run
    // time: linking the users crate would make every `cargo xtask` build compile it.
    let migrations = root.join("migrations/users");
    sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .map_err(|e| format!("read {}: {e}", migrations.display()))?
        .run(&pool)
        .await
        .map_err(|e| format!("migrate the users database: {e}"))?;
    pool.close().await;
    if !venv_dir(root).join("bin/python").is_file() {
        println!("users     the Python service's virtualenv: pip install from PyPI (first use)");
    }
    let root_owned = root.to_owned();
    let python = tokio::task::spawn_blocking(move || ensure_venv(&root_owned))
        .await
        .map_err(|e| e.to_string())??;
    env.insert("OTEL_SERVICE_NAME".to_owned(), "users-python".to_owned());
    Ok((python, app(root).display().to_string(), env))
}
