//! The external reader reads what the pipeline publishes, and each way a version can fail to
//! read whole is caught: a torn, garbled or missing file, a torn commit, a gap, a `tally_seq`
//! twice, stats that disagree, a reader feature it lacks; and versions are owed only within
//! retention.

use std::path::Path;

use tally_pipeline::Pipeline;
use tally_sim::{CreateMode, Fs, FsFile, SimClock, SimFs, World};

use super::{DeltaCache, DeltaError, DeltaLog, read_log, read_version};
use crate::oracle::ROOT;
use crate::runtime::run_seeded;
use crate::workload::{DELTA_RETENTION_MS, Workload, batch, fingerprint};

/// A store holding every row of the small workload, published and merged once, with removed
/// files kept for `retention_ms`.
async fn store(retention_ms: u64) -> (SimFs, u64) {
    let mut workload = Workload::small();
    workload.retention_ms = retention_ms;
    let disk = SimFs::new();
    let world = World::new(disk.clone(), SimClock::default());
    let (p, _) = Pipeline::open(world, ROOT, workload.config())
        .await
        .unwrap();
    for source in &workload.sources {
        for (first, rows, last) in source.part_ranges() {
            let part = batch(&source.name, first, rows, workload.payload_bytes, 0);
            let print = Some(fingerprint(&source.name));
            p.ingest_part_of(&source.name, print, first, part, last)
                .await
                .unwrap();
        }
    }
    p.flush().await.unwrap();
    (disk, workload.total_rows())
}

async fn log(fs: &SimFs) -> DeltaLog {
    read_log(fs, Path::new(ROOT), &DeltaCache::default())
        .await
        .unwrap()
        .expect("a table")
}

async fn newest(fs: &SimFs) -> Result<super::VersionRead, DeltaError> {
    let cache = DeltaCache::default();
    let log = read_log(fs, Path::new(ROOT), &cache)
        .await?
        .expect("a table");
    read_version(fs, Path::new(ROOT), &log, log.newest(), &cache).await
}

async fn put(fs: &SimFs, path: &str, bytes: &[u8]) {
    let file = fs
        .create(Path::new(path), CreateMode::Truncate)
        .await
        .unwrap();
    file.write_at(0, bytes).await.unwrap();
}

/// The paths of the newest version's files (from the pipeline's own view, for damaging them).
async fn newest_files(fs: &SimFs) -> Vec<String> {
    let log = log(fs).await;
    let files = log.files_at(log.newest()).unwrap();
    files.keys().map(|p| format!("{ROOT}/{p}")).collect()
}

/// Appends an action line to a new commit after the newest.
async fn commit_after(fs: &SimFs, lines: &[String]) {
    let version = log(fs).await.newest() + 1;
    let text = lines.join("\n") + "\n";
    put(
        fs,
        &format!("{ROOT}/_delta_log/{version:020}.json"),
        text.as_bytes(),
    )
    .await;
}

#[test]
fn the_reader_reads_every_published_row_and_every_version_within_retention() {
    run_seeded(0, async {
        let (disk, rows) = store(DELTA_RETENTION_MS).await;
        let read = newest(&disk).await.unwrap();
        assert_eq!(read.seqs.len() as u64, rows);
        let log = log(&disk).await;
        assert!(log.newest() >= 3, "several versions: {}", log.newest());
        let cache = DeltaCache::default();
        for version in 0..=log.newest() {
            assert!(log.within_retention(version, DELTA_RETENTION_MS));
            read_version(&disk, Path::new(ROOT), &log, version, &cache)
                .await
                .unwrap();
        }
    });
}

#[test]
fn with_no_retention_only_versions_whose_files_were_never_removed_are_owed() {
    run_seeded(0, async {
        let (disk, _) = store(0).await;
        let log = log(&disk).await;
        assert!(log.within_retention(log.newest(), 0));
        let owed: Vec<u64> = (0..log.newest())
            .filter(|&v| log.within_retention(v, 0))
            .collect();
        assert!(
            owed.len() < log.newest() as usize,
            "the merge removed files"
        );
        // A version before the merge is owed with a week's retention, not with none; and once
        // its removed files are deleted it no longer reads.
        let before = (0..log.newest())
            .rev()
            .find(|&v| !log.within_retention(v, 0))
            .unwrap();
        assert!(log.within_retention(before, DELTA_RETENTION_MS));
        let err = read_version(&disk, Path::new(ROOT), &log, before, &DeltaCache::default())
            .await
            .unwrap_err();
        assert!(matches!(err, DeltaError::MissingFile { .. }), "{err}");
    });
}

