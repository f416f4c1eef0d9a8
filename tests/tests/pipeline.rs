//! The pipeline's promises, one claim per test, on the simulated disk.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use tally_faults::SlowSyncFs;
use tally_pipeline::{Error, Layout, layout};
use tally_sim::{CreateMode, Fs, FsFile, OpenMode, SimFs};

use support::{ROOT, key, open, rows, rows_on_disk, small_config};

#[tokio::test]
async fn acknowledged_rows_are_published_exactly_once_after_flush() {
    let fs = SimFs::new();
    let (p, report) = open(&fs, small_config()).await.unwrap();
    assert_eq!(report.manifest_version, 0);
    let mut expected = BTreeSet::new();
    for s in 0..6 {
        let source = format!("s{s}");
        let ack = p.ingest(&source, rows(&source, 0, 9)).await.unwrap();
        assert_eq!(ack.rows_written, 9);
        expected.extend((0..9).map(|r| key(&source, r)));
    }
    let flushed = p.flush().await.unwrap();
    assert!(flushed.segments_staged >= 1);
    assert!(
        flushed.merges >= 1,
        "the small config cascades: {flushed:?}"
    );
    let snapshot = p.snapshot().await;
    assert_eq!(snapshot.rows, 54);
    let found = rows_on_disk(&fs, &p).await;
    assert_eq!(found.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(found.values().all(|seqs| seqs.len() == 1));
    let seqs: BTreeSet<u64> = found.values().flatten().copied().collect();
    assert_eq!(seqs.len(), 54, "sequence numbers are unique");
}

#[tokio::test]
async fn published_files_cascade_through_levels_conserving_rows() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    for s in 0..20 {
        let source = format!("src{s}");
        p.ingest(&source, rows(&source, 0, 12)).await.unwrap();
        p.flush().await.unwrap();
    }
    let snapshot = p.snapshot().await;
    assert_eq!(snapshot.rows, 240);
    let levels: BTreeSet<u32> = snapshot.files.iter().map(|f| f.level).collect();
    assert!(
        levels.len() >= 2 && levels.iter().any(|&l| l >= 2),
        "levels {levels:?}"
    );
    // In sequence order, levels never increase and ranges never overlap.
    for pair in snapshot.files.windows(2) {
        assert!(pair[0].level >= pair[1].level);
        assert!(pair[0].seq_max < pair[1].seq_min);
    }
    let stats = p.stats();
    let final_bytes: u64 = snapshot.files.iter().map(|f| f.bytes).sum();
    assert!(stats.merges > 0);
    // Each row is written once per level at most.
    let levels = u64::from(p.config().max_level) + 1;
    assert!(
        stats.table_rows_written <= levels * snapshot.rows,
        "{} rows written for {} rows in the table",
        stats.table_rows_written,
        snapshot.rows
    );
    assert!(
        stats.table_rows_written > snapshot.rows,
        "merges rewrote rows"
    );
    assert!(
        stats.table_bytes_written <= (u64::from(p.config().max_level) + 1) * final_bytes * 2,
        "write amplification: {} written for {} live",
        stats.table_bytes_written,
        final_bytes
    );
    let found = rows_on_disk(&fs, &p).await;
    assert_eq!(found.len(), 240);
    assert!(found.values().all(|s| s.len() == 1));
}

#[tokio::test]
async fn reingesting_an_acknowledged_source_is_a_no_op() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    p.ingest("a", rows("a", 0, 5)).await.unwrap();
    let again = p.ingest("a", rows("a", 0, 5)).await.unwrap();
    assert_eq!(
        (again.rows_written, again.rows_already_acknowledged),
        (0, 5)
    );
    assert!(again.source_complete);
    drop(p);
    let (p, _) = open(&fs, small_config()).await.unwrap();
    let ops = fs.op_count();
    let after_reopen = p.ingest("a", rows("a", 0, 5)).await.unwrap();
    assert_eq!(after_reopen.rows_written, 0);
    assert_eq!(fs.op_count(), ops, "a no-op touches nothing");
    p.flush().await.unwrap();
    let again = p.ingest("a", rows("a", 0, 5)).await.unwrap();
    assert_eq!(again.rows_written, 0, "still a no-op once published");
    assert_eq!(rows_on_disk(&fs, &p).await.len(), 5);
}

