//! Claims of the durability model (`docs/durability-model.md`), one test each.

use std::collections::BTreeSet;
use std::path::Path;

use proptest::prelude::*;
use tally_sim::{
    CrashModel, CrashPlan, CreateMode, Fs, FsFile, OpKind, OpOutcome, PendingTarget, PlanError,
    SectorFate, SimFs, SimFsOptions,
};

fn p(path: &str) -> &Path {
    Path::new(path)
}

/// Creates `path` holding `bytes`, file synced; the entry is left to the caller.
async fn write_synced(fs: &SimFs, path: &str, bytes: &[u8]) {
    let file = fs.create(p(path), CreateMode::Exclusive).await.unwrap();
    file.write_at(0, bytes).await.unwrap();
    file.sync().await.unwrap();
}

fn file(fs: &SimFs, path: &str) -> Option<Vec<u8>> {
    fs.tree().get(path).cloned().flatten()
}

#[tokio::test]
async fn unsynced_write_is_lost_on_strict_crash() {
    let fs = SimFs::new();
    write_synced(&fs, "/a", b"durable").await;
    fs.sync_dir(p("/")).await.unwrap();
    let handle = fs.open(p("/a"), tally_sim::OpenMode::Write).await.unwrap();
    handle.append(b" and lost").await.unwrap();
    assert_eq!(
        file(&fs, "/a").unwrap(),
        b"durable and lost",
        "reads see pending writes"
    );
    assert_eq!(
        file(&fs.crash(CrashModel::Strict, 0), "/a").unwrap(),
        b"durable"
    );
    handle.sync().await.unwrap();
    assert_eq!(
        file(&fs.crash(CrashModel::Strict, 0), "/a").unwrap(),
        b"durable and lost"
    );
}

#[tokio::test]
async fn synced_file_without_dir_sync_loses_its_entry() {
    let fs = SimFs::new();
    write_synced(&fs, "/a", b"data").await;
    assert_eq!(file(&fs.crash(CrashModel::Strict, 0), "/a"), None);
    fs.sync_dir(p("/")).await.unwrap();
    assert_eq!(
        file(&fs.crash(CrashModel::Strict, 0), "/a").unwrap(),
        b"data"
    );
}

#[tokio::test]
async fn dir_sync_without_file_sync_keeps_an_empty_file() {
    let fs = SimFs::new();
    let handle = fs.create(p("/a"), CreateMode::Exclusive).await.unwrap();
    handle.append(b"data").await.unwrap();
    fs.sync_dir(p("/")).await.unwrap();
    assert_eq!(file(&fs.crash(CrashModel::Strict, 0), "/a").unwrap(), b"");
}

#[tokio::test]
async fn rename_not_durable_until_dir_sync() {
    let fs = SimFs::new();
    write_synced(&fs, "/m.tmp", b"v2").await;
    fs.sync_dir(p("/")).await.unwrap();
    fs.rename(p("/m.tmp"), p("/m")).await.unwrap();
    let before = fs.crash(CrashModel::Strict, 0).tree();
    assert_eq!(before.get("/m.tmp").cloned().flatten().unwrap(), b"v2");
    assert!(!before.contains_key("/m"));
    fs.sync_dir(p("/")).await.unwrap();
    let after = fs.crash(CrashModel::Strict, 0).tree();
    assert_eq!(after.get("/m").cloned().flatten().unwrap(), b"v2");
    assert!(!after.contains_key("/m.tmp"));
}

#[tokio::test]
async fn rename_over_a_file_keeps_the_old_one_until_dir_sync() {
    let fs = SimFs::new();
    write_synced(&fs, "/m", b"v1").await;
    write_synced(&fs, "/m.tmp", b"v2").await;
    fs.sync_dir(p("/")).await.unwrap();
    fs.rename(p("/m.tmp"), p("/m")).await.unwrap();
    assert_eq!(file(&fs.crash(CrashModel::Strict, 0), "/m").unwrap(), b"v1");
    fs.sync_dir(p("/")).await.unwrap();
    assert_eq!(file(&fs.crash(CrashModel::Strict, 0), "/m").unwrap(), b"v2");
}

