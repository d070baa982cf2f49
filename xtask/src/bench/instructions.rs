//! `cargo xtask bench --instructions`: instructions per request, counted by callgrind.
//!
//! CPU time on this shared machine drifts by 20% from one run to the next, so a change of a
//! few percent hides in the noise. Callgrind counts the instructions a process executes,
//! which do not depend on what else the machine does: the same binaries and the same
//! requests give the same count to within a fraction of a percent. Each variant runs in
//! turn with both services under `valgrind --tool=callgrind`; after a warm-up and its
//! export the counters are zeroed, `load` sends requests at a low rate (callgrind slows a
//! service some fifty times), the services stop (flushing the last spans, which are part
//! of the cost) and the totals they write are divided by the answered requests. User space
//! only: the kernel's share (loopback TCP above all) is not counted, so the ratios here are
//! larger than the CPU-time ones. `callgrind_annotate` on the files in
//! `target/bench/callgrind/` shows where the instructions went.

use std::{fmt::Write as _, path::Path, time::Duration};

use super::{Kind, Options, Stack, VARIANTS};
use crate::{
    compose::Compose,
    database::{Database, prepare_database},
};

/// One variant's count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Count {
    pub(crate) variant: usize,
    pub(crate) answered: u64,
    /// Instructions of orders and users over the counted run.
    pub(crate) instructions: [u64; 2],
}

impl Count {
    fn per_request(&self) -> [f64; 2] {
        self.instructions
            .map(|n| n as f64 / self.answered.max(1) as f64)
    }
}

pub(crate) async fn measure(
    compose: &Compose,
    database: &Database,
    bin_dir: &Path,
    log_dir: &Path,
    options: &Options,
) -> Result<Vec<Count>, String> {
    let server = prepare_database(compose, database).await?;
    let out_dir = log_dir.join("callgrind");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let rate = options.instructions_rate;
    let mut counts = Vec::new();
    for (variant, v) in VARIANTS.iter().enumerate() {
        println!(
            "bench: callgrind: {} at {rate}/s for {:?}",
            v.name, options.instructions_duration
        );
        let extra = &options.service_env;
        let mut stack = Stack::start(
            variant,
            compose,
            &server,
            bin_dir,
            log_dir,
            extra,
            Some(&out_dir),
        )
        .await?;
        let warm_up = Duration::from_secs(3);
        stack.load(bin_dir, Kind::WarmUp, rate, warm_up).await?;
        // The warm-up's spans leave within one schedule delay; count from after them.
        tokio::time::sleep(stack.flush_delay).await;
        for pid in stack.pids {
            zero(pid).await?;
        }
        let duration = options.instructions_duration;
        let run = stack.load(bin_dir, Kind::Cpu, rate, duration).await?;
        let (answered, failed) = (run.completed, run.failed);
        if failed > 0 || answered == 0 {
            return Err(format!(
                "{}: {failed} requests failed, {answered} answered under callgrind",
                v.name
            ));
        }
        stack.shut_down().await?;
        let total = |service| totals(&out_file(&out_dir, variant, service));
        counts.push(Count {
            variant,
            answered,
            instructions: [total("orders")?, total("users")?],
        });
    }
    Ok(counts)
}

/// Where callgrind writes a service's counts when it exits; named by this process too, so
/// two runs at once (the test suite's, say) never read each other's counts.
pub(crate) fn out_file(dir: &Path, variant: usize, service: &str) -> std::path::PathBuf {
    let run = std::process::id();
    dir.join(format!("variant-{variant}-{service}.{run}.out"))
}

async fn zero(pid: u32) -> Result<(), String> {
    let output = tokio::process::Command::new("callgrind_control")
        .arg("--zero")
        .arg(pid.to_string())
        .output()
        .await
        .map_err(|e| format!("callgrind_control (valgrind's): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "callgrind_control --zero {pid}: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// The `totals:` line of a callgrind output file: instructions executed (Ir).
fn totals(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .find_map(|line| line.strip_prefix("totals:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("{}: no totals line", path.display()))
}

/// The printed table: instructions per answered request, and each variant against "SDK
/// disabled" (the last variant).
pub(crate) fn table(counts: &[Count]) -> String {
    let both = |c: &Count| c.per_request().iter().sum::<f64>();
    let baseline = counts
        .iter()
        .find(|c| c.variant == VARIANTS.len() - 1)
        .map(both);
    let mut t = String::from(
        "| variant | requests | orders instr. / request | users | both | vs SDK disabled |\n\
         |---|---|---|---|---|---|\n",
    );
    for count in counts {
        let [orders, users] = count.per_request();
        let ratio = match baseline {
            Some(b) if count.variant != VARIANTS.len() - 1 && b > 0.0 => {
                format!("{:+.1}%", (both(count) / b - 1.0) * 100.0)
            }
            _ => "(baseline)".to_owned(),
        };
        let _ = writeln!(
            t,
            "| {} | {} | {:.1}k | {:.1}k | {:.1}k | {ratio} |",
            VARIANTS[count.variant].name,
            count.answered,
            orders / 1000.0,
            users / 1000.0,
            both(count) / 1000.0,
        );
    }
    t
}
