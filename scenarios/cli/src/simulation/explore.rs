//! `tally explore`: every persistence variant of every crash point of a scenario's small
//! workload, under one crash model or each in turn.

use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use tally_harness::run::{Images, Violation, run_with};
use tally_harness::runtime::run_seeded;
use tally_harness::scenario::Scenario;
use tally_sim::CrashModel;

use crate::output::emit;

#[derive(Args)]
pub struct ExploreArgs {
    #[arg(long, default_value = "standard")]
    scenario: Scenario,
    /// One crash model (default: every model in turn).
    #[arg(long)]
    model: Option<CrashModel>,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct ExploreLine {
    model: String,
    states: u64,
    failing_states: u64,
    seconds: f64,
    violations: Vec<Violation>,
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge reports wall-clock time"
)]
pub fn explore(args: ExploreArgs) -> anyhow::Result<ExitCode> {
    let models: Vec<CrashModel> = match args.model {
        Some(m) => vec![m],
        None => CrashModel::ALL.to_vec(),
    };
    if !args.json {
        emit(&format!(
            "tally explore: scenario {} (small workload), models {}\n",
            args.scenario,
            models
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))?;
    }
    let mut lines = Vec::new();
    let (mut total, mut failing) = (0u64, 0u64);
    let started = std::time::Instant::now();
    for model in models {
        let spec = args.scenario.small(model);
        let t = std::time::Instant::now();
        let outcome = run_seeded(spec.seed, run_with(&spec, Images::Exhaustive));
        let seconds = t.elapsed().as_secs_f64();
        total += outcome.crash_points;
        failing += outcome.violation_count;
        if !args.json {
            let mut text = format!(
                "{model}: {} states checked, {} failing ({:.0} states/s)\n",
                outcome.crash_points,
                outcome.violation_count,
                outcome.crash_points as f64 / seconds.max(1e-9)
            );
            for v in outcome.violations.iter().take(5) {
                text += &format!("  VIOLATION {v}\n");
            }
            emit(&text)?;
        }
        lines.push(ExploreLine {
            model: model.to_string(),
            states: outcome.crash_points,
            failing_states: outcome.violation_count,
            seconds,
            violations: outcome.violations,
        });
    }
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&lines)?))?;
    } else {
        emit(&format!(
            "{total} states checked, {failing} failing, in {seconds:.1} s ({:.0} states/s)\n",
            total as f64 / seconds.max(1e-9)
        ))?;
    }
    Ok(if failing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
