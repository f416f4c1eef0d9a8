//! One set of test bodies run against `SimFs` (no crash) and `RealFs` (in a temp directory), so
//! that the two backends agree on everything that is not about crashes.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use tally_sim::{CreateMode, DirEntry, Fs, FsFile, OpenMode, RealFs, SimFs};

async fn write_file<F: Fs>(fs: &F, path: &Path, bytes: &[u8]) {
    let file = fs.create(path, CreateMode::Truncate).await.unwrap();
    file.write_at(0, bytes).await.unwrap();
}

fn kind<T: std::fmt::Debug>(result: std::io::Result<T>) -> ErrorKind {
    result.expect_err("expected an error").kind()
}

async fn create_exclusive_fails_on_existing_file<F: Fs>(fs: F, base: PathBuf) {
    let path = base.join("a");
    write_file(&fs, &path, b"x").await;
    assert_eq!(
        kind(fs.create(&path, CreateMode::Exclusive).await),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind(fs.create(&base, CreateMode::Exclusive).await),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        fs.read(&path).await.unwrap(),
        b"x",
        "a refused create leaves the file alone"
    );
}

async fn create_truncate_empties_existing_file<F: Fs>(fs: F, base: PathBuf) {
    let path = base.join("a");
    write_file(&fs, &path, b"hello").await;
    let file = fs.create(&path, CreateMode::Truncate).await.unwrap();
    assert_eq!(file.len().await.unwrap(), 0);
    assert_eq!(fs.read(&path).await.unwrap(), b"");
    assert_eq!(
        kind(fs.create(&base, CreateMode::Truncate).await),
        ErrorKind::IsADirectory
    );
}

async fn create_needs_an_existing_parent_directory<F: Fs>(fs: F, base: PathBuf) {
    let missing = base.join("no/such/dir/a");
    assert_eq!(
        kind(fs.create(&missing, CreateMode::Exclusive).await),
        ErrorKind::NotFound
    );
    write_file(&fs, &base.join("f"), b"").await;
    let under_file = base.join("f/a");
    assert_eq!(
        kind(fs.create(&under_file, CreateMode::Exclusive).await),
        ErrorKind::NotADirectory
    );
}

