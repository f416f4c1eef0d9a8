//! `tally sweep`, `tally replay` and `tally explore`.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use tally_faults::Control;
use tally_harness::run::{Images, RunOutcome, RunSpec, Violation, run, run_with};
use tally_harness::runtime::run_seeded;
use tally_harness::scenario::Scenario;
use tally_harness::shrink::{Shrunk, shrink};
use tally_harness::sweep::{Sweep, reproduce_command, shard_seeds};
use tally_harness::twin::Twin;
use tally_sim::CrashModel;

use crate::output::{emit, progress_bar};

/// What every seed of a sweep or replay runs: the scenario and what overrides its seeds.
#[derive(Args)]
struct RunChoice {
    #[arg(long, default_value = "standard")]
    scenario: Scenario,
    /// Crash model of every seed, instead of one drawn per seed: strict, subset, prefix,
    /// torn-512, torn-4k (or torn), kill.
    #[arg(long)]
    model: Option<CrashModel>,
    /// Negative control applied to every seed (repeatable): lying-sync, lying-sync-dir,
    /// rename-before-data. A run under a control must fail.
    #[arg(long)]
    control: Vec<Control>,
    /// Run every seed as this buggy twin of the scenario (`tally scenarios` lists them). A
    /// run of a twin must fail.
    #[arg(long)]
    twin: Option<Twin>,
}

#[derive(Args)]
pub struct SweepArgs {
    #[command(flatten)]
    run: RunChoice,
    /// Seeds to run, as `A..B` (B excluded) or a single seed.
    #[arg(long, default_value = "0..300", value_parser = parse_seeds)]
    seeds: Range<u64>,
    /// Seeds run at once, each on a runtime of its own (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only shard I of N (1-based): the seeds with `seed % N == I - 1`.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Failing seeds to shrink to a minimal plan (0: none).
    #[arg(long, default_value_t = 1)]
    shrink: usize,
    /// Where shrunk plans are written.
    #[arg(long, default_value = "tally-shrunk")]
    shrink_dir: PathBuf,
}

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

fn parse_seeds(text: &str) -> Result<Range<u64>, String> {
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

fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("bad shard {text:?}: write I/N, e.g. 3/8"))?;
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|e| format!("bad shard {text:?}: {e}"))
    };
    let (i, n) = (number(i)?, number(n)?);
    if n == 0 || i == 0 || i > n {
        return Err(format!("bad shard {text:?}: need 1 <= I <= N"));
    }
    Ok((i, n))
}

fn first_violation(outcome: &RunOutcome) -> String {
    outcome
        .violations
        .first()
        .map_or_else(String::new, Violation::to_string)
}

/// Runs `spec` on a fresh runtime: what `replay` does, and what shrinking repeats.
fn replay_spec(spec: &RunSpec) -> RunOutcome {
    run_seeded(spec.seed, run(spec))
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge writes the shrunk plan where the user asked"
)]
fn write_plan(path: &Path, shrunk: &Shrunk) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&shrunk.spec)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

fn shrink_failing(spec: &RunSpec) -> Shrunk {
    shrink(spec, 60, |candidate| !replay_spec(candidate).passed())
}

#[derive(Serialize)]
struct SweepReport {
    scenario: String,
    seeds: String,
    shard: Option<String>,
    jobs: usize,
    model: Option<String>,
    controls: Vec<Control>,
    twin: Option<String>,
    seeds_run: u64,
    crash_points: u64,
    failing_seeds: u64,
    seconds: f64,
    failures: Vec<FailureReport>,
    /// Every seed's verdict and digest.
    outcomes: Vec<SeedLine>,
}

#[derive(Serialize)]
struct FailureReport {
    #[serde(flatten)]
    outcome: RunOutcome,
    reproduce: String,
    shrunk_plan: Option<String>,
}

