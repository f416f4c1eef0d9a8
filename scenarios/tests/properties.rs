//! Property tests over workload shapes: any number of sources, part sizes, schema widths,
//! segment sizes and merge settings, on the simulated disk, with a crash image checked after
//! every call. A failing shape shrinks to a minimal one — shown by a negative control.
//!
//! Each case is a whole run (hundreds of crash points), so the case counts are small; the
//! shapes a fixed seed draws are the same on every run of the suite.
#![cfg(not(madsim))]

use proptest::prelude::*;
use proptest::test_runner::{
    Config as ProptestConfig, RngAlgorithm, TestError, TestRng, TestRunner,
};
use tally_faults::{Control, FaultPlan};
use tally_harness::run::{RunOutcome, RunSpec, run};
use tally_harness::runtime::run_seeded;
use tally_harness::workload::{DELTA_RETENTION_MS, Entry, Resume, SourcePlan, Workload};
use tally_sim::CrashModel;

fn workloads() -> impl Strategy<Value = Workload> {
    let sources = prop::collection::vec(prop::collection::vec(1u64..=12, 1..=4), 1..=4);
    (
        sources,
        0u32..=4,
        0u32..=24,
        500u64..=3000,
        2usize..=4,
        1u32..=3,
        2usize..=16,
        1u64..=32,
        prop::option::of(1usize..=3),
        prop::bool::ANY,
        // Which sources are bulk-loaded (bit i: source i).
        0u8..16,
    )
        .prop_map(
            |(
                parts,
                extra,
                payload,
                segment,
                fan_in,
                max_level,
                row_group,
                block,
                restart,
                keep,
                bulk,
            )| {
                let sources: Vec<SourcePlan> = parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, parts)| SourcePlan {
                        name: format!("p{i}"),
                        parts,
                    })
                    .collect();
                let fewest = sources.iter().map(|s| s.parts.len()).min().unwrap_or(1);
                let bulk_sources = (0..sources.len())
                    .filter(|i| bulk & (1 << i) != 0)
                    .map(|i| format!("p{i}"))
                    .collect();
                Workload {
                    sources,
                    concurrent: false,
                    payload_bytes: payload,
                    segment_bytes: segment,
                    seq_block: block,
                    merge_fan_in: fan_in,
                    max_level,
                    row_group_rows: row_group,
                    background_maintenance: false,
                    // A clean restart needs a part before and after it in every source.
                    restart_after_parts: restart.filter(|&n| n < fewest),
                    resume: Resume::FromLedger,
                    extra_columns: extra,
                    export: None,
                    reader: false,
                    entry: Entry::Ingest,
                    probes: Vec::new(),
                    retention_ms: if keep { DELTA_RETENTION_MS } else { 0 },
                    bulk_sources,
                }
            },
        )
}

fn spec(workload: Workload, model: CrashModel, controls: Vec<Control>) -> RunSpec {
    RunSpec {
        scenario: "property".into(),
        seed: 7,
        model,
        workload,
        plan: FaultPlan {
            controls,
            ..FaultPlan::default()
        },
        twin: None,
        swarm: None,
    }
}

fn outcome(spec: &RunSpec) -> RunOutcome {
    run_seeded(spec.seed, run(spec))
}

fn runner(cases: u32, shrink_iters: u32) -> TestRunner {
    TestRunner::new_with_rng(
        ProptestConfig {
            cases,
            max_shrink_iters: shrink_iters,
            failure_persistence: None,
            ..ProptestConfig::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    )
}

#[test]
fn every_workload_shape_conserves_rows_at_every_crash_point() {
    let models = prop::sample::select(CrashModel::ALL.to_vec());
    let result = runner(40, 64).run(&(workloads(), models), |(workload, model)| {
        let outcome = outcome(&spec(workload, model, vec![]));
        prop_assert!(
            outcome.passed(),
            "{:?}",
            &outcome.violations[..outcome.violations.len().min(3)]
        );
        prop_assert!(outcome.crash_points > 0);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn a_failing_shape_shrinks_to_a_minimal_workload() {
    // Negative control: under a lying fsync every shape loses acknowledged rows, so the
    // property fails on the first case and proptest shrinks the shape.
    let result = runner(4, 48).run(&workloads(), |workload| {
        let outcome = outcome(&spec(
            workload,
            CrashModel::Strict,
            vec![Control::LyingSync],
        ));
        prop_assert!(outcome.passed(), "{}", outcome.violations[0]);
        Ok(())
    });
    match result {
        Err(TestError::Fail(why, minimal)) => {
            // A lying fsync loses a commit's bytes (commit 0's first: an engine reading the
            // disk finds no protocol, and recovery refuses the damaged commit point) or
            // acknowledged rows.
            assert!(
                why.message().contains("acked-rows-present")
                    || why.message().contains("recovery-succeeds")
                    || why.message().contains("delta-version-complete"),
                "{why}"
            );
            assert_eq!(minimal.sources.len(), 1, "{minimal:#?}");
            assert_eq!(minimal.sources[0].parts.len(), 1, "{minimal:#?}");
            assert!(minimal.total_rows() <= 2, "{minimal:#?}");
            assert_eq!(minimal.extra_columns, 0, "{minimal:#?}");
        }
        other => panic!("the control must fail and shrink: {other:?}"),
    }
}
