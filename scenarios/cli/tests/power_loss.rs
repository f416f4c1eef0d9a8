//! Power-loss crash runs on LazyFS, and what each kind of real-disk run can see: a file `sync`
//! that does nothing (the `lying-sync` control) is caught once unsynced data is dropped, and is
//! invisible to plain crash runs, where the page cache survives the abort.
//!
//! The LazyFS runs need its build (`scripts/lazyfs-build` prints it) in `TALLY_LAZYFS`;
//! without it they are skipped, saying so, unless `TALLY_REQUIRE_LAZYFS=1` (`.ci/run` sets it
//! once a trial mount worked), which makes a missing build a failure.
#![cfg(not(madsim))]
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "tests run crash runs on the real disk"
)]

mod support;

use serde_json::Value;
use support::{tally, text};

/// Runs `tally crashtest` with `args` in a fresh directory; returns its exit code and report.
fn crashtest(args: &[&str]) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    let mut all = vec!["crashtest", "--root", root.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = tally(&all);
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code(), report)
}

/// The LazyFS build to mount, or `None` when the runs are to be skipped.
fn lazyfs() -> Option<String> {
    match std::env::var("TALLY_LAZYFS") {
        Ok(dir) if !dir.is_empty() => Some(dir),
        _ => {
            let required = std::env::var_os("TALLY_REQUIRE_LAZYFS").is_some_and(|v| v == "1");
            assert!(
                !required,
                "TALLY_REQUIRE_LAZYFS=1 but TALLY_LAZYFS is not set"
            );
            eprintln!("SKIP: power-loss runs need TALLY_LAZYFS (scripts/lazyfs-build)");
            None
        }
    }
}

fn failing(report: &Value) -> u64 {
    report["failing"].as_u64().unwrap()
}

#[test]
fn a_lying_sync_is_invisible_to_plain_crash_runs() {
    let (code, report) = crashtest(&["--runs", "20", "--control", "lying-sync"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(failing(&report), 0, "{report}");
    assert_eq!(report["power_loss"], false);
}

#[test]
fn power_loss_runs_pass_and_catch_a_lying_sync() {
    let Some(build) = lazyfs() else { return };
    let (code, report) = crashtest(&["--runs", "50", "--power-loss", "--lazyfs", &build]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["power_loss"], true);
    assert_eq!(report["runs"].as_array().unwrap().len(), 50);
    assert!(report["aborted"].as_u64().unwrap() > 10, "{report}");

    let (code, report) = crashtest(&[
        "--runs",
        "20",
        "--power-loss",
        "--lazyfs",
        &build,
        "--control",
        "lying-sync",
    ]);
    assert_eq!(code, Some(1), "{report}");
    assert!(failing(&report) >= 5, "{report}");
    assert_eq!(report["control"], "lying-sync");
}

#[test]
fn power_loss_without_a_lazyfs_build_is_refused_naming_the_build_script() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-build");
    let out = tally(&[
        "crashtest",
        "--root",
        dir.path().join("runs").to_str().unwrap(),
        "--power-loss",
        "--lazyfs",
        missing.to_str().unwrap(),
    ]);
    let all = text(&out);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("build.sh"), "{all}");
}
