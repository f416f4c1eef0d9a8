//! The `tally` binary's simulation commands as a user runs them. Each build carries only its
//! own commands: in the normal build the simulation commands are unknown, and the error names
//! `cargo sim`; in the simulation build they run, and the real-disk commands are unknown.

use std::process::{Command, Output};

fn tally(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .output()
        .expect("tally runs")
}

#[cfg_attr(
    not(madsim),
    allow(dead_code, reason = "used by the simulation build's tests")
)]
fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg(madsim)]
#[test]
fn bad_arguments_are_refused_clearly() {
    let out = tally(&["sweep", "--seeds", "9..3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty seed range"));
    let out = tally(&["sweep", "--model", "lazy"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown crash model"));
    let out = tally(&["sweep", "--shard", "4/3"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("need 1 <= I <= N"));
    let out = tally(&["replay", "--seed", "1", "--scenario", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scenario"));
}

#[cfg(not(madsim))]
#[test]
fn simulation_commands_are_unknown_and_name_the_way_to_run_them() {
    for args in [&["sweep"][..], &["replay", "--seed", "1"], &["explore"]] {
        let out = tally(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("unrecognized subcommand"), "{stderr}");
        assert!(stderr.contains("cargo sim <command>"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[cfg(madsim)]
#[test]
fn real_disk_commands_are_unknown_and_name_the_way_to_run_them() {
    for args in [
        &["run", "--input", "a.csv"][..],
        &["verify"],
        &["crashtest"],
    ] {
        let out = tally(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("unrecognized subcommand"), "{stderr}");
        assert!(
            stderr.contains("cargo run --release -p tally-cli"),
            "{stderr}"
        );
    }
}

#[test]
fn help_lists_only_this_builds_commands() {
    let out = tally(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    let (own, other) = if cfg!(madsim) {
        (
            ["sweep", "replay", "explore"],
            ["run", "verify", "crashtest"],
        )
    } else {
        (
            ["run", "verify", "crashtest"],
            ["sweep", "replay", "explore"],
        )
    };
    for command in own {
        assert!(
            help.contains(&format!("  {command} ")),
            "{command} missing:\n{help}"
        );
    }
    for command in other {
        assert!(
            !help.contains(&format!("  {command} ")),
            "{command} listed:\n{help}"
        );
    }
}

#[cfg(madsim)]
mod simulation {
    use super::*;

    #[test]
    fn replay_prints_the_seed_first_and_twice_gives_identical_output() {
        let a = tally(&["replay", "--seed", "3", "--trace"]);
        let b = tally(&["replay", "--seed", "3", "--trace"]);
        assert!(a.status.success(), "{}", stdout(&a));
        let text = stdout(&a);
        assert!(
            text.starts_with("seed 3 scenario standard model "),
            "{text}"
        );
        assert!(
            text.contains("\nworkload {") && text.contains("\nplan "),
            "{text}"
        );
        assert!(
            text.contains(" sync ") && text.contains("point L1#"),
            "{text}"
        );
        assert_eq!(a.stdout, b.stdout, "two replays differ");
    }

    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "reads the report the binary was asked to write"
    )]
    fn a_seed_in_a_sweep_has_the_verdict_and_digest_of_its_fresh_replay() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("sweep.json");
        let out = tally(&[
            "sweep",
            "--seeds",
            "0..8",
            "--jobs",
            "2",
            "--json",
            report.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stdout(&out));
        let text = stdout(&out);
        assert!(
            text.contains("8 seeds,") && text.contains("crash points checked"),
            "{text}"
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let outcomes = report["outcomes"].as_array().unwrap();
        assert_eq!(outcomes.len(), 8);
        // Later seeds ran after others in the same process and on either job.
        for seed in [0u64, 5, 7] {
            let line = &outcomes[seed as usize];
            let replay = tally(&["replay", "--seed", &seed.to_string(), "--json"]);
            let replayed: serde_json::Value = serde_json::from_slice(&replay.stdout).unwrap();
            assert_eq!(replayed["seed"], seed);
            assert_eq!(replayed["digest"], line["digest"], "seed {seed}");
            assert_eq!(replayed["violation_count"] == 0, line["passed"] == true);
        }
    }

    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "reads the report the binary was asked to write"
    )]
    fn a_declared_probe_no_seed_reaches_fails_a_sweep_that_requires_coverage() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("sweep.json");
        // Every seed crashes under `strict`: the crash points other models declare are never
        // reached.
        let args = [
            "sweep",
            "--scenario",
            "multi-step-publish",
            "--seeds",
            "0..2",
            "--model",
            "strict",
            "--jobs",
            "2",
            "--json",
            report.to_str().unwrap(),
        ];
        let passing = tally(&args);
        assert!(passing.status.success(), "{}", stdout(&passing));
        assert!(
            stdout(&passing).contains("never hit: "),
            "{}",
            stdout(&passing)
        );
        let out = tally(&[&args[..], &["--require-coverage"]].concat());
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains("crash:kill:commit") && text.contains("MISSED"),
            "{text}"
        );
        assert!(text.contains("FAIL: --require-coverage"), "{text}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let missed = report["coverage"]["missed"].as_array().unwrap();
        assert!(
            missed.iter().any(|p| p == "crash:kill:commit"),
            "{missed:?}"
        );
        assert!(
            !missed.iter().any(|p| p == "crash:strict:commit"),
            "{missed:?}"
        );
        assert!(
            report["coverage"]["hits"]["commit.renamed"]
                .as_u64()
                .unwrap()
                > 0
        );
    }

    #[test]
    fn a_sharded_sweep_splits_the_range() {
        let out = tally(&["sweep", "--seeds", "0..6", "--shard", "2/3", "--jobs", "1"]);
        let text = stdout(&out);
        assert!(
            text.starts_with("tally sweep: scenario standard seeds 0..6 shard 2/3 (2 seeds)"),
            "{text}"
        );
        assert!(text.contains("2 seeds,"), "{text}");
    }

    #[test]
    fn a_negative_control_fails_the_sweep_with_a_reproduce_line_that_reproduces() {
        let dir = tempfile::tempdir().unwrap();
        let out = tally(&[
            "sweep",
            "--seeds",
            "0..4",
            "--model",
            "strict",
            "--control",
            "lying-sync-dir",
            "--shrink-dir",
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        let text = stdout(&out);
        let reproduce = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("reproduce: cargo sim "))
            .unwrap_or_else(|| panic!("no reproduce line in {text}"));
        assert!(
            reproduce.contains("--control lying-sync-dir"),
            "{reproduce}"
        );
        let args: Vec<&str> = reproduce.split_whitespace().collect();
        let replay = tally(&args);
        assert_eq!(replay.status.code(), Some(1));
        assert!(stdout(&replay).contains("VIOLATION"), "{}", stdout(&replay));
        // The shrunk plan replays the failure too.
        let plan = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("replay it: cargo sim replay --plan "))
            .unwrap_or_else(|| panic!("no shrunk plan in {text}"));
        let replay = tally(&["replay", "--plan", plan]);
        assert_eq!(replay.status.code(), Some(1), "{}", stdout(&replay));
    }

    #[test]
    fn check_determinism_passes() {
        let out = tally(&["replay", "--seed", "9", "--check-determinism"]);
        assert!(out.status.success(), "{}", stdout(&out));
        assert!(stdout(&out).contains("determinism: second run digest"));
    }

    #[test]
    fn explore_checks_every_state_of_the_small_workload() {
        let out = tally(&["explore", "--model", "subset"]);
        let text = stdout(&out);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains("subset: ") && text.contains("0 failing"),
            "{text}"
        );
    }

    #[test]
    fn replay_small_lists_the_calls_a_snapshot_pin_counts() {
        let out = tally(&[
            "replay",
            "--small",
            "--scenario",
            "merge-cascade",
            "--model",
            "subset",
            "--trace",
        ]);
        let text = stdout(&out);
        assert!(out.status.success(), "{text}");
        assert!(
            text.starts_with("seed 0 scenario merge-cascade model subset"),
            "{text}"
        );
        // The snapshot `merge-cascade-l3-rename-subset` pins the first rename into level 3.
        assert!(
            text.lines().any(|l| l.starts_with("L1 #")
                && l.contains(" rename ")
                && l.contains("/data/L3-")),
            "{text}"
        );
        let refused = tally(&["replay", "--small", "--seed", "3"]);
        assert_eq!(refused.status.code(), Some(2));
    }
}

/// Real-disk crash runs: children abort themselves mid-run, and recovery in a fresh process
/// passes the oracle.
#[cfg(not(madsim))]
#[test]
fn crashtest_aborts_children_mid_run_and_recovers_every_acknowledged_row() {
    let dir = tempfile::tempdir().unwrap();
    let out = tally(&[
        "crashtest",
        "--root",
        dir.path().to_str().unwrap(),
        "--runs",
        "12",
        "--json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 12);
    assert!(report["aborted"].as_u64().unwrap() >= 3, "{text}");
    assert!(
        runs.iter()
            .all(|r| r["violations"].as_array().unwrap().is_empty())
    );
    assert!(
        runs.iter()
            .any(|r| r["child"].as_str().unwrap().starts_with("aborted")
                && r["rows_acknowledged"].as_u64().unwrap() > 0),
        "{text}"
    );
}
