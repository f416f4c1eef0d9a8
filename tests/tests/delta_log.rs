//! The Delta log is input, not trusted (issue 16, item 8): a commit naming a path outside
//! `data/` never makes tally read, move or delete anything outside the root, whether it is met
//! by an open, a vacuum or a rollback; and a commit is created only if its version is free.
#![cfg(not(madsim))]
#![allow(
    clippy::disallowed_methods,
    reason = "the tests tamper with a store on the real disk by hand"
)]

mod support;

use std::path::Path;

use tally_pipeline::{Config, Error, Layout, Pipeline, RecoveryReport, verify};
use tally_sim::{Fs, RealFs, SimFs, SystemClock, World};

use support::{rows, small_config};

async fn open_at(
    root: &Path,
    config: Config,
) -> tally_pipeline::Result<(Pipeline<RealFs, SystemClock>, RecoveryReport)> {
    Pipeline::open(World::new(RealFs, SystemClock), root, config).await
}

/// A commit sealed as `docs/protocol.md` says (written here from the description, not with
/// the pipeline's encoder): a first line of commit info whose `crc32c` is the CRC-32C of the
/// whole file with `00000000` in its place, and `bytes` the length after the first line.
fn sealed(body: &str) -> Vec<u8> {
    let first = format!(
        r#"{{"commitInfo":{{"timestamp":0,"operation":"WRITE","operationParameters":{{}},"engineInfo":"test","tally":{{"format":1,"crc32c":"00000000","bytes":{}}}}}}}"#,
        body.len()
    );
    let unsealed = format!("{first}\n{body}");
    let crc = format!("{:08x}", crc32c::crc32c(unsealed.as_bytes()));
    unsealed.replacen("00000000", &crc, 1).into_bytes()
}

/// The actions of commit `version` after its first line.
fn body_of(root: &Path, version: u64) -> String {
    let text = std::fs::read_to_string(Layout::new(root).commit(version)).unwrap();
    text.split_once('\n').unwrap().1.to_string()
}

#[tokio::test]
async fn a_commit_sealed_here_from_the_description_reads_as_tallys() {
    // The control for the tests below: a re-sealed copy of a real commit is accepted, so a
    // refusal there is the path's doing, not the seal's.
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = open_at(dir.path(), small_config()).await.unwrap();
    p.ingest("a", rows("a", 0, 3)).await.unwrap();
    p.flush().await.unwrap();
    drop(p);
    let body = body_of(dir.path(), 1);
    std::fs::write(Layout::new(dir.path()).commit(1), sealed(&body)).unwrap();
    let (p, _) = open_at(dir.path(), small_config()).await.unwrap();
    assert_eq!(p.snapshot().await.rows, 3);
}

#[tokio::test]
async fn a_commit_naming_a_path_outside_data_is_refused_by_every_open_and_nothing_outside_moves() {
    for hostile in [
        "../precious.parquet",
        "/tmp/precious.parquet",
        "data/../../precious.parquet",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let precious = dir.path().join("precious.parquet");
        std::fs::write(&precious, b"the user's bytes").unwrap();
        let (p, _) = open_at(&root, small_config()).await.unwrap();
        p.ingest("a", rows("a", 0, 3)).await.unwrap();
        p.flush().await.unwrap();
        let file = p.snapshot().await.files[0].clone();
        drop(p);
        let name = tally_pipeline::layout::table_file_path(file.level, file.id);
        // Commit 2: "remove" the real file and "add" the hostile path, sealed.
        let body = body_of(&root, 1)
            .lines()
            .filter(|l| l.starts_with(r#"{"add""#) || l.starts_with(r#"{"domainMetadata""#))
            .map(|l| {
                l.replace(&name, hostile)
                    .replace(r#""dataChange":true"#, r#""dataChange":false"#)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let remove = format!(
            r#"{{"remove":{{"path":"{hostile}","deletionTimestamp":0,"dataChange":false,"extendedFileMetadata":true,"partitionValues":{{}},"size":1,"tags":{{}}}}}}"#
        );
        for tampered in [format!("{body}\n"), format!("{remove}\n{body}\n")] {
            std::fs::write(Layout::new(&root).commit(2), sealed(&tampered)).unwrap();
            let err = open_at(&root, small_config()).await.unwrap_err();
            assert!(matches!(err, Error::Damaged(_)), "{hostile}: {err}");
            assert!(
                err.to_string().contains("not a table file tally writes"),
                "{err}"
            );
            // A vacuum that would delete everything removed: refused the same way.
            let mut vacuum = small_config();
            vacuum.recovery.retention = std::time::Duration::ZERO;
            assert!(matches!(
                open_at(&root, vacuum).await,
                Err(Error::Damaged(_))
            ));
            let report = verify::check_store(&RealFs, &Layout::new(&root), true)
                .await
                .unwrap();
            assert!(!report.is_consistent(), "verify calls it damaged");
            assert_eq!(std::fs::read(&precious).unwrap(), b"the user's bytes");
        }
        // The deliberate way out sets the commit aside, inside the root, and touches nothing
        // outside it.
        let mut accept = small_config();
        accept.recovery.accept_loss = true;
        accept.recovery.retention = std::time::Duration::ZERO;
        let (p, report) = open_at(&root, accept).await.unwrap();
        assert_eq!(p.snapshot().await.rows, 3, "{report}");
        assert!(
            report
                .quarantined
                .iter()
                .all(|q| q.moved_to.starts_with("_tally/quarantine/"))
        );
        assert_eq!(std::fs::read(&precious).unwrap(), b"the user's bytes");
    }
}

#[tokio::test]
async fn a_commit_whose_version_another_writer_took_is_not_written_over() {
    let fs = SimFs::new();
    let world = || World::new(fs.clone(), SystemClock);
    let (p, _) = Pipeline::open(world(), "/db", small_config())
        .await
        .unwrap();
    p.ingest("a", rows("a", 0, 3)).await.unwrap();
    let next = p.snapshot().await.version + 1;
    let theirs = Layout::new("/db").commit(next);
    let foreign = b"{\"commitInfo\":{\"operation\":\"WRITE\"}}\n";
    let file = fs
        .create(&theirs, tally_sim::CreateMode::Exclusive)
        .await
        .unwrap();
    tally_sim::FsFile::write_at(&file, 0, foreign)
        .await
        .unwrap();
    drop(file);
    let err = p.flush().await.unwrap_err();
    assert!(err.to_string().contains("exists"), "{err}");
    assert!(
        p.ingest("b", rows("b", 0, 1)).await.is_err(),
        "the pipeline stopped"
    );
    assert_eq!(
        fs.read(&theirs).await.unwrap(),
        foreign,
        "their commit is untouched"
    );
    assert!(
        !fs.exists(&Layout::new("/db").commit_temp(next))
            .await
            .unwrap()
    );
    drop(p);
    // Whoever wrote it, it is not tally's: the next open refuses it as damage.
    let err = Pipeline::open(world(), "/db", small_config())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not tally's commit info"), "{err}");
}