#[tokio::test]
async fn an_interrupted_source_resumes_without_loss_or_duplicates() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    p.ingest_part("file", 0, rows("file", 0, 10), false)
        .await
        .unwrap();
    p.ingest_part("file", 10, rows("file", 10, 10), false)
        .await
        .unwrap();
    drop(p); // the run is killed here
    let crashed = fs.crash(tally_sim::CrashModel::Strict, 0);
    let (p, _) = open(&crashed, small_config()).await.unwrap();
    let state = p.source_state("file").await;
    assert_eq!((state.rows, state.complete), (20, false));
    // The re-run sends the whole source again; only the missing tail is stored.
    let ack = p
        .ingest_part("file", 0, rows("file", 0, 30), true)
        .await
        .unwrap();
    assert_eq!((ack.rows_written, ack.rows_already_acknowledged), (10, 20));
    assert!(ack.source_complete);
    p.flush().await.unwrap();
    let found = rows_on_disk(&crashed, &p).await;
    assert_eq!(found.len(), 30);
    assert!(found.values().all(|s| s.len() == 1));
}

#[tokio::test]
async fn a_part_beyond_the_acknowledged_rows_is_refused() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    p.ingest_part("f", 0, rows("f", 0, 4), false).await.unwrap();
    let err = p
        .ingest_part("f", 6, rows("f", 6, 4), false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SourceGap {
                acknowledged: 4,
                first_row: 6,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(p.source_state("f").await.rows, 4);
}

#[tokio::test]
async fn a_batch_with_another_schema_is_refused_and_nothing_is_written() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    p.ingest("a", rows("a", 0, 3)).await.unwrap();
    let other = arrow::array::RecordBatch::try_from_iter([(
        "key",
        std::sync::Arc::new(arrow::array::Int32Array::from(vec![1, 2])) as _,
    )])
    .unwrap();
    let ops = fs.op_count();
    let err = p.ingest("b", other.clone()).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::SchemaMismatch { .. }));
    assert!(
        message.contains("\"b\"") && message.contains("key: Int32"),
        "{message}"
    );
    assert_eq!(fs.op_count(), ops, "nothing written");
    assert_eq!(p.source_state("b").await.rows, 0);

    // The schema survives a restart, from the log and then from the manifest.
    drop(p);
    let (p, _) = open(&fs, small_config()).await.unwrap();
    assert!(matches!(
        p.ingest("b", other.clone()).await,
        Err(Error::SchemaMismatch { .. })
    ));
    p.flush().await.unwrap();
    drop(p);
    let (p, _) = open(&fs, small_config()).await.unwrap();
    assert!(matches!(
        p.ingest("b", other).await,
        Err(Error::SchemaMismatch { .. })
    ));
}

#[tokio::test]
async fn a_column_a_delta_table_cannot_hold_is_refused_before_anything_is_written() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    let before = fs.tree();
    let unsigned = arrow::array::RecordBatch::try_from_iter([(
        "count",
        std::sync::Arc::new(arrow::array::UInt32Array::from(vec![1u32])) as _,
    )])
    .unwrap();
    let err = p.ingest("x", unsigned.clone()).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidBatch { .. }) && err.to_string().contains("\"count\""),
        "{err}"
    );
    assert_eq!(fs.tree(), before, "nothing written");
    // Once the columns are fixed, another type is a mismatch like any other.
    p.ingest("a", rows("a", 0, 3)).await.unwrap();
    assert!(matches!(
        p.ingest("y", unsigned).await,
        Err(Error::SchemaMismatch { .. })
    ));
}

#[tokio::test]
async fn the_sequence_column_name_is_reserved() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    let batch = arrow::array::RecordBatch::try_from_iter([(
        tally_pipeline::SEQ_COLUMN,
        std::sync::Arc::new(arrow::array::UInt64Array::from(vec![1u64])) as _,
    )])
    .unwrap();
    assert!(matches!(
        p.ingest("x", batch).await,
        Err(Error::InvalidBatch { .. })
    ));
}

#[tokio::test]
async fn concurrent_callers_share_fsyncs() {
    let fs = SlowSyncFs::new(SimFs::new(), Duration::from_millis(2));
    let (p, _) = open(&fs, small_config()).await.unwrap();
    let callers = 32;
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let p = p.clone();
            tokio::spawn(async move {
                let source = format!("c{i}");
                p.ingest(&source, rows(&source, 0, 2)).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().rows_written, 2);
    }
    let stats = p.stats();
    assert_eq!(stats.parts_committed, callers);
    assert!(
        stats.group_commits * 4 <= callers,
        "{} group commits for {callers} callers",
        stats.group_commits
    );
}

