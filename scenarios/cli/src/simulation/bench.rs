//! `tally bench` in the simulation build: the simulator's sections: sweep speed on one and two jobs, exhaustive
//! exploration speed, and what a crash point costs, part by part.
//!
//! The breakdown runs the same seeds once per depth of [`Depth`] and once in full: each run
//! does the work of the one before it plus one more part, so the differences, divided by the
//! crash points, are what each part costs. Wall time is read outside the simulated runtime
//! (inside it, madsim's clock is virtual).

use std::time::Instant;

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use tally_harness::run::{Depth, Images, run_with};
use tally_harness::runtime::run_seeded;
use tally_harness::scenario::Scenario;
use tally_harness::sweep::Sweep;
use tally_sim::CrashModel;

use crate::output::{emit, say};
use crate::simulator_figures::{Breakdown, ExploreSpeed, Simulator, SweepSpeed};

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

/// Every simulator section on `seeds` seeds of the `standard` scenario.
pub fn measure(seeds: u64, progress: impl Fn(&str)) -> anyhow::Result<Simulator> {
    let scenario = Scenario::Standard;
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
        jobs1,
        jobs2,
        explore,
        breakdown,
    })
}

#[derive(Args)]
pub struct BenchArgs {
    /// Seeds of the `standard` scenario per simulator sweep.
    #[arg(long, default_value_t = 100)]
    sim_seeds: u64,
    /// Print the figures as JSON (what the normal build's `tally bench --sim-binary` reads).
    #[arg(long)]
    json: bool,
}

pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let simulator = measure(args.sim_seeds, say)?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&simulator)?))?;
    } else {
        let (one, two) = (&simulator.jobs1, &simulator.jobs2);
        emit(&format!(
            "{}: {:.0} crash points/s on 1 job, {:.0} on 2; explore {:.0} states/s; {:.1} us per crash point\n",
            simulator.scenario,
            one.crash_points_per_second,
            two.crash_points_per_second,
            simulator.explore.states_per_second,
            simulator.breakdown.total_us
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
