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

/// Path patterns crash and fault triggers are drawn from.
const PATTERNS: [&str; 5] = ["*", "*/log/*", "*/data/*", "*MANIFEST*", "*SEQ*"];

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
    // Crashes and errors strike calls that change the disk.
    let crash_kinds: Vec<CallKind> = CallKind::ALL
        .into_iter()
        .filter(|k| !matches!(k, CallKind::Read | CallKind::Any))
        .collect();
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
    let mut faults = Vec::new();
    if profile.faults {
        if rng.gen_bool(0.3) {
            let error = if rng.gen_bool(0.5) {
                ErrorKind::Eio
            } else {
                ErrorKind::Enospc
            };
            faults.push(Fault {
                at: trigger(&mut rng, calls, &crash_kinds),
                effect: Effect::Error {
                    error,
                    sticky: rng.gen_bool(0.3),
                },
            });
        }
        if rng.gen_bool(0.2) {
            faults.push(Fault {
                at: trigger(&mut rng, calls, &[CallKind::Sync]),
                effect: Effect::FailSync,
            });
        }
        if !profile.corruptible.is_empty() && rng.gen_bool(0.15) {
            let path = profile.corruptible[rng.gen_range(0..profile.corruptible.len())].clone();
            faults.push(Fault {
                at: Trigger::Nth {
                    kind: CallKind::Read,
                    path,
                    n: rng.gen_range(1..=3),
                },
                effect: Effect::CorruptRead,
            });
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
    }
    FaultPlan {
        crash,
        faults,
        controls: profile.controls.clone(),
        latency: profile.latency,
        seed: rng.r#gen(),
    }
}