#[tokio::test]
async fn sequence_numbers_are_never_reissued_after_a_crash() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    let first = p.ingest("a", rows("a", 0, 5)).await.unwrap().seq.unwrap();
    drop(p);
    // Lose everything not durable, then continue: new numbers start past the reservation.
    let crashed = fs.crash(tally_sim::CrashModel::Strict, 0);
    let (p, _) = open(&crashed, small_config()).await.unwrap();
    let second = p.ingest("b", rows("b", 0, 5)).await.unwrap().seq.unwrap();
    assert!(
        second.start > first.end,
        "{first:?} then {second:?}: a gap, never a reuse"
    );
}

async fn append_raw<F: Fs>(fs: &F, path: &Path, bytes: &[u8]) {
    let file = fs.open(path, OpenMode::Write).await.unwrap();
    let len = file.len().await.unwrap();
    file.write_at(len, bytes).await.unwrap();
    file.sync().await.unwrap();
}

#[tokio::test]
async fn a_torn_log_tail_is_truncated_reported_and_recovery_is_idempotent() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    p.ingest("a", rows("a", 0, 3)).await.unwrap();
    drop(p);
    let layout = Layout::new(ROOT);
    // Half a frame: a length, a checksum, and too few bytes.
    append_raw(
        &fs,
        &layout.segment_log(1),
        &[40, 0, 0, 0, 1, 2, 3, 4, 9, 9],
    )
    .await;
    let (p, report) = open(&fs, small_config()).await.unwrap();
    assert_eq!(report.torn_tails.len(), 1, "{report}");
    assert_eq!(report.torn_tails[0].bytes, 10);
    assert_eq!(
        report.torn_tails[0].file,
        "_tally/log/00000000000000000001.log"
    );
    assert_eq!(rows_on_disk(&fs, &p).await.len(), 3);
    drop(p);
    let tree = fs.tree();
    let (_, again) = open(&fs, small_config()).await.unwrap();
    assert!(
        again.is_clean(),
        "second recovery changed something: {again}"
    );
    assert_eq!(fs.tree(), tree, "recovering twice changes nothing");
}

/// Replaces the file at `path` with `bytes`, durably: damage done after the fact.
async fn overwrite<F: Fs>(fs: &F, path: &Path, bytes: &[u8]) {
    let file = fs.create(path, CreateMode::Truncate).await.unwrap();
    file.write_at(0, bytes).await.unwrap();
    file.sync().await.unwrap();
}

async fn corrupt_manifest<F: Fs>(fs: &F, version: u64) {
    let path = Layout::new(ROOT).commit(version);
    let mut bytes = fs.read(&path).await.unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x55;
    overwrite(fs, &path, &bytes).await;
}

#[tokio::test]
async fn a_corrupt_manifest_is_quarantined_and_the_previous_version_used_once_the_loss_is_accepted()
{
    let fs = SimFs::new();
    let mut config = tally_pipeline::Config {
        merge_fan_in: 10,
        ..small_config()
    };
    let (p, _) = open(&fs, config.clone()).await.unwrap();
    p.ingest("a", rows("a", 0, 3)).await.unwrap();
    p.flush().await.unwrap();
    p.ingest("b", rows("b", 0, 3)).await.unwrap();
    p.flush().await.unwrap();
    let version = p.snapshot().await.version;
    assert_eq!(version, 2);
    drop(p);
    corrupt_manifest(&fs, version).await;
    // Without accepting the loss the open refuses (tests/tests/damage.rs). With it, the
    // previous version's files still exist (the newer one only added a file), so opening
    // succeeds on it and reports the quarantine. The newer version's file is set aside, not
    // deleted: it may hold rows only the unreadable manifest knew about.
    assert!(matches!(
        open(&fs, config.clone()).await,
        Err(Error::Damaged(_))
    ));
    config.recovery.accept_loss = true;
    let (p, report) = open(&fs, config.clone()).await.unwrap();
    assert_eq!(report.rolled_back.as_ref().unwrap().rows_at_risk, 3);
    assert_eq!(report.manifest_version, version - 1);
    let moved: Vec<(&str, &str)> = report
        .quarantined
        .iter()
        .map(|q| (q.file.as_str(), q.reason.as_str()))
        .collect();
    assert_eq!(
        moved,
        [
            (
                "data/L0-00000000000000000002.parquet",
                "referenced by no readable commit: rolled back to version 1"
            ),
            ("_delta_log/00000000000000000002.json", "checksum mismatch"),
        ],
        "{report}"
    );
    for q in &report.quarantined {
        assert!(fs.exists(&Path::new(ROOT).join(&q.moved_to)).await.unwrap());
    }
    assert_eq!(rows_on_disk(&fs, &p).await.len(), 3);
    drop(p);
    // Quarantine is not a brick: the next open is clean.
    let (_, again) = open(&fs, config).await.unwrap();
    assert!(again.is_clean(), "{again}");
}

