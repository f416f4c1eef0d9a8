//! Damage fails closed (issue 15, findings 4 and 5), on the real disk: a damaged newest
//! manifest is never rolled back silently, a flipped bit in a published table file is caught
//! before its bytes are trusted, and a table file is never written over. The normal build
//! only: the real disk is damaged by hand.
#![cfg(not(madsim))]
#![allow(
    clippy::disallowed_methods,
    reason = "the tests damage files of a store on the real disk by hand"
)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tally_pipeline::{Config, Error, Layout, Pipeline, RecoveryReport, layout, verify};
use tally_sim::{RealFs, SystemClock, World};

use support::{rows, small_config};

async fn open_at(
    root: &Path,
    config: Config,
) -> tally_pipeline::Result<(Pipeline<RealFs, SystemClock>, RecoveryReport)> {
    Pipeline::open(World::new(RealFs, SystemClock), root, config).await
}

/// Every file under `dir` with its bytes, by path relative to `dir`.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

/// No merges: each flush publishes one more level-0 file.
fn no_merges() -> Config {
    Config {
        merge_fan_in: 10,
        ..small_config()
    }
}

/// A store where source "a" (3 rows) was published by version 1 and source "b" (4 rows) by
/// version 2, which added one level-0 file. Returns that file's name.
async fn two_versions(root: &Path) -> String {
    let (p, _) = open_at(root, no_merges()).await.unwrap();
    p.ingest("a", rows("a", 0, 3)).await.unwrap();
    p.flush().await.unwrap();
    p.ingest("b", rows("b", 0, 4)).await.unwrap();
    p.flush().await.unwrap();
    let snapshot = p.snapshot().await;
    assert_eq!(snapshot.version, 2);
    let newest = snapshot.files.iter().max_by_key(|f| f.id).unwrap();
    layout::table_file_name(newest.level, newest.id)
}

fn append_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes.push(b'\n');
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn an_extra_byte_in_the_newest_manifest_refuses_the_open_naming_it_and_what_is_at_risk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let added = two_versions(root).await;
    append_byte(&Layout::new(root).commit(2));
    let before = tree(root);
    let err = open_at(root, no_merges()).await.unwrap_err();
    let message = err.to_string();
    for needle in [
        "_delta_log/00000000000000000002.json",
        "its seal says",
        "last good version is 1",
        &format!("data/{added} (4 rows"),
        "ledger cannot be read",
        "tally recover",
        "--accept-loss",
    ] {
        assert!(message.contains(needle), "{needle:?} not in: {message}");
    }
    assert!(matches!(err, Error::Damaged(_)), "{err:?}");
    assert_eq!(tree(root), before, "refusing moves nothing");
    let report = verify::check_store(&RealFs, &Layout::new(root), false)
        .await
        .unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("_delta_log/00000000000000000002.json")),
        "verify calls the store damaged: {report:?}"
    );
}

#[tokio::test]
async fn accepting_the_loss_rolls_back_and_reports_exactly_what_was_lost() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let added = two_versions(root).await;
    append_byte(&Layout::new(root).commit(2));
    let mut config = no_merges();
    config.recovery.accept_loss = true;
    let (p, report) = open_at(root, config).await.unwrap();
    let loss = report
        .rolled_back
        .as_ref()
        .expect("the rollback is reported");
    assert_eq!(loss.last_good_version, 1);
    assert_eq!(loss.rows_at_risk, 4, "{report}");
    assert_eq!(
        loss.at_risk
            .iter()
            .map(|f| f.file.as_str())
            .collect::<Vec<_>>(),
        [format!("data/{added}")]
    );
    let text = report.to_string();
    assert!(text.contains("rolled back to version 1"), "{text}");
    assert_eq!(p.snapshot().await.rows, 3);
    assert_eq!(p.source_state("b").await.rows, 0, "the ledger forgot b");
    drop(p);
    for q in &report.quarantined {
        assert!(
            root.join(&q.moved_to).exists(),
            "{q:?} kept for an operator"
        );
    }
    let (_, again) = open_at(root, no_merges()).await.unwrap();
    assert!(
        again.is_clean(),
        "after the rollback opens are clean: {again}"
    );
}

/// Flips one bit inside the column chunks (the data pages) of `path`: past the `PAR1` magic,
/// before the footer.
fn flip_page_bit(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let len = bytes.len();
    let meta = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().unwrap()) as usize;
    let pages_end = len - 8 - meta;
    let at = 4 + (pages_end - 4) / 2;
    bytes[at] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn a_flipped_bit_in_a_data_page_is_reported_by_verify_and_refused_by_merge() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let added = two_versions(root).await;
    let path = Layout::new(root).data_dir().join(&added);
    flip_page_bit(&path);
    let report = verify::check_store(&RealFs, &Layout::new(root), true)
        .await
        .unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&added) && p.contains("checksum")),
        "verify --deep names the file: {report:?}"
    );
    // A merge of the two files reads the damaged one: it fails closed, naming it.
    let merging = Config {
        merge_fan_in: 2,
        ..small_config()
    };
    let (p, _) = open_at(root, merging).await.unwrap();
    let err = p.flush().await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&added) && message.contains("backup"),
        "{message}"
    );
    assert_eq!(p.snapshot().await.version, 2, "nothing was published");
}

#[tokio::test]
async fn a_table_file_already_at_the_next_id_is_never_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (p, _) = open_at(root, no_merges()).await.unwrap();
    p.ingest("a", rows("a", 0, 3)).await.unwrap();
    p.flush().await.unwrap();
    let next = p.manifest().await.next_file_id;
    let squatter = Layout::new(root).table_file(0, next);
    std::fs::write(&squatter, b"not ours to overwrite").unwrap();
    p.ingest("b", rows("b", 0, 4)).await.unwrap();
    let err = p.flush().await.unwrap_err();
    assert!(
        err.to_string().contains(&layout::table_file_name(0, next)),
        "{err}"
    );
    assert_eq!(std::fs::read(&squatter).unwrap(), b"not ours to overwrite");
    assert_eq!(p.snapshot().await.version, 1, "nothing was published");
}
