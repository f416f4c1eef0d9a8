//! `tally bench` in the simulation build: the simulator's sections: the default sweep as users
//! run it (`default_sweep`, optionally beside a baseline binary), in-process sweep speed on one
//! and two jobs, exhaustive exploration speed, and what a crash point costs, part by part.
//!
//! The breakdown runs the same seeds once per depth of [`Depth`] and once in full: each run
//! does the work of the one before it plus one more part, so the differences, divided by the
//! crash points, are what each part costs. Wall time is read outside the simulated runtime
//! (inside it, madsim's clock is virtual).

mod default_sweep;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use clap::Args;
use tally_harness::run::{Depth, Images, run_with};
use tally_harness::runtime::run_seeded;
use tally_harness::scenario::Scenario;
use tally_harness::sweep::Sweep;
use tally_sim::CrashModel;

use crate::output::{emit, say};
use crate::simulator_figures::{Breakdown, DefaultSweep, ExploreSpeed, Simulator, SweepSpeed};

#[allow(
    clippy::disallowed_methods,
    reason = "a benchmark times sweeps from outside the simulated runtime"
)]
fn sweep(scenario: Scenario, seeds: u64, jobs: usize) -> anyhow::Result<SweepSpeed> {
    let sweep = Sweep {
        scenario,
        seeds: (0..seeds).collect(),
        jobs,
        model: None,
        controls: vec![],
        twin: None,
        swarm: true,
    };
    let started = Instant::now();
    let outcomes = sweep.run(|_| {});
    let seconds = started.elapsed().as_secs_f64();
    if let Some(failed) = outcomes.iter().find(|o| !o.passed()) {
        bail!(
            "seed {} of {scenario} failed while being timed: {}",
            failed.seed,
            sweep.reproduce(failed.seed)
        );
    }
    let crash_points = outcomes.iter().map(|o| o.crash_points).sum();
    Ok(SweepSpeed {
        jobs,
        seeds,
        crash_points,
        seconds,
        seeds_per_second: seeds as f64 / seconds,
        crash_points_per_second: crash_points as f64 / seconds,
    })
}

#[allow(
    clippy::disallowed_methods,
    reason = "a benchmark times runs from outside the simulated runtime"
)]
fn timed(scenario: Scenario, seeds: u64, images: Images) -> (f64, u64) {
    let started = Instant::now();
    let mut points = 0;
    for seed in 0..seeds {
        let spec = scenario.spec(seed, None, &[]);
        points += run_seeded(seed, run_with(&spec, images)).crash_points;
    }
    (started.elapsed().as_secs_f64(), points)
}

