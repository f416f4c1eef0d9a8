//! Sweeps: many seeds, on several jobs, each seed on a runtime of its own.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use tally_faults::Control;
use tally_sim::CrashModel;

use super::run::{RunOutcome, RunSpec, run};
use super::scenario::Scenario;
use super::twin::Twin;
use crate::runtime::run_seeded;

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
            .spec_with(seed, self.model, &self.controls, self.twin)
    }

    /// The command that replays `seed` of this sweep.
    pub fn reproduce(&self, seed: u64) -> String {
        reproduce_command(self.scenario, seed, self.model, &self.controls, self.twin)
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
                        let mut outcome = run_seeded(seed, run(&spec));
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
) -> String {
    let mut command = format!("cargo sim replay --seed {seed} --scenario {scenario}");
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
