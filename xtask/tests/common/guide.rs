//! The guide's Docker-only commands, as the Docker-less runner performs them: what compose
//! would run in its container, run on this machine against the runner instead.

use workshop::guide::{self, Block};
use xtask::compose::Compose;

/// A `docker compose run --rm [-e NAME=VALUE]... load FLAGS` line of the guide: the
/// variables set for the run and the flags given to load.
pub struct LoadRun {
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
}

impl LoadRun {
    pub fn parse(command: &str) -> Option<Self> {
        let mut words = command
            .strip_prefix("docker compose run --rm ")?
            .split_whitespace();
        let mut env = Vec::new();
        loop {
            match words.next()? {
                "-e" => {
                    let (name, value) = words.next()?.split_once('=')?;
                    env.push((name.to_owned(), value.to_owned()));
                }
                "load" => break,
                _ => return None,
            }
        }
        let args = words.map(str::to_owned).collect();
        Some(LoadRun { env, args })
    }

    /// The load binary with what compose's `load` service gives its container (its
    /// environment, its entrypoint's target), on this machine's addresses, the run's `-e`
    /// variables on top: a shell command line.
    pub fn local(&self, compose: &Compose, orders_port: u16, otlp_port: u16) -> String {
        let entrypoint = compose
            .command("load")
            .expect("compose's load has a command");
        assert!(
            entrypoint.starts_with(&["load".to_owned(), "--target=http://orders:8080".to_owned()]),
            "compose's load runs `load --target=http://orders:8080 ...`: {entrypoint:?}"
        );
        let mut env = compose.environment("load").unwrap();
        env.insert(
            "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            format!("http://127.0.0.1:{otlp_port}"),
        );
        env.remove("JAEGER_UI_URL");
        for (name, value) in &self.env {
            assert!(
                env.contains_key(name),
                "`-e {name}` sets a variable compose's load does not have"
            );
            env.insert(name.clone(), value.clone());
        }
        let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "env {} {} --target http://127.0.0.1:{orders_port} {}",
            vars.join(" "),
            testkit::binary("load").display(),
            self.args.join(" ")
        )
    }
}

/// The guide's command number `index` of `exercise` (its `sh` lines), as
/// docs/workshop.md writes it.
pub fn command(exercise: u32, index: usize) -> String {
    let blocks = guide::blocks(guide::GUIDE).unwrap();
    blocks
        .into_iter()
        .filter(|(n, _)| *n == exercise)
        .flat_map(|(_, block)| match block {
            Block::Sh(lines) => lines,
            Block::Console(_) => Vec::new(),
        })
        .nth(index)
        .unwrap_or_else(|| panic!("exercise {exercise} has a command {index}"))
}
