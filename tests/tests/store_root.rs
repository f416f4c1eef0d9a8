//! The root is tally's alone (issue 15, findings 3 and 6), on the real disk: an ordinary
//! directory is refused before anything in it is touched, a symbolic link where the store
//! keeps its directories is refused and never followed, one handle at a time holds the root,
//! and readers never create a store.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the tests plant files, directories and links on the real disk around the store"
)]

mod support;

use std::path::{Path, PathBuf};

use support::rows;
use tally_pipeline::verify::check_store;
use tally_pipeline::{Config, Error, Layout, Pipeline};
use tally_sim::{RealFs, SystemClock, World};

fn world() -> World<RealFs, SystemClock> {
    World::new(RealFs, SystemClock)
}

async fn open(root: &Path) -> tally_pipeline::Result<Pipeline<RealFs, SystemClock>> {
    Pipeline::open(world(), root, Config::default())
        .await
        .map(|(p, _)| p)
}

/// Every path under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn an_ordinary_directory_is_refused_and_its_temp_files_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.tmp"), b"mine").unwrap();
    std::fs::write(dir.path().join("report.txt"), b"also mine").unwrap();
    let before = listing(dir.path());
    let err = open(dir.path()).await.unwrap_err();
    assert!(matches!(err, Error::NotAStore { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("is not empty and is not a tally store") && text.contains("notes.tmp"),
        "{text}"
    );
    assert_eq!(listing(dir.path()), before, "nothing created or removed");
    assert_eq!(
        std::fs::read(dir.path().join("notes.tmp")).unwrap(),
        b"mine"
    );
}

#[tokio::test]
async fn a_missing_or_empty_root_becomes_a_store_with_its_marker() {
    let dir = tempfile::tempdir().unwrap();
    for root in [dir.path().join("new/nested"), dir.path().to_path_buf()] {
        let p = open(&root).await.unwrap();
        p.ingest("a", rows("a", 0, 3)).await.unwrap();
        drop(p);
        assert_eq!(
            std::fs::read(root.join("_tally/TALLY")).unwrap(),
            b"tally-store 2\n"
        );
        let report = check_store(&RealFs, &Layout::new(&root), false)
            .await
            .unwrap();
        assert!(report.is_consistent(), "{report:?}");
        drop(open(&root).await.unwrap());
        if root != dir.path() {
            std::fs::remove_dir_all(dir.path().join("new")).unwrap();
        }
    }
}

/// A store whose `name/` directory is a symbolic link to a directory outside it, holding
/// files recovery would delete or move if it followed the link.
async fn symlinked_store_dir_is_refused(name: &str, planted: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (root, outside) = (dir.path().join("store"), dir.path().join("outside"));
    let p = open(&root).await.unwrap();
    p.ingest("a", rows("a", 0, 3)).await.unwrap();
    p.flush().await.unwrap();
    drop(p);
    std::fs::create_dir(&outside).unwrap();
    for file in planted {
        std::fs::write(outside.join(file), b"not tally's").unwrap();
    }
    let real = root.join(name);
    if real.exists() {
        std::fs::rename(&real, dir.path().join("moved-away")).unwrap();
    }
    std::os::unix::fs::symlink(&outside, &real).unwrap();
    let before = listing(&outside);

    let err = open(&root).await.unwrap_err();
    assert!(
        matches!(&err, Error::Symlink { path } if *path == real),
        "{err}"
    );
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
    assert_eq!(
        listing(&outside),
        before,
        "nothing outside the root touched"
    );
    for file in planted {
        assert_eq!(std::fs::read(outside.join(file)).unwrap(), b"not tally's");
    }
    let err = check_store(&RealFs, &Layout::new(&root), false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Symlink { .. }), "{err}");
}

#[tokio::test]
async fn a_symlinked_data_directory_is_refused_and_not_followed() {
    symlinked_store_dir_is_refused("data", &["L0-00000000000000000099.parquet", "x.tmp"]).await;
}

#[tokio::test]
async fn a_symlinked_log_directory_is_refused_and_not_followed() {
    symlinked_store_dir_is_refused(
        "_tally/log",
        &[
            "00000000000000000000.log",
            "00000000000000000000.ack",
            "x.tmp",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_symlinked_quarantine_directory_is_refused_and_not_followed() {
    symlinked_store_dir_is_refused(
        "_tally/quarantine",
        &["00000000000000000009.json.0", "x.tmp"],
    )
    .await;
}

#[tokio::test]
async fn a_symlinked_delta_log_is_refused_and_not_followed() {
    symlinked_store_dir_is_refused(
        "_delta_log",
        &[
            "00000000000000000000.json",
            "_commit_00000000000000000001.json.tmp",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_symlinked_private_directory_is_refused_and_not_followed() {
    symlinked_store_dir_is_refused("_tally", &["TALLY", "SEQ", "SEQ.tmp"]).await;
}

#[tokio::test]
async fn a_symbolic_link_inside_a_store_directory_is_refused_and_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    drop(open(&root).await.unwrap());
    let outside = dir.path().join("precious");
    std::fs::write(&outside, b"not tally's").unwrap();
    let link = root.join("data/L0-00000000000000000077.parquet.tmp");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let err = open(&root).await.unwrap_err();
    assert!(
        matches!(&err, Error::Symlink { path } if *path == link),
        "{err}"
    );
    assert!(std::fs::symlink_metadata(&link).is_ok(), "the link is kept");
    assert_eq!(std::fs::read(&outside).unwrap(), b"not tally's");
}

#[tokio::test]
async fn a_second_writer_is_refused_while_the_first_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).await.unwrap();
    first.ingest("a", rows("a", 0, 5)).await.unwrap();
    let before = listing(dir.path());
    let err = open(dir.path()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Locked { root } if root == dir.path()),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "another tally process is writing to {}",
            dir.path().display()
        )),
        "{err}"
    );
    assert_eq!(
        listing(dir.path()),
        before,
        "the refused open changed nothing"
    );
    // A clone is the same handle: the lock lives until the last one is dropped.
    let clone = first.clone();
    drop(first);
    assert!(matches!(open(dir.path()).await, Err(Error::Locked { .. })));
    drop(clone);
    let again = open(dir.path()).await.unwrap();
    assert_eq!(again.source_state("a").await.rows, 5);
}

