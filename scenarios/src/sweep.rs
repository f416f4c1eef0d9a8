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

/// A shard of a sweep found in the environment of the batch scheduler it runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoShard {
    /// 1-based, as `--shard I/N` writes it.
    pub index: u64,
    pub count: u64,
    /// The variables it was read from, as `NAME=value, ...`.
    pub source: String,
}

/// Why `--shard auto` found no shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardError {
    /// No scheduler's index variable is set.
    NotFound,
    /// A scheduler's index variable is set but what goes with it is missing or wrong.
    Bad {
        scheduler: &'static str,
        why: String,
    },
    /// Two schedulers' variables name different shards.
    Ambiguous { first: AutoShard, second: AutoShard },
}

impl std::fmt::Display for ShardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardError::NotFound => write!(
                f,
                "--shard auto found no shard: none of TALLY_SHARD_INDEX (with TALLY_SHARD_COUNT), \
                 JOB_COMPLETION_INDEX (Kubernetes indexed Job, with TALLY_SHARD_COUNT) or \
                 SLURM_ARRAY_TASK_ID (Slurm array job, with SLURM_ARRAY_TASK_COUNT and \
                 SLURM_ARRAY_TASK_MIN) is set"
            ),
            ShardError::Bad { scheduler, why } => write!(f, "--shard auto ({scheduler}): {why}"),
            ShardError::Ambiguous { first, second } => write!(
                f,
                "--shard auto is ambiguous: {} says shard {}/{}, {} says {}/{}",
                first.source, first.index, first.count, second.source, second.index, second.count
            ),
        }
    }
}

impl std::error::Error for ShardError {}

/// The shard the scheduler's environment names, `env` being the variable lookup.
///
/// Sources, in this order: the generic `TALLY_SHARD_INDEX` (0-based) with `TALLY_SHARD_COUNT`
/// (a GitHub Actions matrix sets them); Kubernetes' `JOB_COMPLETION_INDEX` (0-based) with
/// `TALLY_SHARD_COUNT` (the Job's `completions`, which Kubernetes does not export); Slurm's
/// `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT`. A source counts
/// when its index variable is set; a set one that is incomplete or malformed is an error,
/// never skipped, and two that name different shards are an error: a wrong guess would run
/// some seeds twice and others never, and the merge would only notice afterwards.
pub fn resolve_shard(env: impl Fn(&str) -> Option<String>) -> Result<AutoShard, ShardError> {
    let found = [
        generic_shard(&env),
        kubernetes_shard(&env),
        slurm_shard(&env),
    ]
    .into_iter()
    .flatten()
    .collect::<Result<Vec<_>, _>>()?;
    let mut found = found.into_iter();
    let first = found.next().ok_or(ShardError::NotFound)?;
    for other in found {
        if (other.index, other.count) != (first.index, first.count) {
            return Err(ShardError::Ambiguous {
                first,
                second: other,
            });
        }
    }
    Ok(first)
}

/// A variable parsed as a number, named with its value in the error.
fn number(
    env: &impl Fn(&str) -> Option<String>,
    scheduler: &'static str,
    name: &str,
) -> Result<Option<(u64, String)>, ShardError> {
    let Some(value) = env(name) else {
        return Ok(None);
    };
    let parsed = value.trim().parse::<u64>().map_err(|e| ShardError::Bad {
        scheduler,
        why: format!("{name}={value:?} is not a number: {e}"),
    })?;
    Ok(Some((parsed, format!("{name}={parsed}"))))
}

fn required(
    env: &impl Fn(&str) -> Option<String>,
    scheduler: &'static str,
    name: &str,
    with: &str,
) -> Result<(u64, String), ShardError> {
    number(env, scheduler, name)?.ok_or_else(|| ShardError::Bad {
        scheduler,
        why: format!("{with} is set but {name} is not"),
    })
}

/// A 0-based index of `count` as a 1-based shard, checked.
fn zero_based(
    scheduler: &'static str,
    index: u64,
    count: u64,
    source: String,
) -> Result<AutoShard, ShardError> {
    if count == 0 || index >= count {
        return Err(ShardError::Bad {
            scheduler,
            why: format!("{source}: need 0 <= index < count"),
        });
    }
    Ok(AutoShard {
        index: index + 1,
        count,
        source,
    })
}

fn generic_shard(env: &impl Fn(&str) -> Option<String>) -> Option<Result<AutoShard, ShardError>> {
    const WHO: &str = "generic";
    let index = number(env, WHO, "TALLY_SHARD_INDEX").transpose()?;
    Some(index.and_then(|(index, a)| {
        let (count, b) = required(env, WHO, "TALLY_SHARD_COUNT", "TALLY_SHARD_INDEX")?;
        zero_based(WHO, index, count, format!("{a}, {b}"))
    }))
}

