//! The `tally` binary as a user runs it.

use std::process::Command;

fn tally(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .output()
        .expect("tally runs")
}

#[test]
fn demo_passes_and_reports_crash_points() {
    let out = tally(&["demo", "--seeds", "0..20", "--model", "subset"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("tally demo: seeds 0..20 model subset lie none\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("20 seeds,") && stdout.contains("0 failing seeds"),
        "{stdout}"
    );
}

#[test]
fn demo_under_a_lying_disk_fails_with_a_reproduce_command() {
    let out = tally(&[
        "demo", "--seeds", "5..7", "--model", "strict", "--lie", "sync-dir",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL seed 5"), "{stdout}");
    assert!(
        stdout.contains("reproduce: cargo sim demo --seeds 5..6 --model strict --lie sync-dir"),
        "{stdout}"
    );
}

#[test]
fn demo_json_report_lists_failing_seeds() {
    let out = tally(&[
        "demo", "--seeds", "2", "--model", "prefix", "--lie", "sync", "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    for key in [
        "\"seeds\": \"2..3\"",
        "\"model\": \"prefix\"",
        "\"lie\": \"sync\"",
        "\"seed\": 2",
        "\"reproduce\"",
    ] {
        assert!(text.contains(key), "{key} missing from {text}");
    }
}

#[test]
fn simulation_commands_name_the_way_to_run_them() {
    for command in ["sweep", "replay", "explore"] {
        let out = tally(&[command, "--seed", "1"]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("tally {command}")), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        if !cfg!(madsim) {
            assert!(stderr.contains(&format!("cargo sim {command}")), "{stderr}");
        }
    }
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let out = tally(&["demo", "--seeds", "9..3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty seed range"));
    let out = tally(&["demo", "--model", "lazy"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown crash model"));
}
