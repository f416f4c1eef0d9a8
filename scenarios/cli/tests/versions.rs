//! Versions as a user meets them: `tally inspect` lists what each commit did and whether the
//! version can still be read back; a merge's inputs stay on disk for readers of older versions
//! until `tally vacuum` finds their retention passed; `tally export` skips, without reading
//! them, the files wholly below its watermark.
#![cfg(not(madsim))]
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "tests write input files and read a store on the real disk"
)]

use std::path::Path;

mod support;

use support::{tally, text, write_csv};

fn json(args: &[&str]) -> serde_json::Value {
    let out = tally(args);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Four runs of one input each: four level-0 files, which the default fan-in of 4 merges.
fn merged_store(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("store");
    for i in 0..4u64 {
        let input = dir.join(format!("in{i}.csv"));
        write_csv(&input, i * 1000, 250);
        let out = tally(&[
            "run",
            "--root",
            root.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
    }
    root
}

fn level0_files(root: &Path) -> usize {
    std::fs::read_dir(root.join("data"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("L0-") && name.ends_with(".parquet")
        })
        .count()
}

#[test]
fn inspect_lists_every_version_and_a_merge_keeps_its_inputs_until_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let root = merged_store(dir.path());
    let r = root.to_str().unwrap();
    let inspection = json(&["inspect", "--root", r, "--json"]);
    let versions = inspection["versions"].as_array().unwrap();
    let ops: Vec<&str> = versions
        .iter()
        .map(|v| v["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        [
            "CREATE TABLE",
            "WRITE",
            "WRITE",
            "WRITE",
            "WRITE",
            "OPTIMIZE"
        ],
        "{inspection:#}"
    );
    let merge = &versions[5];
    assert_eq!(
        (
            merge["files_removed"].as_u64(),
            merge["files_added"].as_u64()
        ),
        (Some(4), Some(1))
    );
    assert_eq!(merge["rows_added"], 0, "a merge adds no rows");
    assert_eq!(merge["rows"], 1000);
    assert_eq!(versions[2]["rows"], 500);
    assert!(
        versions.iter().all(|v| v["files_missing"] == 0),
        "{inspection:#}"
    );
    assert_eq!(
        level0_files(&root),
        4,
        "the merge's inputs are kept for version 4's readers"
    );

    // Within retention, nothing goes.
    let kept = json(&["vacuum", "--root", r, "--json"]);
    assert_eq!(kept["deleted"].as_array().unwrap().len(), 0, "{kept:#}");
    assert_eq!(kept["kept"], 4);
    assert_eq!(level0_files(&root), 4);

    // Past it (a retention of 0), the inputs go, and the versions that held them can no
    // longer be read back; the newest still can, whole.
    let vacuumed = json(&["vacuum", "--root", r, "--retention-secs", "0", "--json"]);
    assert_eq!(
        vacuumed["deleted"].as_array().unwrap().len(),
        4,
        "{vacuumed:#}"
    );
    assert_eq!(level0_files(&root), 0);
    let after = json(&["inspect", "--root", r, "--json"]);
    let versions = after["versions"].as_array().unwrap();
    assert!(
        versions[1..5]
            .iter()
            .all(|v| v["files_missing"].as_u64() > Some(0)),
        "{after:#}"
    );
    assert_eq!(versions[5]["files_missing"], 0);
    let verify = tally(&["verify", "--root", r, "--deep"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let listing = tally(&["inspect", "--root", r]);
    let stdout = String::from_utf8_lossy(&listing.stdout);
    assert!(
        stdout.contains("OPTIMIZE") && stdout.contains("no (1 files vacuumed or missing)"),
        "{stdout}"
    );
}

#[test]
fn export_skips_the_files_below_its_watermark_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = merged_store(dir.path());
    let (r, to) = (root.to_str().unwrap(), dir.path().join("export"));
    let first = json(&[
        "export",
        "--root",
        r,
        "--to",
        to.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        (first["rows"].as_u64(), first["files_read"].as_u64()),
        (Some(1000), Some(1))
    );
    let input = dir.path().join("more.csv");
    write_csv(&input, 9000, 10);
    assert!(
        tally(&["run", "--root", r, "--input", input.to_str().unwrap()])
            .status
            .success()
    );
    let second = json(&[
        "export",
        "--root",
        r,
        "--to",
        to.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(second["rows"], 10, "{second:#}");
    assert_eq!(
        (
            second["files_read"].as_u64(),
            second["files_skipped"].as_u64()
        ),
        (Some(1), Some(1))
    );
}
