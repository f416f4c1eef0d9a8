//! Delta checkpoints (protocol "Checkpoint"): written every `checkpoint_interval` commits,
//! read on open instead of the commits before them, never trusted when they do not check, and
//! safe to crash in, on the simulated disk and on a real one.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tally_pipeline::delta::{self, checkpoint};
use tally_pipeline::verify::check_store;
use tally_pipeline::{Config, Layout, Manifest, RecoveryOptions, layout};
use tally_sim::{CrashModel, Fs, FsFile, OpenMode, RealFs, SimFs, SystemClock, World};

use std::path::Path;

use support::{ROOT, key, rows, small_config};
use tally_pipeline::Pipeline;

fn config(interval: u64) -> Config {
    Config {
        checkpoint_interval: interval,
        ..small_config()
    }
}

/// Ingests and flushes `sources` sources of 6 rows each, one at a time: one commit (or more,
/// with merges) per source.
async fn fill<F: Fs>(
    fs: &F,
    root: &Path,
    config: Config,
    sources: std::ops::Range<u64>,
) -> Manifest {
    let (p, _) = open_at(fs, root, config).await.unwrap();
    for s in sources {
        let source = format!("s{s}");
        p.ingest(&source, rows(&source, 0, 6)).await.unwrap();
        p.flush().await.unwrap();
    }
    p.manifest().await
}

fn expected_keys(sources: std::ops::Range<u64>) -> BTreeSet<String> {
    sources
        .flat_map(|s| (0..6).map(move |r| key(&format!("s{s}"), r)))
        .collect()
}

async fn open_at<F: Fs>(
    fs: &F,
    root: &Path,
    config: Config,
) -> tally_pipeline::Result<(Pipeline<F, SystemClock>, tally_pipeline::RecoveryReport)> {
    Pipeline::open(World::new(fs.clone(), SystemClock), root, config).await
}

async fn open<F: Fs>(
    fs: &F,
    config: Config,
) -> tally_pipeline::Result<(Pipeline<F, SystemClock>, tally_pipeline::RecoveryReport)> {
    open_at(fs, Path::new(ROOT), config).await
}

/// Opens, and reads every published row: their keys (each must be there once) and the count
/// recovery reported.
async fn keys_after_open<F: Fs>(fs: &F, root: &Path, config: Config) -> (BTreeSet<String>, u64) {
    let (p, report) = open_at(fs, root, config).await.unwrap();
    let manifest = p.manifest().await;
    let mut keys = Vec::new();
    tally_pipeline::read::published_rows(fs, &Layout::new(root), &manifest.files, 64, |_, b| {
        let col = b.column_by_name("key").unwrap();
        let col = col
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        keys.extend(col.iter().map(|k| k.unwrap().to_string()));
        Ok(())
    })
    .await
    .unwrap();
    let unique: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(unique.len(), keys.len(), "a row twice");
    (unique, report.published_rows)
}

async fn hint<F: Fs>(fs: &F, root: &Path) -> Option<String> {
    checkpoint::read_hint(fs, &Layout::new(root))
        .await
        .unwrap()
        .map(|b| String::from_utf8(b).unwrap())
}

#[tokio::test]
async fn a_checkpoint_is_written_every_interval_and_open_starts_from_it() {
    let fs = SimFs::new();
    let table = fill(&fs, Path::new(ROOT), config(3), 0..8).await;
    let layout = Layout::new(ROOT);
    let versions = checkpoint::checkpoint_versions(&fs, &layout).await.unwrap();
    let multiples: Vec<u64> = (1..=table.version).filter(|v| v % 3 == 0).collect();
    assert_eq!(versions, multiples, "one checkpoint per multiple of 3");
    let newest = *versions.last().unwrap();
    let replayed = delta::replay(&fs, &layout).await.unwrap();
    assert_eq!(
        replayed.checkpoint.as_ref().map(|s| s.version),
        Some(newest)
    );
    assert!(replayed.bad_checkpoints.is_empty());
    assert_eq!(
        replayed.table, table,
        "the checkpoint and the commits after it"
    );
    let seal = replayed.checkpoint.unwrap();
    assert_eq!(
        hint(&fs, Path::new(ROOT)).await,
        Some(format!("{{\"version\":{newest},\"size\":{}}}", seal.rows))
    );
    let (p, report) = open(&fs, config(3)).await.unwrap();
    assert_eq!(report.checkpoint, Some(newest));
    assert!(report.is_clean(), "{report}");
    assert_eq!(p.manifest().await, table);
    drop(p);
    assert_eq!(
        keys_after_open(&fs, Path::new(ROOT), config(3)).await.0,
        expected_keys(0..8)
    );
    assert!(
        check_store(&fs, &layout, true)
            .await
            .unwrap()
            .is_consistent()
    );
}

