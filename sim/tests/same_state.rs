//! `SimFs::same_settled_state`: the harness reuses a crash image's verdict for a later image
//! only when no process could tell the two apart, so every difference a process can see must
//! make them differ.

use std::path::Path;

use tally_sim::{CrashModel, CreateMode, Fs, FsFile, OpenMode, SimFs};

fn p(path: &str) -> &Path {
    Path::new(path)
}

/// A settled disk: `/d/a` holding `bytes`, everything synced.
async fn settled(bytes: &[u8]) -> SimFs {
    let fs = SimFs::new();
    fs.create_dir(p("/d")).await.unwrap();
    let file = fs.create(p("/d/a"), CreateMode::Exclusive).await.unwrap();
    file.write_at(0, bytes).await.unwrap();
    file.sync().await.unwrap();
    fs.sync_dir(p("/d")).await.unwrap();
    fs.sync_dir(p("/")).await.unwrap();
    fs
}

#[tokio::test]
async fn a_crash_image_is_the_same_state_as_the_settled_disk_it_came_from() {
    let fs = settled(b"abc").await;
    assert!(fs.same_settled_state(&fs));
    assert!(fs.same_settled_state(&fs.snapshot()));
    let image = fs.crash(CrashModel::Strict, 7);
    assert!(image.same_settled_state(&fs) && fs.same_settled_state(&image));
}

#[tokio::test]
async fn disks_built_apart_with_the_same_names_and_bytes_are_the_same_state() {
    assert!(
        settled(b"abc")
            .await
            .same_settled_state(&settled(b"abc").await)
    );
}

#[tokio::test]
async fn one_changed_byte_makes_another_state() {
    let big = vec![7u8; 10_000];
    let mut changed = big.clone();
    changed[9_999] = 8;
    assert!(
        !settled(&big)
            .await
            .same_settled_state(&settled(&changed).await)
    );
    assert!(
        !settled(b"abc")
            .await
            .same_settled_state(&settled(b"abcd").await),
        "longer"
    );
    assert!(
        !settled(b"abc\0")
            .await
            .same_settled_state(&settled(b"abc").await),
        "a zero more"
    );
}

#[tokio::test]
async fn another_name_or_kind_makes_another_state() {
    let a = settled(b"abc").await;
    let renamed = a.snapshot();
    renamed.rename(p("/d/a"), p("/d/b")).await.unwrap();
    renamed.sync_dir(p("/d")).await.unwrap();
    assert!(!a.same_settled_state(&renamed), "renamed");
    let extra = a.snapshot();
    extra.create_dir(p("/d/e")).await.unwrap();
    extra.sync_dir(p("/d")).await.unwrap();
    assert!(!a.same_settled_state(&extra), "an empty directory more");
    let kind = SimFs::new();
    kind.create_dir(p("/d")).await.unwrap();
    kind.create_dir(p("/d/a")).await.unwrap();
    kind.sync_dir(p("/d")).await.unwrap();
    kind.sync_dir(p("/")).await.unwrap();
    assert!(
        !a.same_settled_state(&kind),
        "a directory where the file was"
    );
}

#[tokio::test]
async fn a_disk_with_anything_pending_is_never_the_same_state() {
    let a = settled(b"abc").await;
    let pending = a.snapshot();
    let file = pending.open(p("/d/a"), OpenMode::Write).await.unwrap();
    file.write_at(0, b"abc").await.unwrap();
    // The bytes a process reads are the same, but a crash could still tear the write.
    assert_eq!(pending.tree(), a.tree());
    assert!(!a.same_settled_state(&pending));
    file.sync().await.unwrap();
    assert!(a.same_settled_state(&pending), "settled again by the sync");
}
