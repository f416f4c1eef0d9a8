//! A run whose panic is its verdict: an assertion of the pipeline, of its recovery or of the
//! harness that fires is a bug found, so a sweep reports the seed (`no-panic`) and goes on,
//! and the seed replays to the same verdict, instead of the first such seed ending the sweep.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::runner::run;
use super::spec::RunSpec;
use super::verdict::{Phase, RunOutcome, Violation};
use crate::oracle::{Breach, Invariant};
use crate::runtime::run_seeded;
use crate::trace::Trace;

/// Runs `spec` on a fresh runtime seeded with its seed (as [`run_seeded`]); a panic becomes an
/// outcome with one `no-panic` violation carrying the panic's message.
pub fn run_guarded(spec: &RunSpec) -> RunOutcome {
    match catch_unwind(AssertUnwindSafe(|| run_seeded(spec.seed, run(spec)))) {
        Ok(outcome) => outcome,
        Err(payload) => panicked(spec, &panic_message(payload.as_ref())),
    }
}

/// The message a panic carried (`panic!`, `assert!` and `expect` carry a string).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// The outcome of a run that panicked: what ran is lost with the runtime, so its trace is the
/// panic's one line and its digest that trace's (the same panic, the same digest).
fn panicked(spec: &RunSpec, message: &str) -> RunOutcome {
    let trace = Trace::default();
    trace.line(format!("PANIC {message}"));
    let breach = Breach::new(Invariant::NoPanic, Vec::new(), message);
    RunOutcome {
        scenario: spec.scenario.clone(),
        seed: spec.seed,
        model: spec.model.to_string(),
        plan: spec.plan.to_string(),
        crash_points: 0,
        crashed: None,
        workload_error: None,
        rows_acknowledged: 0,
        max_level: 0,
        violations: vec![Violation::at(Phase::Workload, 1, breach)],
        violation_count: 1,
        digest: trace.digest(&BTreeMap::new()),
        probes: Default::default(),
        trace: trace.lines(),
    }
}