fn breakdown(scenario: Scenario, seeds: u64) -> Breakdown {
    let depths = [Depth::Count, Depth::Clone, Depth::Image, Depth::Recover];
    let mut seconds: Vec<f64> = depths
        .iter()
        .map(|&d| timed(scenario, seeds, Images::Measure(d)).0)
        .collect();
    let (full, points) = timed(scenario, seeds, Images::Sampled);
    seconds.push(full);
    let per = |s: f64| s * 1e6 / points.max(1) as f64;
    // Noise can make a later depth measure faster than an earlier one; a part never costs
    // less than nothing.
    let part = |i: usize| per((seconds[i] - seconds[i - 1]).max(0.0));
    Breakdown {
        seeds,
        crash_points: points,
        workload_us: per(seconds[0]),
        clone_us: part(1),
        crash_image_us: part(2),
        recovery_us: part(3),
        oracle_us: part(4),
        total_us: per(full),
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "a benchmark times exploration from outside the simulated runtime"
)]
fn explore(scenario: Scenario) -> anyhow::Result<ExploreSpeed> {
    let started = Instant::now();
    let mut states = 0;
    for model in CrashModel::ALL {
        let spec = scenario.small(model);
        let outcome = run_seeded(spec.seed, run_with(&spec, Images::Exhaustive));
        if !outcome.passed() {
            bail!("explore of {scenario} under {model} failed while being timed");
        }
        states += outcome.crash_points;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(ExploreSpeed {
        states,
        seconds,
        states_per_second: states as f64 / seconds,
    })
}

/// Every simulator section: the default sweep as `plan` says, the others on `seeds` seeds of
/// the `standard` scenario.
pub fn measure(
    seeds: u64,
    plan: &default_sweep::Plan,
    progress: impl Fn(&str),
) -> anyhow::Result<Simulator> {
    let scenario = Scenario::Standard;
    let default_sweep = default_sweep::measure(plan, &progress)?;
    progress("simulator: sweep, 1 job");
    let jobs1 = sweep(scenario, seeds, 1)?;
    progress("simulator: sweep, 2 jobs");
    let jobs2 = sweep(scenario, seeds, 2)?;
    progress("simulator: explore");
    let explore = explore(scenario)?;
    progress("simulator: cost per crash point");
    let breakdown = breakdown(scenario, seeds.div_ceil(2));
    Ok(Simulator {
        scenario: scenario.name().to_owned(),
        default_sweep,
        jobs1,
        jobs2,
        explore,
        breakdown,
    })
}

#[derive(Args)]
pub struct BenchArgs {
    /// Seeds of the `standard` scenario per in-process sweep (1 and 2 jobs) and, halved, of
    /// the cost breakdown.
    #[arg(long, default_value_t = 100)]
    sim_seeds: u64,
    /// Times the default sweep (`tally sweep` with no other argument) is run.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Another simulation build of `tally` (e.g. an older commit's) whose default sweep is run
    /// alternately with this one's, and compared.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Give the default sweep these seeds instead of its own (for tests: the figures are then
    /// not the default sweep's).
    #[arg(long, hide = true)]
    sweep_seeds: Option<String>,
    /// Print the figures as JSON (what the normal build's `tally bench --sim-binary` reads).
    #[arg(long)]
    json: bool,
}

pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let plan = default_sweep::Plan {
        runs: args.runs,
        seeds: args.sweep_seeds.as_deref(),
        baseline: args.baseline.as_deref(),
    };
    let simulator = measure(args.sim_seeds, &plan, say)?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&simulator)?))?;
    } else {
        emit(&summary(&simulator))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn rates(sweep: &DefaultSweep) -> String {
    let runs: Vec<String> = sweep
        .runs
        .iter()
        .map(|r| format!("{:.0}", r.crash_points_per_second))
        .collect();
    format!(
        "median {:.0} crash points/s on {} jobs ({:.0} per core; runs {}; spread {:.1}%; \
         median wall {:.1} s)",
        sweep.median,
        sweep.jobs,
        sweep.median_per_core,
        runs.join(", "),
        100.0 * sweep.spread,
        sweep.median_wall_seconds
    )
}

/// The text report: the default sweep first, as the headline.
fn summary(simulator: &Simulator) -> String {
    let d = &simulator.default_sweep;
    let mut text = format!(
        "{} default sweep (`{}`, seeds {}): {}\n",
        simulator.scenario,
        d.command,
        d.current.seeds,
        rates(&d.current)
    );
    if let Some(b) = &d.baseline {
        text += &format!(
            "baseline {}: {}\ncurrent / baseline: {:.2}x crash points/s, {:.2}x by wall time; run by run {}\n",
            b.sweep.binary,
            rates(&b.sweep),
            b.ratio,
            b.wall_ratio,
            b.pair_ratios
                .iter()
                .map(|r| format!("{r:.2}x"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !b.same_work {
            text += &format!("note: {}\n", b.note);
        }
    }
    let (one, two) = (&simulator.jobs1, &simulator.jobs2);
    text += &format!(
        "in process, seeds 0..{}: {:.0} crash points/s on 1 job, {:.0} on 2; explore {:.0} states/s; {:.1} us per crash point\n",
        one.seeds,
        one.crash_points_per_second,
        two.crash_points_per_second,
        simulator.explore.states_per_second,
        simulator.breakdown.total_us
    );
    text
}