#[tokio::test]
async fn no_checkpoint_is_written_with_an_interval_of_zero() {
    let fs = SimFs::new();
    fill(&fs, Path::new(ROOT), config(0), 0..8).await;
    let layout = Layout::new(ROOT);
    assert!(
        checkpoint::checkpoint_versions(&fs, &layout)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(hint(&fs, Path::new(ROOT)).await, None);
}

#[tokio::test]
async fn the_table_read_from_a_checkpoint_equals_the_replay_from_commit_0() {
    let fs = SimFs::new();
    fill(&fs, Path::new(ROOT), config(2), 0..9).await;
    let layout = Layout::new(ROOT);
    for version in checkpoint::checkpoint_versions(&fs, &layout).await.unwrap() {
        let c = checkpoint::read(&fs, &layout, version)
            .await
            .unwrap()
            .unwrap();
        let commits = delta::replay_commits_through(&fs, &layout, version)
            .await
            .unwrap();
        // Besides the table, a checkpoint says through when it may have dropped tombstones.
        let mut expected = commits.table.clone();
        expected.tombstones_dropped_through_ms = c.seal.tombstones_kept_after_ms;
        assert_eq!(c.table, expected, "checkpoint {version}");
        let through = delta::replay_through(&fs, &layout, version).await.unwrap();
        assert_eq!(through.checkpoint.map(|s| s.version), Some(version));
        assert_eq!(through.table, expected, "time travel to {version}");
    }
}

/// Cuts the newest checkpoint in half.
async fn tear_newest<F: Fs>(fs: &F, root: &Path) -> u64 {
    let layout = Layout::new(root);
    let newest = *checkpoint::checkpoint_versions(fs, &layout)
        .await
        .unwrap()
        .last()
        .unwrap();
    let file = fs
        .open(&layout.checkpoint(newest), OpenMode::Write)
        .await
        .unwrap();
    let len = file.len().await.unwrap();
    file.set_len(len / 2).await.unwrap();
    file.sync().await.unwrap();
    newest
}

async fn a_torn_checkpoint_is_set_aside_and_the_hint_repaired<F: Fs>(fs: &F, root: &Path) {
    let table = fill(fs, root, config(3), 0..8).await;
    let layout = Layout::new(root);
    let torn = tear_newest(fs, root).await;
    let replayed = delta::replay(fs, &layout).await.unwrap();
    assert_eq!(replayed.bad_checkpoints.len(), 1);
    assert_eq!(replayed.bad_checkpoints[0].version, torn);
    assert_eq!(
        replayed.checkpoint.as_ref().map(|s| s.version),
        Some(torn - 3)
    );
    assert_eq!(
        replayed.table.files, table.files,
        "the commits still hold the truth"
    );
    let verified = check_store(fs, &layout, false).await.unwrap();
    assert!(verified.is_consistent(), "{:?}", verified.problems);
    assert!(
        verified
            .pending_repairs
            .iter()
            .any(|r| r.contains("checkpoint.parquet"))
            && verified
                .pending_repairs
                .iter()
                .any(|r| r.contains("_last_checkpoint")),
        "{:?}",
        verified.pending_repairs
    );
    let (p, report) = open_at(fs, root, config(3)).await.unwrap();
    assert_eq!(report.quarantined.len(), 1, "{report}");
    assert!(
        report.quarantined[0]
            .file
            .ends_with(&layout::checkpoint_name(torn))
    );
    assert!(report.last_checkpoint_repaired.is_some(), "{report}");
    assert_eq!(report.checkpoint, Some(torn - 3));
    assert_eq!(p.manifest().await.files, table.files);
    drop(p);
    assert!(!fs.exists(&layout.checkpoint(torn)).await.unwrap());
    assert!(
        hint(fs, root)
            .await
            .unwrap()
            .starts_with(&format!("{{\"version\":{},", torn - 3))
    );
    let (keys, rows) = keys_after_open(fs, root, config(3)).await;
    assert_eq!((keys, rows), (expected_keys(0..8), 48));
    let verified = check_store(fs, &layout, true).await.unwrap();
    assert!(
        verified.is_consistent() && verified.pending_repairs.is_empty(),
        "{verified:?}"
    );
}

#[tokio::test]
async fn a_torn_checkpoint_is_ignored_set_aside_and_its_hint_repaired_on_simfs() {
    a_torn_checkpoint_is_set_aside_and_the_hint_repaired(&SimFs::new(), Path::new(ROOT)).await;
}

#[tokio::test]
async fn a_torn_checkpoint_is_ignored_set_aside_and_its_hint_repaired_on_a_real_disk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    a_torn_checkpoint_is_set_aside_and_the_hint_repaired(&RealFs, &root).await;
}

