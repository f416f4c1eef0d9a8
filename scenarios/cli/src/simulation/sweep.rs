//! `tally sweep`: many seeds of a scenario, a verdict per seed, a reproduce command and a
//! shrunk plan for failures, a JSON report.

use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use tally_faults::Control;
use tally_harness::coverage::CoverageReport;
use tally_harness::run::RunOutcome;
use tally_harness::shard::resolve_shard;
use tally_harness::sweep::{Mismatch, Sweep, doublecheck_mismatches, doublechecked, shard_seeds};

use super::choice::{
    RunChoice, ShardChoice, first_violation, parse_seeds, parse_shard, shrink_failing, write_plan,
};
use crate::output::{emit, progress_bar};

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
    /// Run only shard I of N (1-based): the seeds with `seed % N == I - 1`. `auto` reads I
    /// and N from the batch scheduler (Kubernetes indexed Job, Slurm array job, or
    /// TALLY_SHARD_INDEX/TALLY_SHARD_COUNT, 0-based; docs/harness.md, "Fleet sweeps").
    #[arg(long, value_parser = parse_shard)]
    shard: Option<ShardChoice>,
    /// After the other seeds, rerun this fraction of them (picked by a hash of the seed) in
    /// the same process and compare digests: a mismatch fails the sweep.
    #[arg(long, default_value_t = 0.02, value_parser = parse_fraction)]
    doublecheck: f64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Failing seeds to shrink to a minimal plan (0: none).
    #[arg(long, default_value_t = 1)]
    shrink: usize,
    /// Where shrunk plans are written.
    #[arg(long, default_value = "tally-shrunk")]
    shrink_dir: PathBuf,
    /// Fail when a coverage probe the scenario declares was never hit.
    #[arg(long)]
    require_coverage: bool,
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
    /// Whether seeds ran under their swarm profiles (`--no-swarm`: false).
    swarm: bool,
    seeds_run: u64,
    crash_points: u64,
    failing_seeds: u64,
    seconds: f64,
    failures: Vec<FailureReport>,
    coverage: CoverageReport,
    doublecheck: DoublecheckReport,
    /// Every seed's verdict and digest.
    outcomes: Vec<SeedLine>,
}

#[derive(Serialize)]
struct DoublecheckReport {
    p: f64,
    rerun: u64,
    seconds: f64,
    mismatches: Vec<MismatchReport>,
}

#[derive(Serialize)]
struct MismatchReport {
    #[serde(flatten)]
    mismatch: Mismatch,
    reproduce: String,
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

/// What the seeds of a sweep came to.
struct Tally {
    outcomes: Vec<RunOutcome>,
    failing: u64,
    points: u64,
    seconds: f64,
}

pub fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let shard = resolved_shard(args.shard)?;
    let sweep = Sweep {
        scenario: args.run.scenario,
        seeds: shard_seeds(args.seeds.clone(), shard.as_ref().map(|s| s.0)),
        jobs,
        model: args.run.model,
        controls: args.run.control.clone(),
        twin: args.run.twin,
        swarm: !args.run.no_swarm,
    };
    emit(&header(&args, &sweep, shard.as_ref()))?;
    let tally = run_with_progress(&sweep);
    let seeds_run = tally.outcomes.len() as u64;
    let mut text = format!(
        "{seeds_run} seeds, {} crash points checked, {} failing seeds in {:.1} s ({:.2} seeds/s, {:.0} crash points/s)\n",
        tally.points,
        tally.failing,
        tally.seconds,
        seeds_run as f64 / tally.seconds.max(1e-9),
        tally.points as f64 / tally.seconds.max(1e-9),
    );
    let failures = report_failures(&args, &sweep, &tally.outcomes, &mut text)?;
    let coverage = CoverageReport::of(
        tally_harness::declared::probes(sweep.scenario),
        tally.outcomes.iter().map(|o| &o.probes),
    );
    text += &coverage.text(tally.outcomes.len());
    let uncovered = args.require_coverage && !coverage.missed.is_empty();
    if uncovered {
        text += "FAIL: --require-coverage, and declared probes were never hit (listed above)\n";
    }
    let doublecheck = run_doublecheck(args.doublecheck, &sweep, &tally.outcomes, &mut text);
    emit(&text)?;
    let passed = tally.failing == 0 && doublecheck.mismatches.is_empty();
    let shard_text = shard.map(|s| format!("{}/{}", s.0.0, s.0.1));
    if let Some(path) = &args.json {
        write_report(
            path,
            &args,
            &sweep,
            shard_text,
            &tally,
            failures,
            (coverage, doublecheck),
        )?;
    }
    Ok(if passed && !uncovered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("bad fraction {text:?}: need 0 <= P <= 1")),
    }
}

/// The shard to run, `--shard auto` resolved from the environment, with what it was read
/// from (empty for a fixed one).
fn resolved_shard(choice: Option<ShardChoice>) -> anyhow::Result<Option<((u64, u64), String)>> {
    Ok(match choice {
        None => None,
        Some(ShardChoice::Fixed(i, n)) => Some(((i, n), String::new())),
        Some(ShardChoice::Auto) => {
            let auto = resolve_shard(|name| std::env::var(name).ok())?;
            Some(((auto.index, auto.count), auto.source))
        }
    })
}