/// A disk with directories `/src` and `/dst`, and `/src/f` holding `x`, all durable.
async fn durable_file_in_src() -> SimFs {
    let fs = SimFs::new();
    fs.create_dir(p("/src")).await.unwrap();
    fs.create_dir(p("/dst")).await.unwrap();
    fs.sync_dir(p("/")).await.unwrap();
    write_synced(&fs, "/src/f", b"x").await;
    fs.sync_dir(p("/src")).await.unwrap();
    fs
}

/// Only `/dst/f` survives a strict crash: the move from `/src` is durable.
fn assert_moved_durably(fs: &SimFs) {
    let image = fs.crash(CrashModel::Strict, 0).tree();
    assert!(
        !image.contains_key("/src/f") && image.contains_key("/dst/f"),
        "{image:?}"
    );
}

#[tokio::test]
async fn rename_across_directories_needs_both_dir_syncs() {
    let fs = durable_file_in_src().await;
    fs.rename(p("/src/f"), p("/dst/f")).await.unwrap();

    let only_dst = fs.snapshot();
    only_dst.sync_dir(p("/dst")).await.unwrap();
    let image = only_dst.crash(CrashModel::Strict, 0).tree();
    assert!(
        image.contains_key("/src/f") && image.contains_key("/dst/f"),
        "{image:?}"
    );

    let only_src = fs.snapshot();
    only_src.sync_dir(p("/src")).await.unwrap();
    let image = only_src.crash(CrashModel::Strict, 0).tree();
    assert!(
        !image.contains_key("/src/f") && !image.contains_key("/dst/f"),
        "{image:?}"
    );

    fs.sync_dir(p("/src")).await.unwrap();
    fs.sync_dir(p("/dst")).await.unwrap();
    assert_moved_durably(&fs);
}

#[tokio::test]
async fn hard_link_not_durable_until_dir_sync_and_a_move_by_link_keeps_the_file() {
    let fs = durable_file_in_src().await;
    fs.hard_link(p("/src/f"), p("/dst/f")).await.unwrap();
    let image = fs.crash(CrashModel::Strict, 0).tree();
    assert!(!image.contains_key("/dst/f"), "{image:?}");
    assert_eq!(
        file(&fs.crash(CrashModel::Kill, 0), "/dst/f").unwrap(),
        b"x"
    );

    fs.sync_dir(p("/dst")).await.unwrap();
    fs.unlink(p("/src/f")).await.unwrap();
    // Link durable, unlink pending: every model keeps the file under one name or both.
    for model in CrashModel::ALL {
        for seed in 0..16 {
            let image = fs.crash(model, seed);
            assert_eq!(
                file(&image, "/dst/f").as_deref(),
                Some(&b"x"[..]),
                "{model:?} {seed}"
            );
        }
    }
    fs.sync_dir(p("/src")).await.unwrap();
    assert_moved_durably(&fs);
}

#[tokio::test]
async fn hard_link_is_refused_where_the_filesystem_has_none() {
    let fs = SimFs::with_options(SimFsOptions {
        no_hard_links: true,
        ..SimFsOptions::default()
    });
    write_synced(&fs, "/a", b"x").await;
    let err = fs.hard_link(p("/a"), p("/b")).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    assert!(!fs.exists(p("/b")).await.unwrap());
    // A copy of the disk keeps its options unless given others.
    assert!(fs.snapshot().hard_link(p("/a"), p("/b")).await.is_err());
    let linking = fs.snapshot_with(SimFsOptions::default());
    linking.hard_link(p("/a"), p("/b")).await.unwrap();
    assert_eq!(
        file(&linking.crash(CrashModel::Kill, 0), "/b").unwrap(),
        b"x"
    );
}

#[tokio::test]
async fn rename_noreplace_not_durable_until_dir_sync() {
    let fs = SimFs::new();
    write_synced(&fs, "/m.tmp", b"v2").await;
    fs.sync_dir(p("/")).await.unwrap();
    fs.rename_noreplace(p("/m.tmp"), p("/m")).await.unwrap();
    let before = fs.crash(CrashModel::Strict, 0).tree();
    assert_eq!(before.get("/m.tmp").cloned().flatten().unwrap(), b"v2");
    assert!(!before.contains_key("/m"), "the new name may be lost");
    fs.sync_dir(p("/")).await.unwrap();
    for model in CrashModel::ALL {
        for seed in 0..20 {
            let after = fs.crash(model, seed).tree();
            assert_eq!(
                after.get("/m").cloned().flatten().unwrap(),
                b"v2",
                "{model}"
            );
            assert!(!after.contains_key("/m.tmp"), "{model}");
        }
    }
}

