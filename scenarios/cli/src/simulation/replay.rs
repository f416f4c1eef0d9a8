//! `tally replay`: one run again, exactly, from its seed, a plan file or a scenario's small
//! form; optionally its whole trace, a determinism check, and a shrunk plan.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tally_harness::run::{RunOutcome, RunSpec};
use tally_harness::sweep::reproduce_command;
use tally_sim::CrashModel;

use super::choice::{RunChoice, replay_spec, shrink_failing, write_plan};
use crate::output::emit;

#[derive(Args)]
pub struct ReplayArgs {
    /// The seed to replay.
    #[arg(long, required_unless_present_any = ["plan", "small"])]
    seed: Option<u64>,
    #[command(flatten)]
    run: RunChoice,
    /// Replay a run written as JSON (a shrunk plan) instead of deriving it from a seed.
    #[arg(long, conflicts_with_all = ["seed", "model", "control", "twin", "small"])]
    plan: Option<PathBuf>,
    /// Run the scenario's small form (what `explore` and the snapshot tests use) under
    /// `--model` (default strict), without its exploration: `--trace` lists its calls.
    #[arg(long, conflicts_with_all = ["seed", "control", "twin"])]
    small: bool,
    /// Print every fs call, fault, acknowledgement, crash point, recovery action and
    /// violation.
    #[arg(long)]
    trace: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
    /// Run twice, each on a fresh runtime, and compare the digests of trace and final disk.
    #[arg(long)]
    check_determinism: bool,
    /// If the run fails, shrink it and write the minimal plan to this file.
    #[arg(long)]
    shrink: Option<PathBuf>,
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge reads the plan file"
)]
fn read_plan(path: &Path) -> anyhow::Result<RunSpec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a run plan", path.display()))
}

pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let (spec, reproduce) = chosen_spec(&args)?;
    let outcome = replay_spec(&spec);
    if args.json {
        let mut value = serde_json::to_value(&outcome)?;
        value["reproduce"] = serde_json::json!(reproduce);
        value["spec"] = serde_json::to_value(&spec)?;
        if args.trace {
            value["trace"] = serde_json::json!(outcome.trace);
        }
        emit(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
    } else {
        emit(&outcome_text(&outcome, args.trace))?;
    }
    let mut code = if outcome.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if args.check_determinism && !same_again(&spec, &outcome, args.json)? {
        code = ExitCode::FAILURE;
    }
    if !outcome.passed()
        && let Some(path) = &args.shrink
    {
        let shrunk = shrink_failing(&spec);
        write_plan(path, &shrunk)?;
        eprintln!(
            "shrunk in {} runs ({}): {}\nreplay it: cargo sim replay --plan {}",
            shrunk.runs,
            shrunk.steps.join("; "),
            shrunk.spec.plan,
            path.display()
        );
    }
    Ok(code)
}

/// The run to replay, and the command that replays it.
fn chosen_spec(args: &ReplayArgs) -> anyhow::Result<(RunSpec, String)> {
    if let Some(path) = &args.plan {
        return Ok((
            read_plan(path)?,
            format!("cargo sim replay --plan {}", path.display()),
        ));
    }
    let run = &args.run;
    if args.small {
        let model = run.model.unwrap_or(CrashModel::Strict);
        return Ok((
            run.scenario.small(model),
            format!(
                "cargo sim replay --small --scenario {} --model {model}",
                run.scenario
            ),
        ));
    }
    let seed = args.seed.context("--seed, --plan or --small is required")?;
    Ok((
        run.scenario
            .spec_with(seed, run.model, &run.control, run.twin, !run.no_swarm),
        reproduce_command(
            run.scenario,
            seed,
            run.model,
            &run.control,
            run.twin,
            !run.no_swarm,
        ),
    ))
}

/// The outcome as text: the trace's first lines (they name the seed and every parameter
/// derived from it) or all of it, the violations, the figures and the verdict.
fn outcome_text(outcome: &RunOutcome, trace: bool) -> String {
    let shown = if trace { outcome.trace.len() } else { 4 };
    let mut text = String::new();
    for line in outcome.trace.iter().take(shown) {
        text += line;
        text += "\n";
    }
    if !trace {
        for v in &outcome.violations {
            text += &format!("VIOLATION {v}\n");
        }
        if outcome.violation_count > outcome.violations.len() as u64 {
            text += &format!(
                "... {} more violations (--trace shows all)\n",
                outcome.violation_count - outcome.violations.len() as u64
            );
        }
    }
    text += &format!(
        "crash points checked: {}; plan's crash: {}; first lifetime error: {}; rows acknowledged: {}; highest level: {}\n",
        outcome.crash_points,
        outcome.crashed.as_deref().unwrap_or("did not fire"),
        outcome.workload_error.as_deref().unwrap_or("none"),
        outcome.rows_acknowledged,
        outcome.max_level,
    );
    text += &format!(
        "verdict: {} ({} violations)\ndigest: {}\n",
        if outcome.passed() { "PASS" } else { "FAIL" },
        outcome.violation_count,
        outcome.digest
    );
    text
}

/// Runs `spec` a second time on a fresh runtime and says whether trace and digest match.
fn same_again(spec: &RunSpec, outcome: &RunOutcome, json: bool) -> anyhow::Result<bool> {
    let again = replay_spec(spec);
    let same = again.digest == outcome.digest && again.trace == outcome.trace;
    let line = if same {
        format!("determinism: second run digest {} matches\n", again.digest)
    } else {
        let at = outcome
            .trace
            .iter()
            .zip(&again.trace)
            .position(|(a, b)| a != b)
            .unwrap_or(outcome.trace.len().min(again.trace.len()));
        format!(
            "NONDETERMINISTIC: digests {} and {}; traces differ from line {}:\n  first:  {}\n  second: {}\n",
            outcome.digest,
            again.digest,
            at + 1,
            outcome.trace.get(at).map_or("(end)", String::as_str),
            again.trace.get(at).map_or("(end)", String::as_str),
        )
    };
    if json {
        eprint!("{line}");
    } else {
        emit(&line)?;
    }
    Ok(same)
}
