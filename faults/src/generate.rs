//! Fault plans drawn from a seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_sim::CrashModel;

use crate::plan::{
    CallKind, Control, Crash, Effect, ErrorKind, Fault, FaultPlan, Latency, Moment, Trigger,
};

/// What kinds of faults a generated plan may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

/// Path patterns crash and fault triggers are drawn from: anything, log segments, table files,
/// the Delta log (commits and checkpoints), SEQ. (The fourth was `*MANIFEST*` before the store
/// became a Delta table, and then matched nothing: triggers drawn on it never fired. Coverage
/// probes showed it: commit fsync failures in 2 seeds of 200.)
const PATTERNS: [&str; 5] = ["*", "*/log/*", "*/data/*", "*/_delta_log/*", "*SEQ*"];

fn trigger(rng: &mut ChaCha8Rng, expected_calls: u64, kinds: &[CallKind]) -> Trigger {
    if rng.gen_bool(0.4) {
        Trigger::Call {
            index: rng.gen_range(0..expected_calls.max(1)),
        }
    } else {
        let kind = kinds[rng.gen_range(0..kinds.len())];
        let path = PATTERNS[rng.gen_range(0..PATTERNS.len())].to_owned();
        // Files of one kind see fewer calls than the run: keep n small so it fires.
        let n = rng.gen_range(1..=(expected_calls / 40).clamp(1, 12));
        Trigger::Nth { kind, path, n }
    }
}

/// The plan `profile` gives with `seed`.
pub fn generate(seed: u64, profile: &Profile) -> FaultPlan {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let calls = profile.expected_calls;
    // Crashes and errors strike calls that change the disk. `rename-noreplace` is not drawn:
    // `rename` triggers already count those calls, and one more kind to draw from would change
    // the plan every existing seed names.
    let crash_kinds: Vec<CallKind> = CallKind::ALL
        .into_iter()
        .filter(|k| {
            !matches!(
                k,
                CallKind::Read | CallKind::Any | CallKind::RenameNoReplace
            )
        })
        .collect();
    // The draws below happen in a fixed order (model, crash, then each fault kind, then the
    // plan's own seed): a seed names its plan only as long as that order never changes.
    let model = profile
        .model
        .unwrap_or_else(|| CrashModel::ALL[rng.gen_range(0..CrashModel::ALL.len())]);
    let crash = profile.crash.then(|| Crash {
        at: trigger(&mut rng, calls, &crash_kinds),
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
    let calls = profile.expected_calls;
    let mut faults = Vec::new();
    if rng.gen_bool(0.3) {
        faults.push(error_fault(rng, calls, crash_kinds));
    }
    if rng.gen_bool(0.2) {
        faults.push(Fault {
            at: trigger(rng, calls, &[CallKind::Sync]),
            effect: Effect::FailSync,
        });
    }
    if !profile.corruptible.is_empty() && rng.gen_bool(0.15) {
        faults.push(corrupt_read_fault(rng, &profile.corruptible));
    }
    if rng.gen_bool(0.2) {
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
fn error_fault(rng: &mut ChaCha8Rng, calls: u64, crash_kinds: &[CallKind]) -> Fault {
    let error = if rng.gen_bool(0.5) {
        ErrorKind::Eio
    } else {
        ErrorKind::Enospc
    };
    Fault {
        at: trigger(rng, calls, crash_kinds),
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
