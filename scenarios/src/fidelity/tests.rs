use std::path::Path;

use tally_sim::{CreateMode, Fs, FsFile, SimFs};

use super::*;
use crate::mirror::{MirrorFs, RealLies};
use crate::runtime::run_seeded;

const DIR: &str = "/run";

/// A disk under `/run` with: `durable` (synced, entry synced), `fresh` (written and synced,
/// entry not synced), `unsynced` (entry synced, data not), `gone` (durable, then unlinked
/// without a directory sync).
async fn disk(fs: &impl Fs) {
    let dir = Path::new(DIR);
    fs.create_dir(dir).await.unwrap();
    fs.sync_dir(Path::new("/")).await.unwrap();
    for (name, data) in [("durable", b"kept".as_slice()), ("gone", b"old")] {
        let f = fs
            .create(&dir.join(name), CreateMode::Exclusive)
            .await
            .unwrap();
        f.append(data).await.unwrap();
        f.sync().await.unwrap();
    }
    let unsynced = fs
        .create(&dir.join("unsynced"), CreateMode::Exclusive)
        .await
        .unwrap();
    fs.sync_dir(dir).await.unwrap();
    unsynced.append(b"lost at the crash").await.unwrap();
    let fresh = fs
        .create(&dir.join("fresh"), CreateMode::Exclusive)
        .await
        .unwrap();
    fresh.append(b"new").await.unwrap();
    fresh.sync().await.unwrap();
    fs.unlink(&dir.join("gone")).await.unwrap();
}

#[test]
fn a_disk_that_keeps_every_entry_and_only_synced_data_agrees() {
    run_seeded(0, async {
        let sim = SimFs::new();
        disk(&sim).await;
        let expected = expected(&sim, Path::new(DIR));
        let kept = kept(&entries_kept(&sim), Path::new(DIR)).await.unwrap();
        assert_eq!(kept.get("unsynced"), Some(&Entry::file(b"")));
        let fidelity = compare(&expected, &kept);
        assert!(!fidelity.failed(), "{:?}", fidelity.disagreements);
        assert_eq!((fidelity.paths, fidelity.agreeing), (3, 3));
        assert_eq!(fidelity.entries_beyond_strict, 1, "fresh");
        assert_eq!(fidelity.entries_short_of_strict, 1, "gone");
    });
}

#[test]
fn durable_data_the_real_disk_lost_is_a_disagreement() {
    run_seeded(0, async {
        let sim = SimFs::new();
        disk(&sim).await;
        let expected = expected(&sim, Path::new(DIR));
        let mut kept = kept(&entries_kept(&sim), Path::new(DIR)).await.unwrap();
        kept.insert("durable".into(), Entry::file(b""));
        let fidelity = compare(&expected, &kept);
        assert!(fidelity.failed());
        let [lost] = fidelity.disagreements.as_slice() else {
            panic!("{:?}", fidelity.disagreements)
        };
        assert!(lost.lost_durable_data());
        assert!(lost.to_string().contains("durable data lost"), "{lost}");
    });
}

#[test]
fn unsynced_data_the_real_disk_kept_is_a_disagreement_but_not_a_loss() {
    run_seeded(0, async {
        let sim = SimFs::new();
        disk(&sim).await;
        let expected = expected(&sim, Path::new(DIR));
        // A process kill: the page cache survives, and so does the unsynced data.
        let kept = kept(&sim, Path::new(DIR)).await.unwrap();
        let fidelity = compare(&expected, &kept);
        let [kept_more] = fidelity.disagreements.as_slice() else {
            panic!("{:?}", fidelity.disagreements)
        };
        assert_eq!(kept_more.path, "unsynced");
        assert!(!kept_more.lost_durable_data());
    });
}

#[test]
fn an_indeterminate_run_is_not_compared() {
    let expected = Expected {
        indeterminate: Some("sync /run/x in flight".into()),
        ..Expected::default()
    };
    let kept = Image::from([("x".to_owned(), Entry::Dir)]);
    let fidelity = compare(&expected, &kept);
    assert!(!fidelity.failed());
    assert_eq!(fidelity.paths, 0);
}

#[test]
fn the_mirror_makes_every_change_on_both_disks_in_order() {
    run_seeded(0, async {
        let (real, sim) = (SimFs::new(), SimFs::new());
        let mirror = MirrorFs::new(real.clone(), sim.clone(), RealLies::default());
        disk(&mirror).await;
        assert_eq!(real.tree(), sim.tree());
        let (dir, at) = (Path::new(DIR), Path::new(DIR).join("fresh"));
        let file = mirror.open(&at, tally_sim::OpenMode::Write).await.unwrap();
        assert_eq!(file.append(b"+").await.unwrap(), 3);
        file.set_len(2).await.unwrap();
        mirror.rename(&at, &dir.join("renamed")).await.unwrap();
        assert_eq!(real.tree(), sim.tree());
        for model in tally_sim::CrashModel::ALL {
            assert!(
                real.crash(model, 7)
                    .same_settled_state(&sim.crash(model, 7))
            );
        }
        assert!(mirror.divergences().is_empty());
        assert_eq!(mirror.in_flight(), None);
    });
}

#[test]
fn a_lying_real_sync_leaves_the_real_disk_short_of_the_simulated_one() {
    run_seeded(0, async {
        let (real, sim) = (SimFs::new(), SimFs::new());
        let lies = RealLies {
            sync: true,
            sync_dir: false,
        };
        disk(&MirrorFs::new(real.clone(), sim.clone(), lies)).await;
        let expected = expected(&sim, Path::new(DIR));
        let kept = kept(&entries_kept(&real), Path::new(DIR)).await.unwrap();
        let fidelity = compare(&expected, &kept);
        assert!(
            fidelity
                .disagreements
                .iter()
                .any(Disagreement::lost_durable_data)
        );
    });
}

#[test]
fn a_call_the_simulated_disk_refuses_is_a_divergence() {
    run_seeded(0, async {
        let (real, sim) = (SimFs::new(), SimFs::new());
        sim.create(Path::new("/only-simulated"), CreateMode::Exclusive)
            .await
            .unwrap();
        let mirror = MirrorFs::new(real, sim, RealLies::default());
        mirror
            .create(Path::new("/only-simulated"), CreateMode::Exclusive)
            .await
            .unwrap();
        let [divergence] = mirror.divergences().try_into().unwrap();
        assert!(
            divergence.contains("create /only-simulated"),
            "{divergence}"
        );
    });
}

#[test]
fn a_call_cancelled_between_the_two_disks_is_a_divergence() {
    run_seeded(0, async {
        let slow = tally_faults::SlowSyncFs::new(SimFs::new(), std::time::Duration::from_secs(5));
        let mirror = MirrorFs::new(slow, SimFs::new(), RealLies::default());
        let at = Path::new("/file");
        let file = mirror.create(at, CreateMode::Exclusive).await.unwrap();
        // The real sync is still sleeping when the call is dropped.
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(1), file.sync());
        assert!(timed_out.await.is_err());
        assert_eq!(mirror.in_flight(), None);
        let [divergence] = mirror.divergences().try_into().unwrap();
        assert!(divergence.contains("sync /file: cancelled"), "{divergence}");
    });
}
