//! Sweeps: many seeds, on several jobs, each seed on a runtime of its own.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use tally_faults::Control;
use tally_sim::CrashModel;

use super::run::{RunOutcome, RunSpec, run_guarded};
use super::scenario::Scenario;
use super::twin::Twin;

/// What a sweep runs.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub scenario: Scenario,
    pub seeds: Vec<u64>,
    pub jobs: usize,
    /// Overrides the crash model each seed would draw.
    pub model: Option<CrashModel>,
    /// Negative controls applied to every seed.
    pub controls: Vec<Control>,
    /// The buggy twin every seed runs as, if any.
    pub twin: Option<Twin>,
    /// Every seed runs under its swarm profile (`crate::swarm`); otherwise uniform.
    pub swarm: bool,
}

/// The seeds of `range` in shard `index` of `count` (1-based): every `count`-th seed, so
/// that shards get equal shares of any range.
pub fn shard_seeds(range: Range<u64>, shard: Option<(u64, u64)>) -> Vec<u64> {
    match shard {
        None => range.collect(),
        Some((index, count)) => range.filter(|seed| seed % count == index - 1).collect(),
    }
}

impl Sweep {
    pub fn spec(&self, seed: u64) -> RunSpec {
        self.scenario
            .spec_with(seed, self.model, &self.controls, self.twin, self.swarm)
    }

    /// The command that replays `seed` of this sweep.
    pub fn reproduce(&self, seed: u64) -> String {
        reproduce_command(
            self.scenario,
            seed,
            self.model,
            &self.controls,
            self.twin,
            self.swarm,
        )
    }

    /// Runs every seed, `jobs` at a time; `each` sees every outcome as it arrives (in
    /// completion order). Returns the outcomes in seed order, without their traces.
    #[allow(
        clippy::disallowed_methods,
        reason = "one worker thread per job; each run gets its own seeded runtime"
    )]
    pub fn run(&self, mut each: impl FnMut(&RunOutcome)) -> Vec<RunOutcome> {
        let next = AtomicUsize::new(0);
        let (send, receive) = mpsc::channel::<RunOutcome>();
        let mut outcomes = Vec::with_capacity(self.seeds.len());
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.max(1) {
                let send = send.clone();
                let next = &next;
                scope.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&seed) = self.seeds.get(i) else {
                            return;
                        };
                        let spec = self.spec(seed);
                        let mut outcome = run_guarded(&spec);
                        outcome.trace = Vec::new();
                        if send.send(outcome).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(send);
            for outcome in receive {
                each(&outcome);
                outcomes.push(outcome);
            }
        });
        outcomes.sort_by_key(|o| o.seed);
        outcomes
    }
}

/// The command line that replays one seed.
pub fn reproduce_command(
    scenario: Scenario,
    seed: u64,
    model: Option<CrashModel>,
    controls: &[Control],
    twin: Option<Twin>,
    swarm: bool,
) -> String {
    let mut command = format!("cargo sim replay --seed {seed} --scenario {scenario}");
    if !swarm {
        command.push_str(" --no-swarm");
    }
    if let Some(model) = model {
        command.push_str(&format!(" --model {model}"));
    }
    for control in controls {
        command.push_str(&format!(" --control {control}"));
    }
    if let Some(twin) = twin {
        command.push_str(&format!(" --twin {twin}"));
    }
    command
}

/// Whether `seed` is one a doublecheck at fraction `p` reruns: a hash of the seed below `p`
/// of the hash range, so the set depends on the seed alone (not on the range, the shard or
/// the order of completion) and a shard reruns exactly its part of the whole sweep's set.
pub fn doublechecked(seed: u64, p: f64) -> bool {
    if p >= 1.0 {
        return true;
    }
    // splitmix64's finalizer: consecutive seeds land far apart, so a range's share is close
    // to p.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    #[allow(
        clippy::cast_precision_loss,
        reason = "a fraction of the hash range; 53 bits of it are plenty"
    )]
    let fraction = z as f64 / u64::MAX as f64;
    fraction < p
}

/// A seed whose rerun in the same process did not reproduce its first run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    pub seed: u64,
    pub digest: String,
    pub rerun_digest: String,
    pub passed: bool,
    pub rerun_passed: bool,
}

/// The seeds of `reruns` whose digest or verdict differs from their first run in `first`
/// (sorted by seed, as [`Sweep::run`] returns them). A rerun of a seed `first` lacks is a
/// mismatch too (against an empty digest): it cannot have reproduced anything.
pub fn doublecheck_mismatches(first: &[RunOutcome], reruns: &[RunOutcome]) -> Vec<Mismatch> {
    reruns
        .iter()
        .filter_map(|rerun| {
            let before = first
                .binary_search_by_key(&rerun.seed, |o| o.seed)
                .ok()
                .map(|i| &first[i]);
            let (digest, passed) =
                before.map_or((String::new(), false), |o| (o.digest.clone(), o.passed()));
            (digest != rerun.digest || passed != rerun.passed()).then(|| Mismatch {
                seed: rerun.seed,
                digest,
                rerun_digest: rerun.digest.clone(),
                passed,
                rerun_passed: rerun.passed(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doublecheck_picks_a_fraction_near_p_and_every_seed_at_one() {
        let picked = (0..100_000).filter(|&s| doublechecked(s, 0.02)).count();
        assert!((1_800..2_200).contains(&picked), "{picked}");
        assert_eq!((0..1000).filter(|&s| doublechecked(s, 0.0)).count(), 0);
        assert_eq!((0..1000).filter(|&s| doublechecked(s, 1.0)).count(), 1000);
    }

    fn outcome(seed: u64, digest: &str, violations: u64) -> RunOutcome {
        RunOutcome {
            scenario: "standard".to_owned(),
            seed,
            model: "strict".to_owned(),
            plan: String::new(),
            crash_points: 10,
            crashed: None,
            workload_error: None,
            rows_acknowledged: 0,
            max_level: 0,
            violations: Vec::new(),
            violation_count: violations,
            digest: digest.to_owned(),
            probes: Default::default(),
            trace: Vec::new(),
        }
    }

    #[test]
    fn a_rerun_with_another_digest_or_verdict_is_a_mismatch_naming_both_digests() {
        let first = [
            outcome(1, "aa", 0),
            outcome(2, "bb", 0),
            outcome(3, "cc", 1),
        ];
        let same = [outcome(2, "bb", 0), outcome(3, "cc", 1)];
        assert!(doublecheck_mismatches(&first, &same).is_empty());
        let reruns = [
            outcome(1, "aa", 0),
            outcome(2, "b2", 0),
            outcome(3, "cc", 0),
        ];
        let found = doublecheck_mismatches(&first, &reruns);
        assert_eq!(found.iter().map(|m| m.seed).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(
            (found[0].digest.as_str(), found[0].rerun_digest.as_str()),
            ("bb", "b2")
        );
        assert!(!found[1].passed && found[1].rerun_passed);
        let missing = doublecheck_mismatches(&first, &[outcome(9, "zz", 0)]);
        assert_eq!(missing[0].digest, "");
    }
}
