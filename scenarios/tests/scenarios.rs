//! Claims about the incident scenarios: each passes its seeds and its small form's
//! exploration on the real pipeline; each buggy twin is caught within a stated number of seeds,
//! for the reason the incident had, its failing seed replays exactly, and the same seed passes
//! without the twin.
//!
//! Twins that switch a pipeline guard off exist only in the simulation build, so this file
//! runs there. The 200-seed sweep of each scenario and the exploration under every crash
//! model run in release (`scripts/sweep-scenarios`, part of `scripts/test-all`).
#![cfg(madsim)]

use tally_harness::oracle::Invariant;
use tally_harness::run::{Images, RunOutcome, RunSpec, run, run_guarded, run_with};
use tally_harness::runtime::run_seeded;
use tally_harness::scenario::Scenario;
use tally_harness::twin::Twin;
use tally_sim::CrashModel;

fn replay(spec: &RunSpec) -> RunOutcome {
    run_guarded(spec)
}

const INCIDENTS: [Scenario; 5] = [
    Scenario::LedgerVsOutput,
    Scenario::JournalDrain,
    Scenario::MultiStepPublish,
    Scenario::IncrementalExport,
    Scenario::MergeCascade,
];

#[test]
fn every_incident_scenario_passes_its_first_seeds() {
    for scenario in INCIDENTS {
        for seed in 0..3 {
            let outcome = replay(&scenario.spec(seed, None, &[]));
            assert!(
                outcome.passed(),
                "{scenario} seed {seed}: {:#?}",
                &outcome.violations[..outcome.violations.len().min(3)]
            );
            assert!(outcome.crash_points > 50, "{scenario} seed {seed}");
        }
    }
}

#[test]
fn every_incident_scenario_passes_every_state_of_its_small_form() {
    for scenario in INCIDENTS {
        let spec = scenario.small(CrashModel::Subset);
        let outcome = run_seeded(0, run_with(&spec, Images::Exhaustive));
        assert!(
            outcome.passed(),
            "{scenario}: {:#?}",
            &outcome.violations[..outcome.violations.len().min(3)]
        );
        assert!(
            outcome.crash_points > 200,
            "{scenario}: {}",
            outcome.crash_points
        );
    }
}

/// Every twin, the seeds within which it must be caught (seeds 0, 1, ...), and the invariants
/// that may catch it: the bug class of its incident.
const TWINS: [(Scenario, Twin, u64, &[Invariant]); 15] = [
    (
        Scenario::LedgerVsOutput,
        Twin::LyingSync,
        2,
        &[
            Invariant::AckedRowsPresent,
            Invariant::RecoverySucceeds,
            Invariant::DeltaVersionComplete,
        ],
    ),
    (
        Scenario::LedgerVsOutput,
        Twin::NoRestartCheck,
        1,
        &[Invariant::FailsClosed, Invariant::AckedRowsPresent],
    ),
    (
        Scenario::JournalDrain,
        Twin::DrainOnIngestOnly,
        1,
        &[Invariant::StoreConsistent, Invariant::DrainedOnOpen],
    ),
    (
        Scenario::MultiStepPublish,
        Twin::ReplayConsumedSegments,
        1,
        &[
            Invariant::RecoverySucceeds,
            Invariant::LedgerMatches,
            Invariant::AtMostOnce,
        ],
    ),
    (
        Scenario::MultiStepPublish,
        Twin::VacuumIgnoresRetention,
        1,
        &[Invariant::DeltaTimeTravel],
    ),
    (
        Scenario::IncrementalExport,
        Twin::WatermarkBeforeData,
        1,
        &[Invariant::ExportExactlyOnce],
    ),
    (
        Scenario::IncrementalExport,
        Twin::OrdinalBatchIds,
        2,
        &[Invariant::ExportExactlyOnce],
    ),
    (
        Scenario::Standard,
        Twin::LogUnsynced,
        2,
        &[Invariant::RecoverySucceeds, Invariant::AckedRowsPresent],
    ),
    (
        Scenario::Standard,
        Twin::CommitDirUnsynced,
        2,
        &[Invariant::RecoverySucceeds, Invariant::AckedRowsPresent],
    ),
    (
        // Needs a failing fsync aimed at a log segment: about one uniform seed in 100.
        Scenario::Standard,
        Twin::LogSyncFailureIgnored,
        182,
        &[Invariant::RecoverySucceeds, Invariant::AckedRowsPresent],
    ),
    (
        Scenario::JournalDrain,
        Twin::RollbackCommitsFirst,
        1,
        &[Invariant::RollbackCrashSafe],
    ),
    (
        // Only a `subset` or `prefix` image can keep the leaving half of the rename alone; the
        // rollback probe takes both at every call, and some seeds keep both halves.
        Scenario::JournalDrain,
        Twin::QuarantineByRename,
        2,
        &[Invariant::RollbackCrashSafe],
    ),
    (
        // The commit is durable while the file's bytes are not: the external reader finds the
        // file empty or torn before recovery does.
        Scenario::BulkLoad,
        Twin::BulkFileUnsynced,
        1,
        &[
            Invariant::DeltaVersionComplete,
            Invariant::RecoverySucceeds,
            Invariant::AckedRowsPresent,
        ],
    ),
    (
        // A bulk file published before streamed rows numbered below it: the table's order
        // assertion fires when the segment is staged (the run's panic is its verdict), or the
        // exporter's watermark has passed rows published later.
        Scenario::BulkLoad,
        Twin::BulkSkipsDrain,
        3,
        &[Invariant::NoPanic, Invariant::ExportExactlyOnce],
    ),
    (
        Scenario::MergeCascade,
        Twin::ForgetImmature,
        1,
        &[
            Invariant::MergesSettled,
            Invariant::LevelsHomogeneous,
            Invariant::NoUnexplainedError,
        ],
    ),
];

