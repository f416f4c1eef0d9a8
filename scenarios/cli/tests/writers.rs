//! The root is tally's alone, as a user meets it (issue 15, findings 3 and 6, and `export
//! --root <typo>`): a second `tally run` on a root another one is writing is refused at once
//! and the first finishes with every row; `run` refuses an ordinary directory and keeps its
//! files; `verify`, `inspect` and `export` on a path that is not a store fail and create nothing.
#![cfg(not(madsim))]
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "tests write input files and watch a running process on the real disk"
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::{listing, tally, text, writing_rows};

fn write_csv(path: &Path, first: u64, rows: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "id,name,value").unwrap();
    for i in first..first + rows {
        writeln!(out, "{i},name-{i:020},{}", i as f64 * 0.5).unwrap();
    }
}

fn inspect_json(root: &str) -> serde_json::Value {
    let out = tally(&["inspect", "--root", root, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_second_tally_run_is_refused_while_the_first_writes_and_the_first_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let root_arg = root.to_str().unwrap();
    let (big, small) = (dir.path().join("big.csv"), dir.path().join("small.csv"));
    const BIG_ROWS: u64 = 600_000;
    write_csv(&big, 0, BIG_ROWS);
    write_csv(&small, 0, 10);

    let mut first = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["run", "--root", root_arg, "--batch-rows", "4096", "--input"])
        .arg(&big)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !writing_rows(&root) && first.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the first run never wrote rows");
        std::thread::sleep(Duration::from_millis(2));
    }
    let second = tally(&[
        "run",
        "--root",
        root_arg,
        "--input",
        small.to_str().unwrap(),
    ]);
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run ended before the second started: the test checked nothing"
    );
    assert!(
        matches!(second.status.code(), Some(c) if c != 0),
        "{}",
        text(&second)
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("another tally process is writing to {root_arg}")),
        "{}",
        text(&second)
    );

    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    let verify = tally(&["verify", "--root", root_arg, "--deep"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains(&format!("read {BIG_ROWS} rows")),
        "{}",
        text(&verify)
    );
    let report = inspect_json(root_arg);
    assert_eq!(report["published_rows"], BIG_ROWS);
    assert_eq!(report["sources"], 1, "nothing of the refused run's input");
}

#[test]
fn run_refuses_an_ordinary_directory_and_keeps_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let ordinary = dir.path().join("home");
    std::fs::create_dir(&ordinary).unwrap();
    std::fs::write(ordinary.join("notes.tmp"), b"mine").unwrap();
    let input = dir.path().join("in.csv");
    write_csv(&input, 0, 10);
    let before = listing(&ordinary);
    let out = tally(&[
        "run",
        "--root",
        ordinary.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(
        matches!(out.status.code(), Some(c) if c != 0),
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "{} is not empty and is not a tally store",
            ordinary.display()
        )),
        "{}",
        text(&out)
    );
    assert_eq!(listing(&ordinary), before);
    assert_eq!(std::fs::read(ordinary.join("notes.tmp")).unwrap(), b"mine");
}

#[test]
fn export_verify_and_inspect_of_a_path_that_is_not_a_store_fail_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("tally-dta");
    let ordinary = dir.path().join("home");
    std::fs::create_dir(&ordinary).unwrap();
    std::fs::write(ordinary.join("notes.tmp"), b"mine").unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let to = dir.path().join("export");
    let before = listing(dir.path());
    for root in [&typo, &ordinary, &empty] {
        let root = root.to_str().unwrap();
        for args in [
            vec!["export", "--root", root, "--to", to.to_str().unwrap()],
            vec!["verify", "--root", root],
            vec!["verify", "--root", root, "--deep", "--json"],
            vec!["inspect", "--root", root],
            vec!["recover", "--root", root],
            vec!["recover", "--root", root, "--accept-loss"],
        ] {
            let out = tally(&args);
            assert!(
                matches!(out.status.code(), Some(c) if c != 0),
                "{args:?}: {}",
                text(&out)
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("is not a tally store") || stderr.contains("does not exist"),
                "{args:?}: {}",
                text(&out)
            );
        }
    }
    assert_eq!(listing(dir.path()), before, "nothing created anywhere");
}