#[tokio::test]
async fn a_wrong_or_torn_last_checkpoint_is_harmless_and_repaired() {
    let fs = SimFs::new();
    let table = fill(&fs, Path::new(ROOT), config(3), 0..8).await;
    let layout = Layout::new(ROOT);
    let good = hint(&fs, Path::new(ROOT)).await.unwrap();
    for wrong in ["{\"version\":5,\"si", "{\"version\":5,\"size\":3}", ""] {
        let path = layout.delta_log_dir().join(layout::LAST_CHECKPOINT);
        tally_pipeline::commit::replace_file(
            &fs,
            &layout.delta_log_dir(),
            layout::LAST_CHECKPOINT,
            wrong.as_bytes(),
        )
        .await
        .unwrap();
        let replayed = delta::replay(&fs, &layout).await.unwrap();
        assert_eq!(replayed.table, table, "hint {wrong:?}");
        assert!(replayed.bad_checkpoints.is_empty());
        let (_, report) = open(&fs, config(3)).await.unwrap();
        assert!(report.last_checkpoint_repaired.is_some(), "hint {wrong:?}");
        assert_eq!(
            hint(&fs, Path::new(ROOT)).await.as_deref(),
            Some(good.as_str())
        );
        fs.unlink(&path).await.unwrap();
        let (_, report) = open(&fs, config(3)).await.unwrap();
        assert!(
            report.last_checkpoint_repaired.is_some(),
            "a missing hint is written"
        );
        assert_eq!(
            hint(&fs, Path::new(ROOT)).await.as_deref(),
            Some(good.as_str())
        );
    }
}

#[tokio::test]
async fn expired_tombstones_are_dropped_at_the_checkpoint_and_in_memory_at_once() {
    let fs = SimFs::new();
    let mut c = config(4);
    c.recovery = RecoveryOptions {
        retention: Duration::ZERO,
        ..RecoveryOptions::default()
    };
    let (p, _) = open(&fs, c.clone()).await.unwrap();
    let layout = Layout::new(ROOT);
    for s in 0..12 {
        let source = format!("s{s}");
        p.ingest(&source, rows(&source, 0, 6)).await.unwrap();
        p.flush().await.unwrap();
        let memory = p.manifest().await;
        // In memory, always what an open would replay.
        assert_eq!(
            delta::replay(&fs, &layout).await.unwrap().table,
            memory,
            "after s{s}"
        );
    }
    let memory = p.manifest().await;
    let newest = *checkpoint::checkpoint_versions(&fs, &layout)
        .await
        .unwrap()
        .last()
        .unwrap();
    let at_checkpoint = checkpoint::read(&fs, &layout, newest)
        .await
        .unwrap()
        .unwrap();
    let commits = delta::replay_commits_through(&fs, &layout, newest)
        .await
        .unwrap();
    assert!(
        at_checkpoint.table.tombstones.len() < commits.table.tombstones.len(),
        "the merges' tombstones expired and were vacuumed: {} kept of {}",
        at_checkpoint.table.tombstones.len(),
        commits.table.tombstones.len()
    );
    assert!(
        memory.tombstones.len()
            < delta::replay_commits_through(&fs, &layout, u64::MAX)
                .await
                .unwrap()
                .table
                .tombstones
                .len()
    );
    drop(p);
    let verified = check_store(&fs, &layout, true).await.unwrap();
    assert!(
        verified.is_consistent() && verified.pending_repairs.is_empty(),
        "{verified:?}"
    );
    assert_eq!(
        keys_after_open(&fs, Path::new(ROOT), c).await.0,
        expected_keys(0..12)
    );
}

