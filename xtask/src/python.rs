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

/// `target/users-python/venv/bin/python`, with every package of requirements.txt installed.
pub fn ensure_venv(root: &Path) -> Result<PathBuf, String> {
    let venv = venv(
        &service_dir(root).join("requirements.txt"),
        &crate::cargo::target_dir(root).join("users-python/venv"),
    )
    .map_err(|e| format!("the Python users service's virtualenv: {e}"))?;
    Ok(venv.join("bin/python"))
}

/// A virtualenv at `venv` with every package of `requirements` installed: made with
/// `python3 -m venv` and `pip install -r` when missing or when the file changed (a copy kept
/// in the venv says which it was made from). Built beside and renamed into place, so a run
/// stopped half-way, or two at once, never leave a half-installed venv to be reused. Used
/// for the Python users service and for the bench's tutorial stack.
pub(crate) fn venv(requirements_path: &Path, venv: &Path) -> Result<PathBuf, String> {
    let requirements = std::fs::read_to_string(requirements_path)
        .map_err(|e| format!("read {}: {e}", requirements_path.display()))?;
    let made_from = |venv: &Path| std::fs::read_to_string(venv.join("requirements.txt")).ok();
    if venv.join("bin/python").is_file() && made_from(venv).as_deref() == Some(&requirements) {
        return Ok(venv.to_owned());
    }
    let base = venv.parent().ok_or("a venv needs a parent folder")?;
    std::fs::create_dir_all(base).map_err(|e| format!("create {}: {e}", base.display()))?;
    let building = base.join(format!("venv.building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let made = run(Command::new(&python).args(["-m", "venv"]).arg(&building))
        .map_err(|e| format!("{e} (Debian: apt-get install python3 python3-venv)"))
        .and_then(|()| {
            run(Command::new(building.join("bin/python"))
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
            std::fs::write(building.join("requirements.txt"), &requirements)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&building);
        return Err(e);
    }
    // Another run may have finished first: its venv, made from the same file, is as good.
    if made_from(venv).as_deref() != Some(&requirements) {
        let _ = std::fs::remove_dir_all(venv);
        if std::fs::rename(&building, venv).is_err() && made_from(venv).is_none() {
            let _ = std::fs::remove_dir_all(&building);
            return Err(format!("could not move the new venv to {}", venv.display()));
        }
    }
    let _ = std::fs::remove_dir_all(&building);
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
    let migrations = root.join("migrations/users");
    sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .map_err(|e| format!("read {}: {e}", migrations.display()))?
        .run(&pool)
        .await
        .map_err(|e| format!("migrate the users database: {e}"))?;
    pool.close().await;
    if !crate::cargo::target_dir(root)
        .join("users-python/venv/bin/python")
        .is_file()
    {
        println!("users     the Python service's virtualenv: pip install from PyPI (first use)");
    }
    let root_owned = root.to_owned();
    let python = tokio::task::spawn_blocking(move || ensure_venv(&root_owned))
        .await
        .map_err(|e| e.to_string())??;
    env.insert("OTEL_SERVICE_NAME".to_owned(), "users-python".to_owned());
    Ok((python, app(root).display().to_string(), env))
}
