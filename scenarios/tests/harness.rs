//! Claims about the harness: seeded runs pass on a correct pipeline and check many crash
//! points; a seed reproduces its run exactly; every negative control is caught, and the
//! violation replays; the external Delta reader catches a commit visible before its data;
//! exploration passes every state; shrinking keeps a failure failing; the oracle refuses a
//! damaged disk.

use std::path::Path;

use tally_faults::Control;
use tally_harness::oracle::{self, Expectation, Invariant, ROOT, SourceProgress};
use tally_harness::run::{Images, RunSpec, run, run_with};
use tally_harness::runtime::run_seeded;
use tally_harness::scenario::Scenario;
use tally_harness::shrink::shrink;
use tally_harness::sweep::Sweep;
use tally_harness::workload::{Workload, batch};
use tally_pipeline::Pipeline;
use tally_sim::{CrashModel, Fs, SimClock, SimFs, World};

fn replay(spec: &RunSpec) -> tally_harness::run::RunOutcome {
    run_seeded(spec.seed, run(spec))
}

#[test]
fn standard_seeds_pass_with_a_crash_check_after_every_call() {
    let mut deepest = 0;
    for seed in 0..6 {
        let outcome = replay(&Scenario::Standard.spec(seed, None, &[]));
        assert!(
            outcome.passed(),
            "seed {seed}: {:#?}",
            &outcome.violations[..outcome.violations.len().min(3)]
        );
        assert!(
            outcome.crash_points > 100,
            "seed {seed}: only {} crash points",
            outcome.crash_points
        );
        deepest = deepest.max(outcome.max_level);
    }
    assert!(
        deepest >= 2,
        "no seed merged up to level 2 (highest {deepest})"
    );
}

#[test]
fn a_seed_reproduces_its_run_exactly() {
    let spec = Scenario::Standard.spec(11, None, &[]);
    let (a, b) = (replay(&spec), replay(&spec));
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.digest, b.digest);
    assert!(
        a.trace[0].starts_with("seed 11 "),
        "seed first: {}",
        a.trace[0]
    );
    let other = replay(&Scenario::Standard.spec(12, None, &[]));
    assert_ne!(a.digest, other.digest);
}

#[test]
fn every_negative_control_is_caught_within_eight_seeds_and_replays() {
    for control in Control::ALL {
        let sweep = Sweep {
            scenario: Scenario::Standard,
            seeds: (0..8).collect(),
            jobs: 1,
            model: None,
            controls: vec![control],
            twin: None,
            swarm: false,
        };
        let outcomes = sweep.run(|_| {});
        let failing = outcomes
            .iter()
            .find(|o| !o.passed())
            .unwrap_or_else(|| panic!("{control}: no violation in 8 seeds"));
        let command = sweep.reproduce(failing.seed);
        eprintln!(
            "{control}: seed {} fails ({} violations), first: {}\n  reproduce: {command}",
            failing.seed, failing.violation_count, failing.violations[0]
        );
        assert!(
            command.contains(&format!("--control {control}")),
            "{command}"
        );
        let again = replay(&sweep.spec(failing.seed));
        assert_eq!(again.violations, failing.violations);
        assert_eq!(again.digest, failing.digest);
    }
}

/// `rename-before-data` makes a Delta commit visible before its bytes are durable, and a table
/// file's name before its data: the external Delta reader finds a torn or empty file on a crash
/// image before recovery touches it. (The older invariants catch the control too, but later in
/// the oracle's order.)
#[test]
fn a_commit_visible_before_its_data_is_caught_by_the_external_delta_reader() {
    let caught = (0..8).find_map(|seed| {
        let spec = Scenario::Standard.spec(seed, None, &[Control::RenameBeforeData]);
        let outcome = replay(&spec);
        outcome
            .violations
            .iter()
            .find(|v| v.breach.invariant == Invariant::DeltaVersionComplete)
            .map(|v| (seed, v.breach.detail.clone()))
    });
    let (seed, detail) = caught.expect("delta-version-complete within 8 seeds");
    eprintln!("seed {seed}: {detail}");
    assert!(detail.starts_with("before recovery"), "{detail}");
}

#[test]
fn exploring_the_small_workload_passes_every_state() {
    for model in CrashModel::ALL {
        let spec = Scenario::Standard.small(model);
        let outcome = run_seeded(spec.seed, run_with(&spec, Images::Exhaustive));
        assert!(
            outcome.passed(),
            "{model}: {:#?}",
            &outcome.violations[..outcome.violations.len().min(3)]
        );
        eprintln!("{model}: {} states", outcome.crash_points);
        assert!(
            outcome.max_level >= 1,
            "{model}: the small workload never merged"
        );
        assert!(
            outcome.crash_points > 40,
            "{model}: {} states",
            outcome.crash_points
        );
    }
}

#[test]
fn shrinking_keeps_the_failure_and_makes_the_run_smaller() {
    let spec = (0..8)
        .map(|seed| Scenario::Standard.spec(seed, Some(CrashModel::Strict), &[Control::LyingSync]))
        .find(|spec| !replay(spec).passed())
        .expect("a lying sync fails some seed");
    let shrunk = shrink(&spec, 25, |candidate| !replay(candidate).passed());
    assert!(
        !replay(&shrunk.spec).passed(),
        "the shrunk plan still fails"
    );
    assert!(!shrunk.steps.is_empty(), "something was removed");
    let size = |s: &RunSpec| (s.workload.total_rows(), s.plan.faults.len());
    assert!(size(&shrunk.spec) <= size(&spec));
    assert!(shrunk.spec.workload != spec.workload || shrunk.spec.plan != spec.plan);
    // The shrunk run is data: it survives a round trip through JSON.
    let json = serde_json::to_string(&shrunk.spec).unwrap();
    assert_eq!(serde_json::from_str::<RunSpec>(&json).unwrap(), shrunk.spec);
}