/// The commit protocol: write, sync, no-replace rename, sync_dir. Once the directory is
/// synced, every model keeps the file whole under its new name; without the sync before the
/// rename, a crash can keep the name with none of the data, so the claim is about the order.
#[tokio::test]
async fn rename_noreplace_of_a_synced_file_survives_whole() {
    let bytes: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    for synced in [true, false] {
        let fs = SimFs::new();
        let handle = fs.create(p("/c.tmp"), CreateMode::Exclusive).await.unwrap();
        handle.write_at(0, &bytes).await.unwrap();
        if synced {
            handle.sync().await.unwrap();
        }
        fs.rename_noreplace(p("/c.tmp"), p("/c")).await.unwrap();
        fs.sync_dir(p("/")).await.unwrap();
        let whole = CrashModel::ALL.iter().all(|&model| {
            (0..20).all(|seed| file(&fs.crash(model, seed), "/c").as_ref() == Some(&bytes))
        });
        assert_eq!(whole, synced, "synced before the rename: {synced}");
    }
}

/// A no-replace rename pushes exactly a rename's entry ops: the same pending ops and
/// dependencies, and the same crash image under every model and seed, within one directory
/// and across two.
#[tokio::test]
async fn rename_noreplace_crashes_exactly_as_rename_does() {
    async fn history(noreplace: bool, to: &str) -> SimFs {
        let fs = SimFs::new();
        fs.create_dir(p("/d")).await.unwrap();
        fs.sync_dir(p("/")).await.unwrap();
        write_synced(&fs, "/t.tmp", b"commit").await;
        fs.create(p("/other"), CreateMode::Exclusive).await.unwrap();
        if noreplace {
            fs.rename_noreplace(p("/t.tmp"), p(to)).await.unwrap();
        } else {
            fs.rename(p("/t.tmp"), p(to)).await.unwrap();
        }
        fs.unlink(p("/other")).await.unwrap();
        fs
    }
    for to in ["/t", "/d/t"] {
        let (renamed, noreplace) = (history(false, to).await, history(true, to).await);
        assert_eq!(renamed.pending_ops(), noreplace.pending_ops(), "{to}");
        for model in CrashModel::ALL {
            for seed in 0..50 {
                assert_eq!(
                    renamed.crash(model, seed).tree(),
                    noreplace.crash(model, seed).tree(),
                    "{to} {model} {seed}"
                );
            }
        }
    }
}

/// Into a name an unlink freed, the move depends on the unlink (both touch the name), in one
/// directory and across two: no crash keeps the move without the unlink, which would show the
/// new file replacing the old one.
#[tokio::test]
async fn rename_noreplace_into_a_freed_name_survives_only_with_the_unlink() {
    for from in ["/x", "/d/x"] {
        let fs = SimFs::new();
        fs.create_dir(p("/d")).await.unwrap();
        write_synced(&fs, "/t", b"old").await;
        write_synced(&fs, from, b"new").await;
        fs.sync_dir(p("/")).await.unwrap();
        fs.sync_dir(p("/d")).await.unwrap();
        fs.unlink(p("/t")).await.unwrap();
        fs.rename_noreplace(p(from), p("/t")).await.unwrap();
        let pending = fs.pending_ops();
        let (unlink, arrival) = (pending[0].seq, pending.last().unwrap());
        assert!(arrival.deps.contains(&unlink), "{from}: {pending:?}");
        let mut without_unlink = fs.crash_plan(CrashModel::Kill, 0);
        without_unlink.survivors.remove(&unlink);
        assert!(fs.crash_with(&without_unlink).is_err(), "{from}");
    }
}

