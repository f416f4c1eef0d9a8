//! Fault plans drawn from a seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_sim::CrashModel;

use crate::plan::{
    CallKind, Control, Crash, Effect, ErrorKind, Fault, FaultPlan, Latency, Moment, Trigger,
};

/// What kinds of faults a generated plan may hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// Roughly how many calls a run makes before it ends on its own: crashes and faults are
    /// placed within it.
    pub expected_calls: u64,
    /// Whether the run ends in a crash (it still may not, if the run is shorter than planned).
    pub crash: bool,
    /// The crash model; `None` draws one per seed.
    pub model: Option<CrashModel>,
    /// Whether errors, failing fsyncs, corrupted reads and clock jumps are drawn.
    pub faults: bool,
    /// Path patterns whose reads may be corrupted (reads of files the pipeline checksums).
    pub corruptible: Vec<String>,
    pub controls: Vec<Control>,
    pub latency: Option<Latency>,
    /// How likely each fault kind is and what triggers may name: [`Mix::UNIFORM`] unless a
    /// swarm profile skews it.
    pub mix: Mix,
}

/// The odds a plan is drawn with. Every run of [`Mix::UNIFORM`] draws exactly what plans were
/// drawn before mixes existed, so a seed names the same plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Mix {
    /// Probability that a plan holds an injected error (EIO or ENOSPC on a changing call).
    pub error: f64,
    /// ... a failing fsync.
    pub fail_sync: f64,
    /// ... a corrupted read (when the profile names corruptible files).
    pub corrupt_read: f64,
    /// ... a clock jump.
    pub clock_jump: f64,
    /// Probability that a trigger names a call by its index (otherwise the n-th call of a kind
    /// on a path pattern).
    pub by_index: f64,
    /// The call kinds crash and error triggers may name; `None`: every changing kind.
    pub kinds: Option<Vec<CallKind>>,
    /// The path patterns triggers may name; `None`: all of [`PATTERNS`].
    pub patterns: Option<Vec<String>>,
}

impl Mix {
    pub const UNIFORM: Mix = Mix {
        error: 0.3,
        fail_sync: 0.2,
        corrupt_read: 0.15,
        clock_jump: 0.2,
        by_index: 0.4,
        kinds: None,
        patterns: None,
    };
}

impl Default for Mix {
    fn default() -> Self {
        Mix::UNIFORM
    }
}

/// Path patterns crash and fault triggers are drawn from: anything, log segments, table files,
/// the Delta log (commits and checkpoints), SEQ. (The fourth was `*MANIFEST*` before the store
/// became a Delta table, and then matched nothing: triggers drawn on it never fired. Coverage
/// probes showed it: commit fsync failures in 2 seeds of 200.)
pub const PATTERNS: [&str; 5] = ["*", "*/log/*", "*/data/*", "*/_delta_log/*", "*SEQ*"];

/// The call kinds crash and error triggers name: the calls that change the disk, in the order
/// of [`CallKind::ALL`]. `rename-noreplace` is not one: `rename` triggers already count those
/// calls, and one more kind to draw from would change the plan every existing seed names.
pub const CHANGING_KINDS: [CallKind; 6] = [
    CallKind::Sync,
    CallKind::SyncDir,
    CallKind::Rename,
    CallKind::Unlink,
    CallKind::Write,
    CallKind::Create,
];

fn trigger(rng: &mut ChaCha8Rng, expected_calls: u64, kinds: &[CallKind], mix: &Mix) -> Trigger {
    if rng.gen_bool(mix.by_index) {
        Trigger::Call {
            index: rng.gen_range(0..expected_calls.max(1)),
        }
    } else {
        let kind = kinds[rng.gen_range(0..kinds.len())];
        let path = match &mix.patterns {
            None => PATTERNS[rng.gen_range(0..PATTERNS.len())].to_owned(),
            Some(patterns) => patterns[rng.gen_range(0..patterns.len())].clone(),
        };
        // Files of one kind see fewer calls than the run: keep n small so it fires.
        let n = rng.gen_range(1..=(expected_calls / 40).clamp(1, 12));
        Trigger::Nth { kind, path, n }
    }
}

/// The plan `profile` gives with `seed`.
pub fn generate(seed: u64, profile: &Profile) -> FaultPlan {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let calls = profile.expected_calls;
    let crash_kinds: Vec<CallKind> = CHANGING_KINDS
        .into_iter()
        .filter(|k| {
            profile
                .mix
                .kinds
                .as_ref()
                .is_none_or(|kinds| kinds.contains(k))
        })
        .collect();
    assert!(!crash_kinds.is_empty(), "a mix names no changing call kind");
    // The draws below happen in a fixed order (model, crash, then each fault kind, then the
    // plan's own seed): a seed names its plan only as long as that order never changes.
    let model = profile
        .model
        .unwrap_or_else(|| CrashModel::ALL[rng.gen_range(0..CrashModel::ALL.len())]);
    let crash = profile.crash.then(|| Crash {
        at: trigger(&mut rng, calls, &crash_kinds, &profile.mix),
        moment: if rng.gen_bool(0.5) {
            Moment::Before
        } else {
            Moment::After
        },
        model,
    });
    let faults = if profile.faults {
        draw_faults(&mut rng, profile, &crash_kinds)
    } else {
        Vec::new()
    };
    FaultPlan {
        crash,
        faults,
        controls: profile.controls.clone(),
        latency: profile.latency,
        seed: rng.r#gen(),
    }
}

/// The faults of a plan whose profile allows them: each kind is drawn in turn, and present
/// with its own probability.
fn draw_faults(rng: &mut ChaCha8Rng, profile: &Profile, crash_kinds: &[CallKind]) -> Vec<Fault> {
    let (calls, mix) = (profile.expected_calls, &profile.mix);
    let mut faults = Vec::new();
    if rng.gen_bool(mix.error) {
        faults.push(error_fault(rng, calls, crash_kinds, mix));
    }
    if rng.gen_bool(mix.fail_sync) {
        faults.push(Fault {
            at: trigger(rng, calls, &[CallKind::Sync], mix),
            effect: Effect::FailSync,
        });
    }
    if !profile.corruptible.is_empty() && rng.gen_bool(mix.corrupt_read) {
        faults.push(corrupt_read_fault(rng, &profile.corruptible));
    }
    if rng.gen_bool(mix.clock_jump) {
        let seconds = rng.gen_range(-7200..=7200);
        faults.push(Fault {
            at: Trigger::Call {
                index: rng.gen_range(0..calls.max(1)),
            },
            effect: Effect::ClockJump { seconds },
        });
    }
    faults
}

/// An injected EIO or ENOSPC on a call that changes the disk, sticky or not.
fn error_fault(rng: &mut ChaCha8Rng, calls: u64, crash_kinds: &[CallKind], mix: &Mix) -> Fault {
    let error = if rng.gen_bool(0.5) {
        ErrorKind::Eio
    } else {
        ErrorKind::Enospc
    };
    Fault {
        at: trigger(rng, calls, crash_kinds, mix),
        effect: Effect::Error {
            error,
            sticky: rng.gen_bool(0.3),
        },
    }
}

/// A flipped bit in one of the first reads of a file matching one of `corruptible`.
fn corrupt_read_fault(rng: &mut ChaCha8Rng, corruptible: &[String]) -> Fault {
    let path = corruptible[rng.gen_range(0..corruptible.len())].clone();
    Fault {
        at: Trigger::Nth {
            kind: CallKind::Read,
            path,
            n: rng.gen_range(1..=3),
        },
        effect: Effect::CorruptRead,
    }
}