#[test]
fn a_torn_table_file_is_caught() {
    run_seeded(0, async {
        let (disk, _) = store(0).await;
        let path = newest_files(&disk).await.remove(0);
        let bytes = disk.read(Path::new(&path)).await.unwrap();
        put(&disk, &path, &bytes[..bytes.len() / 2]).await;
        let err = newest(&disk).await.unwrap_err();
        assert!(matches!(err, DeltaError::WrongSize { .. }), "{err}");
    });
}

#[test]
fn a_garbled_table_file_of_the_right_size_is_caught() {
    run_seeded(0, async {
        let (disk, _) = store(0).await;
        let path = newest_files(&disk).await.remove(0);
        let len = disk.read(Path::new(&path)).await.unwrap().len();
        put(&disk, &path, &vec![0; len]).await;
        let err = newest(&disk).await.unwrap_err();
        assert!(matches!(err, DeltaError::BadFile { .. }), "{err}");
    });
}

#[test]
fn a_missing_table_file_is_caught() {
    run_seeded(0, async {
        let (disk, _) = store(0).await;
        let path = newest_files(&disk).await.remove(0);
        disk.unlink(Path::new(&path)).await.unwrap();
        let err = newest(&disk).await.unwrap_err();
        assert!(matches!(err, DeltaError::MissingFile { .. }), "{err}");
    });
}

#[test]
fn a_torn_commit_and_a_gap_in_the_log_are_caught() {
    run_seeded(0, async {
        let (disk, _) = store(0).await;
        let newest_version = log(&disk).await.newest();
        let path = format!("{ROOT}/_delta_log/{newest_version:020}.json");
        let bytes = disk.read(Path::new(&path)).await.unwrap();
        let torn = disk.snapshot();
        put(&torn, &path, &bytes[..bytes.len() / 2]).await;
        let err = newest(&torn).await.unwrap_err();
        assert!(matches!(err, DeltaError::Commit { .. }), "{err}");

        let gap = disk.snapshot();
        gap.unlink(Path::new(&format!("{ROOT}/_delta_log/{:020}.json", 1)))
            .await
            .unwrap();
        let err = newest(&gap).await.unwrap_err();
        assert_eq!(
            err,
            DeltaError::Gap {
                missing: 1,
                newest: newest_version
            }
        );
    });
}

#[test]
fn a_row_in_two_files_and_stats_that_disagree_are_caught() {
    run_seeded(0, async {
        let (disk, _) = store(0).await;
        let path = newest_files(&disk).await.remove(0);
        let bytes = disk.read(Path::new(&path)).await.unwrap();
        put(&disk, &format!("{ROOT}/data/copy.parquet"), &bytes).await;
        let twice = disk.snapshot();
        let add = |records: u64| {
            format!(
                r#"{{"add":{{"path":"data/copy.parquet","partitionValues":{{}},"size":{},"modificationTime":0,"dataChange":true,"stats":"{{\"numRecords\":{records}}}"}}}}"#,
                bytes.len()
            )
        };
        let records = {
            let cache = DeltaCache::default();
            let log = read_log(&disk, Path::new(ROOT), &cache)
                .await
                .unwrap()
                .unwrap();
            log.files_at(log.newest())
                .unwrap()
                .values()
                .next()
                .unwrap()
                .records
                .unwrap()
        };
        commit_after(&twice, &[add(records)]).await;
        let err = newest(&twice).await.unwrap_err();
        assert!(matches!(err, DeltaError::DuplicateSeq { .. }), "{err}");

        commit_after(&disk, &[add(records + 1)]).await;
        let err = newest(&disk).await.unwrap_err();
        assert!(
            matches!(&err, DeltaError::BadFile { why, .. } if why.contains("stats")),
            "{err}"
        );
    });
}

#[test]
fn a_reader_feature_the_reader_lacks_is_refused() {
    run_seeded(0, async {
        let (disk, _) = store(0).await;
        let protocol = r#"{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}}"#;
        commit_after(&disk, &[protocol.to_owned()]).await;
        let err = newest(&disk).await.unwrap_err();
        assert!(matches!(err, DeltaError::Unsupported { .. }), "{err}");
    });
}