#[derive(Serialize)]
struct SeedLine {
    seed: u64,
    passed: bool,
    crash_points: u64,
    digest: String,
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge reports wall-clock time and writes the report file"
)]
pub fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let seeds = shard_seeds(args.seeds.clone(), args.shard);
    let sweep = Sweep {
        scenario: args.run.scenario,
        seeds,
        jobs,
        model: args.run.model,
        controls: args.run.control.clone(),
        twin: args.run.twin,
    };
    let controls = if sweep.controls.is_empty() {
        "none".to_owned()
    } else {
        sweep
            .controls
            .iter()
            .map(Control::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let shard = args.shard.map(|(i, n)| format!("{i}/{n}"));
    emit(&format!(
        "tally sweep: scenario {} seeds {}..{}{} ({} seeds) jobs {jobs} model {} controls {controls}{}\n",
        sweep.scenario,
        args.seeds.start,
        args.seeds.end,
        shard
            .as_deref()
            .map(|s| format!(" shard {s}"))
            .unwrap_or_default(),
        sweep.seeds.len(),
        args.run
            .model
            .map_or("per seed".to_owned(), |m| m.to_string()),
        sweep
            .twin
            .map(|t| format!(" twin {t} ({})", t.describe()))
            .unwrap_or_default(),
    ))?;
    let bar = progress_bar(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} seeds ({per_sec}) {msg}",
        Some(sweep.seeds.len() as u64),
        false,
    );
    let started = std::time::Instant::now();
    let (mut failing, mut points) = (0u64, 0u64);
    let outcomes = sweep.run(|outcome| {
        points += outcome.crash_points;
        if !outcome.passed() {
            failing += 1;
            bar.println(format!(
                "FAIL seed {}: {}",
                outcome.seed,
                first_violation(outcome)
            ));
        }
        bar.set_message(format!("{failing} failing, {points} crash points"));
        bar.inc(1);
    });
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let seeds_run = outcomes.len() as u64;
    let mut text = format!(
        "{seeds_run} seeds, {points} crash points checked, {failing} failing seeds in {seconds:.1} s ({:.2} seeds/s, {:.0} crash points/s)\n",
        seeds_run as f64 / seconds.max(1e-9),
        points as f64 / seconds.max(1e-9),
    );
    let mut failures = Vec::new();
    for outcome in outcomes.iter().filter(|o| !o.passed()) {
        let reproduce = sweep.reproduce(outcome.seed);
        text += &format!(
            "FAIL seed {} (model {}, {} violations): {}\n  reproduce: {reproduce}\n",
            outcome.seed,
            outcome.model,
            outcome.violation_count,
            first_violation(outcome),
        );
        let mut shrunk_plan = None;
        if failures.len() < args.shrink {
            let shrunk = shrink_failing(&sweep.spec(outcome.seed));
            let path = args
                .shrink_dir
                .join(format!("{}-seed-{}.json", sweep.scenario, outcome.seed));
            write_plan(&path, &shrunk)?;
            text += &format!(
                "  shrunk in {} runs ({}): {}\n  replay it: cargo sim replay --plan {}\n",
                shrunk.runs,
                if shrunk.steps.is_empty() {
                    "nothing could be removed".to_owned()
                } else {
                    shrunk.steps.join("; ")
                },
                shrunk.spec.plan,
                path.display()
            );
            shrunk_plan = Some(path.display().to_string());
        }
        failures.push(FailureReport {
            outcome: outcome.clone(),
            reproduce,
            shrunk_plan,
        });
    }
    emit(&text)?;
    if let Some(path) = &args.json {
        let report = SweepReport {
            scenario: sweep.scenario.to_string(),
            seeds: format!("{}..{}", args.seeds.start, args.seeds.end),
            shard,
            jobs,
            model: args.run.model.map(|m| m.to_string()),
            controls: sweep.controls.clone(),
            twin: sweep.twin.map(|t| t.to_string()),
            seeds_run,
            crash_points: points,
            failing_seeds: failing,
            seconds,
            failures,
            outcomes: outcomes
                .iter()
                .map(|o| SeedLine {
                    seed: o.seed,
                    passed: o.passed(),
                    crash_points: o.crash_points,
                    digest: o.digest.clone(),
                })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if failing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
    let (spec, reproduce) = match &args.plan {
        Some(path) => (
            read_plan(path)?,
            format!("cargo sim replay --plan {}", path.display()),
        ),
        None if args.small => {
            let (scenario, model) = (
                args.run.scenario,
                args.run.model.unwrap_or(CrashModel::Strict),
            );
            (
                scenario.small(model),
                format!("cargo sim replay --small --scenario {scenario} --model {model}"),
            )
        }
        None => {
            let seed = args.seed.context("--seed, --plan or --small is required")?;
            let run = &args.run;
            (
                run.scenario
                    .spec_with(seed, run.model, &run.control, run.twin),
                reproduce_command(run.scenario, seed, run.model, &run.control, run.twin),
            )
        }
    };
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
        // The trace's first lines name the seed and every parameter derived from it.
        let shown = if args.trace { outcome.trace.len() } else { 3 };
        let mut text = String::new();
        for line in outcome.trace.iter().take(shown) {
            text += line;
            text += "\n";
        }
        if !args.trace {
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
        emit(&text)?;
    }
    let mut code = if outcome.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if args.check_determinism {
        let again = replay_spec(&spec);
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
            code = ExitCode::FAILURE;
            format!(
                "NONDETERMINISTIC: digests {} and {}; traces differ from line {}:\n  first:  {}\n  second: {}\n",
                outcome.digest,
                again.digest,
                at + 1,
                outcome.trace.get(at).map_or("(end)", String::as_str),
                again.trace.get(at).map_or("(end)", String::as_str),
            )
        };
        if args.json {
            eprint!("{line}");
        } else {
            emit(&line)?;
        }
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