#[tokio::test]
async fn a_corrupt_manifest_whose_predecessor_lost_its_files_fails_closed() {
    let fs = SimFs::new();
    // No retention: the merge's inputs are deleted as soon as its commit is durable.
    let mut no_retention = small_config();
    no_retention.recovery.retention = std::time::Duration::ZERO;
    let (p, _) = open(&fs, no_retention.clone()).await.unwrap();
    p.ingest("a", rows("a", 0, 3)).await.unwrap();
    p.flush().await.unwrap();
    p.ingest("b", rows("b", 0, 3)).await.unwrap();
    p.flush().await.unwrap(); // stages "b", then merges both files: version 3
    let version = p.snapshot().await.version;
    assert_eq!(version, 3);
    drop(p);
    corrupt_manifest(&fs, version).await;
    let err = open(&fs, no_retention.clone()).await.unwrap_err();
    assert!(matches!(err, Error::Damaged(_)), "{err}");
    // Accepting the loss rolls back to version 2, whose files the merge removed.
    let mut config = no_retention;
    config.recovery.accept_loss = true;
    let err = open(&fs, config).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::MissingRows {
                acknowledged: 6,
                found: 0,
                ..
            }
        ),
        "{err}"
    );
    // The merged file, which holds every row, was not deleted as an orphan: it is set aside.
    let kept = fs
        .list_dir(&Layout::new(ROOT).quarantine_dir())
        .await
        .unwrap();
    assert!(kept.iter().any(|e| e.name.starts_with("L1-")), "{kept:?}");
}

#[tokio::test]
async fn a_rollback_over_a_damaged_merge_commit_finds_its_inputs_kept_for_retention() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    p.ingest("a", rows("a", 0, 3)).await.unwrap();
    p.flush().await.unwrap();
    p.ingest("b", rows("b", 0, 3)).await.unwrap();
    p.flush().await.unwrap(); // stages "b", then merges both files: version 3
    assert_eq!(p.snapshot().await.version, 3);
    drop(p);
    corrupt_manifest(&fs, 3).await;
    let mut config = small_config();
    config.recovery.accept_loss = true;
    let (p, report) = open(&fs, config).await.unwrap();
    assert_eq!(report.manifest_version, 2, "{report}");
    assert_eq!(
        rows_on_disk(&fs, &p).await.len(),
        6,
        "every row is still read"
    );
    assert_eq!(p.source_state("a").await.rows, 3);
    assert_eq!(p.source_state("b").await.rows, 3);
}

#[tokio::test]
async fn orphans_and_temp_files_are_removed() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    p.ingest("a", rows("a", 0, 3)).await.unwrap();
    p.flush().await.unwrap();
    drop(p);
    let layout = Layout::new(ROOT);
    for path in [
        layout.table_file(0, 99),
        layout::temp_path(&layout.table_file(1, 100)),
        layout.commit_temp(7),
    ] {
        fs.create(&path, CreateMode::Exclusive).await.unwrap();
    }
    let (p, report) = open(&fs, small_config()).await.unwrap();
    assert_eq!(
        report.orphans_removed,
        vec!["data/L0-00000000000000000099.parquet"]
    );
    assert_eq!(report.temp_files_removed.len(), 2, "{report}");
    assert_eq!(rows_on_disk(&fs, &p).await.len(), 3);
    // Ids are not reused after an orphan.
    p.ingest("b", rows("b", 0, 3)).await.unwrap();
    p.flush().await.unwrap();
    assert!(p.snapshot().await.files.iter().all(|f| f.id > 99));
}