/// A sealed checkpoint of `table` bound to commit `table.version` of the log on `fs`, written
/// over the one there.
async fn forge<F: Fs>(fs: &F, table: &Manifest) {
    let layout = Layout::new(ROOT);
    let commit = fs.read(&layout.commit(table.version)).await.unwrap();
    let crc = checkpoint::commit_seal(&commit).unwrap();
    let (bytes, _) = checkpoint::encode(table, &crc, i64::MIN, 0).unwrap();
    let _ = fs.unlink(&layout.checkpoint(table.version)).await;
    let file = fs
        .create(
            &layout.checkpoint(table.version),
            tally_sim::CreateMode::Truncate,
        )
        .await
        .unwrap();
    file.write_at(0, &bytes).await.unwrap();
    file.sync().await.unwrap();
}

#[tokio::test]
async fn a_checkpoint_of_another_commit_is_not_used() {
    let fs = SimFs::new();
    fill(&fs, Path::new(ROOT), config(3), 0..8).await;
    let layout = Layout::new(ROOT);
    let newest = *checkpoint::checkpoint_versions(&fs, &layout)
        .await
        .unwrap()
        .last()
        .unwrap();
    // The checkpoint of the version before, renamed: sealed and whole, but made from
    // another commit (what a log rolled back and rewritten past it would leave).
    let older = delta::replay_commits_through(&fs, &layout, newest - 1)
        .await
        .unwrap()
        .table;
    let commit = fs.read(&layout.commit(newest - 1)).await.unwrap();
    let (bytes, _) =
        checkpoint::encode(&older, &checkpoint::commit_seal(&commit).unwrap(), 0, 0).unwrap();
    let bad = checkpoint::decode(bytes, newest - 1).unwrap();
    assert_eq!(bad.table.files, older.files);
    assert_eq!(bad.table.tombstones, older.tombstones);
    forge(&fs, &older).await;
    let path = layout.checkpoint(newest - 1);
    let bytes = fs.read(&path).await.unwrap();
    fs.unlink(&path).await.unwrap();
    fs.unlink(&layout.checkpoint(newest)).await.unwrap();
    let file = fs
        .create(&layout.checkpoint(newest), tally_sim::CreateMode::Truncate)
        .await
        .unwrap();
    file.write_at(0, &bytes).await.unwrap();
    let replayed = delta::replay(&fs, &layout).await.unwrap();
    assert_eq!(
        replayed.bad_checkpoints.len(),
        1,
        "{:?}",
        replayed.bad_checkpoints
    );
    assert_ne!(replayed.checkpoint.map(|s| s.version), Some(newest));
    let mut from_commits = delta::replay_commits_through(&fs, &layout, u64::MAX)
        .await
        .unwrap()
        .table;
    from_commits.tombstones_dropped_through_ms = replayed.table.tombstones_dropped_through_ms;
    assert_eq!(replayed.table, from_commits);
}

#[tokio::test]
async fn verify_reports_a_sealed_checkpoint_no_commit_made() {
    let fs = SimFs::new();
    fill(&fs, Path::new(ROOT), config(3), 0..8).await;
    let layout = Layout::new(ROOT);
    let newest = *checkpoint::checkpoint_versions(&fs, &layout)
        .await
        .unwrap()
        .last()
        .unwrap();
    let mut table = delta::replay_commits_through(&fs, &layout, newest)
        .await
        .unwrap()
        .table;
    assert!(
        check_store(&fs, &layout, false)
            .await
            .unwrap()
            .is_consistent()
    );
    // Negative control: what only a bug could write (the seal holds, the state is not the
    // commits'): a source's ledger grown.
    table.sources.values_mut().next().unwrap().complete ^= true;
    forge(&fs, &table).await;
    let verified = check_store(&fs, &layout, false).await.unwrap();
    assert!(
        verified
            .problems
            .iter()
            .any(|p| p.contains("the commits through")),
        "{:?}",
        verified.problems
    );
}