async fn open_missing_is_not_found_and_a_directory_is_refused<F: Fs>(fs: F, base: PathBuf) {
    assert_eq!(
        kind(fs.open(&base.join("nope"), OpenMode::Read).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(fs.open(&base, OpenMode::Read).await),
        ErrorKind::IsADirectory
    );
    assert_eq!(kind(fs.read(&base.join("nope")).await), ErrorKind::NotFound);
}

async fn open_for_read_refuses_writes<F: Fs>(fs: F, base: PathBuf) {
    let path = base.join("a");
    write_file(&fs, &path, b"abc").await;
    let file = fs.open(&path, OpenMode::Read).await.unwrap();
    assert_eq!(
        kind(file.write_at(0, b"z").await),
        ErrorKind::PermissionDenied
    );
    assert_eq!(kind(file.append(b"z").await), ErrorKind::PermissionDenied);
    assert_eq!(kind(file.set_len(0).await), ErrorKind::PermissionDenied);
    assert_eq!(file.read_all().await.unwrap(), b"abc");
}

async fn open_for_write_keeps_the_content<F: Fs>(fs: F, base: PathBuf) {
    let path = base.join("a");
    write_file(&fs, &path, b"abcdef").await;
    let file = fs.open(&path, OpenMode::Write).await.unwrap();
    file.write_at(2, b"XY").await.unwrap();
    assert_eq!(fs.read(&path).await.unwrap(), b"abXYef");
}

async fn read_past_the_end_is_short_or_empty<F: Fs>(fs: F, base: PathBuf) {
    let path = base.join("a");
    write_file(&fs, &path, b"hello").await;
    let file = fs.open(&path, OpenMode::Read).await.unwrap();
    assert_eq!(file.read_at(3, 10).await.unwrap(), b"lo");
    assert_eq!(file.read_at(5, 10).await.unwrap(), b"");
    assert_eq!(file.read_at(1000, 10).await.unwrap(), b"");
    assert_eq!(file.read_at(0, 0).await.unwrap(), b"");
}

async fn write_past_the_end_fills_the_hole_with_zeros<F: Fs>(fs: F, base: PathBuf) {
    let path = base.join("a");
    let file = fs.create(&path, CreateMode::Exclusive).await.unwrap();
    file.write_at(10_000, b"z").await.unwrap();
    let bytes = fs.read(&path).await.unwrap();
    assert_eq!(bytes.len(), 10_001);
    assert!(bytes[..10_000].iter().all(|&b| b == 0));
    assert_eq!(bytes[10_000], b'z');
}

async fn append_writes_at_the_end_and_returns_the_offset<F: Fs>(fs: F, base: PathBuf) {
    let file = fs
        .create(&base.join("log"), CreateMode::Exclusive)
        .await
        .unwrap();
    assert_eq!(file.append(b"one").await.unwrap(), 0);
    assert_eq!(file.append(b"two").await.unwrap(), 3);
    file.write_at(10, b"!").await.unwrap();
    assert_eq!(file.append(b"three").await.unwrap(), 11);
    assert_eq!(file.len().await.unwrap(), 16);
}

async fn set_len_truncates_and_extends_with_zeros<F: Fs>(fs: F, base: PathBuf) {
    let path = base.join("a");
    let file = fs.create(&path, CreateMode::Exclusive).await.unwrap();
    file.write_at(0, &[9; 100]).await.unwrap();
    file.set_len(10).await.unwrap();
    file.set_len(20).await.unwrap();
    let bytes = fs.read(&path).await.unwrap();
    assert_eq!(&bytes[..10], &[9; 10]);
    assert_eq!(&bytes[10..], &[0; 10]);
}

async fn rename_replaces_an_existing_file<F: Fs>(fs: F, base: PathBuf) {
    let (from, to) = (base.join("new"), base.join("cur"));
    write_file(&fs, &from, b"new").await;
    write_file(&fs, &to, b"old").await;
    fs.rename(&from, &to).await.unwrap();
    assert_eq!(fs.read(&to).await.unwrap(), b"new");
    assert!(!fs.exists(&from).await.unwrap());
}

async fn rename_moves_between_directories<F: Fs>(fs: F, base: PathBuf) {
    fs.create_dir(&base.join("d1")).await.unwrap();
    fs.create_dir(&base.join("d2")).await.unwrap();
    write_file(&fs, &base.join("d1/a"), b"data").await;
    fs.rename(&base.join("d1/a"), &base.join("d2/b"))
        .await
        .unwrap();
    assert_eq!(fs.read(&base.join("d2/b")).await.unwrap(), b"data");
    assert!(fs.list_dir(&base.join("d1")).await.unwrap().is_empty());
    fs.rename(&base.join("d2"), &base.join("d3")).await.unwrap();
    assert_eq!(fs.read(&base.join("d3/b")).await.unwrap(), b"data");
}

async fn rename_to_itself_is_a_no_op<F: Fs>(fs: F, base: PathBuf) {
    let path = base.join("a");
    write_file(&fs, &path, b"x").await;
    fs.rename(&path, &path).await.unwrap();
    assert_eq!(fs.read(&path).await.unwrap(), b"x");
}

async fn rename_refuses_what_posix_refuses<F: Fs>(fs: F, base: PathBuf) {
    let (file, dir, full) = (base.join("f"), base.join("d"), base.join("full"));
    write_file(&fs, &file, b"x").await;
    fs.create_dir(&dir).await.unwrap();
    fs.create_dir(&full).await.unwrap();
    write_file(&fs, &full.join("inner"), b"y").await;
    assert_eq!(
        kind(fs.rename(&base.join("missing"), &file).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(fs.rename(&file, &base.join("no/such")).await),
        ErrorKind::NotFound
    );
    assert_eq!(kind(fs.rename(&file, &dir).await), ErrorKind::IsADirectory);
    assert_eq!(kind(fs.rename(&dir, &file).await), ErrorKind::NotADirectory);
    assert_eq!(
        kind(fs.rename(&dir, &full).await),
        ErrorKind::DirectoryNotEmpty
    );
    assert_eq!(
        kind(fs.rename(&dir, &dir.join("sub")).await),
        ErrorKind::InvalidInput
    );
    fs.rename(&full, &dir)
        .await
        .expect("a directory may replace an empty one");
    assert_eq!(fs.read(&dir.join("inner")).await.unwrap(), b"y");
}

async fn rename_noreplace_refuses_an_existing_target<F: Fs>(fs: F, base: PathBuf) {
    let (from, to) = (base.join("new"), base.join("cur"));
    write_file(&fs, &from, b"new").await;
    write_file(&fs, &to, b"old").await;
    let err = fs.rename_noreplace(&from, &to).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("new") && message.contains("cur"),
        "{message}"
    );
    assert_eq!(
        fs.read(&to).await.unwrap(),
        b"old",
        "the target is unchanged"
    );
    assert_eq!(fs.read(&from).await.unwrap(), b"new", "the source stays");
    assert_eq!(
        kind(fs.rename_noreplace(&from, &from).await),
        ErrorKind::AlreadyExists,
        "a source is its own existing target"
    );
    fs.create_dir(&base.join("d")).await.unwrap();
    write_file(&fs, &base.join("d/cur"), b"other").await;
    assert_eq!(
        kind(fs.rename_noreplace(&from, &base.join("d/cur")).await),
        ErrorKind::AlreadyExists,
        "across directories too"
    );
    assert_eq!(fs.read(&base.join("d/cur")).await.unwrap(), b"other");
}

async fn rename_noreplace_moves_when_the_target_is_free<F: Fs>(fs: F, base: PathBuf) {
    let (from, to) = (base.join("new.tmp"), base.join("new"));
    write_file(&fs, &from, b"data").await;
    fs.rename_noreplace(&from, &to).await.unwrap();
    assert_eq!(fs.read(&to).await.unwrap(), b"data");
    assert!(!fs.exists(&from).await.unwrap());
    fs.create_dir(&base.join("d")).await.unwrap();
    fs.rename_noreplace(&to, &base.join("d/moved"))
        .await
        .unwrap();
    assert_eq!(fs.read(&base.join("d/moved")).await.unwrap(), b"data");
    assert!(!fs.exists(&to).await.unwrap());
    fs.rename_noreplace(&base.join("d"), &base.join("e"))
        .await
        .expect("a directory may be renamed within its parent");
    assert_eq!(fs.read(&base.join("e/moved")).await.unwrap(), b"data");
}

async fn rename_noreplace_of_a_missing_source_is_not_found<F: Fs>(fs: F, base: PathBuf) {
    assert_eq!(
        kind(
            fs.rename_noreplace(&base.join("missing"), &base.join("b"))
                .await
        ),
        ErrorKind::NotFound
    );
    write_file(&fs, &base.join("f"), b"x").await;
    assert_eq!(
        kind(
            fs.rename_noreplace(&base.join("missing"), &base.join("f"))
                .await
        ),
        ErrorKind::NotFound,
        "a missing source is reported before an existing target"
    );
    assert_eq!(
        kind(
            fs.rename_noreplace(&base.join("f"), &base.join("no/such"))
                .await
        ),
        ErrorKind::NotFound
    );
    assert!(!fs.exists(&base.join("b")).await.unwrap());
}

async fn rename_noreplace_onto_a_directory_is_already_exists<F: Fs>(fs: F, base: PathBuf) {
    let (file, empty, full) = (base.join("f"), base.join("empty"), base.join("full"));
    write_file(&fs, &file, b"x").await;
    fs.create_dir(&empty).await.unwrap();
    fs.create_dir(&full).await.unwrap();
    for (from, to) in [(&file, &empty), (&empty, &full), (&full, &empty)] {
        let err = fs.rename_noreplace(from, to).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    }
    assert!(fs.metadata(&empty).await.unwrap().is_dir);
    assert_eq!(fs.read(&file).await.unwrap(), b"x");
}

async fn unlink_missing_file_is_not_found<F: Fs>(fs: F, base: PathBuf) {
    assert_eq!(
        kind(fs.unlink(&base.join("nope")).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(fs.unlink(&base.join("no/such/file")).await),
        ErrorKind::NotFound
    );
}

async fn unlink_of_a_directory_is_refused<F: Fs>(fs: F, base: PathBuf) {
    fs.create_dir(&base.join("d")).await.unwrap();
    assert_eq!(
        kind(fs.unlink(&base.join("d")).await),
        ErrorKind::IsADirectory
    );
    assert!(fs.exists(&base.join("d")).await.unwrap());
}

async fn an_open_handle_outlives_unlink<F: Fs>(fs: F, base: PathBuf) {
    let path = base.join("a");
    write_file(&fs, &path, b"still here").await;
    let file = fs.open(&path, OpenMode::Write).await.unwrap();
    fs.unlink(&path).await.unwrap();
    assert!(!fs.exists(&path).await.unwrap());
    file.append(b"!").await.unwrap();
    assert_eq!(file.read_all().await.unwrap(), b"still here!");
    file.sync().await.unwrap();
}

async fn directories_are_created_and_removed<F: Fs>(fs: F, base: PathBuf) {
    let deep = base.join("x/y/z");
    assert_eq!(kind(fs.create_dir(&deep).await), ErrorKind::NotFound);
    fs.create_dir_all(&deep).await.unwrap();
    fs.create_dir_all(&deep)
        .await
        .expect("create_dir_all is idempotent");
    assert_eq!(kind(fs.create_dir(&deep).await), ErrorKind::AlreadyExists);
    assert_eq!(
        kind(fs.remove_dir(&base.join("x")).await),
        ErrorKind::DirectoryNotEmpty
    );
    fs.remove_dir(&deep).await.unwrap();
    assert!(!fs.exists(&deep).await.unwrap());
    assert_eq!(kind(fs.remove_dir(&deep).await), ErrorKind::NotFound);
    write_file(&fs, &base.join("f"), b"").await;
    assert_eq!(
        kind(fs.remove_dir(&base.join("f")).await),
        ErrorKind::NotADirectory
    );
    assert_eq!(
        kind(fs.create_dir_all(&base.join("f")).await),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind(fs.create_dir_all(&base.join("f/g")).await),
        ErrorKind::NotADirectory
    );
}

async fn list_dir_is_sorted_and_tells_files_from_directories<F: Fs>(fs: F, base: PathBuf) {
    for name in ["zeta", "alpha", "Beta", "m10", "m9"] {
        write_file(&fs, &base.join(name), b"").await;
    }
    fs.create_dir(&base.join("dir")).await.unwrap();
    let listed = fs.list_dir(&base).await.unwrap();
    let expected: Vec<DirEntry> = ["Beta", "alpha", "dir", "m10", "m9", "zeta"]
        .into_iter()
        .map(|name| DirEntry {
            name: name.into(),
            is_dir: name == "dir",
            is_symlink: false,
        })
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(
        kind(fs.list_dir(&base.join("nope")).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(fs.list_dir(&base.join("alpha")).await),
        ErrorKind::NotADirectory
    );
}

async fn sync_dir_needs_an_existing_directory<F: Fs>(fs: F, base: PathBuf) {
    fs.sync_dir(&base).await.unwrap();
    assert_eq!(
        kind(fs.sync_dir(&base.join("nope")).await),
        ErrorKind::NotFound
    );
    write_file(&fs, &base.join("f"), b"").await;
    assert_eq!(
        kind(fs.sync_dir(&base.join("f")).await),
        ErrorKind::NotADirectory
    );
}

async fn metadata_and_exists_report_what_is_there<F: Fs>(fs: F, base: PathBuf) {
    write_file(&fs, &base.join("f"), b"12345").await;
    let meta = fs.metadata(&base.join("f")).await.unwrap();
    assert_eq!((meta.len, meta.is_dir), (5, false));
    assert!(fs.metadata(&base).await.unwrap().is_dir);
    assert_eq!(
        kind(fs.metadata(&base.join("nope")).await),
        ErrorKind::NotFound
    );
    assert!(fs.exists(&base.join("f")).await.unwrap());
    assert!(!fs.exists(&base.join("nope")).await.unwrap());
    assert_eq!(
        kind(fs.exists(&base.join("f/below")).await),
        ErrorKind::NotADirectory
    );
}

async fn errors_name_the_path<F: Fs>(fs: F, base: PathBuf) {
    let path = base.join("missing-file-name");
    for err in [
        fs.open(&path, OpenMode::Read).await.unwrap_err(),
        fs.unlink(&path).await.unwrap_err(),
        fs.sync_dir(&path).await.unwrap_err(),
        fs.metadata(&path).await.unwrap_err(),
        fs.rename(&path, &base.join("b")).await.unwrap_err(),
        fs.rename_noreplace(&path, &base.join("b"))
            .await
            .unwrap_err(),
    ] {
        assert!(err.to_string().contains("missing-file-name"), "{err}");
    }
}

async fn sync_succeeds_on_written_files<F: Fs>(fs: F, base: PathBuf) {
    let file = fs
        .create(&base.join("a"), CreateMode::Exclusive)
        .await
        .unwrap();
    file.append(b"durable").await.unwrap();
    file.sync().await.unwrap();
    fs.sync_dir(&base).await.unwrap();
    let reader = fs.open(&base.join("a"), OpenMode::Read).await.unwrap();
    reader
        .sync()
        .await
        .expect("a read-only handle may be synced");
    assert_eq!(reader.read_all().await.unwrap(), b"durable");
}

async fn huge_offsets_and_lengths_are_refused_or_clipped<F: Fs>(fs: F, base: PathBuf) {
    let path = base.join("a");
    write_file(&fs, &path, b"ab").await;
    let file = fs.open(&path, OpenMode::Write).await.unwrap();
    assert_eq!(
        kind(file.write_at(u64::MAX, b"x").await),
        ErrorKind::InvalidInput
    );
    assert_eq!(kind(file.set_len(u64::MAX).await), ErrorKind::InvalidInput);
    assert_eq!(
        file.read_at(0, 1 << 40).await.unwrap(),
        b"ab",
        "no allocation of the asked length"
    );
    assert_eq!(file.read_at(u64::MAX, 10).await.unwrap(), b"");
    assert_eq!(
        fs.read(&path).await.unwrap(),
        b"ab",
        "refused calls change nothing"
    );
}

async fn parent_components_resolve_like_the_kernel<F: Fs>(fs: F, base: PathBuf) {
    write_file(&fs, &base.join("f"), b"x").await;
    fs.create_dir(&base.join("d")).await.unwrap();
    assert_eq!(fs.read(&base.join("d/../f")).await.unwrap(), b"x");
    assert_eq!(
        kind(fs.exists(&base.join("f/../f")).await),
        ErrorKind::NotADirectory
    );
    assert_eq!(
        kind(fs.metadata(&base.join("nope/../f")).await),
        ErrorKind::NotFound
    );
}

async fn a_lock_has_one_holder_until_its_guard_is_dropped<F: Fs>(fs: F, base: PathBuf) {
    write_file(&fs, &base.join("f"), b"").await;
    for path in [base.clone(), base.join("f")] {
        let held = fs.try_lock(&path).await.unwrap();
        assert_eq!(kind(fs.try_lock(&path).await), ErrorKind::WouldBlock);
        assert_eq!(
            kind(fs.clone().try_lock(&path).await),
            ErrorKind::WouldBlock,
            "another handle of the same disk is another holder"
        );
        drop(held);
        drop(fs.try_lock(&path).await.unwrap());
    }
    assert_eq!(
        kind(fs.try_lock(&base.join("nope")).await),
        ErrorKind::NotFound
    );
}

async fn hard_link_gives_a_file_a_second_name_and_refuses_what_posix_refuses<F: Fs>(
    fs: F,
    base: PathBuf,
) {
    let (from, to) = (base.join("f"), base.join("d/g"));
    write_file(&fs, &from, b"data").await;
    fs.create_dir(&base.join("d")).await.unwrap();
    fs.hard_link(&from, &to).await.unwrap();
    assert_eq!(fs.read(&to).await.unwrap(), b"data");
    // One file under two names: a write through one is read through the other.
    let file = fs.open(&from, OpenMode::Write).await.unwrap();
    file.write_at(0, b"DATA").await.unwrap();
    assert_eq!(fs.read(&to).await.unwrap(), b"DATA");
    fs.unlink(&from).await.unwrap();
    assert_eq!(
        fs.read(&to).await.unwrap(),
        b"DATA",
        "the second name keeps it"
    );
    let err = fs.hard_link(&to, &to).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains("g"), "{err}");
    assert_eq!(
        kind(fs.hard_link(&from, &base.join("h")).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(fs.hard_link(&base.join("d"), &base.join("e")).await),
        ErrorKind::PermissionDenied,
        "a directory cannot be linked"
    );
    assert_eq!(
        kind(fs.hard_link(&to, &base.join("no/such/h")).await),
        ErrorKind::NotFound
    );
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod simfs {
            $(
                #[tokio::test]
                async fn $name() {
                    let fs = tally_sim::SimFs::new();
                    let base = std::path::PathBuf::from("/base");
                    tally_sim::Fs::create_dir_all(&fs, &base).await.unwrap();
                    super::$name(fs, base).await;
                }
            )*
        }
        mod realfs {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let base = dir.path().join("base");
                    tally_sim::Fs::create_dir_all(&tally_sim::RealFs, &base).await.unwrap();
                    super::$name(tally_sim::RealFs, base).await;
                }
            )*
        }
    };
}

