//! Named scenarios: a workload and a fault profile, both derived from a seed.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_faults::generate::{Profile, generate};
use tally_faults::{Control, Latency};
use tally_sim::CrashModel;

use super::run::RunSpec;
use super::workload::Workload;

/// A named scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// Concurrent ingest of a few sources, background staging and merging through at least two
    /// levels, a clean restart half the time, one crash, and injected errors, failing fsyncs,
    /// corrupted log reads and clock jumps.
    Standard,
}

impl Scenario {
    pub const ALL: [Scenario; 1] = [Scenario::Standard];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Standard => "standard",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Scenario::Standard => {
                "concurrent ingest, background staging and merges (two or more levels), restarts, one crash and injected I/O faults"
            }
        }
    }

    /// The run of `seed`: workload, crash model and fault plan, all drawn from the seed.
    /// `model` and `controls` override what the seed would choose.
    pub fn spec(self, seed: u64, model: Option<CrashModel>, controls: &[Control]) -> RunSpec {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let model =
            model.unwrap_or_else(|| CrashModel::ALL[rng.gen_range(0..CrashModel::ALL.len())]);
        let workload = Workload::standard(rng.r#gen());
        let parts: u64 = workload.sources.iter().map(|s| s.parts.len() as u64).sum();
        let profile = Profile {
            expected_calls: parts * 30,
            crash: true,
            model: Some(model),
            faults: true,
            corruptible: vec!["*/log/*.log".into()],
            controls: controls.to_vec(),
            latency: Some(Latency {
                percent: 25,
                max_micros: 300,
            }),
        };
        RunSpec {
            scenario: self.name().to_owned(),
            seed,
            model,
            workload,
            plan: generate(rng.r#gen(), &profile),
        }
    }

    /// The small form of the scenario, for exhaustive exploration: no faults, no concurrency.
    pub fn small(self, model: CrashModel) -> RunSpec {
        RunSpec {
            scenario: self.name().to_owned(),
            seed: 0,
            model,
            workload: Workload::small(),
            plan: Default::default(),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!(
                    "unknown scenario {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}
