//! Fleet sweeps as a fleet runs them: `sweep --shard I/N` (or `--shard auto`, from the batch
//! scheduler's variables) on each machine, `merge-reports` over the JSON reports they wrote.
//! Every merge here reads reports real sweeps wrote; a few are then edited to make the case.
#![cfg(madsim)]
#![allow(
    clippy::disallowed_methods,
    reason = "tests run the binary and read the reports it writes"
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use support::text;

fn tally_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tally"));
    for name in tally_harness::shard::SCHEDULER_VARIABLES {
        command.env_remove(name);
    }
    command
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("tally runs")
}

fn tally(args: &[&str]) -> Output {
    tally_with(&[], args)
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

/// The command was refused as bad usage (exit code 2), saying `why` on stderr.
fn assert_refused(out: &Output, why: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", text(out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(why),
        "{}",
        text(out)
    );
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `tally sweep <args> --json DIR/NAME.json` and returns the report's path.
fn sweep_to(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    let mut all = vec!["sweep", "--jobs", "1", "--shrink", "0"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", path.to_str().unwrap()]);
    let out = tally(&all);
    assert!(path.exists(), "{name}: {}", text(&out));
    path
}

/// Seeds 0..8 of the standard scenario as four real shards (each doublechecking every seed),
/// and as one unsharded sweep: written once, shared by the tests.
struct Shards {
    dir: tempfile::TempDir,
    shards: Vec<PathBuf>,
    whole: PathBuf,
}

fn shards() -> &'static Shards {
    static SHARDS: OnceLock<Shards> = OnceLock::new();
    SHARDS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let shards = (1..=4)
            .map(|i| {
                let shard = format!("{i}/4");
                let args = ["--seeds", "0..8", "--shard", &shard, "--doublecheck", "1"];
                sweep_to(dir.path(), &format!("shard-{i}"), &args)
            })
            .collect();
        let whole = sweep_to(
            dir.path(),
            "whole",
            &["--seeds", "0..8", "--doublecheck", "0"],
        );
        Shards { dir, shards, whole }
    })
}

fn merge(reports: &[&Path], extra: &[&str]) -> (Output, Option<Value>) {
    let out_dir = tempfile::tempdir().unwrap();
    let json = out_dir.path().join("merged.json");
    let mut args = vec!["merge-reports"];
    args.extend(reports.iter().map(|p| p.to_str().unwrap()));
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--json", json.to_str().unwrap()]);
    let out = tally(&args);
    let merged = json.exists().then(|| read(&json));
    (out, merged)
}

fn paths(indexes: &[usize]) -> Vec<&'static Path> {
    indexes
        .iter()
        .map(|&i| shards().shards[i - 1].as_path())
        .collect()
}

#[test]
fn four_real_shards_merge_into_the_verdict_of_the_whole_sweep() {
    let (out, merged) = merge(&paths(&[3, 1, 4, 2]), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let printed = stdout(&out);
    assert!(printed.contains("4 reports of 4 shards"), "{printed}");
    assert!(
        printed.contains("doublecheck: 8 seeds rerun, 0 mismatches"),
        "{printed}"
    );
    assert!(printed.ends_with("verdict: pass\n"), "{printed}");
    let merged = merged.unwrap();
    let whole = read(&shards().whole);
    assert_eq!(merged["seeds_run"], 8);
    assert_eq!(merged["crash_points"], whole["crash_points"]);
    // Every seed's verdict and digest, in seed order, as the unsharded sweep found them.
    assert_eq!(merged["outcomes"], whole["outcomes"]);
    assert_eq!(merged["passed"], true);
}

#[test]
fn a_merge_missing_a_shard_fails_naming_it() {
    let (out, merged) = merge(&paths(&[1, 2, 4]), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains("MISSING shards 3 of 4"),
        "{}",
        text(&out)
    );
    let merged = merged.unwrap();
    assert_eq!(merged["missing_shards"], serde_json::json!([3]));
    assert_eq!(merged["seeds_run"], 6);
}

#[test]
fn a_shard_given_twice_fails_naming_it_and_counts_once() {
    let (out, merged) = merge(&paths(&[1, 2, 3, 4, 2]), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains("DUPLICATE shards 2"),
        "{}",
        text(&out)
    );
    assert_eq!(merged.unwrap()["seeds_run"], 8);
}

/// A report whose `shard` field was changed (renamed, or a sweep given another `--shard`) holds
/// seeds its shard does not run: counting them under it would report the owner present.
#[test]
fn a_report_holding_another_shards_seeds_is_refused_naming_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let mut relabelled = read(&shards().shards[1]);
    relabelled["shard"] = Value::from("3/4");
    let fake = dir.path().join("shard-3.json");
    write(&fake, &relabelled);
    let mut reports = paths(&[1, 2, 4]);
    reports.push(&fake);
    let (out, merged) = merge(&reports, &[]);
    assert_refused(&out, "seed 1 is not one of shard 3/4");
    assert!(merged.is_none());
}

