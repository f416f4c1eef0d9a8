//! Swarm runs: each seed also draws a profile that switches a random subset of fault kinds,
//! crash triggers and workload features off and skews the odds of the rest (Groce et al.,
//! "Swarm Testing", ISSTA 2012; TigerBeetle's VOPR does the same). A uniform profile puts a
//! little of everything in every run, so a bug that needs two things to line up, or one thing
//! to happen many times, is reached by few seeds; a swarm profile makes some seeds full of it.
//!
//! The profile comes from its own random stream of the seed, so switching swarm off gives
//! every seed the run it had before swarm existed.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_faults::generate::{CHANGING_KINDS, Mix, PATTERNS};
use tally_sim::CrashModel;

pub use crate::feature::Feature;
use crate::focus::Focus;
use crate::workload::Workload;

/// The odds a swarm profile gives one fault kind: off, or the uniform odds times up to this.
const MAX_BOOST: f64 = 3.0;
/// Probability that a swarm profile switches each fault kind off.
const FAULT_OFF: f64 = 0.4;
/// Probability that it leaves out each trigger call kind, and each trigger path pattern.
const TRIGGER_OFF: f64 = 0.4;
/// Probability that it switches each workload feature off.
const FEATURE_OFF: f64 = 0.35;

/// One seed's swarm profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Swarm {
    /// The odds of each fault kind and what triggers may name.
    pub mix: Mix,
    /// The crash models the seed's model is drawn from. `kill` keeps every write a process
    /// made, so it can never expose a missing fsync: a profile keeps it half as often as each
    /// model that loses unsynced data.
    pub models: Vec<CrashModel>,
    /// The model the seed runs under, drawn from `models`.
    pub model: CrashModel,
    /// The workload features switched off (only ones the scenario may lose).
    pub off: Vec<Feature>,
    /// The files whose reads a corrupted-read fault may flip a bit in: a subset of
    /// [`CORRUPTIBLE`] (the uniform profile corrupts log segments only).
    pub corruptible: Vec<String>,
    /// The cell of the fault × file-class matrix the seed studies, if it is a focused seed of
    /// a scenario that injects faults (see [`crate::focus`]).
    pub focus: Option<Focus>,
}

/// Every class of file the pipeline reads back: log segments, acknowledgement records,
/// commits, checkpoints, table files, the sequence reservation, the store marker, export
/// batches. A flipped bit in any of them must be refused (the pipeline fails closed and the
/// fault explains the error) or be harmless; never published.
pub const CORRUPTIBLE: [&str; 8] = [
    "*/log/*.log",
    "*/log/*.ack",
    "*/_delta_log/0*.json",
    "*/_delta_log/*checkpoint*",
    "*/data/*.parquet",
    "*/_tally/SEQ",
    "*/_tally/TALLY",
    "/export/*",
];

/// The random stream a seed's swarm profile is drawn from: apart from every other draw.
const SWARM_STREAM: u64 = 0x0053_5741_524d;

impl Swarm {
    /// The profile of `seed`; `keep` are the features the scenario needs (never switched off).
    pub fn draw(seed: u64, keep: &[Feature]) -> Swarm {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(SWARM_STREAM);
        let mut odds = |uniform: f64| {
            if rng.gen_bool(FAULT_OFF) {
                0.0
            } else {
                (uniform * rng.gen_range(1.0..MAX_BOOST)).min(0.9)
            }
        };
        let (error, fail_sync) = (odds(Mix::UNIFORM.error), odds(Mix::UNIFORM.fail_sync));
        let (corrupt_read, clock_jump) = (
            odds(Mix::UNIFORM.corrupt_read),
            odds(Mix::UNIFORM.clock_jump),
        );
        let kinds = subset(&mut rng, &CHANGING_KINDS, |_| TRIGGER_OFF);
        let patterns = subset(&mut rng, &PATTERNS, |_| TRIGGER_OFF);
        let mix = Mix {
            error,
            fail_sync,
            corrupt_read,
            clock_jump,
            by_index: rng.gen_range(0.1..0.7),
            kinds: Some(kinds),
            patterns: Some(patterns.into_iter().map(str::to_owned).collect()),
        };
        let models = subset(&mut rng, &CrashModel::ALL, |m| {
            if *m == CrashModel::Kill { 0.7 } else { 0.4 }
        });
        let model = models[rng.gen_range(0..models.len())];
        let off = Feature::ALL
            .into_iter()
            .filter(|f| rng.gen_bool(FEATURE_OFF) && !keep.contains(f))
            .collect();
        // Log segments, which the uniform profile corrupts, always; each other class with
        // probability 0.3.
        let corruptible = std::iter::once(CORRUPTIBLE[0])
            .chain(
                CORRUPTIBLE[1..]
                    .iter()
                    .copied()
                    .filter(|_| rng.gen_bool(0.3)),
            )
            .map(str::to_owned)
            .collect();
        Swarm {
            mix,
            models,
            model,
            off,
            corruptible,
            focus: None,
        }
    }

    /// Switches the profile's features off in `workload`, then shapes it for the focus.
    pub fn apply(&self, workload: &mut Workload) {
        for feature in &self.off {
            feature.switch_off(workload);
        }
        if let Some(focus) = &self.focus {
            focus.shape(workload);
        }
    }
}

