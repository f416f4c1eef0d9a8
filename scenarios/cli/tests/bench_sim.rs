//! The simulation build's `tally bench`: its default-sweep section runs `tally sweep` as a
//! child process, reports every run with the median and spread, and compares a baseline
//! binary run by run. The sweeps here are narrowed to three seeds (`--sweep-seeds`, hidden) to
//! stay fast; the section's shape is the same as for the default 0..300.
#![cfg(madsim)]
#![allow(
    clippy::disallowed_methods,
    reason = "tests run the binary and write a wrapper script"
)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{tally, text};

const TALLY: &str = env!("CARGO_BIN_EXE_tally");

/// `tally bench --json` on a tiny configuration, plus `extra`; the report as JSON.
fn bench(extra: &[&str]) -> (std::process::Output, Option<Value>) {
    let mut args = vec![
        "bench",
        "--json",
        "--sim-seeds",
        "2",
        "--sweep-seeds",
        "0..3",
    ];
    args.extend_from_slice(extra);
    let out = tally(&args);
    let json = serde_json::from_slice(&out.stdout).ok();
    (out, json)
}

/// A baseline binary that is this one with `sweep`'s arguments after `--json F` replaced by
/// `args` (the path of the report is kept).
fn wrapper(dir: &Path, args: &str) -> PathBuf {
    let path = dir.join("baseline");
    std::fs::write(
        &path,
        format!("#!/bin/sh\nexec {TALLY} \"$1\" \"$2\" \"$3\" {args}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_default_sweep_section_reports_every_run_its_median_and_spread_and_a_baseline_of_itself_as_the_same_work()
 {
    let (out, json) = bench(&["--runs", "2", "--baseline", TALLY]);
    assert!(out.status.success(), "{}", text(&out));
    let d = &json.expect("JSON on stdout")["default_sweep"];
    let current = &d["current"];
    assert_eq!(current["seeds"], "0..3");
    let runs = current["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        assert!(run["crash_points"].as_u64().unwrap() > 0);
        let rate = f(&run["crash_points"]) / f(&run["seconds"]);
        assert!((f(&run["crash_points_per_second"]) - rate).abs() < 1e-6 * rate);
        assert!(f(&run["wall_seconds"]) >= f(&run["seconds"]));
    }
    let (median, min, max) = (
        f(&current["median"]),
        f(&current["min"]),
        f(&current["max"]),
    );
    assert!(min <= median && median <= max, "{current}");
    assert!((f(&current["spread"]) - (max - min) / median).abs() < 1e-9);
    let jobs = current["jobs"].as_u64().unwrap() as f64;
    assert!((f(&current["median_per_core"]) - median / jobs).abs() < 1e-9);

    let baseline = &d["baseline"];
    assert_eq!(baseline["same_work"], true, "{baseline}");
    assert_eq!(baseline["note"], "");
    assert_eq!(baseline["sweep"]["runs"].as_array().unwrap().len(), 2);
    assert_eq!(
        baseline["sweep"]["runs"][0]["crash_points"],
        runs[0]["crash_points"]
    );
    // The same binary: near 1, with room for a shared machine's noise on runs this short.
    let ratio = f(&baseline["ratio"]);
    assert!((0.33..3.0).contains(&ratio), "ratio {ratio}");
    assert_eq!(baseline["pair_ratios"].as_array().unwrap().len(), 2);
}

#[test]
fn a_baseline_that_checked_other_crash_points_is_reported_as_different_work_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    let other = wrapper(dir.path(), "--seeds 1..4");
    let (out, json) = bench(&["--runs", "1", "--baseline", other.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let baseline = &json.expect("JSON on stdout")["default_sweep"]["baseline"];
    assert_eq!(baseline["same_work"], false, "{baseline}");
    assert_eq!(baseline["sweep"]["seeds"], "1..4");
    assert!(
        baseline["note"]
            .as_str()
            .unwrap()
            .contains("different work"),
        "{baseline}"
    );
}

#[test]
fn a_baseline_whose_sweep_fails_fails_the_bench_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let failing = wrapper(
        dir.path(),
        "--seeds 0..3 --scenario ledger-vs-output --twin no-restart-check --shrink 0",
    );
    let (out, _) = bench(&["--runs", "1", "--baseline", failing.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed while being timed") && stderr.contains("baseline"),
        "{}",
        text(&out)
    );
}