#[test]
fn a_log_without_protocol_or_metadata_is_not_a_table() {
    run_seeded(0, async {
        let disk = SimFs::new();
        disk.create_dir_all(Path::new(&format!("{ROOT}/_delta_log")))
            .await
            .unwrap();
        put(&disk, &format!("{ROOT}/_delta_log/{:020}.json", 0), b"").await;
        let err = newest(&disk).await.unwrap_err();
        assert!(matches!(err, DeltaError::NoMetadata { .. }), "{err}");
    });
}

mod clauses {
    //! The invariants built on the reader each fail on what they are about.

    use super::*;
    use crate::oracle::external::{
        delta_rows_match, newest_version_complete, versions_within_retention_complete,
    };
    use crate::oracle::invariant::Invariant;
    use crate::workload::RowRead;

    fn row(n: u64, seq: u64) -> RowRead {
        RowRead {
            key: format!("s#{n}"),
            value: 0,
            payload: String::new(),
            seq,
            extra: vec![],
        }
    }

    fn read(version: u64, seqs: &[i64]) -> super::super::VersionRead {
        super::super::VersionRead {
            version,
            files: 1,
            seqs: seqs.to_vec(),
        }
    }

    #[test]
    fn delta_rows_match_fails_on_a_missing_or_extra_row_or_another_version() {
        let published = [row(0, 10), row(1, 11), row(2, 12)];
        delta_rows_match(Some(&read(4, &[10, 11, 12])), 4, &published).unwrap();
        let cases = [
            (Some(read(4, &[10, 12])), "s#1"),
            (Some(read(4, &[10, 11, 12, 13])), "tally_seq 13"),
            (Some(read(3, &[10, 11, 12])), ""),
            (None, ""),
        ];
        for (seen, shown) in cases {
            let breach = delta_rows_match(seen.as_ref(), 4, &published).unwrap_err();
            assert_eq!(breach.invariant, Invariant::DeltaRowsMatch, "{breach}");
            if !shown.is_empty() {
                assert_eq!(breach.rows, vec![shown.to_owned()], "{breach}");
            }
        }
    }

    #[test]
    fn delta_version_complete_fails_on_a_torn_newest_file_and_passes_on_no_table() {
        run_seeded(0, async {
            let root = Path::new(ROOT);
            let cache = DeltaCache::default();
            let empty = SimFs::new();
            let none = newest_version_complete(&empty, root, &cache, "before recovery").await;
            assert!(none.unwrap().is_none());
            let (disk, _) = store(0).await;
            newest_version_complete(&disk, root, &cache, "after recovery")
                .await
                .unwrap();
            let path = newest_files(&disk).await.remove(0);
            put(&disk, &path, b"").await;
            let breach = newest_version_complete(&disk, root, &cache, "before recovery")
                .await
                .unwrap_err();
            assert_eq!(breach.invariant, Invariant::DeltaVersionComplete);
            assert!(breach.detail.starts_with("before recovery"), "{breach}");
        });
    }

    #[test]
    fn delta_time_travel_fails_when_a_removed_file_within_retention_is_gone() {
        run_seeded(0, async {
            let root = Path::new(ROOT);
            let (disk, _) = store(DELTA_RETENTION_MS).await;
            let log = log(&disk).await;
            let cache = DeltaCache::default();
            let read =
                versions_within_retention_complete(&disk, root, &log, DELTA_RETENTION_MS, &cache)
                    .await
                    .unwrap();
            assert_eq!(read, log.newest(), "every older version is owed");
            // Delete the files the newest version no longer has: what the vacuum twin does.
            let now = log.files_at(log.newest()).unwrap();
            for path in disk.tree().keys().filter(|p| p.ends_with(".parquet")) {
                let relative = path.trim_start_matches(&format!("{ROOT}/"));
                if !now.contains_key(relative) {
                    disk.unlink(Path::new(path)).await.unwrap();
                }
            }
            let breach =
                versions_within_retention_complete(&disk, root, &log, DELTA_RETENTION_MS, &cache)
                    .await
                    .unwrap_err();
            assert_eq!(breach.invariant, Invariant::DeltaTimeTravel, "{breach}");
            // With no retention, none of those versions is owed.
            versions_within_retention_complete(&disk, root, &log, 0, &cache)
                .await
                .unwrap();
        });
    }
}