/// A refused no-replace rename changes nothing, durable or visible: no pending op, the target
/// and the source as they were; the log records it as a failed `rename_noreplace`.
#[tokio::test]
async fn rename_noreplace_refused_leaves_no_trace_but_its_log_record() {
    let fs = SimFs::new();
    write_synced(&fs, "/cur", b"old").await;
    write_synced(&fs, "/new", b"new").await;
    fs.sync_dir(p("/")).await.unwrap();
    let before = (fs.tree(), fs.pending_ops());
    let err = fs.rename_noreplace(p("/new"), p("/cur")).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!((fs.tree(), fs.pending_ops()), before);
    fs.rename_noreplace(p("/new"), p("/next")).await.unwrap();
    let log = fs.op_log();
    let last: Vec<String> = log[log.len() - 2..].iter().map(|r| r.to_string()).collect();
    assert_eq!(
        last,
        [
            format!(
                "#{} rename_noreplace /new -> /cur err AlreadyExists",
                log.len() - 2
            ),
            format!("#{} rename_noreplace /new -> /next ok", log.len() - 1),
        ]
    );
    assert!(
        OpKind::RenameNoReplace.is_mutating(),
        "a crash point, as a rename is"
    );
}

#[tokio::test]
async fn unlink_undone_by_crash_before_dir_sync() {
    let fs = SimFs::new();
    write_synced(&fs, "/a", b"keep").await;
    fs.sync_dir(p("/")).await.unwrap();
    fs.unlink(p("/a")).await.unwrap();
    assert!(!fs.exists(p("/a")).await.unwrap());
    assert_eq!(
        file(&fs.crash(CrashModel::Strict, 0), "/a").unwrap(),
        b"keep"
    );
    fs.sync_dir(p("/")).await.unwrap();
    assert_eq!(file(&fs.crash(CrashModel::Strict, 0), "/a"), None);
}

#[tokio::test]
async fn new_directory_is_lost_without_its_parents_sync() {
    let fs = SimFs::new();
    fs.create_dir_all(p("/a/b")).await.unwrap();
    write_synced(&fs, "/a/b/f", b"x").await;
    fs.sync_dir(p("/a/b")).await.unwrap();
    fs.sync_dir(p("/a")).await.unwrap();
    assert!(
        fs.crash(CrashModel::Strict, 0).tree().is_empty(),
        "/a itself is not durable"
    );
    fs.sync_dir(p("/")).await.unwrap();
    assert_eq!(
        file(&fs.crash(CrashModel::Strict, 0), "/a/b/f").unwrap(),
        b"x"
    );
}

#[tokio::test]
async fn kill_keeps_pending_data() {
    let fs = SimFs::new();
    let handle = fs.create(p("/a"), CreateMode::Exclusive).await.unwrap();
    handle.append(b"never synced").await.unwrap();
    fs.create_dir(p("/d")).await.unwrap();
    let image = fs.crash(CrashModel::Kill, 0);
    assert_eq!(image.tree(), fs.tree());
    assert!(
        image.pending_ops().is_empty(),
        "after a crash everything left is durable"
    );
}

#[tokio::test]
async fn strict_crash_keeps_only_durable_state() {
    let fs = SimFs::new();
    write_synced(&fs, "/a", b"1").await;
    fs.sync_dir(p("/")).await.unwrap();
    fs.create(p("/b"), CreateMode::Exclusive)
        .await
        .unwrap()
        .append(b"2")
        .await
        .unwrap();
    let image = fs.crash(CrashModel::Strict, 7);
    assert_eq!(image.tree().keys().collect::<Vec<_>>(), ["/a"]);
}

#[tokio::test]
async fn prefix_crash_keeps_a_prefix_of_each_files_appends() {
    let fs = SimFs::new();
    write_synced(&fs, "/log", b"").await;
    fs.sync_dir(p("/")).await.unwrap();
    let handle = fs
        .open(p("/log"), tally_sim::OpenMode::Write)
        .await
        .unwrap();
    let records: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 100 + i as usize]).collect();
    for record in &records {
        handle.append(record).await.unwrap();
    }
    let mut kept_counts = BTreeSet::new();
    for seed in 0..200 {
        let bytes = file(&fs.crash(CrashModel::Prefix, seed), "/log").unwrap();
        let k = (0..=records.len())
            .find(|&k| records[..k].concat() == bytes)
            .unwrap_or_else(|| panic!("seed {seed}: not a prefix of the appends"));
        kept_counts.insert(k);
    }
    assert_eq!(
        kept_counts.len(),
        records.len() + 1,
        "every prefix length occurs: {kept_counts:?}"
    );
}