/// After a crash at any point of a workload that writes checkpoints: what Delta engines read
/// is readable (no torn checkpoint under a checkpoint's name, no hint naming a missing or
/// bad one) before and after recovery, and recovery keeps every acknowledged row.
#[tokio::test]
async fn every_crash_point_while_checkpointing_leaves_a_table_engines_and_tally_can_open() {
    for model in CrashModel::ALL {
        let disk = SimFs::new();
        let points = Arc::new(Mutex::new(Vec::new()));
        let acked = Arc::new(Mutex::new(0usize));
        {
            let (points, acked) = (points.clone(), acked.clone());
            disk.set_observer(move |disk, op| {
                let in_log = op.path.contains("checkpoint")
                    || op.to.as_ref().is_some_and(|t| t.contains("checkpoint"));
                if op.kind.is_mutating() && in_log {
                    points.lock().unwrap().push((
                        op.to_string(),
                        disk.crash(model, op.index),
                        *acked.lock().unwrap(),
                    ));
                }
            });
        }
        let (p, _) = open(&disk, config(2)).await.unwrap();
        for s in 0..6u64 {
            let source = format!("s{s}");
            p.ingest(&source, rows(&source, 0, 6)).await.unwrap();
            *acked.lock().unwrap() += 1;
            p.flush().await.unwrap();
        }
        drop(p);
        disk.set_observer(|_, _| {});
        let points = std::mem::take(&mut *points.lock().unwrap());
        assert!(points.len() > 10, "{model}: {} crash points", points.len());
        for (op, image, acked) in points {
            engine_readable(&image)
                .await
                .unwrap_or_else(|e| panic!("{model}, crash after {op}: before recovery: {e}"));
            let (keys, _) = keys_after_open(&image, Path::new(ROOT), config(2)).await;
            assert!(
                keys.is_superset(&expected_keys(0..acked as u64)),
                "{model}, crash after {op}"
            );
            engine_readable(&image)
                .await
                .unwrap_or_else(|e| panic!("{model}, crash after {op}: after recovery: {e}"));
            let tree = image.tree();
            let (_, again) = open(&image, config(2)).await.unwrap();
            assert!(
                again.is_clean() && image.tree() == tree,
                "{model}, crash after {op}: {again}"
            );
        }
    }
}

/// What breaks Delta engines (interop REPORT §8): a checkpoint under its final name that is
/// not whole, or a `_last_checkpoint` naming a checkpoint that is missing or not whole.
async fn engine_readable(fs: &SimFs) -> Result<(), String> {
    let layout = Layout::new(ROOT);
    for v in checkpoint::checkpoint_versions(fs, &layout).await.unwrap() {
        checkpoint::read(fs, &layout, v)
            .await
            .unwrap()
            .map_err(|why| format!("checkpoint {v}: {why}"))?;
    }
    if let Some(h) = hint(fs, Path::new(ROOT)).await {
        let v: serde_like::Hint = serde_like::parse(&h).ok_or(format!("hint {h:?}"))?;
        checkpoint::read(fs, &layout, v.version)
            .await
            .unwrap()
            .map_err(|why| format!("hint names checkpoint {}: {why}", v.version))?;
    }
    Ok(())
}

/// `_last_checkpoint`'s version, read without a JSON library (tally-tests has none).
mod serde_like {
    pub struct Hint {
        pub version: u64,
    }
    pub fn parse(text: &str) -> Option<Hint> {
        let rest = text.strip_prefix("{\"version\":")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some(Hint {
            version: digits.parse().ok()?,
        })
    }
}

#[tokio::test]
async fn a_real_disk_store_opens_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    let world = || World::new(RealFs, SystemClock);
    let (p, _) = tally_pipeline::Pipeline::open(world(), &root, config(3))
        .await
        .unwrap();
    for s in 0..8 {
        let source = format!("s{s}");
        p.ingest(&source, rows(&source, 0, 6)).await.unwrap();
        p.flush().await.unwrap();
    }
    let table = p.manifest().await;
    drop(p);
    let layout = Layout::new(&root);
    assert!(
        !checkpoint::checkpoint_versions(&RealFs, &layout)
            .await
            .unwrap()
            .is_empty()
    );
    let (p, report) = tally_pipeline::Pipeline::open(world(), &root, config(3))
        .await
        .unwrap();
    assert!(report.checkpoint.is_some() && report.is_clean(), "{report}");
    assert_eq!(p.manifest().await, table);
    assert_eq!(p.snapshot().await.rows, 48);
}