#[test]
fn shards_of_different_sweeps_are_refused_naming_the_field() {
    let strict = sweep_to(
        shards().dir.path(),
        "strict-3",
        &["--seeds", "0..8", "--shard", "3/4", "--model", "strict"],
    );
    let mut reports = paths(&[1, 2, 4]);
    reports.push(&strict);
    let (out, merged) = merge(&reports, &[]);
    assert_refused(
        &out,
        "different sweeps: model is null in one and \"strict\" in the other",
    );
    assert!(merged.is_none());
    // A shard count that differs is another sweep too.
    let mut five = read(&shards().shards[2]);
    five["shard"] = "3/5".into();
    let five_path = shards().dir.path().join("shard-3-of-5.json");
    write(&five_path, &five);
    let (out, _) = merge(&[paths(&[1])[0], &five_path], &[]);
    assert_refused(&out, "shard count is 4 in one and 5");
}

#[test]
fn a_failing_shard_fails_the_merge_and_prints_reproduce_lines_that_reproduce() {
    let dir = tempfile::tempdir().unwrap();
    let control = [
        "--seeds",
        "0..4",
        "--model",
        "strict",
        "--control",
        "lying-sync-dir",
    ];
    let reports: Vec<PathBuf> = (1..=2)
        .map(|i| {
            let shard = format!("{i}/2");
            let mut args = control.to_vec();
            args.extend_from_slice(&["--shard", &shard]);
            sweep_to(dir.path(), &format!("control-{i}"), &args)
        })
        .collect();
    let refs: Vec<&Path> = reports.iter().map(PathBuf::as_path).collect();
    let (out, merged) = merge(&refs, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let merged = merged.unwrap();
    let failing = merged["failing_seeds"].as_u64().unwrap();
    assert!(failing > 0, "{merged}");
    assert_eq!(merged["failures"].as_array().unwrap().len() as u64, failing);
    let printed = stdout(&out);
    let reproduce: Vec<&str> = printed
        .lines()
        .filter_map(|l| l.trim().strip_prefix("reproduce: cargo sim "))
        .collect();
    assert_eq!(reproduce.len() as u64, failing, "{printed}");
    let replay = tally(&reproduce[0].split_whitespace().collect::<Vec<_>>());
    assert_eq!(replay.status.code(), Some(1), "{}", text(&replay));
}

/// A real report with its coverage section set (or removed, for `None`), written as
/// `<name>-<index>.json` beside the shards.
fn with_coverage(name: &str, index: usize, coverage: Option<Value>) -> PathBuf {
    let mut report = read(&shards().shards[index - 1]);
    let object = report.as_object_mut().unwrap();
    match coverage {
        Some(coverage) => object.insert("coverage".to_owned(), coverage),
        None => object.remove("coverage"),
    };
    let path = shards().dir.path().join(format!("{name}-{index}.json"));
    write(&path, &report);
    path
}

fn coverage(declared: &[&str], hits: &[(&str, u64)]) -> Value {
    let hits: serde_json::Map<String, Value> = hits
        .iter()
        .map(|(p, n)| ((*p).to_owned(), (*n).into()))
        .collect();
    let missed: Vec<&str> = declared
        .iter()
        .copied()
        .filter(|p| hits.get(*p).and_then(Value::as_u64).unwrap_or(0) == 0)
        .collect();
    serde_json::json!({ "declared": declared, "hits": hits, "missed": missed })
}

#[test]
fn coverage_merges_across_shards_and_a_probe_no_shard_hit_fails_when_required() {
    let probes = ["sync-then-rename", "quarantine", "torn-tail"];
    let covered: Vec<PathBuf> = (1..=4)
        .map(|i| {
            let hits = match i {
                1 => vec![("sync-then-rename", 5), ("quarantine", 0)],
                2 => vec![("quarantine", 1)],
                _ => vec![("sync-then-rename", 2)],
            };
            with_coverage("cov", i, Some(coverage(&probes, &hits)))
        })
        .collect();
    let refs: Vec<&Path> = covered.iter().map(PathBuf::as_path).collect();
    let (out, merged) = merge(&refs, &[]);
    // torn-tail was hit by no shard: reported, and a failure only when coverage is required.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("coverage: 2 of 3 declared probes hit; never hit: torn-tail"),
        "{}",
        text(&out)
    );
    let merged = merged.unwrap();
    assert_eq!(merged["coverage"]["hits"]["sync-then-rename"], 9);
    assert_eq!(
        merged["coverage"]["missed"],
        serde_json::json!(["torn-tail"])
    );
    let (out, _) = merge(&refs, &["--require-coverage"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // Once a shard hits it, the required coverage is complete.
    let hit = with_coverage("cov-hit", 4, Some(coverage(&probes, &[("torn-tail", 1)])));
    let (out, _) = merge(&[refs[0], refs[1], refs[2], &hit], &["--require-coverage"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_report_without_coverage_is_named_and_fails_required_coverage() {
    let probes = ["quarantine"];
    let mut reports: Vec<PathBuf> = (1..=3)
        .map(|i| with_coverage("absent", i, Some(coverage(&probes, &[("quarantine", 1)]))))
        .collect();
    reports.push(with_coverage("absent", 4, None));
    let refs: Vec<&Path> = reports.iter().map(PathBuf::as_path).collect();
    let (out, merged) = merge(&refs, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("coverage: absent from shards 4"),
        "{}",
        text(&out)
    );
    assert_eq!(merged.unwrap()["coverage_absent"], serde_json::json!([4]));
    let (out, _) = merge(&refs, &["--require-coverage"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn shard_auto_reads_the_scheduler_and_the_report_names_the_shard_it_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("auto.json");
    let args = [
        "sweep",
        "--seeds",
        "0..8",
        "--shard",
        "auto",
        "--jobs",
        "1",
        "--doublecheck",
        "1",
    ];
    let mut args = args.to_vec();
    args.extend_from_slice(&["--json", json.to_str().unwrap()]);
    let kubernetes = [("JOB_COMPLETION_INDEX", "2"), ("TALLY_SHARD_COUNT", "4")];
    let out = tally_with(&kubernetes, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).starts_with(
            "tally sweep: scenario standard seeds 0..8 shard 3/4 (auto: JOB_COMPLETION_INDEX=2, TALLY_SHARD_COUNT=4) (2 seeds)"
        ),
        "{}",
        text(&out)
    );
    let report = read(&json);
    assert_eq!(report["shard"], "3/4");
    // The same seeds, verdicts and digests as `--shard 3/4`.
    assert_eq!(report["outcomes"], read(&shards().shards[2])["outcomes"]);
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "3"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_MAX", "4"),
    ];
    let out = tally_with(&slurm, &args);
    assert!(
        stdout(&out).contains(" shard 3/4 (auto: SLURM_ARRAY_TASK_ID=3"),
        "{}",
        text(&out)
    );
}

#[test]
fn shard_auto_without_a_scheduler_or_with_two_disagreeing_is_refused() {
    let out = tally(&["sweep", "--seeds", "0..8", "--shard", "auto"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in [
        "TALLY_SHARD_INDEX",
        "JOB_COMPLETION_INDEX",
        "SLURM_ARRAY_TASK_ID",
    ] {
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
    let two = [
        ("TALLY_SHARD_INDEX", "0"),
        ("TALLY_SHARD_COUNT", "4"),
        ("JOB_COMPLETION_INDEX", "1"),
    ];
    let out = tally_with(&two, &["sweep", "--seeds", "0..8", "--shard", "auto"]);
    assert_refused(&out, "ambiguous");
}

#[test]
fn a_sweep_reports_its_doublecheck_and_refuses_a_fraction_outside_zero_to_one() {
    let report = read(&shards().shards[0]);
    assert_eq!(report["doublecheck"]["rerun"], 2, "{report}");
    assert_eq!(report["doublecheck"]["mismatches"], serde_json::json!([]));
    assert_eq!(read(&shards().whole)["doublecheck"]["rerun"], 0);
    let out = tally(&["sweep", "--doublecheck", "1.5"]);
    assert_refused(&out, "need 0 <= P <= 1");
}