#[tokio::test]
async fn torn_write_persists_whole_sectors_only() {
    for (model, sector) in [(CrashModel::Torn512, 512usize), (CrashModel::Torn4k, 4096)] {
        let fs = SimFs::new();
        let old = vec![0x55u8; 3 * sector];
        write_synced(&fs, "/f", &old).await;
        fs.sync_dir(p("/")).await.unwrap();
        // An unaligned write over the old bytes and past the old end.
        let offset = sector / 2;
        let new: Vec<u8> = (0..3 * sector).map(|i| 0x80 | (i % 61) as u8).collect();
        let handle = fs.open(p("/f"), tally_sim::OpenMode::Write).await.unwrap();
        handle.write_at(offset as u64, &new).await.unwrap();

        let mut fates_seen = BTreeSet::new();
        for seed in 0..100 {
            let plan = fs.crash_plan(model, seed);
            let tear = plan.tear.clone().expect("one write is pending");
            assert_eq!(tear.sector_size as usize, sector);
            let bytes = file(&fs.crash(model, seed), "/f").unwrap();
            assert_eq!(
                bytes.len(),
                offset + new.len(),
                "the write extended the file"
            );
            assert_eq!(
                &bytes[..offset],
                &old[..offset],
                "bytes before the write are untouched"
            );
            // Cut the write at sector boundaries; each piece holds one fate, whole.
            let mut pos = offset;
            for fate in &tear.fates {
                let end = ((pos / sector + 1) * sector).min(offset + new.len());
                let piece = &bytes[pos..end];
                let expected_new = &new[pos - offset..end - offset];
                let expected_old: Vec<u8> = (pos..end)
                    .map(|i| old.get(i).copied().unwrap_or(0))
                    .collect();
                match fate {
                    SectorFate::New => assert_eq!(piece, expected_new, "seed {seed}"),
                    SectorFate::Old => assert_eq!(piece, expected_old, "seed {seed}"),
                    SectorFate::Zeros => assert!(piece.iter().all(|&b| b == 0), "seed {seed}"),
                    SectorFate::Garbage => {
                        assert_ne!(piece, expected_new);
                        assert_ne!(piece, expected_old.as_slice());
                    }
                }
                fates_seen.insert(*fate);
                pos = end;
            }
            assert_eq!(pos, offset + new.len());
        }
        assert_eq!(
            fates_seen.len(),
            4,
            "{model}: every fate occurs: {fates_seen:?}"
        );
    }
}

#[tokio::test]
async fn torn_without_a_pending_write_is_strict() {
    let fs = SimFs::new();
    write_synced(&fs, "/a", b"x").await;
    fs.sync_dir(p("/")).await.unwrap();
    fs.unlink(p("/a")).await.unwrap();
    let image = fs.crash(CrashModel::Torn512, 3).tree();
    assert_eq!(image, fs.crash(CrashModel::Strict, 3).tree());
}

#[tokio::test]
async fn same_seed_gives_same_crash_image() {
    let fs = SimFs::new();
    fs.create_dir(p("/d")).await.unwrap();
    fs.sync_dir(p("/")).await.unwrap();
    for i in 0..6 {
        let handle = fs
            .create(&p("/d").join(format!("f{i}")), CreateMode::Exclusive)
            .await
            .unwrap();
        handle.append(&vec![i as u8; 700 * (i + 1)]).await.unwrap();
        if i % 2 == 0 {
            handle.sync().await.unwrap();
        }
        handle.write_at(100, &[0xee; 900]).await.unwrap();
    }
    fs.sync_dir(p("/d")).await.unwrap();
    fs.rename(p("/d/f0"), p("/d/g0")).await.unwrap();
    for model in CrashModel::ALL {
        let distinct: BTreeSet<_> = (0..20).map(|seed| fs.crash(model, seed).tree()).collect();
        for seed in 0..20 {
            assert_eq!(
                fs.crash(model, seed).tree(),
                fs.crash(model, seed).tree(),
                "{model} seed {seed}"
            );
            assert_eq!(fs.crash_plan(model, seed), fs.crash_plan(model, seed));
        }
        let random = !matches!(model, CrashModel::Strict | CrashModel::Kill);
        assert_eq!(
            distinct.len() > 1,
            random,
            "{model}: seeds vary the image iff the model is random"
        );
    }
}

