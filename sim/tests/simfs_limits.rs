//! Where the simulated disk deliberately stops short of a real one, it refuses loudly.

use std::io::ErrorKind;
use std::path::Path;

use tally_sim::{CrashModel, CreateMode, Fs, FsFile, MAX_FILE_SIZE, SimFs};

#[tokio::test]
async fn moving_a_directory_to_another_parent_is_refused() {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/a/b")).await.unwrap();
    fs.create_dir(Path::new("/c")).await.unwrap();
    let err = fs
        .rename(Path::new("/a/b"), Path::new("/c/b"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("/a/b"), "{err}");
    fs.rename(Path::new("/a/b"), Path::new("/a/renamed"))
        .await
        .expect("same parent is fine");
    // So no crash image can hold one directory under two names.
    for seed in 0..50 {
        for model in CrashModel::ALL {
            let image = fs.crash(model, seed).tree();
            assert!(
                !(image.contains_key("/a/b") && image.contains_key("/a/renamed")),
                "{model}"
            );
        }
    }
}

#[tokio::test]
async fn files_past_the_size_limit_are_refused() {
    let fs = SimFs::new();
    let file = fs
        .create(Path::new("/big"), CreateMode::Exclusive)
        .await
        .unwrap();
    let err = file.write_at(MAX_FILE_SIZE, b"x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err}");
    assert_eq!(
        file.set_len(MAX_FILE_SIZE + 1).await.unwrap_err().kind(),
        ErrorKind::FileTooLarge
    );
    file.write_at(MAX_FILE_SIZE - 1, b"x")
        .await
        .expect("the last byte is allowed");
    assert_eq!(file.len().await.unwrap(), MAX_FILE_SIZE);
}