/// Rewrites the newest commit, whole and with a valid seal, after `edit` changed the state it
/// leaves: damage that only the table's shape can reveal.
async fn rewrite_manifest<F: Fs>(fs: &F, edit: impl FnOnce(&mut tally_pipeline::Manifest)) {
    let layout = Layout::new(ROOT);
    let mut manifest = tally_pipeline::read::newest_manifest(fs, &layout)
        .await
        .unwrap();
    let before = tally_pipeline::delta::replay_through(fs, &layout, manifest.version - 1)
        .await
        .unwrap()
        .table;
    edit(&mut manifest);
    let bytes = tally_pipeline::delta::commit::encode(Some(&before), &manifest, 0).unwrap();
    overwrite(fs, &layout.commit(manifest.version), &bytes).await;
}

#[tokio::test]
async fn a_manifest_no_publish_could_write_is_refused_not_opened_over() {
    for (what, edit) in [
        (
            "not below next_file_id",
            Box::new(|m: &mut tally_pipeline::Manifest| m.next_file_id = m.files[0].id)
                as Box<dyn FnOnce(&mut tally_pipeline::Manifest)>,
        ),
        (
            "cannot hold its",
            Box::new(|m: &mut tally_pipeline::Manifest| m.files[0].seq_max = m.files[0].seq_min),
        ),
    ] {
        let fs = SimFs::new();
        let (p, _) = open(&fs, small_config()).await.unwrap();
        p.ingest("a", rows("a", 0, 7)).await.unwrap();
        p.flush().await.unwrap();
        drop(p);
        rewrite_manifest(&fs, edit).await;
        let report = tally_pipeline::verify::check_store(&fs, &Layout::new(ROOT), false)
            .await
            .unwrap();
        assert!(
            report.problems.iter().any(|p| p.contains(what)),
            "verify names it: {:?}",
            report.problems
        );
        let tree = fs.tree();
        let err = open(&fs, small_config()).await.unwrap_err();
        assert!(
            matches!(err, Error::Corrupt { .. }) && err.to_string().contains(what),
            "{err}"
        );
        assert!(err.to_string().contains("Way out"), "{err}");
        assert_eq!(fs.tree(), tree, "refusing changes nothing");
    }
}

#[tokio::test]
async fn a_missing_published_file_fails_closed_with_counts() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    p.ingest("a", rows("a", 0, 7)).await.unwrap();
    p.flush().await.unwrap();
    let file = p.snapshot().await.files[0].clone();
    drop(p);
    fs.unlink(&Layout::new(ROOT).table_file(file.level, file.id))
        .await
        .unwrap();
    let tree = fs.tree();
    let err = open(&fs, small_config()).await.unwrap_err();
    match &err {
        Error::MissingRows {
            acknowledged,
            found,
            ..
        } => assert_eq!((*acknowledged, *found), (7, 0)),
        other => panic!("expected MissingRows, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("missing") && message.contains("Way out"),
        "{message}"
    );
    assert_eq!(fs.tree(), tree, "failing closed changes nothing");
    assert!(
        open(&fs, small_config()).await.is_err(),
        "and keeps failing"
    );
}

#[tokio::test]
async fn a_truncated_log_fails_closed_with_counts() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    p.ingest("a", rows("a", 0, 4)).await.unwrap();
    p.ingest("b", rows("b", 0, 6)).await.unwrap();
    drop(p);
    let log = Layout::new(ROOT).segment_log(1);
    let file = fs.open(&log, OpenMode::Write).await.unwrap();
    let len = file.len().await.unwrap();
    file.set_len(len - 5).await.unwrap();
    file.sync().await.unwrap();
    let err = open(&fs, small_config()).await.unwrap_err();
    match &err {
        Error::MissingRows {
            acknowledged,
            found,
            ..
        } => assert_eq!((*acknowledged, *found), (10, 4)),
        other => panic!("expected MissingRows, got {other}"),
    }
    assert!(err.to_string().contains("source \"b\""), "{err}");
}