conformance!(
    create_exclusive_fails_on_existing_file,
    create_truncate_empties_existing_file,
    create_needs_an_existing_parent_directory,
    open_missing_is_not_found_and_a_directory_is_refused,
    open_for_read_refuses_writes,
    open_for_write_keeps_the_content,
    read_past_the_end_is_short_or_empty,
    write_past_the_end_fills_the_hole_with_zeros,
    append_writes_at_the_end_and_returns_the_offset,
    set_len_truncates_and_extends_with_zeros,
    rename_replaces_an_existing_file,
    rename_moves_between_directories,
    rename_to_itself_is_a_no_op,
    rename_refuses_what_posix_refuses,
    rename_noreplace_refuses_an_existing_target,
    rename_noreplace_moves_when_the_target_is_free,
    rename_noreplace_of_a_missing_source_is_not_found,
    rename_noreplace_onto_a_directory_is_already_exists,
    hard_link_gives_a_file_a_second_name_and_refuses_what_posix_refuses,
    unlink_missing_file_is_not_found,
    unlink_of_a_directory_is_refused,
    an_open_handle_outlives_unlink,
    directories_are_created_and_removed,
    list_dir_is_sorted_and_tells_files_from_directories,
    sync_dir_needs_an_existing_directory,
    metadata_and_exists_report_what_is_there,
    errors_name_the_path,
    sync_succeeds_on_written_files,
    huge_offsets_and_lengths_are_refused_or_clipped,
    parent_components_resolve_like_the_kernel,
    a_lock_has_one_holder_until_its_guard_is_dropped,
);