#[tokio::test]
async fn crash_with_refuses_a_plan_that_is_not_dependency_closed() {
    let fs = SimFs::new();
    let handle = fs.create(p("/a"), CreateMode::Exclusive).await.unwrap();
    handle.write_at(0, b"first").await.unwrap();
    handle.write_at(2, b"second").await.unwrap();
    let pending = fs.pending_ops();
    let writes: Vec<_> = pending.iter().filter(|op| op.write.is_some()).collect();
    assert_eq!(
        writes[1].deps,
        vec![writes[0].seq],
        "overlapping writes depend on each other"
    );
    let plan = CrashPlan {
        survivors: [writes[1].seq].into(),
        tear: None,
    };
    assert_eq!(
        fs.crash_with(&plan).unwrap_err(),
        PlanError::NotClosed {
            op: writes[1].seq,
            missing: writes[0].seq
        }
    );
    let plan = CrashPlan {
        survivors: [999].into(),
        tear: None,
    };
    assert_eq!(
        fs.crash_with(&plan).unwrap_err(),
        PlanError::NotPending(999)
    );
}

#[tokio::test]
async fn sync_persists_new_entry_when_the_option_is_on() {
    for on in [false, true] {
        let fs = SimFs::with_options(SimFsOptions {
            sync_persists_new_entry: on,
            ..SimFsOptions::default()
        });
        fs.create_dir(p("/d")).await.unwrap();
        fs.sync_dir(p("/")).await.unwrap();
        write_synced(&fs, "/d/a", b"x").await;
        fs.create(p("/d/other"), CreateMode::Exclusive)
            .await
            .unwrap();
        let image = fs.crash(CrashModel::Strict, 0).tree();
        assert_eq!(image.contains_key("/d/a"), on);
        assert!(
            !image.contains_key("/d/other"),
            "only the synced file's entry"
        );
    }
}

#[tokio::test]
async fn snapshot_is_isolated_from_later_writes() {
    let fs = SimFs::new();
    let handle = fs.create(p("/a"), CreateMode::Exclusive).await.unwrap();
    handle.append(&[1; 5000]).await.unwrap();
    let snapshot = fs.snapshot();
    handle.write_at(4000, &[2; 10]).await.unwrap();
    fs.unlink(p("/a")).await.unwrap();
    assert_eq!(file(&snapshot, "/a").unwrap(), vec![1; 5000]);
    assert_eq!(
        snapshot.pending_ops().len(),
        2,
        "the snapshot keeps pending ops pending"
    );
}

#[tokio::test]
async fn op_log_records_every_call_with_its_outcome() {
    let fs = SimFs::new();
    let handle = fs.create(p("/a"), CreateMode::Exclusive).await.unwrap();
    handle.append(b"12345").await.unwrap();
    handle.sync().await.unwrap();
    fs.rename(p("/a"), p("/b")).await.unwrap();
    fs.unlink(p("/missing")).await.unwrap_err();
    let log = fs.op_log();
    let summary: Vec<_> = log
        .iter()
        .map(|r| {
            (
                r.index,
                r.kind,
                r.path.as_str(),
                r.to.as_deref(),
                r.size,
                r.outcome,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, OpKind::Create, "/a", None, None, OpOutcome::Ok),
            (1, OpKind::Append, "/a", None, Some(5), OpOutcome::Ok),
            (2, OpKind::Sync, "/a", None, None, OpOutcome::Ok),
            (3, OpKind::Rename, "/a", Some("/b"), None, OpOutcome::Ok),
            (
                4,
                OpKind::Unlink,
                "/missing",
                None,
                None,
                OpOutcome::Err(std::io::ErrorKind::NotFound)
            ),
        ]
    );
    assert_eq!(log[3].to_string(), "#3 rename /a -> /b ok");
}

// ---- subset: property test over random op sequences ----

