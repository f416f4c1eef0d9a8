//! A damaged store as a user meets it (issue 15, findings 4 and 5): `tally run` and `tally
//! verify` refuse a store whose newest commit is damaged and name the way out, `tally
//! recover` says what it would do and changes nothing without `--accept-loss`, and with it
//! rolls back and reports the loss.
#![cfg(not(madsim))]
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "tests write input files and damage a store on the real disk"
)]

use std::path::{Path, PathBuf};

mod support;

use support::{tally, text, tree, write_csv};

/// The newest commit (`_delta_log/<version>.json`) of the store at `root`.
fn newest_manifest(root: &Path) -> PathBuf {
    let mut names: Vec<PathBuf> = std::fs::read_dir(root.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".json") && !name.starts_with('_')
        })
        .collect();
    names.sort();
    names.pop().expect("a commit")
}

/// A store where two runs published a source each; the newest commit then gets one extra
/// byte. Returns the temp dir, the root and the damaged commit's file name.
fn damaged_store() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    for (name, first) in [("a.csv", 0), ("b.csv", 100)] {
        let input = dir.path().join(name);
        write_csv(&input, first, 50);
        let out = tally(&[
            "run",
            "--root",
            root.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let manifest = newest_manifest(&root);
    let mut bytes = std::fs::read(&manifest).unwrap();
    bytes.push(b'\n');
    std::fs::write(&manifest, bytes).unwrap();
    let name = manifest.file_name().unwrap().to_string_lossy().into_owned();
    (dir, root, name)
}

#[test]
fn run_on_a_damaged_store_exits_non_zero_naming_tally_recover_accept_loss() {
    let (dir, root, damaged) = damaged_store();
    let before = tree(&root);
    let input = dir.path().join("c.csv");
    write_csv(&input, 200, 10);
    let out = tally(&[
        "run",
        "--root",
        root.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    let all = text(&out);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(all.contains(&damaged), "{all}");
    assert!(
        all.contains("tally recover") && all.contains("--accept-loss"),
        "{all}"
    );
    assert_eq!(tree(&root), before, "nothing moved: {all}");
}

#[test]
fn verify_says_a_damaged_store_is_damaged() {
    let (_dir, root, damaged) = damaged_store();
    let out = tally(&["verify", "--root", root.to_str().unwrap()]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains(&damaged) && all.contains("damaged"), "{all}");
    assert!(all.contains("INCONSISTENT"), "{all}");
}

#[test]
fn recover_without_accept_loss_changes_nothing_and_exits_non_zero() {
    let (_dir, root, damaged) = damaged_store();
    let before = tree(&root);
    let out = tally(&["recover", "--root", root.to_str().unwrap()]);
    let all = text(&out);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains(&damaged) && all.contains("--accept-loss"),
        "{all}"
    );
    assert!(all.contains("50 rows"), "the rows at risk: {all}");
    assert_eq!(tree(&root), before, "nothing moved: {all}");
}

#[test]
fn recover_with_accept_loss_rolls_back_and_reports_the_loss() {
    let (_dir, root, damaged) = damaged_store();
    let root_arg = root.to_str().unwrap();
    let commit = root.join("_delta_log").join(&damaged);
    let damaged_bytes = std::fs::read(&commit).unwrap();
    let out = tally(&["recover", "--root", root_arg, "--accept-loss"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("rolled back") && all.contains(&damaged) && all.contains("50 rows"),
        "{all}"
    );
    // Set aside, not deleted: moved (linked, then unlinked) into the quarantine, unchanged.
    assert!(!commit.exists(), "the damaged commit left _delta_log/");
    let kept = root.join("_tally/quarantine").join(format!("{damaged}.0"));
    assert_eq!(std::fs::read(&kept).unwrap(), damaged_bytes, "{all}");
    {
        use std::os::unix::fs::MetadataExt;
        let links = std::fs::metadata(&kept).unwrap().nlink();
        assert_eq!(links, 1, "one name left: the quarantine's");
    }
    let out = tally(&["verify", "--root", root_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // On a healthy store, recover is an open: exit 0.
    let out = tally(&["recover", "--root", root_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