#[test]
fn every_twin_is_caught_within_its_stated_seeds_and_replays() {
    for (scenario, twin, within, why) in TWINS {
        assert!(
            scenario.twins().contains(&twin),
            "{twin} is listed as a twin of {scenario}"
        );
        let caught = (0..within).find_map(|seed| {
            let spec = scenario.spec_with(seed, None, &[], Some(twin), false);
            let outcome = replay(&spec);
            (!outcome.passed()).then_some((spec, outcome))
        });
        let Some((spec, outcome)) = caught else {
            panic!("{scenario} twin {twin}: no violation within {within} seeds");
        };
        let first = &outcome.violations[0];
        assert!(
            why.contains(&first.breach.invariant),
            "{scenario} twin {twin} seed {}: caught by {first}, expected one of {why:?}",
            spec.seed
        );
        let again = replay(&spec);
        assert_eq!(
            again.digest, outcome.digest,
            "{twin}: the failing seed replays"
        );
        assert_eq!(again.violations, outcome.violations);
        // The twin, not the seed, is what fails.
        let fixed = replay(&scenario.spec(spec.seed, None, &[]));
        assert!(
            fixed.passed(),
            "{scenario} seed {} without {twin}: {:?}",
            spec.seed,
            fixed.violations.first()
        );
    }
}

/// A protocol mark counts only at a crash point whose image was checked: a measuring run that
/// only counts its points reaches the same code and counts none of the lifetime's marks,
/// while recovery's marks (from the checks at the restart and the end) still count.
#[test]
fn a_mark_counts_only_at_a_checked_crash_point() {
    use tally_harness::run::Depth;
    let spec = Scenario::Standard.spec(3, Some(CrashModel::Strict), &[]);
    let checked = run_seeded(spec.seed, run(&spec));
    let counted = run_seeded(spec.seed, run_with(&spec, Images::Measure(Depth::Count)));
    for mark in ["ingest.frames-synced", "table.renamed", "commit.renamed"] {
        assert!(checked.probes.get(mark).is_some_and(|&n| n > 0), "{mark}");
        assert_eq!(counted.probes.get(mark), None, "{mark}");
    }
    assert!(checked.probes.contains_key("crash:strict:commit"));
    assert!(!counted.probes.contains_key("crash:strict:commit"));
    assert!(
        counted.probes.contains_key("recover.from-checkpoint"),
        "{:?}",
        counted.probes
    );
}

/// The declared probes of every scenario are named in the catalog or are crash and fault
/// probes, and no two scenarios disagree on what a name means.
#[test]
fn every_declared_probe_is_a_catalogued_mark_or_a_crash_or_fault_probe() {
    use tally_harness::coverage::CATALOG;
    for scenario in Scenario::ALL {
        let probes = tally_harness::declared::probes(scenario);
        assert!(probes.len() > 50, "{scenario}: {}", probes.len());
        for probe in probes {
            assert!(
                CATALOG.iter().any(|(name, _)| *name == probe)
                    || probe.starts_with("crash:")
                    || probe.starts_with("fault:"),
                "{scenario}: {probe}"
            );
        }
    }
}

/// An assertion that fires inside a run is that seed's verdict (`no-panic`, with the panic's
/// message), not the end of the sweep: every other seed still runs, and the panicking seed
/// replays to the same verdict. The negative control is a planted mutant whose runs trip the
/// table's order assertion.
#[test]
fn a_panicking_seed_is_a_failing_verdict_and_the_sweep_goes_on() {
    use tally_harness::sweep::Sweep;
    let sweep = Sweep {
        scenario: Scenario::BulkLoad,
        seeds: (0..12).collect(),
        jobs: 2,
        model: None,
        controls: Vec::new(),
        twin: Some(Twin::BulkSkipsDrain),
        swarm: false,
    };
    let outcomes = sweep.run(|_| {});
    assert_eq!(outcomes.len(), 12, "every seed ran");
    let panicked: Vec<&RunOutcome> = outcomes
        .iter()
        .filter(|o| {
            o.violations
                .iter()
                .any(|v| v.breach.invariant == Invariant::NoPanic)
        })
        .collect();
    let first = panicked
        .first()
        .expect("a seed of the mutant trips an assertion within 12 seeds");
    let message = &first.violations[0].breach.detail;
    assert!(message.contains("out of order"), "{message}");
    assert!(
        outcomes.iter().any(|o| o.passed()),
        "the other seeds have their own verdicts"
    );
    let again = run_guarded(&sweep.spec(first.seed));
    assert_eq!(again.digest, first.digest, "the panicking seed replays");
    assert_eq!(again.violations, first.violations);
}