#[derive(Clone, Debug)]
enum Step {
    Create(usize),
    Append(usize, u16),
    WriteAt(usize, u16, u16),
    Truncate(usize, u16),
    Sync(usize),
    Rename(usize, usize),
    RenameNoReplace(usize, usize),
    Unlink(usize),
    SyncDir(usize),
}

const NAMES: [&str; 6] = ["/a", "/b", "/d1/a", "/d1/b", "/d2/a", "/d2/c"];
const DIRS: [&str; 3] = ["/", "/d1", "/d2"];

fn step() -> impl Strategy<Value = Step> {
    let name = 0..NAMES.len();
    prop_oneof![
        name.clone().prop_map(Step::Create),
        (name.clone(), 1..3000u16).prop_map(|(f, n)| Step::Append(f, n)),
        (name.clone(), 0..6000u16, 1..2000u16).prop_map(|(f, o, n)| Step::WriteAt(f, o, n)),
        (name.clone(), 0..4000u16).prop_map(|(f, n)| Step::Truncate(f, n)),
        name.clone().prop_map(Step::Sync),
        (name.clone(), name.clone()).prop_map(|(a, b)| Step::Rename(a, b)),
        (name.clone(), name.clone()).prop_map(|(a, b)| Step::RenameNoReplace(a, b)),
        name.prop_map(Step::Unlink),
        (0..DIRS.len()).prop_map(Step::SyncDir),
    ]
}

/// Runs the steps, ignoring the ones that fail (a missing file, say): those are part of the
/// sequence too.
async fn run_steps(fs: &SimFs, steps: &[Step]) {
    fs.create_dir(p("/d1")).await.unwrap();
    fs.create_dir(p("/d2")).await.unwrap();
    let open = |i: usize| fs.open(p(NAMES[i]), tally_sim::OpenMode::Write);
    for step in steps {
        let _ = match *step {
            Step::Create(i) => fs.create(p(NAMES[i]), CreateMode::Truncate).await.map(drop),
            Step::Append(i, n) => match open(i).await {
                Ok(h) => h.append(&vec![i as u8 + 1; n as usize]).await.map(drop),
                Err(e) => Err(e),
            },
            Step::WriteAt(i, o, n) => match open(i).await {
                Ok(h) => {
                    h.write_at(o as u64, &vec![0xa0 + i as u8; n as usize])
                        .await
                }
                Err(e) => Err(e),
            },
            Step::Truncate(i, n) => match open(i).await {
                Ok(h) => h.set_len(n as u64).await,
                Err(e) => Err(e),
            },
            Step::Sync(i) => match open(i).await {
                Ok(h) => h.sync().await,
                Err(e) => Err(e),
            },
            Step::Rename(a, b) => fs.rename(p(NAMES[a]), p(NAMES[b])).await,
            Step::RenameNoReplace(a, b) => fs.rename_noreplace(p(NAMES[a]), p(NAMES[b])).await,
            Step::Unlink(i) => fs.unlink(p(NAMES[i])).await,
            Step::SyncDir(d) => fs.sync_dir(p(DIRS[d])).await,
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn subset_crash_is_dependency_closed(
        steps in proptest::collection::vec(step(), 1..40),
        seed in any::<u64>(),
    ) {
        let fs = SimFs::new();
        futures_lite_block_on(run_steps(&fs, &steps));
        let pending = fs.pending_ops();
        let plan = fs.crash_plan(CrashModel::Subset, seed);
        for op in pending.iter().filter(|op| plan.survivors.contains(&op.seq)) {
            for dep in &op.deps {
                prop_assert!(plan.survivors.contains(dep), "op {} kept without its dependency {}", op.seq, dep);
            }
        }
        // The image is durable state plus exactly the survivors: keeping every op gives the
        // visible state, and the image itself has nothing pending.
        let image = fs.crash_with(&plan).unwrap();
        prop_assert!(image.pending_ops().is_empty());
        let all = CrashPlan { survivors: pending.iter().map(|op| op.seq).collect(), tear: None };
        prop_assert_eq!(fs.crash_with(&all).unwrap().tree(), fs.tree());
        // Dropping a dependency of a survivor makes the plan refused.
        if let Some(op) = pending.iter().find(|op| plan.survivors.contains(&op.seq) && !op.deps.is_empty()) {
            let mut broken = plan.clone();
            broken.survivors.remove(&op.deps[0]);
            prop_assert!(fs.crash_with(&broken).is_err());
        }
        // Dependencies stay inside one object and point backwards.
        let target_of: std::collections::BTreeMap<u64, PendingTarget> =
            pending.iter().map(|op| (op.seq, op.target)).collect();
        for op in &pending {
            for dep in &op.deps {
                prop_assert!(*dep < op.seq);
                prop_assert_eq!(target_of[dep], op.target);
            }
        }
    }

    #[test]
    fn no_model_loses_a_durable_name(
        steps in proptest::collection::vec(step(), 1..40),
        seed in any::<u64>(),
    ) {
        // Once every directory is synced, no model can lose a name: whatever a model keeps of
        // the pending data, every path of the strict image is in its image.
        let fs = SimFs::new();
        futures_lite_block_on(run_steps(&fs, &steps));
        futures_lite_block_on(async {
            for dir in DIRS { fs.sync_dir(p(dir)).await.unwrap(); }
        });
        let strict = fs.crash(CrashModel::Strict, seed).tree();
        for model in CrashModel::ALL {
            let image = fs.crash(model, seed).tree();
            prop_assert_eq!(image.keys().collect::<Vec<_>>(), strict.keys().collect::<Vec<_>>(), "{}", model);
        }
    }
}

/// Drives a future that never waits (every `SimFs` call completes at once) without a runtime.
fn futures_lite_block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a SimFs call waited"),
    }
}