#[tokio::test]
async fn readers_and_export_never_create_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let ordinary = dir.path().join("ordinary");
    std::fs::create_dir(&ordinary).unwrap();
    std::fs::write(ordinary.join("notes.tmp"), b"mine").unwrap();
    let before = listing(dir.path());
    for root in [&missing, &empty, &ordinary] {
        let err = check_store(&RealFs, &Layout::new(root), false)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotAStore { .. }), "{err}");
        let err = Pipeline::open_existing(world(), root, Config::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotAStore { .. }), "{err}");
    }
    assert_eq!(listing(dir.path()), before, "nothing created anywhere");
}

#[tokio::test]
async fn a_marker_interrupted_before_its_rename_is_written_again() {
    let dir = tempfile::tempdir().unwrap();
    // What a crash can leave: the root, `_tally/` and a torn temp file of the marker.
    let private = dir.path().join("_tally");
    std::fs::create_dir(&private).unwrap();
    std::fs::write(private.join("TALLY.tmp"), b"tal").unwrap();
    drop(open(dir.path()).await.unwrap());
    assert_eq!(
        std::fs::read(private.join("TALLY")).unwrap(),
        b"tally-store 2\n"
    );
    assert!(!private.join("TALLY.tmp").exists());
    // What a disk that lost synced data can leave: the marker's name with a prefix of its
    // line, beside the rest of the store.
    for torn in [&b""[..], b"tally-st"] {
        std::fs::write(private.join("TALLY"), torn).unwrap();
        drop(open(dir.path()).await.unwrap());
        assert_eq!(
            std::fs::read(private.join("TALLY")).unwrap(),
            b"tally-store 2\n"
        );
    }
    // A TALLY that is not tally's marker is someone else's file.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir(other.path().join("_tally")).unwrap();
    std::fs::write(other.path().join("_tally/TALLY"), b"my notes").unwrap();
    let err = open(other.path()).await.unwrap_err();
    assert!(matches!(err, Error::NotAStore { .. }), "{err}");
}

#[tokio::test]
async fn a_store_of_the_first_format_is_refused_naming_its_format() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("TALLY"), b"tally-store 1\n").unwrap();
    std::fs::write(dir.path().join("MANIFEST-00000000000000000001"), b"x").unwrap();
    let before = listing(dir.path());
    let err = open(dir.path()).await.unwrap_err();
    assert!(matches!(err, Error::NotAStore { .. }), "{err}");
    assert!(err.to_string().contains("format 1"), "{err}");
    assert_eq!(listing(dir.path()), before, "nothing created or removed");
}

#[tokio::test]
async fn a_symlinked_marker_temp_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (root, outside) = (dir.path().join("store"), dir.path().join("precious.txt"));
    std::fs::create_dir(&root).unwrap();
    std::fs::write(&outside, b"the user's bytes").unwrap();
    std::fs::create_dir(root.join("_tally")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("_tally/TALLY.tmp")).unwrap();
    let before = listing(&root);
    let err = open(&root).await.unwrap_err();
    assert!(
        matches!(err, Error::NotAStore { .. } | Error::Symlink { .. }),
        "{err}"
    );
    assert_eq!(std::fs::read(&outside).unwrap(), b"the user's bytes");
    assert_eq!(listing(&root), before, "nothing created");
}

#[tokio::test]
async fn an_empty_marker_among_foreign_files_does_not_claim_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("_tally")).unwrap();
    std::fs::write(dir.path().join("_tally/TALLY"), b"").unwrap();
    std::fs::write(dir.path().join("notes.tmp"), b"mine").unwrap();
    let before = listing(dir.path());
    let err = open(dir.path()).await.unwrap_err();
    assert!(matches!(err, Error::NotAStore { .. }), "{err}");
    assert_eq!(listing(dir.path()), before, "nothing created or removed");
    assert_eq!(std::fs::read(dir.path().join("_tally/TALLY")).unwrap(), b"");
}

#[tokio::test]
async fn verify_refuses_a_symbolic_link_inside_a_store_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    drop(open(&root).await.unwrap());
    let outside = dir.path().join("elsewhere.parquet");
    std::fs::write(&outside, b"not tally's").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("data/L0-00000000000000000009.parquet"))
        .unwrap();
    let err = check_store(&RealFs, &Layout::new(&root), true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Symlink { .. }), "{err}");
}
