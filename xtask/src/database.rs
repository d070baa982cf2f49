//! The Postgres the services use: `DATABASE_URL`'s server or a throwaway local cluster,
//! prepared as compose's Postgres image and init script prepare theirs.

use pg_cluster::Cluster;
use sqlx::Connection as _;
use url::Url;

use crate::compose::Compose;

/// Where the databases live.
pub(crate) enum Database {
    External(Url),
    Cluster(Cluster),
}

/// The admin connection and the credentials the services use.
pub(crate) struct Server {
    pub(crate) url: Url,
}

/// Creates the role compose's Postgres image would create (own cluster only) and the
/// `orders` and `users` databases that compose's init script creates, when missing.
pub(crate) async fn prepare_database(
    compose: &Compose,
    database: &Database,
) -> Result<Server, String> {
    let postgres_env = compose.environment("postgres")?;
    let (admin, service_url) = match database {
        Database::External(url) => (url.clone(), url.clone()),
        Database::Cluster(cluster) => {
            let admin = Url::parse(&cluster.url("postgres")).map_err(|e| e.to_string())?;
            let mut service = admin.clone();
            let user = postgres_env
                .get("POSTGRES_USER")
                .map(String::as_str)
                .unwrap_or("postgres");
            let password = postgres_env.get("POSTGRES_PASSWORD").map(String::as_str);
            let _ = service.set_username(user);
            let _ = service.set_password(password);
            (admin, service)
        }
    };
    let mut connection = sqlx::PgConnection::connect(admin.as_str())
        .await
        .map_err(|e| format!("connect to Postgres at {}: {e}", redact(&admin)))?;
    let owner = service_url.username().to_owned();
    if matches!(database, Database::Cluster(_)) && owner != "postgres" {
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_roles WHERE rolname = $1")
            .bind(&owner)
            .fetch_optional(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
        if exists.is_none() {
            let password = service_url
                .password()
                .unwrap_or_default()
                .replace('\'', "''");
            sqlx::raw_sql(&format!(
                "CREATE ROLE \"{owner}\" LOGIN PASSWORD '{password}'"
            ))
            .execute(&mut connection)
            .await
            .map_err(|e| format!("create role {owner}: {e}"))?;
        }
    }
    for name in ["users", "orders"] {
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(name)
                .fetch_optional(&mut connection)
                .await
                .map_err(|e| e.to_string())?;
        if exists.is_none() {
            sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\" OWNER \"{owner}\""))
                .execute(&mut connection)
                .await
                .map_err(|e| format!("create database {name}: {e}"))?;
        }
    }
    Ok(Server { url: service_url })
}

/// Compose's `postgres://user:pw@postgres:5432/orders` with this machine's server.
pub(crate) fn local_database_url(compose_url: &str, server: &Server) -> Result<String, String> {
    let compose = Url::parse(compose_url).map_err(|e| format!("compose DATABASE_URL: {e}"))?;
    let mut url = server.url.clone();
    url.set_path(compose.path());
    Ok(url.to_string())
}

/// `url` without its password, for what is printed.
pub(crate) fn redact(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}
