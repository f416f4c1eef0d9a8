//! The simulator's sections (simulation build): sweep speed on one and two jobs, exhaustive
//! exploration speed, and what a crash point costs, part by part.
//!
//! The breakdown runs the same seeds once per depth of [`Depth`] and once in full: each run
//! does the work of the one before it plus one more part, so the differences, divided by the
//! crash points, are what each part costs. Wall time is read outside the simulated runtime
//! (inside it, madsim's clock is virtual).

use serde::{Deserialize, Serialize};

#[cfg(madsim)]
pub use measure::measure;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepSpeed {
    pub jobs: usize,
    pub seeds: u64,
    pub crash_points: u64,
    pub seconds: f64,
    pub seeds_per_second: f64,
    pub crash_points_per_second: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExploreSpeed {
    pub states: u64,
    pub seconds: f64,
    pub states_per_second: f64,
}

/// Microseconds per crash point, by part (one job).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Breakdown {
    pub seeds: u64,
    pub crash_points: u64,
    /// Running the workload itself (both lifetimes, tracing every call), spread over its
    /// crash points.
    pub workload_us: f64,
    /// Copying the disk.
    pub clone_us: f64,
    /// Applying the crash model to the copy.
    pub crash_image_us: f64,
    /// Opening the pipeline on the image: recovery.
    pub recovery_us: f64,
    /// The oracle: reading every row, the ledger, levels, the store check, a second recovery
    /// and its idempotence.
    pub oracle_us: f64,
    pub total_us: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Simulator {
    pub scenario: String,
    pub jobs1: SweepSpeed,
    pub jobs2: SweepSpeed,
    pub explore: ExploreSpeed,
    pub breakdown: Breakdown,
}

#[cfg(madsim)]
mod measure {
    use std::time::Instant;

    use anyhow::bail;
    use tally_scenarios::harness::run::{Depth, Images, run_with};
    use tally_scenarios::harness::scenario::Scenario;
    use tally_scenarios::harness::sweep::Sweep;
    use tally_scenarios::runtime::run_seeded;
    use tally_sim::CrashModel;

    use super::{Breakdown, ExploreSpeed, Simulator, SweepSpeed};

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
}
