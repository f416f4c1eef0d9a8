//! The simulated-disk demo: a file replaced atomically, version after version, with a crash
//! image checked after every filesystem operation.
//!
//! Each seed derives how many versions are written and how large each is. The workload writes
//! them with [`tally_pipeline::commit::replace_file`]. After every mutating call on the disk
//! the demo takes the crash image that the chosen model gives at that point and checks the
//! protocol's promise: the file holds the last acknowledged version, or the one being written,
//! whole; before the first acknowledgement it may also be absent. Under a lying disk
//! (`--lie sync` or `--lie sync-dir`) the promise breaks and the demo must say so: that is its
//! negative control.

use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tally_faults::{Lie, LyingFs};
use tally_sim::{CrashModel, Fs, OpRecord, SimFs};

const DIR: &str = "/data";
const NAME: &str = "current";

/// What to run.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    pub seeds: Range<u64>,
    pub model: CrashModel,
    pub lie: Option<Lie>,
}

/// The outcome of one seed.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SeedVerdict {
    pub seed: u64,
    pub versions: u32,
    pub crash_points: u64,
    pub violations: Vec<Violation>,
}

/// A crash image that broke the promise.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Violation {
    /// Index in the disk's op log of the call after which the crash was taken.
    pub op_index: u64,
    /// That call, as the op log prints it.
    pub op: String,
    /// The version last acknowledged before the crash (0: none yet).
    pub acknowledged: u32,
    /// What the crash image held: a version number, "absent", or "corrupt (N bytes)".
    pub found: String,
}

/// State shared between the workload and the per-op check.
#[derive(Default)]
struct Progress {
    /// Every version started so far; version `n` is `written[n - 1]`.
    written: Vec<Vec<u8>>,
    /// How many of them were acknowledged. Any beyond that is in flight (at most one).
    acknowledged: u32,
    crash_points: u64,
    violations: Vec<Violation>,
}

/// The bytes of version `v`: its header line repeated to a seeded length, so versions differ
/// in every sector and span from one to many sectors.
fn version_bytes(seed: u64, version: u32, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let line = format!("seed {seed} version {version}\n");
    let repeats = rng.gen_range(1..600);
    line.repeat(repeats).into_bytes()
}

/// The seed of the crash taken after op `index` of run `seed`: distinct per point, fixed by
/// the run's seed.
fn crash_seed(seed: u64, index: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng.r#gen()
}

fn check(progress: &mut Progress, disk: &SimFs, model: CrashModel, seed: u64, op: &OpRecord) {
    progress.crash_points += 1;
    let image = disk.crash(model, crash_seed(seed, op.index));
    let found = image.tree().remove(&format!("{DIR}/{NAME}")).flatten();
    // Allowed: the last acknowledged version or the one in flight; nothing before any ack.
    let allowed_from = (progress.acknowledged as usize).saturating_sub(1);
    let ok = match &found {
        None => progress.acknowledged == 0,
        Some(bytes) => progress.written[allowed_from..].contains(bytes),
    };
    if ok {
        return;
    }
    let found = match found {
        None => "absent".to_owned(),
        Some(bytes) => match progress.written.iter().position(|b| *b == bytes) {
            Some(i) => format!("version {}", i + 1),
            None => format!("corrupt ({} bytes)", bytes.len()),
        },
    };
    progress.violations.push(Violation {
        op_index: op.index,
        op: op.to_string(),
        acknowledged: progress.acknowledged,
        found,
    });
}

/// Runs one seed and returns its verdict.
pub async fn run_seed(seed: u64, model: CrashModel, lie: Option<Lie>) -> SeedVerdict {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let versions = rng.gen_range(3..=8);
    let disk = SimFs::new();
    let dir = Path::new(DIR);
    disk.create_dir(dir)
        .await
        .expect("a fresh disk has room for /data");
    disk.sync_dir(Path::new("/")).await.expect("/ exists");

    let progress = Arc::new(Mutex::new(Progress::default()));
    let observed = progress.clone();
    disk.set_observer(move |disk, op| {
        if op.kind.is_mutating() {
            check(
                &mut observed.lock().expect("check never panics"),
                disk,
                model,
                seed,
                op,
            );
        }
    });

    for version in 1..=versions {
        let bytes = version_bytes(seed, version, &mut rng);
        progress
            .lock()
            .expect("unpoisoned")
            .written
            .push(bytes.clone());
        let result = match lie {
            None => tally_pipeline::commit::replace_file(&disk, dir, NAME, &bytes).await,
            Some(lie) => {
                let lying = LyingFs::new(disk.clone(), lie);
                tally_pipeline::commit::replace_file(&lying, dir, NAME, &bytes).await
            }
        };
        result.expect("the simulated disk injects no errors in the demo");
        progress.lock().expect("unpoisoned").acknowledged = version;
    }

    let progress = progress.lock().expect("unpoisoned");
    SeedVerdict {
        seed,
        versions,
        crash_points: progress.crash_points,
        violations: progress.violations.clone(),
    }
}

/// The command that reruns exactly this seed.
pub fn reproduce_command(seed: u64, model: CrashModel, lie: Option<Lie>) -> String {
    let lie = lie.map(|l| format!(" --lie {l}")).unwrap_or_default();
    format!(
        "cargo sim demo --seeds {seed}..{} --model {model}{lie}",
        seed + 1
    )
}