/// A store with every row of the small workload published, and the expectation it meets.
async fn published_store() -> (SimFs, Workload, Expectation) {
    let workload = Workload::small();
    let disk = SimFs::new();
    let (p, _) = Pipeline::open(
        World::new(disk.clone(), SimClock::default()),
        ROOT,
        workload.config(),
    )
    .await
    .unwrap();
    let mut expect = Expectation {
        payload_bytes: workload.payload_bytes,
        ..Expectation::default()
    };
    for source in &workload.sources {
        for (first, rows, last) in source.part_ranges() {
            p.ingest_part_of(
                &source.name,
                Some(tally_harness::workload::fingerprint(&source.name)),
                first,
                batch(&source.name, first, rows, workload.payload_bytes, 0),
                last,
            )
            .await
            .unwrap();
        }
        expect.sources.insert(
            source.name.clone(),
            SourceProgress {
                acked: source.rows(),
                attempted: source.rows(),
            },
        );
    }
    p.flush().await.unwrap();
    (disk, workload, expect)
}

#[test]
fn the_oracle_refuses_a_disk_damaged_after_the_fact() {
    run_seeded(0, async {
        let (disk, workload, expect) = published_store().await;
        let config = workload.config();
        oracle::check(&disk.snapshot(), Path::new(ROOT), &config, &expect)
            .await
            .unwrap();

        // A published file deleted: an engine reading the disk finds the newest version
        // incomplete, which the oracle reports first (before recovery touches the disk); and
        // recovery fails closed over it.
        let damaged = disk.snapshot();
        let manifest_files: Vec<String> = damaged
            .tree()
            .keys()
            .filter(|p| p.ends_with(".parquet"))
            .cloned()
            .collect();
        damaged.unlink(Path::new(&manifest_files[0])).await.unwrap();
        let breach = oracle::check(&damaged.snapshot(), Path::new(ROOT), &config, &expect)
            .await
            .unwrap_err();
        assert_eq!(
            breach.invariant,
            Invariant::DeltaVersionComplete,
            "{breach}"
        );
        assert!(breach.detail.contains("is missing"), "{breach}");
        let world = World::new(damaged, SimClock::default());
        let refused = Pipeline::open(world, ROOT, config.clone()).await.err();
        let refused = refused.expect("recovery refuses").to_string();
        assert!(refused.contains("acknowledges"), "{refused}");

        // Rows the oracle was told were acknowledged but were never ingested.
        let mut more = expect.clone();
        more.sources.get_mut("a").unwrap().acked += 1;
        let breach = oracle::check(&disk.snapshot(), Path::new(ROOT), &config, &more)
            .await
            .unwrap_err();
        assert_eq!(breach.invariant, Invariant::AckedRowsPresent, "{breach}");
    });
}

/// What `replay --check-determinism` does, on twenty seeds: each run twice in this process, on
/// fresh runtimes. (A seed's first run in a fresh process is compared with a sweep's by
/// `tests/cli.rs`.)
#[cfg(madsim)]
#[test]
fn twenty_seeds_each_run_twice_give_identical_traces_and_disks() {
    for seed in 0..20 {
        let spec = Scenario::Standard.spec(seed, None, &[]);
        let (a, b) = (replay(&spec), replay(&spec));
        if let Some(i) = a.trace.iter().zip(&b.trace).position(|(x, y)| x != y) {
            panic!(
                "seed {seed}: traces differ at line {}:\n{}\n{}",
                i + 1,
                a.trace[i],
                b.trace[i]
            );
        }
        assert_eq!(a.digest, b.digest, "seed {seed}");
    }
}

/// A flipped bit in a read of the sequence reservation makes the pipeline set the file aside,
/// and recovery rebuild the reservation from the numbers in use: the injected fault explains
/// the repair, so `repairs-explained` must not call it a lying disk (a swarm sweep that
/// corrupted reads of SEQ failed on exactly this).
#[test]
fn a_corrupted_read_of_the_reservation_explains_its_repair() {
    use tally_faults::{CallKind, Effect, Fault, Trigger};
    let mut misread = 0;
    for seed in 0..24 {
        let mut spec = Scenario::Standard.spec(seed, Some(CrashModel::Strict), &[]);
        if spec.workload.restart_after_parts.is_none() {
            continue;
        }
        spec.plan.crash = None;
        spec.plan.faults = vec![Fault {
            at: Trigger::Nth {
                kind: CallKind::Read,
                path: "*/_tally/SEQ".into(),
                // The first read, at the first open, finds no file.
                n: 2,
            },
            effect: Effect::CorruptRead,
        }];
        let outcome = replay(&spec);
        if outcome.probes.contains_key("fault:corrupt-read:seq") {
            misread += 1;
        }
        assert!(
            outcome.passed(),
            "seed {seed}: {:?}",
            outcome.violations.first()
        );
    }
    assert!(
        misread >= 3,
        "only {misread} runs read SEQ with a flipped bit"
    );
}