/// Reruns the seeds `p` picks, after every other seed, and compares them with their first
/// run: a seed whose digest differs depends on more than its seed (state another run left in
/// the process, a thread race, the wall clock), and none of its verdicts can be trusted.
#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge reports wall-clock time"
)]
fn run_doublecheck(
    p: f64,
    sweep: &Sweep,
    outcomes: &[RunOutcome],
    text: &mut String,
) -> DoublecheckReport {
    let started = std::time::Instant::now();
    let rerun = Sweep {
        seeds: sweep
            .seeds
            .iter()
            .copied()
            .filter(|&seed| doublechecked(seed, p))
            .collect(),
        ..sweep.clone()
    };
    let reruns = rerun.run(|_| {});
    let mismatches: Vec<MismatchReport> = doublecheck_mismatches(outcomes, &reruns)
        .into_iter()
        .map(|mismatch| MismatchReport {
            reproduce: sweep.reproduce(mismatch.seed),
            mismatch,
        })
        .collect();
    let seconds = started.elapsed().as_secs_f64();
    *text += &format!(
        "doublecheck: reran {} of {} seeds (p {p}) in {seconds:.1} s, {} mismatches\n",
        reruns.len(),
        sweep.seeds.len(),
        mismatches.len()
    );
    for m in &mismatches {
        *text += &format!(
            "DOUBLECHECK MISMATCH seed {}: digest {} (passed {}), rerun {} (passed {})\n  reproduce: {}\n",
            m.mismatch.seed,
            m.mismatch.digest,
            m.mismatch.passed,
            m.mismatch.rerun_digest,
            m.mismatch.rerun_passed,
            m.reproduce
        );
    }
    DoublecheckReport {
        p,
        rerun: reruns.len() as u64,
        seconds,
        mismatches,
    }
}

/// The first line: what the sweep runs.
fn header(args: &SweepArgs, sweep: &Sweep, shard: Option<&((u64, u64), String)>) -> String {
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
    format!(
        "tally sweep: scenario {} seeds {}..{}{} ({} seeds) jobs {} model {} controls {controls}{}\n",
        sweep.scenario,
        args.seeds.start,
        args.seeds.end,
        shard
            .map(|((i, n), source)| match source.as_str() {
                "" => format!(" shard {i}/{n}"),
                source => format!(" shard {i}/{n} (auto: {source})"),
            })
            .unwrap_or_default(),
        sweep.seeds.len(),
        sweep.jobs,
        args.run
            .model
            .map_or("per seed".to_owned(), |m| m.to_string()),
        sweep
            .twin
            .map(|t| format!(" twin {t} ({})", t.describe()))
            .unwrap_or_default(),
    )
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge reports wall-clock time"
)]
fn run_with_progress(sweep: &Sweep) -> Tally {
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
    Tally {
        outcomes,
        failing,
        points,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Adds each failing seed's first violation and reproduce command to `text`, and shrinks
/// the first `--shrink` of them to plan files.
fn report_failures(
    args: &SweepArgs,
    sweep: &Sweep,
    outcomes: &[RunOutcome],
    text: &mut String,
) -> anyhow::Result<Vec<FailureReport>> {
    let mut failures = Vec::new();
    for outcome in outcomes.iter().filter(|o| !o.passed()) {
        let reproduce = sweep.reproduce(outcome.seed);
        let swarm = sweep
            .spec(outcome.seed)
            .swarm
            .unwrap_or_else(|| "off (uniform profile)".to_owned());
        *text += &format!(
            "FAIL seed {} (model {}, {} violations): {}\n  reproduce: {reproduce}\n  swarm: {swarm}\n",
            outcome.seed,
            outcome.model,
            outcome.violation_count,
            first_violation(outcome),
        );
        let shrunk_plan = if failures.len() < args.shrink {
            Some(shrink_seed(args, sweep, outcome.seed, text)?)
        } else {
            None
        };
        failures.push(FailureReport {
            outcome: outcome.clone(),
            reproduce,
            shrunk_plan,
        });
    }
    Ok(failures)
}

/// Shrinks a failing seed, writes its plan, says so in `text`; returns the plan's path.
fn shrink_seed(
    args: &SweepArgs,
    sweep: &Sweep,
    seed: u64,
    text: &mut String,
) -> anyhow::Result<String> {
    let shrunk = shrink_failing(&sweep.spec(seed));
    let path = args
        .shrink_dir
        .join(format!("{}-seed-{seed}.json", sweep.scenario));
    write_plan(&path, &shrunk)?;
    *text += &format!(
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
    Ok(path.display().to_string())
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge writes the report where the user asked"
)]
fn write_report(
    path: &std::path::Path,
    args: &SweepArgs,
    sweep: &Sweep,
    shard: Option<String>,
    tally: &Tally,
    failures: Vec<FailureReport>,
    (coverage, doublecheck): (CoverageReport, DoublecheckReport),
) -> anyhow::Result<()> {
    let report = SweepReport {
        scenario: sweep.scenario.to_string(),
        seeds: format!("{}..{}", args.seeds.start, args.seeds.end),
        shard,
        jobs: sweep.jobs,
        model: args.run.model.map(|m| m.to_string()),
        controls: sweep.controls.clone(),
        twin: sweep.twin.map(|t| t.to_string()),
        swarm: sweep.swarm,
        seeds_run: tally.outcomes.len() as u64,
        crash_points: tally.points,
        failing_seeds: tally.failing,
        seconds: tally.seconds,
        failures,
        coverage,
        doublecheck,
        outcomes: tally
            .outcomes
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
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