/// `RealFs` reports a symbolic link as one, in a listing and in `metadata`, without following
/// it (`SimFs` has none).
#[tokio::test]
#[allow(
    clippy::disallowed_methods,
    reason = "the test plants a directory and a link on the real disk"
)]
async fn realfs_never_follows_a_symbolic_link_it_reports() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("link")).unwrap();
    let listed = RealFs.list_dir(dir.path()).await.unwrap();
    let link = listed.iter().find(|e| e.name == "link").unwrap();
    assert!(link.is_symlink && !link.is_dir, "{link:?}");
    let meta = RealFs.metadata(&dir.path().join("link")).await.unwrap();
    assert!(meta.is_symlink && !meta.is_dir, "{meta:?}");
    let meta = RealFs.metadata(&target).await.unwrap();
    assert!(!meta.is_symlink && meta.is_dir, "{meta:?}");
}

/// A symbolic link at the target is an existing target, even one pointing nowhere: the link
/// is neither followed nor replaced.
#[tokio::test]
#[allow(
    clippy::disallowed_methods,
    reason = "the test plants a dangling link on the real disk"
)]
async fn realfs_rename_noreplace_refuses_a_symbolic_link_at_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("from"), dir.path().join("to"));
    std::fs::write(&from, b"x").unwrap();
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &to).unwrap();
    assert_eq!(
        kind(RealFs.rename_noreplace(&from, &to).await),
        ErrorKind::AlreadyExists
    );
    assert!(RealFs.metadata(&to).await.unwrap().is_symlink);
    assert!(!RealFs.exists(&dir.path().join("nowhere")).await.unwrap());
    assert_eq!(RealFs.read(&from).await.unwrap(), b"x");
}

// Both backends are used through the same generic bodies above; these keep the imports honest.
const _: fn() = || {
    fn is_fs<F: Fs>() {}
    is_fs::<SimFs>();
    is_fs::<RealFs>();
};