#[tokio::test]
async fn a_malformed_sequence_reservation_is_quarantined_not_fatal() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    let first = p.ingest("a", rows("a", 0, 4)).await.unwrap().seq.unwrap();
    drop(p);
    let seq = Layout::new(ROOT).seq_file();
    let file = fs.create(&seq, CreateMode::Truncate).await.unwrap();
    file.write_at(0, b"garbage").await.unwrap();
    file.sync().await.unwrap();
    let (p, report) = open(&fs, small_config()).await.unwrap();
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(report.seq_reservation_repaired, Some((0, first.end)));
    let next = p.ingest("b", rows("b", 0, 1)).await.unwrap().seq.unwrap();
    assert!(next.start >= first.end);
}

/// Negative control for the merge's runtime conservation check: a published file swapped for
/// one with fewer rows (behind the pipeline's back) must stop the merge, publish nothing, and
/// poison the pipeline.
#[tokio::test]
async fn a_merge_over_a_file_that_lost_rows_fails_closed() {
    let fs = SimFs::new();
    let config = tally_pipeline::Config {
        merge_fan_in: 2,
        ..small_config()
    };
    let (p, _) = open(&fs, config.clone()).await.unwrap();
    p.ingest("a", rows("a", 0, 6)).await.unwrap();
    p.flush().await.unwrap();
    let victim = p.snapshot().await.files[0].clone();
    // A valid table file with fewer rows, made by a pipeline on another disk.
    let other = SimFs::new();
    let (q, _) = open(&other, config.clone()).await.unwrap();
    q.ingest("a", rows("a", 0, 2)).await.unwrap();
    q.flush().await.unwrap();
    let donor = q.snapshot().await.files[0].clone();
    let layout = Layout::new(ROOT);
    let bytes = other
        .read(&layout.table_file(donor.level, donor.id))
        .await
        .unwrap();
    let file = fs
        .create(
            &layout.table_file(victim.level, victim.id),
            CreateMode::Truncate,
        )
        .await
        .unwrap();
    file.write_at(0, &bytes).await.unwrap();
    file.sync().await.unwrap();

    let before = p.snapshot().await.version;
    p.ingest("b", rows("b", 0, 6)).await.unwrap();
    let err = p.flush().await.unwrap_err();
    // The swapped file's bytes are not those recorded at commit: the checksum check refuses
    // it before its rows are counted (a file without a recorded checksum meets the row count).
    assert!(matches!(err, Error::DamagedTable { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&layout::table_file_name(victim.level, victim.id)),
        "{err}"
    );
    assert_eq!(
        p.snapshot().await.version,
        before + 1,
        "staging published, the merge did not"
    );
    assert!(matches!(
        p.ingest("c", rows("c", 0, 1)).await,
        Err(Error::Poisoned { .. })
    ));
}

#[tokio::test]
async fn background_maintenance_stages_while_callers_ingest() {
    let fs = SlowSyncFs::new(SimFs::new(), Duration::from_millis(1));
    let (p, _) = open(&fs, small_config()).await.unwrap();
    let maintenance = p.spawn_maintenance();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let p = p.clone();
            tokio::spawn(async move {
                let source = format!("w{w}");
                for part in 0..10u64 {
                    p.ingest_part(&source, part * 5, rows(&source, part * 5, 5), part == 9)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let in_background = p.stats();
    p.stop_maintenance();
    maintenance.await.unwrap().unwrap();
    p.flush().await.unwrap();
    assert!(
        in_background.segments_staged > 0,
        "nothing was staged in the background: {in_background:?}"
    );
    assert!(p.stats().merges > 0);
    let found = rows_on_disk(&fs, &p).await;
    assert_eq!(found.len(), 200);
    assert!(found.values().all(|s| s.len() == 1));
}

fn print(checksum: u64) -> Option<tally_pipeline::Fingerprint> {
    Some(tally_pipeline::Fingerprint {
        bytes: 100,
        checksum,
    })
}

#[tokio::test]
async fn a_part_from_other_content_is_refused_and_nothing_of_it_written() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    p.ingest_part_of("s", print(1), 0, rows("s", 0, 5), false)
        .await
        .unwrap();
    let err = p
        .ingest_part_of("s", print(2), 5, rows("s", 5, 5), true)
        .await
        .expect_err("another content is not a continuation");
    assert!(
        matches!(
            err,
            Error::SourceChanged {
                acknowledged: 5,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("Way out"), "{err}");
    // Not even as a retry of rows already held, and not without a fingerprint.
    for (first, fingerprint) in [(0, print(2)), (5, None)] {
        let again = p.ingest_part_of("s", fingerprint, first, rows("s", first, 5), true);
        assert!(matches!(again.await, Err(Error::SourceChanged { .. })));
    }
    let state = p.source_state("s").await;
    assert_eq!(
        (state.rows, state.complete, state.fingerprint),
        (5, false, print(1))
    );
    // The pipeline goes on: the same content continues the source.
    p.ingest_part_of("s", print(1), 5, rows("s", 5, 5), true)
        .await
        .unwrap();
    assert_eq!(p.source_state("s").await.rows, 10);
}

#[tokio::test]
async fn a_source_fingerprint_survives_reopen_from_the_log_and_from_the_manifest() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    p.ingest_part_of("live", print(7), 0, rows("live", 0, 3), false)
        .await
        .unwrap();
    drop(p);
    let (p, _) = open(&fs, small_config()).await.unwrap();
    assert_eq!(
        p.source_state("live").await.fingerprint,
        print(7),
        "from the log"
    );
    p.flush().await.unwrap();
    assert_eq!(p.snapshot().await.rows, 3);
    drop(p);
    let (p, _) = open(&fs, small_config()).await.unwrap();
    assert_eq!(
        p.source_state("live").await.fingerprint,
        print(7),
        "from the manifest"
    );
    let err = p.ingest_part_of("live", print(8), 3, rows("live", 3, 1), true);
    assert!(matches!(err.await, Err(Error::SourceChanged { .. })));
}

#[tokio::test]
async fn an_empty_part_neither_fixes_nor_must_match_the_table_columns() {
    use arrow::array::{RecordBatch, StringArray};
    use std::sync::Arc;
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    let other = RecordBatch::try_from_iter([(
        "other",
        Arc::new(StringArray::from(Vec::<&str>::new())) as _,
    )])
    .unwrap();
    p.ingest("empty", other.clone()).await.unwrap();
    assert!(p.schema().is_none(), "an empty source decided the columns");
    drop(p);
    let (p, _) = open(&fs, small_config()).await.unwrap();
    assert!(
        p.schema().is_none(),
        "recovery took the columns of an empty part"
    );
    p.ingest("s", rows("s", 0, 4)).await.unwrap();
    p.ingest("empty-after", other).await.unwrap();
    p.flush().await.unwrap();
    assert_eq!(p.snapshot().await.rows, 4);
    assert!(p.source_state("empty").await.complete);
}

/// Two maintenance callers: the first fails to sync its commit and poisons the pipeline while
/// the second, past its own poison check, waits for the maintenance lock. The second must not
/// then redo the step and publish, nor return Ok (`../shared/repro` "poisoned-flush").
#[tokio::test]
async fn a_caller_waiting_for_maintenance_neither_writes_nor_succeeds_once_poisoned() {
    use tally_faults::{CallKind, Effect, Fault, FaultFs, FaultPlan, Trigger};
    let disk = SimFs::new();
    // Syncs take time, so the callers interleave. Commit 0 is recovery's; commit 1's sync fails.
    let plan = FaultPlan {
        faults: vec![Fault {
            at: Trigger::Nth {
                kind: CallKind::Sync,
                path: "*_commit_*".into(),
                n: 2,
            },
            effect: Effect::FailSync,
        }],
        ..FaultPlan::default()
    };
    let faulty = FaultFs::new(disk.clone(), plan).unwrap();
    let fs = SlowSyncFs::new(faulty, Duration::from_millis(1));
    let (p, _) = open(&fs, small_config()).await.unwrap();
    p.ingest("a", rows("a", 0, 4)).await.unwrap();
    let (first, second) = tokio::join!(p.flush(), p.flush());
    let first = first.expect_err("the first caller's commit sync fails");
    assert!(!matches!(first, Error::Poisoned { .. }), "{first}");
    let second = second.expect_err("a poisoned pipeline reports no success");
    assert!(matches!(second, Error::Poisoned { .. }), "{second}");
    let commits: Vec<String> = disk
        .list_dir(&Path::new(ROOT).join("_delta_log"))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .filter(|name| name.ends_with(".json"))
        .collect();
    assert_eq!(
        commits,
        ["00000000000000000000.json"],
        "only recovery's commit"
    );
}

#[tokio::test]
async fn a_segment_this_process_wrote_is_staged_from_memory_and_one_left_behind_from_its_log() {
    let fs = SimFs::new();
    let config = tally_pipeline::Config {
        merge_fan_in: 100,
        ..small_config()
    };
    let (p, _) = open(&fs, config.clone()).await.unwrap();
    p.ingest_part("a", 0, rows("a", 0, 12), false)
        .await
        .unwrap();
    p.ingest_part("a", 12, rows("a", 12, 12), true)
        .await
        .unwrap();
    // The segment's rows are in the log; spoil every byte of it past the header: staging from
    // memory does not read it back, so what is published is exactly what was acknowledged.
    let layout = Layout::new(ROOT);
    let mut spoiled = 0;
    for entry in fs.list_dir(&layout.log_dir()).await.unwrap() {
        let path = layout.log_dir().join(&entry.name);
        if entry.name.ends_with(".log") {
            let len = fs.metadata(&path).await.unwrap().len;
            overwrite(&fs, &path, &vec![0xA5; len as usize][..]).await;
            spoiled += 1;
        }
    }
    assert!(spoiled >= 1);
    p.flush().await.unwrap();
    let stats = p.stats();
    assert!(stats.segments_staged >= 1, "{stats:?}");
    assert_eq!(stats.segments_staged_from_log, 0, "{stats:?}");
    let found = rows_on_disk(&fs, &p).await;
    assert_eq!(found.len(), 24);
    assert!(found.keys().all(|k| k.starts_with("a#")));
    drop(p);
    // A segment the next process finds (acknowledged, never staged) is read back from the log.
    let (p, _) = open(&fs, config.clone()).await.unwrap();
    p.ingest("b", rows("b", 0, 5)).await.unwrap();
    drop(p);
    let (p, report) = open(&fs, config).await.unwrap();
    assert!(report.is_clean(), "{report}");
    p.flush().await.unwrap();
    assert!(p.stats().segments_staged_from_log >= 1, "{:?}", p.stats());
    let found = rows_on_disk(&fs, &p).await;
    assert_eq!(found.len(), 29);
    assert!(found.values().all(|seqs| seqs.len() == 1));
}

/// A write to a segment's table file encoded from memory fails before the segment is staged:
/// the file is dropped, the segment staged from its log instead, and the pipeline goes on —
/// nothing lost, nothing twice. (A failure finishing the file at staging time fails the stage
/// step, as any stage write does.)
#[tokio::test]
async fn a_failed_write_to_a_file_staged_from_memory_falls_back_to_the_log() {
    use tally_faults::{CallKind, Effect, ErrorKind, Fault, FaultFs, FaultPlan, Trigger};
    let disk = SimFs::new();
    let plan = FaultPlan {
        faults: vec![Fault {
            at: Trigger::Nth {
                kind: CallKind::Write,
                path: "*/data/*.parquet.tmp".into(),
                n: 1,
            },
            effect: Effect::Error {
                error: ErrorKind::Enospc,
                sticky: false,
            },
        }],
        ..FaultPlan::default()
    };
    let fs = FaultFs::new(disk.clone(), plan).unwrap();
    // Segments of several parts, and row groups small enough that a segment's encoded bytes
    // reach its file when it is sealed, before it is staged.
    let config = tally_pipeline::Config {
        segment_bytes: 30_000,
        merge_fan_in: 100,
        table: tally_pipeline::TableOptions {
            row_group_rows: 200,
            zstd_level: 1,
        },
        ..small_config()
    };
    let (p, _) = open(&fs, config).await.unwrap();
    for part in 0..6u64 {
        p.ingest_part("a", part * 1000, rows("a", part * 1000, 1000), part == 5)
            .await
            .unwrap();
    }
    p.flush().await.unwrap();
    let stats = p.stats();
    assert_eq!(stats.segments_staged_from_log, 1, "{stats:?}");
    assert!(stats.segments_staged > 1, "{stats:?}");
    let found = rows_on_disk(&fs, &p).await;
    assert_eq!(found.len(), 6000);
    assert!(found.values().all(|seqs| seqs.len() == 1));
    // No temp of the dropped file is left behind.
    let data = disk.list_dir(&Layout::new(ROOT).data_dir()).await.unwrap();
    assert!(data.iter().all(|e| !e.name.ends_with(".tmp")), "{data:?}");
}
