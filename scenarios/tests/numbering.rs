//! Claims about the trace's numbering: a plan's call index, its fault and crash lines, the
//! crash points and the violations all name a call by the index of its `L<life> #N` line.

use tally_faults::{Control, Crash, Moment, Trigger};
use tally_harness::run::{RunOutcome, RunSpec, run};
use tally_harness::runtime::run_seeded;
use tally_harness::scenario::Scenario;
use tally_harness::trace::misnumbered;
use tally_sim::CrashModel;

fn replay(spec: &RunSpec) -> RunOutcome {
    run_seeded(spec.seed, run(spec))
}

fn count(outcome: &RunOutcome, pattern: impl Fn(&str) -> bool) -> usize {
    outcome.trace.iter().filter(|l| pattern(l)).count()
}

#[test]
fn every_fault_crash_crash_point_and_violation_names_the_op_log_line_of_its_call() {
    let mut specs: Vec<RunSpec> = (0..8)
        .map(|seed| Scenario::Standard.spec(seed, None, &[]))
        .collect();
    // Controls answer calls themselves, make helper calls of their own, and fail runs.
    for control in [Control::LyingSyncDir, Control::RenameBeforeData] {
        specs.extend((0..2).map(|seed| Scenario::Standard.spec(seed, None, &[control])));
    }
    let (mut injected, mut crashes, mut points, mut violations) = (0, 0, 0, 0);
    for spec in &specs {
        let outcome = replay(spec);
        let wrong = misnumbered(&outcome.trace);
        assert!(wrong.is_empty(), "seed {}: {wrong:#?}", spec.seed);
        injected += count(&outcome, |l| {
            l.starts_with("L1 fault at #") && l.contains(": inject")
        });
        crashes += count(&outcome, |l| l.starts_with("L1 crash at #"));
        points += count(&outcome, |l| l.starts_with("point L"));
        violations += count(&outcome, |l| l.starts_with("VIOLATION crash after L"));
    }
    // Each kind of line was there to be checked.
    eprintln!("{injected} injections, {crashes} crashes, {points} points, {violations} violations");
    assert!(injected > 0 && crashes > 0 && points > 100 && violations > 0);
}

/// The mutating calls of the first lifetime, as `(index, kind, path)`: calls of the pipeline
/// through the fault layer (the harness's own calls only read).
fn mutating_calls(outcome: &RunOutcome) -> Vec<(u64, String, String)> {
    const MUTATING: [&str; 9] = [
        "create",
        "write",
        "append",
        "set_len",
        "sync",
        "sync_dir",
        "rename",
        "unlink",
        "create_dir",
    ];
    outcome
        .trace
        .iter()
        .filter_map(|line| {
            let mut words = line.strip_prefix("L1 #")?.split(' ');
            let index = words.next()?.parse().ok()?;
            let (kind, path) = (words.next()?, words.next()?);
            MUTATING
                .contains(&kind)
                .then(|| (index, kind.to_owned(), path.to_owned()))
        })
        .collect()
}

#[test]
fn a_call_trigger_fires_exactly_on_the_call_printed_with_its_index() {
    let mut base = Scenario::Standard.spec(3, Some(CrashModel::Strict), &[]);
    base.plan.crash = None;
    base.plan.faults.clear();
    let calls = mutating_calls(&replay(&base));
    assert!(calls.len() > 50, "only {} mutating calls", calls.len());
    let picks = [
        1,
        calls.len() / 5,
        calls.len() / 2,
        calls.len() * 4 / 5,
        calls.len() - 1,
    ];
    for (i, &pick) in picks.iter().enumerate() {
        let (index, kind, path) = &calls[pick];
        let moment = if i % 2 == 0 {
            Moment::After
        } else {
            Moment::Before
        };
        let mut spec = base.clone();
        spec.plan.crash = Some(Crash {
            at: Trigger::Call { index: *index },
            moment,
            model: CrashModel::Strict,
        });
        let outcome = replay(&spec);
        let when = if moment == Moment::After {
            "after"
        } else {
            "before"
        };
        let fault = format!("L1 fault at #{index} {kind} {path}: crash {when} this call");
        assert!(outcome.trace.contains(&fault), "no line {fault:?}");
        assert_eq!(outcome.crashed, Some(format!("#{index}")));
        let logged = format!("L1 #{index} {kind} {path} ");
        assert!(
            outcome.trace.iter().any(|l| l.starts_with(&logged)),
            "no line {logged:?} in the crashing run"
        );
        assert!(misnumbered(&outcome.trace).is_empty());
    }
}
