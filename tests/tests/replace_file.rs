//! The durable-replace primitive, checked at every crash point under every crash model, with
//! lying disks as negative controls: the check must catch them.

use tally_faults::Lie;
use tally_scenarios::demo::run_seed;
use tally_sim::CrashModel;

const SEEDS: u64 = 60;

#[tokio::test]
async fn replace_file_leaves_old_or_new_at_every_crash_point() {
    for model in CrashModel::ALL {
        for seed in 0..SEEDS {
            let verdict = run_seed(seed, model, None).await;
            assert!(verdict.crash_points > 0);
            assert!(
                verdict.violations.is_empty(),
                "{model} seed {seed}: {:?}",
                verdict.violations
            );
        }
    }
}

/// Under a lying disk the promise breaks; every model that can drop pending state must show it
/// on the very first seed. `kill` keeps pending state, so no lie can hurt it.
#[tokio::test]
async fn lying_disks_are_caught_on_the_first_seed() {
    for lie in Lie::ALL {
        for model in CrashModel::ALL {
            let verdict = run_seed(0, model, Some(lie)).await;
            let caught = !verdict.violations.is_empty();
            assert_eq!(
                caught,
                model != CrashModel::Kill,
                "lie {lie} under {model}: {verdict:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_lying_sync_dir_loses_an_acknowledged_version() {
    let verdict = run_seed(0, CrashModel::Strict, Some(Lie::SyncDir)).await;
    assert!(
        verdict
            .violations
            .iter()
            .any(|v| v.acknowledged > 0 && v.found != format!("version {}", v.acknowledged)),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn a_seed_reproduces_its_verdict() {
    for (model, lie) in [
        (CrashModel::Subset, Some(Lie::Sync)),
        (CrashModel::Torn512, None),
    ] {
        for seed in [0, 17, 123_456] {
            assert_eq!(
                run_seed(seed, model, lie).await,
                run_seed(seed, model, lie).await
            );
        }
    }
}

/// A seed's verdict is the same whether it runs first in the process or after other seeds,
/// each on its own seeded runtime (madsim's in the simulation build).
#[test]
fn a_seeds_verdict_does_not_depend_on_what_ran_before_it() {
    use tally_scenarios::runtime::run_seeded;
    let run = |seed| run_seeded(seed, run_seed(seed, CrashModel::Subset, Some(Lie::Sync)));
    let first = run(42);
    for seed in 0..20 {
        run(seed);
    }
    assert_eq!(run(42), first);
}
