//! docker-compose.yml and .env, read as compose reads them: `${VAR}` and `${VAR:-default}`
//! taken from the shell first, then from `.env`; `$$` is a literal `$`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde_json::Value;

/// The workspace root (where docker-compose.yml lives).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

pub struct Compose {
    pub file: Value,
    pub dotenv: BTreeMap<String, String>,
}

impl Compose {
    pub fn load(root: &Path) -> Result<Self, String> {
        let path = root.join("docker-compose.yml");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
        let file: Value =
            serde_saphyr::from_str(&text).map_err(|e| format!("parse {}: {e}", path.display()))?;
        let dotenv = match std::fs::read_to_string(root.join(".env")) {
            Ok(text) => parse_dotenv(&text),
            Err(_) => BTreeMap::new(),
        };
        Ok(Self { file, dotenv })
    }

    pub fn service(&self, name: &str) -> Option<&Value> {
        self.file.get("services")?.get(name)
    }

    pub fn service_names(&self) -> Vec<String> {
        self.file
            .get("services")
            .and_then(Value::as_object)
            .map(|services| services.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// A service's `environment`, interpolated (mapping or `KEY=VALUE` list form).
    pub fn environment(&self, service: &str) -> Result<BTreeMap<String, String>, String> {
        let raw = self
            .service(service)
            .ok_or_else(|| format!("no service {service} in docker-compose.yml"))?
            .get("environment");
        let pairs: Vec<(String, String)> = match raw {
            None => Vec::new(),
            Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(|item| match item.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (item.to_owned(), String::new()),
                })
                .collect(),
            Some(other) => return Err(format!("{service}.environment: unexpected {other}")),
        };
        pairs
            .into_iter()
            .map(|(k, v)| Ok((k, self.interpolate(&v)?)))
            .collect()
    }

    /// What a service's container runs: its `entrypoint` then its `command` (list forms;
    /// the image sets neither), interpolated.
    pub fn command(&self, service: &str) -> Result<Vec<String>, String> {
        let list = |key: &str| -> Result<Vec<String>, String> {
            match self.service(service).and_then(|s| s.get(key)) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|arg| self.interpolate(&scalar(arg)))
                    .collect(),
                Some(_) => Err(format!(
                    "{service}: {key} is not a list in docker-compose.yml"
                )),
            }
        };
        let argv = [list("entrypoint")?, list("command")?].concat();
        match argv.is_empty() {
            true => Err(format!(
                "{service}: no entrypoint or command in docker-compose.yml"
            )),
            false => Ok(argv),
        }
    }

    pub fn interpolate(&self, value: &str) -> Result<String, String> {
        interpolate(value, |name| {
            std::env::var(name)
                .ok()
                .or_else(|| self.dotenv.get(name).cloned())
        })
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn parse_dotenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

pub fn interpolate(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(after) = rest.strip_prefix('{') {
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {value:?}"))?;
            let expr = &after[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            match (lookup(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(format!("{name} is not set (in {value:?})")),
            }
            rest = &after[end + 1..];
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            out.push_str(&lookup(name).ok_or_else(|| format!("{name} is not set"))?);
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_follows_compose() {
        let lookup = |name: &str| (name == "USER").then(|| "workshop".to_owned());
        assert_eq!(
            interpolate("postgres://${USER}@db", lookup).unwrap(),
            "postgres://workshop@db"
        );
        assert_eq!(interpolate("$USER/x", lookup).unwrap(), "workshop/x");
        assert_eq!(interpolate("${MISSING:-dflt}", lookup).unwrap(), "dflt");
        assert_eq!(interpolate("$${USER}", lookup).unwrap(), "${USER}");
        assert!(interpolate("${MISSING}", lookup).is_err());
    }
}