/// The items of `all` each kept unless dropped with probability `off(item)`; never empty (one
/// is kept at random if every one was dropped).
fn subset<T: Clone>(rng: &mut ChaCha8Rng, all: &[T], off: impl Fn(&T) -> f64) -> Vec<T> {
    let kept: Vec<T> = all
        .iter()
        .filter(|t| !rng.gen_bool(off(t)))
        .cloned()
        .collect();
    if kept.is_empty() {
        vec![all[rng.gen_range(0..all.len())].clone()]
    } else {
        kept
    }
}

impl fmt::Display for Swarm {
    /// One line: `faults error 0.52 fail-sync off ...; triggers ...; corrupting ...; models ...
    /// (drew M); features off ...` (a `--model` given on the command line overrides the draw).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let odds = |p: f64| {
            if p == 0.0 {
                "off".to_owned()
            } else {
                format!("{p:.2}")
            }
        };
        let m = &self.mix;
        write!(
            f,
            "faults error {} fail-sync {} corrupt-read {} clock-jump {}; ",
            odds(m.error),
            odds(m.fail_sync),
            odds(m.corrupt_read),
            odds(m.clock_jump)
        )?;
        let kinds: Vec<String> = m.kinds.iter().flatten().map(ToString::to_string).collect();
        let patterns = m.patterns.clone().unwrap_or_default();
        write!(
            f,
            "triggers by index {:.2}, kinds {}, paths {}; ",
            m.by_index,
            kinds.join(","),
            patterns.join(",")
        )?;
        let models: Vec<String> = self.models.iter().map(ToString::to_string).collect();
        let off: Vec<&str> = self.off.iter().map(|x| x.name()).collect();
        write!(
            f,
            "corrupting {}; models {} (drew {}); features off {}",
            self.corruptible.join(","),
            models.join(","),
            self.model,
            if off.is_empty() {
                "none".to_owned()
            } else {
                off.join(",")
            }
        )?;
        match &self.focus {
            Some(focus) if focus.drops_crash() => {
                write!(f, "; focus {focus}: its one fault, no planned crash")
            }
            Some(focus) => write!(f, "; focus {focus}: its one fault and the planned crash"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Feature, Swarm};
    use crate::scenario::Scenario;
    use tally_sim::CrashModel;

    #[test]
    fn a_swarm_profile_follows_from_the_seed_and_varies_across_seeds() {
        assert_eq!(Swarm::draw(7, &[]), Swarm::draw(7, &[]));
        let profiles: Vec<Swarm> = (0..200).map(|seed| Swarm::draw(seed, &[])).collect();
        let kinds = [
            |s: &Swarm| s.mix.error,
            |s: &Swarm| s.mix.fail_sync,
            |s: &Swarm| s.mix.corrupt_read,
            |s: &Swarm| s.mix.clock_jump,
        ];
        for (i, odds) in kinds.iter().enumerate() {
            let off = profiles.iter().filter(|s| odds(s) == 0.0).count();
            assert!(
                (40..=120).contains(&off),
                "fault kind {i} off in {off} of 200"
            );
            assert!(profiles.iter().all(|s| odds(s) <= 0.9));
        }
        for feature in Feature::ALL {
            let off = profiles.iter().filter(|s| s.off.contains(&feature)).count();
            assert!((30..=110).contains(&off), "{feature:?} off in {off} of 200");
        }
        let with = |m: CrashModel| profiles.iter().filter(|s| s.models.contains(&m)).count();
        assert!(
            with(CrashModel::Kill) < with(CrashModel::Strict),
            "kill, which cannot expose a missing fsync, is kept less often: {} vs {}",
            with(CrashModel::Kill),
            with(CrashModel::Strict)
        );
        assert!(profiles.iter().all(|s| s.models.contains(&s.model)));
        assert!(profiles.iter().all(|s| !s.models.is_empty()));
    }

    #[test]
    fn a_swarm_profile_never_switches_off_what_its_scenario_is_about() {
        for scenario in Scenario::ALL {
            for seed in 0..100 {
                let spec = scenario.spec_with(seed, None, &[], None, true);
                let w = &spec.workload;
                for need in scenario.needs() {
                    let on = match need {
                        Feature::Exports => w.export.is_some(),
                        Feature::SecondReader => w.reader,
                        Feature::Merges => w.max_level > 0,
                        Feature::Background => w.background_maintenance,
                        Feature::Concurrency => w.concurrent,
                        Feature::Restarts => w.restart_after_parts.is_some(),
                    };
                    assert!(on, "{scenario} seed {seed} lost {need:?}");
                }
                assert!(spec.swarm.is_some());
            }
        }
    }

    #[test]
    fn without_swarm_a_seed_runs_what_it_ran_before_swarm_existed() {
        for seed in 0..50 {
            let uniform = Scenario::Standard.spec_with(seed, None, &[], None, false);
            assert_eq!(uniform, Scenario::Standard.spec(seed, None, &[]));
            assert_eq!(uniform.swarm, None);
            let swarm = Scenario::Standard.spec_with(seed, None, &[], None, true);
            // The swarm only narrows: the same sources and rows, from the same draws.
            assert_eq!(swarm.workload.sources, uniform.workload.sources);
        }
        // What seed 0 of `standard` drew before swarm profiles existed.
        let spec = Scenario::Standard.spec(0, None, &[]);
        assert_eq!(
            (spec.model.to_string(), spec.plan.to_string()),
            (
                "torn-4k".to_owned(),
                "crash before unlink #3 on * (torn-4k); EIO (once) at call #206; failing fsync (unsynced data lost) at sync #6 on *SEQ*; clock jump +5223 s at call #33; latency 25% up to 300 µs".to_owned()
            )
        );
    }
}