#[tokio::test]
async fn observer_sees_every_call_and_may_take_crash_images() {
    use std::sync::{Arc, Mutex};
    let fs = SimFs::new();
    let seen: Arc<Mutex<Vec<(u64, usize)>>> = Arc::default();
    let sink = seen.clone();
    fs.set_observer(move |disk, record| {
        let files = disk.crash(CrashModel::Strict, 0).tree().len();
        sink.lock().unwrap().push((record.index, files));
    });
    write_synced(&fs, "/a", b"x").await;
    fs.sync_dir(p("/")).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    // create, write, sync, sync_dir: the file is durable only after the last.
    assert_eq!(seen, vec![(0, 0), (1, 0), (2, 0), (3, 1)]);
}

#[tokio::test]
async fn crash_with_refuses_a_malformed_tear() {
    use tally_sim::Tear;
    let fs = SimFs::new();
    let handle = fs.create(p("/a"), CreateMode::Exclusive).await.unwrap();
    handle.write_at(100, &[1; 1000]).await.unwrap();
    let pending = fs.pending_ops();
    let create = pending.iter().find(|op| op.write.is_none()).unwrap().seq;
    let write = pending.iter().find(|op| op.write.is_some()).unwrap().seq;
    let tear = |seq, sector_size, fates: usize| Tear {
        seq,
        sector_size,
        fates: vec![SectorFate::New; fates],
        garbage_seed: 0,
    };
    let plan = |survivors: &[u64], tear| CrashPlan {
        survivors: survivors.iter().copied().collect(),
        tear: Some(tear),
    };
    assert_eq!(
        fs.crash_with(&plan(&[create], tear(create, 512, 1)))
            .unwrap_err(),
        PlanError::TearNotAWrite(create)
    );
    assert_eq!(
        fs.crash_with(&plan(&[], tear(write, 512, 3))).unwrap_err(),
        PlanError::TearNotSurviving(write)
    );
    assert_eq!(
        fs.crash_with(&plan(&[write], tear(write, 1000, 3)))
            .unwrap_err(),
        PlanError::SectorSize(1000)
    );
    assert_eq!(
        fs.crash_with(&plan(&[write], tear(write, 512, 2)))
            .unwrap_err(),
        PlanError::FateCount {
            expected: 3,
            got: 2
        }
    );
    // Bytes 100..1100 span sectors 0, 1 and 2 of 512 bytes; all-new is the whole write.
    let image = fs
        .crash_with(&plan(&[create, write], tear(write, 512, 3)))
        .unwrap();
    assert_eq!(
        file(&image, "/a").unwrap(),
        fs.tree()["/a"].clone().unwrap()
    );
}
