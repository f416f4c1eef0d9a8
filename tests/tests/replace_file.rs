//! The durable-replace primitive, checked at every crash point under every crash model, with
//! lying disks as negative controls: the check must catch them.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_faults::{Control, FaultFs, FaultPlan};
use tally_pipeline::commit::replace_file;
use tally_sim::{CrashModel, Fs, SimFs};

const SEEDS: u64 = 60;
const DIR: &str = "/data";
const NAME: &str = "current";

#[derive(Default)]
struct Progress {
    /// Every version started; version `n` is `written[n - 1]`.
    written: Vec<Vec<u8>>,
    acknowledged: usize,
    crash_points: u64,
    /// `(acknowledged, what the image held)` of each violating crash point.
    violations: Vec<(usize, Option<Vec<u8>>)>,
}

/// Writes 3..=8 versions of seeded sizes with `replace_file` (through a negative `control`, if
/// any); after every mutating call, the crash image under `model` must hold the last
/// acknowledged version or the one in flight, whole (or nothing before the first ack).
async fn replace_versions(seed: u64, model: CrashModel, control: Option<Control>) -> Progress {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let disk = SimFs::new();
    disk.create_dir(Path::new(DIR)).await.unwrap();
    disk.sync_dir(Path::new("/")).await.unwrap();
    let progress = Arc::new(Mutex::new(Progress::default()));
    let observed = progress.clone();
    disk.set_observer(move |disk, op| {
        if !op.kind.is_mutating() {
            return;
        }
        let mut p = observed.lock().unwrap();
        p.crash_points += 1;
        let image = disk.crash(model, seed ^ op.index.rotate_left(32));
        let found = image.tree().remove(&format!("{DIR}/{NAME}")).flatten();
        let ok = match &found {
            None => p.acknowledged == 0,
            Some(bytes) => p.written[p.acknowledged.saturating_sub(1)..].contains(bytes),
        };
        if !ok {
            let acknowledged = p.acknowledged;
            p.violations.push((acknowledged, found));
        }
    });
    let faulty = control.map(|c| {
        let plan = FaultPlan {
            controls: vec![c],
            ..FaultPlan::default()
        };
        FaultFs::new(disk.clone(), plan).unwrap()
    });
    for version in 1..=rng.gen_range(3..=8) {
        let line = format!("seed {seed} version {version}\n");
        let bytes = line.repeat(rng.gen_range(1..600)).into_bytes();
        progress.lock().unwrap().written.push(bytes.clone());
        match &faulty {
            None => replace_file(&disk, Path::new(DIR), NAME, &bytes).await,
            Some(fs) => replace_file(fs, Path::new(DIR), NAME, &bytes).await,
        }
        .unwrap();
        progress.lock().unwrap().acknowledged = version;
    }
    disk.set_observer(|_, _| {});
    Arc::try_unwrap(progress)
        .ok()
        .unwrap()
        .into_inner()
        .unwrap()
}

#[tokio::test]
async fn replace_file_leaves_old_or_new_at_every_crash_point() {
    for model in CrashModel::ALL {
        for seed in 0..SEEDS {
            let p = replace_versions(seed, model, None).await;
            assert!(p.crash_points > 0);
            assert!(
                p.violations.is_empty(),
                "{model} seed {seed}: {} violations",
                p.violations.len()
            );
        }
    }
}

/// Under a lying disk the promise breaks; every model that can drop pending state must show it
/// on the very first seed. `kill` keeps pending state, so no lie can hurt it.
#[tokio::test]
async fn lying_disks_are_caught_on_the_first_seed() {
    for control in Control::ALL {
        for model in CrashModel::ALL {
            let p = replace_versions(0, model, Some(control)).await;
            assert_eq!(
                !p.violations.is_empty(),
                model != CrashModel::Kill,
                "{control} under {model}: {} violations",
                p.violations.len()
            );
        }
    }
}

#[tokio::test]
async fn a_lying_sync_dir_loses_an_acknowledged_version() {
    let p = replace_versions(0, CrashModel::Strict, Some(Control::LyingSyncDir)).await;
    assert!(
        p.violations
            .iter()
            .any(|(acked, found)| *acked > 0 && found.as_ref() != Some(&p.written[acked - 1])),
        "{} violations",
        p.violations.len()
    );
}