fn kubernetes_shard(
    env: &impl Fn(&str) -> Option<String>,
) -> Option<Result<AutoShard, ShardError>> {
    const WHO: &str = "Kubernetes indexed Job";
    let index = number(env, WHO, "JOB_COMPLETION_INDEX").transpose()?;
    Some(index.and_then(|(index, a)| {
        let (count, b) =
            required(env, WHO, "TALLY_SHARD_COUNT", "JOB_COMPLETION_INDEX").map_err(|_| {
                ShardError::Bad {
                    scheduler: WHO,
                    why: "JOB_COMPLETION_INDEX is set but TALLY_SHARD_COUNT is not: set it to \
                      the Job's spec.completions in the manifest"
                        .to_owned(),
                }
            })?;
        zero_based(WHO, index, count, format!("{a}, {b}"))
    }))
}

/// Slurm numbers array tasks as `--array` wrote them (`--array=1-8` starts at 1); only a
/// contiguous array maps onto shards, so a step or a list (`0-15:4`, `1,5,7`) is refused.
fn slurm_shard(env: &impl Fn(&str) -> Option<String>) -> Option<Result<AutoShard, ShardError>> {
    const WHO: &str = "Slurm array job";
    const ID: &str = "SLURM_ARRAY_TASK_ID";
    let id = number(env, WHO, ID).transpose()?;
    Some(id.and_then(|(id, a)| {
        let (count, b) = required(env, WHO, "SLURM_ARRAY_TASK_COUNT", ID)?;
        let (min, c) = required(env, WHO, "SLURM_ARRAY_TASK_MIN", ID)?;
        let source = format!("{a}, {b}, {c}");
        if let Some((max, d)) = number(env, WHO, "SLURM_ARRAY_TASK_MAX")? {
            if max.checked_sub(min).and_then(|span| span.checked_add(1)) != Some(count) {
                return Err(ShardError::Bad {
                    scheduler: WHO,
                    why: format!(
                        "{source}, {d}: the array is not contiguous; submit it as --array=0-{}",
                        count.saturating_sub(1)
                    ),
                });
            }
        }
        let index = id.checked_sub(min).ok_or_else(|| ShardError::Bad {
            scheduler: WHO,
            why: format!("{source}: the task id is below the array's minimum"),
        })?;
        zero_based(WHO, index, count, source)
    }))
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
    use std::collections::BTreeMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn shard(vars: &[(&str, &str)]) -> Result<(u64, u64), String> {
        resolve_shard(env(vars))
            .map(|s| (s.index, s.count))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_scheduler_names_its_shard_one_based() {
        let generic = [("TALLY_SHARD_INDEX", "0"), ("TALLY_SHARD_COUNT", "4")];
        assert_eq!(shard(&generic), Ok((1, 4)));
        let kubernetes = [("JOB_COMPLETION_INDEX", "3"), ("TALLY_SHARD_COUNT", "4")];
        assert_eq!(shard(&kubernetes), Ok((4, 4)));
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "8"),
        ];
        assert_eq!(shard(&slurm), Ok((5, 8)));
    }

    #[test]
    fn no_scheduler_is_an_error_naming_every_variable_looked_for() {
        let err = shard(&[("SLURM_JOB_ID", "7")]).unwrap_err();
        for name in [
            "TALLY_SHARD_INDEX",
            "TALLY_SHARD_COUNT",
            "JOB_COMPLETION_INDEX",
            "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_COUNT",
            "SLURM_ARRAY_TASK_MIN",
        ] {
            assert!(err.contains(name), "{name} missing from {err}");
        }
    }

    #[test]
    fn an_incomplete_or_malformed_scheduler_is_an_error_not_skipped() {
        let err = shard(&[("JOB_COMPLETION_INDEX", "2")]).unwrap_err();
        assert!(err.contains("TALLY_SHARD_COUNT is not"), "{err}");
        assert!(err.contains("spec.completions"), "{err}");
        let err = shard(&[("TALLY_SHARD_INDEX", "x"), ("TALLY_SHARD_COUNT", "4")]).unwrap_err();
        assert!(
            err.contains("TALLY_SHARD_INDEX=\"x\" is not a number"),
            "{err}"
        );
        let err = shard(&[("TALLY_SHARD_INDEX", "4"), ("TALLY_SHARD_COUNT", "4")]).unwrap_err();
        assert!(err.contains("need 0 <= index < count"), "{err}");
        let err = shard(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ])
        .unwrap_err();
        assert!(err.contains("SLURM_ARRAY_TASK_MIN is not"), "{err}");
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "12"),
        ];
        assert!(shard(&stepped).unwrap_err().contains("not contiguous"));
    }

    #[test]
    fn two_schedulers_naming_different_shards_are_ambiguous_and_agreeing_ones_are_not() {
        let mut vars = vec![
            ("TALLY_SHARD_INDEX", "1"),
            ("TALLY_SHARD_COUNT", "4"),
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
        ];
        let err = shard(&vars).unwrap_err();
        assert!(
            err.contains("ambiguous") && err.contains("2/4") && err.contains("3/4"),
            "{err}"
        );
        vars[0].1 = "2";
        assert_eq!(shard(&vars), Ok((3, 4)));
    }

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
