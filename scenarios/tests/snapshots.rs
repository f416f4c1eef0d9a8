//! Snapshot tests of recovery outcomes: for each scenario, pinned crash points of its small
//! form, and what recovery makes of each, compared with the committed text under
//! `tests/snapshots/`. See `docs/snapshot-testing.md` for how to add one.
//!
//! The small forms run one task and inject no faults, so the same calls happen in the normal
//! and the simulation build: both runs of CI check the same snapshots.

use tally_harness::outcome::{Pin, recovery_outcome};
use tally_harness::runtime::run_seeded;
use tally_harness::scenario::Scenario;
use tally_sim::CrashModel;

/// Recovers the crash image at `pin` of `scenario`'s small form under `model` and compares
/// the outcome with snapshot `name`.
fn check(
    name: &str,
    scenario: Scenario,
    model: CrashModel,
    op: &'static str,
    path: &'static str,
    n: u64,
) {
    let spec = scenario.small(model);
    let pin = Pin { op, path, n };
    let outcome = run_seeded(spec.seed, recovery_outcome(&spec, &pin))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    insta::assert_snapshot!(name, outcome.to_string());
}

#[test]
fn standard_after_the_first_publish_commit() {
    check(
        "standard-commit-1-strict",
        Scenario::Standard,
        CrashModel::Strict,
        "rename_noreplace",
        "*/_delta_log/*",
        2,
    );
}

#[test]
fn ledger_vs_output_after_output_rename() {
    check(
        "ledger-vs-output-l0-rename-kill",
        Scenario::LedgerVsOutput,
        CrashModel::Kill,
        "rename",
        "*/data/L0-*",
        1,
    );
}

#[test]
fn ledger_vs_output_after_staging_ack_unlink() {
    check(
        "ledger-vs-output-ack-unlink-strict",
        Scenario::LedgerVsOutput,
        CrashModel::Strict,
        "unlink",
        "*/log/*.ack",
        1,
    );
}

#[test]
fn ledger_vs_output_after_log_dir_sync() {
    check(
        "ledger-vs-output-log-sync-dir-subset",
        Scenario::LedgerVsOutput,
        CrashModel::Subset,
        "sync_dir",
        "*/log",
        3,
    );
}

#[test]
fn journal_drain_after_merge_output_rename() {
    check(
        "journal-drain-l1-rename-kill",
        Scenario::JournalDrain,
        CrashModel::Kill,
        "rename",
        "*/data/L1-*",
        1,
    );
}

#[test]
fn journal_drain_after_input_unlink() {
    check(
        "journal-drain-input-unlink-kill",
        Scenario::JournalDrain,
        CrashModel::Kill,
        "unlink",
        "*/data/L0-*",
        1,
    );
}

#[test]
fn journal_drain_torn_log_write() {
    check(
        "journal-drain-log-write-torn",
        Scenario::JournalDrain,
        CrashModel::Torn512,
        "write",
        "*/log/*.log",
        3,
    );
}

#[test]
fn multi_step_publish_between_versions() {
    check(
        "multi-step-publish-commit-2-kill",
        Scenario::MultiStepPublish,
        CrashModel::Kill,
        "rename_noreplace",
        "*/_delta_log/*",
        3,
    );
}

#[test]
fn multi_step_publish_after_delta_log_sync() {
    check(
        "multi-step-publish-delta-log-sync-5-strict",
        Scenario::MultiStepPublish,
        CrashModel::Strict,
        "sync_dir",
        "/store/_delta_log",
        5,
    );
}

#[test]
fn multi_step_publish_after_segment_unlink() {
    check(
        "multi-step-publish-log-unlink-3-prefix",
        Scenario::MultiStepPublish,
        CrashModel::Prefix,
        "unlink",
        "*/log/*",
        3,
    );
}

#[test]
fn incremental_export_after_batch_rename() {
    check(
        "incremental-export-batch-rename-kill",
        Scenario::IncrementalExport,
        CrashModel::Kill,
        "rename",
        "*/export/batch-*",
        1,
    );
}

#[test]
fn incremental_export_after_watermark_rename() {
    check(
        "incremental-export-watermark-rename-2-strict",
        Scenario::IncrementalExport,
        CrashModel::Strict,
        "rename",
        "*/export/WATERMARK*",
        2,
    );
}

#[test]
fn incremental_export_after_export_dir_sync() {
    check(
        "incremental-export-sync-dir-3-kill",
        Scenario::IncrementalExport,
        CrashModel::Kill,
        "sync_dir",
        "/export",
        3,
    );
}

#[test]
fn merge_cascade_after_level_two_output() {
    check(
        "merge-cascade-l2-rename-kill",
        Scenario::MergeCascade,
        CrashModel::Kill,
        "rename",
        "*/data/L2-*",
        1,
    );
}

#[test]
fn merge_cascade_after_level_three_output() {
    check(
        "merge-cascade-l3-rename-subset",
        Scenario::MergeCascade,
        CrashModel::Subset,
        "rename",
        "*/data/L3-*",
        1,
    );
}

#[test]
fn merge_cascade_after_input_unlinks() {
    check(
        "merge-cascade-unlink-5-kill",
        Scenario::MergeCascade,
        CrashModel::Kill,
        "unlink",
        "*/data/L*",
        5,
    );
}

#[test]
fn a_pin_that_never_happens_is_an_error() {
    let spec = Scenario::Standard.small(CrashModel::Kill);
    let pin = Pin {
        op: "rename",
        path: "*/nowhere/*",
        n: 1,
    };
    let err = run_seeded(0, recovery_outcome(&spec, &pin)).unwrap_err();
    assert!(err.contains("0 calls matching"), "{err}");
}
