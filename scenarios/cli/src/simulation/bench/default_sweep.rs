//! The default sweep as users run it: `tally sweep --json F` with no other argument (seeds
//! 0..300, one job per core, the default doublecheck), as a child process, several times.
//!
//! Each run's crash points/s is the sweep's own (its JSON's `crash_points / seconds`), so the
//! figure is what a user reads at the end of `cargo sim sweep`; the child's wall time, which
//! adds process start, the doublecheck and the report, is kept beside it. With a baseline
//! binary the runs alternate (current, baseline, current, ...), so that load from the rest of
//! the machine falls on both alike rather than on whichever ran second.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::simulator_figures::{Baseline, DefaultSweep, DefaultSweeps, SweepRun};

/// What to run: how many times, which seeds (`None`: the sweep's default), against what.
pub struct Plan<'a> {
    pub runs: usize,
    pub seeds: Option<&'a str>,
    pub baseline: Option<&'a Path>,
}

impl Plan<'_> {
    /// The arguments after `sweep --json F`: none for the default sweep.
    fn extra(&self) -> Vec<String> {
        self.seeds
            .map(|s| vec!["--seeds".to_owned(), s.to_owned()])
            .unwrap_or_default()
    }
}

/// One run as its sweep reported it, with the seeds and jobs it chose.
struct Measured {
    run: SweepRun,
    seeds: String,
    jobs: usize,
}

pub fn measure(plan: &Plan, progress: &impl Fn(&str)) -> anyhow::Result<DefaultSweeps> {
    #[allow(
        clippy::disallowed_methods,
        reason = "the benchmark runs its own binary as the sweep users run"
    )]
    let me = std::env::current_exe().context("finding this binary")?;
    let mut current = Vec::new();
    let mut baseline = Vec::new();
    for i in 0..plan.runs {
        progress(&format!("simulator: default sweep {}/{}", i + 1, plan.runs));
        current.push(run_once(&me, &plan.extra())?);
        if let Some(base) = plan.baseline {
            progress(&format!(
                "simulator: default sweep {}/{} of {}",
                i + 1,
                plan.runs,
                base.display()
            ));
            baseline.push(run_once(base, &plan.extra())?);
        }
    }
    let current = summarize(&me, &current)?;
    let baseline = match plan.baseline {
        Some(base) => Some(compare(&current, summarize(base, &baseline)?)),
        None => None,
    };
    let mut command = vec!["sweep".to_owned(), "--json".to_owned(), "F".to_owned()];
    command.extend(plan.extra());
    Ok(DefaultSweeps {
        command: command.join(" "),
        current,
        baseline,
    })
}

/// A report file of its own per run: two benchmarks on one machine must not share one.
#[allow(
    clippy::disallowed_methods,
    reason = "a scratch file for the child's report, named by this process"
)]
fn report_path() -> PathBuf {
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("tally-bench-sweep-{}-{n}.json", std::process::id()))
}

#[allow(
    clippy::disallowed_methods,
    reason = "a benchmark times a child process with the wall clock"
)]
fn run_once(binary: &Path, extra: &[String]) -> anyhow::Result<Measured> {
    let path = report_path();
    let started = Instant::now();
    // The sweep's text report goes nowhere: this process's stdout carries its own report.
    let status = Command::new(binary)
        .args(["sweep", "--json"])
        .arg(&path)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("running {}", binary.display()))?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} sweep exited {status} without its JSON report",
            binary.display()
        )
    })?;
    std::fs::remove_file(&path).ok();
    let report: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("reading the sweep report of {}", binary.display()))?;
    if !status.success() {
        bail!(
            "{} sweep failed while being timed ({status}; failing seeds: {})",
            binary.display(),
            report["failing_seeds"]
        );
    }
    parse(&report)
        .with_context(|| format!("the sweep report of {}", binary.display()))
        .map(|(run, seeds, jobs)| Measured {
            run: SweepRun {
                wall_seconds,
                ..run
            },
            seeds,
            jobs,
        })
}

/// The figures of a sweep's JSON report (wall time left at 0 for the caller).
fn parse(report: &serde_json::Value) -> anyhow::Result<(SweepRun, String, usize)> {
    let field = |key: &str| {
        report
            .get(key)
            .with_context(|| format!("no {key:?} in the sweep report"))
    };
    let crash_points = field("crash_points")?.as_u64().context("crash_points")?;
    let seconds = field("seconds")?.as_f64().context("seconds")?;
    let jobs = field("jobs")?.as_u64().context("jobs")? as usize;
    let seeds = field("seeds")?.as_str().context("seeds")?.to_owned();
    let run = SweepRun {
        crash_points,
        seconds,
        wall_seconds: 0.0,
        crash_points_per_second: crash_points as f64 / seconds.max(1e-9),
    };
    Ok((run, seeds, jobs))
}

