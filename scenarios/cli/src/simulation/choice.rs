//! What the simulation commands share: the choice of what every seed runs, seed and shard
//! ranges, replaying a spec on a fresh runtime, and shrinking a failing one to a plan file.

use std::ops::Range;
use std::path::Path;

use anyhow::Context;
use clap::Args;
use tally_faults::Control;
use tally_harness::run::{RunOutcome, RunSpec, Violation};
use tally_harness::scenario::Scenario;
use tally_harness::shrink::{Shrunk, shrink};
use tally_harness::twin::Twin;
use tally_sim::CrashModel;

/// What every seed of a sweep or replay runs: the scenario and what overrides its seeds.
#[derive(Args)]
pub struct RunChoice {
    #[arg(long, default_value = "standard")]
    pub scenario: Scenario,
    /// Crash model of every seed, instead of one drawn per seed: strict, subset, prefix,
    /// torn-512, torn-4k (or torn), kill.
    #[arg(long)]
    pub model: Option<CrashModel>,
    /// Negative control applied to every seed (repeatable): lying-sync, lying-sync-dir,
    /// rename-before-data. A run under a control must fail.
    #[arg(long)]
    pub control: Vec<Control>,
    /// Run every seed as this buggy twin of the scenario (`tally scenarios` lists them). A
    /// run of a twin must fail.
    #[arg(long)]
    pub twin: Option<Twin>,
    /// Run every seed under the uniform profile instead of the swarm profile it draws (a
    /// random subset of fault kinds, crash triggers, crash models and workload features
    /// switched off, the rest skewed; docs/harness.md, "Swarm runs").
    #[arg(long)]
    pub no_swarm: bool,
}

pub fn parse_seeds(text: &str) -> Result<Range<u64>, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|e| format!("bad seed {s:?}: {e}"))
    };
    match text.split_once("..") {
        Some((start, end)) => {
            let (start, end) = (number(start)?, number(end)?);
            if start >= end {
                return Err(format!("empty seed range {text:?}: write A..B with A < B"));
            }
            Ok(start..end)
        }
        None => {
            let seed = number(text)?;
            Ok(seed..seed.checked_add(1).ok_or("seed too large")?)
        }
    }
}

/// `--shard`: a fixed `I/N`, or `auto`, read from the batch scheduler's environment when the
/// sweep starts ([`tally_harness::sweep::resolve_shard`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardChoice {
    Fixed(u64, u64),
    Auto,
}

pub fn parse_shard(text: &str) -> Result<ShardChoice, String> {
    if text.trim() == "auto" {
        return Ok(ShardChoice::Auto);
    }
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("bad shard {text:?}: write I/N, e.g. 3/8, or auto"))?;
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|e| format!("bad shard {text:?}: {e}"))
    };
    let (i, n) = (number(i)?, number(n)?);
    if n == 0 || i == 0 || i > n {
        return Err(format!("bad shard {text:?}: need 1 <= I <= N"));
    }
    Ok(ShardChoice::Fixed(i, n))
}

pub fn first_violation(outcome: &RunOutcome) -> String {
    outcome
        .violations
        .first()
        .map_or_else(String::new, Violation::to_string)
}

/// Runs `spec` on a fresh runtime: what `replay` does, and what shrinking repeats. A panic is
/// the run's verdict (`no-panic`), as in a sweep.
pub fn replay_spec(spec: &RunSpec) -> RunOutcome {
    tally_harness::run::run_guarded(spec)
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge writes the shrunk plan where the user asked"
)]
pub fn write_plan(path: &Path, shrunk: &Shrunk) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&shrunk.spec)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

pub fn shrink_failing(spec: &RunSpec) -> Shrunk {
    shrink(spec, 60, |candidate| !replay_spec(candidate).passed())
}