/// The middle value (the mean of the two middle ones for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn summarize(binary: &Path, measured: &[Measured]) -> anyhow::Result<DefaultSweep> {
    let Some(first) = measured.first() else {
        bail!("no default sweep was run (--runs 0)");
    };
    let rates: Vec<f64> = measured
        .iter()
        .map(|m| m.run.crash_points_per_second)
        .collect();
    let walls: Vec<f64> = measured.iter().map(|m| m.run.wall_seconds).collect();
    let (min, max) = rates.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| {
        (lo.min(r), hi.max(r))
    });
    let middle = median(&rates);
    Ok(DefaultSweep {
        binary: binary.display().to_string(),
        seeds: first.seeds.clone(),
        jobs: first.jobs,
        runs: measured.iter().map(|m| m.run.clone()).collect(),
        median: middle,
        min,
        max,
        spread: (max - min) / middle.max(1e-9),
        median_per_core: middle / first.jobs.max(1) as f64,
        median_wall_seconds: median(&walls),
    })
}

/// The baseline beside the current binary. Different crash points mean the two binaries'
/// seeds drew different workloads: the ratio then compares rates over different work, which
/// the report must say rather than hide (and not fail on: an old binary is expected to differ).
pub fn compare(current: &DefaultSweep, baseline: DefaultSweep) -> Baseline {
    let points = |s: &DefaultSweep| s.runs.iter().map(|r| r.crash_points).collect::<Vec<_>>();
    let (ours, theirs) = (points(current), points(&baseline));
    let same_work = current.seeds == baseline.seeds
        && ours
            .iter()
            .chain(&theirs)
            .all(|&p| Some(&p) == ours.first());
    let note = if same_work {
        String::new()
    } else {
        let (a, b) = (
            ours.first().copied().unwrap_or(0),
            theirs.first().copied().unwrap_or(0),
        );
        format!(
            "they ran different work: the current binary checked {a} crash points on seeds {}, \
             the baseline {b} on seeds {} ({:+.1}%), so the ratio compares rates over \
             different workloads",
            current.seeds,
            baseline.seeds,
            100.0 * (a as f64 - b as f64) / (b as f64).max(1.0)
        )
    };
    let pair_ratios = current
        .runs
        .iter()
        .zip(&baseline.runs)
        .map(|(c, b)| c.crash_points_per_second / b.crash_points_per_second.max(1e-9))
        .collect();
    Baseline {
        ratio: current.median / baseline.median.max(1e-9),
        pair_ratios,
        wall_ratio: baseline.median_wall_seconds / current.median_wall_seconds.max(1e-9),
        same_work,
        note,
        sweep: baseline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(seeds: &str, points: &[u64], rates: &[f64]) -> DefaultSweep {
        let runs: Vec<SweepRun> = points
            .iter()
            .zip(rates)
            .map(|(&crash_points, &r)| SweepRun {
                crash_points,
                seconds: crash_points as f64 / r,
                wall_seconds: crash_points as f64 / r + 0.5,
                crash_points_per_second: r,
            })
            .collect();
        let m = median(rates);
        DefaultSweep {
            binary: "b".into(),
            seeds: seeds.into(),
            jobs: 2,
            median: m,
            min: 0.0,
            max: 0.0,
            spread: 0.0,
            median_per_core: m / 2.0,
            median_wall_seconds: median(&runs.iter().map(|r| r.wall_seconds).collect::<Vec<_>>()),
            runs,
        }
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn equal_crash_points_on_the_same_seeds_are_the_same_work() {
        let cur = sweep("0..300", &[100, 100], &[400.0, 420.0]);
        let base = sweep("0..300", &[100, 100], &[100.0, 100.0]);
        let b = compare(&cur, base);
        assert!(b.same_work && b.note.is_empty());
        assert!((b.ratio - 4.1).abs() < 1e-9, "{}", b.ratio);
        assert_eq!(b.pair_ratios, vec![4.0, 4.2]);
    }

    #[test]
    fn a_baseline_that_checked_other_crash_points_is_said_to_have_run_different_work() {
        let cur = sweep("0..300", &[112_330], &[4000.0]);
        let b = compare(&cur, sweep("0..300", &[110_884], &[700.0]));
        assert!(!b.same_work);
        assert!(
            b.note.contains("112330") && b.note.contains("110884"),
            "{}",
            b.note
        );
        // One of the current runs differing from the others is different work too.
        let uneven = sweep("0..300", &[100, 101], &[1.0, 1.0]);
        assert!(!compare(&uneven, sweep("0..300", &[100, 100], &[1.0, 1.0])).same_work);
    }
}
