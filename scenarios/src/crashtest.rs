//! Crash runs on the real disk: the first lifetime of a run in a child process that aborts
//! itself at the plan's crash (a process crash: the page cache survives, as under `kill`),
//! then recovery, the oracle and the rest of the run in the parent, a fresh process. On a
//! LazyFS mount the parent first drops every unsynced byte (a power loss) — the CLI does that.
//!
//! The child reports its progress on stdout, one line per event, flushed before the next
//! call: `try <source> <end>` before rows `..end` are handed to `ingest`, `ack <source> <end>`
//! once they are acknowledged, `done` at the end. The parent reads what reached the pipe
//! before the abort: exactly the acknowledgements the child had received.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tally_faults::{Control, FaultFs};
use tally_sim::{CrashModel, RealFs, SystemClock, World};

use super::oracle::{self, Breach, Expectation, SourceProgress};
use super::run::{Ctx, RunSpec, drive};
use super::scenario::Scenario;
use super::trace::Trace;

/// Exit code of a child whose lifetime ended on an error (injected or not).
pub const CHILD_ERROR_EXIT: i32 = 3;

/// The run a crash test of `seed` performs: the standard scenario's, with the crash a process
/// abort (model `kill`) and without latency (real sleeps would only slow it down). `controls`
/// make the child's fault layer lie (negative controls: `lying-sync` makes `sync` a no-op).
pub fn spec(seed: u64, controls: &[Control]) -> RunSpec {
    let mut spec = Scenario::Standard.spec(seed, Some(CrashModel::Kill), controls);
    spec.plan.latency = None;
    spec
}

/// The child: runs the first lifetime of `seed` in `dir` on the real disk, printing progress;
/// aborts the process when the plan's crash fires. Returns the lifetime's error, if any.
pub async fn child(dir: &Path, seed: u64, controls: &[Control]) -> Result<(), String> {
    let spec = spec(seed, controls);
    let fs = FaultFs::new(RealFs, spec.plan.clone()).map_err(|e| e.to_string())?;
    fs.on_crash(|_| {
        let _ = std::io::stdout().flush();
        std::process::abort();
    });
    let trace = Trace::with_sink(|line| {
        let mut words = line.split_whitespace().skip(1);
        let (Some(what @ ("try" | "ack")), Some(source), Some(_), Some(range)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return;
        };
        let end = range
            .trim_end_matches(':')
            .split("..")
            .nth(1)
            .unwrap_or("0");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{what} {source} {end}");
        let _ = out.flush();
    });
    let progress = Arc::new(Mutex::new(BTreeMap::new()));
    let world = World::new(fs.clone(), fs.clock(SystemClock));
    let ctx = Ctx::new(progress, trace, 1);
    let config = spec.workload.config();
    let result = drive(world, dir, &spec.workload, &config, &ctx, false).await;
    println!("done");
    result
}

/// Reads the child's progress lines.
pub fn parse_progress(text: &str) -> (BTreeMap<String, SourceProgress>, bool) {
    let mut progress: BTreeMap<String, SourceProgress> = BTreeMap::new();
    let mut done = false;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["done"] => done = true,
            [what, source, end] => {
                let Ok(end) = end.parse::<u64>() else {
                    continue;
                };
                let entry = progress.entry((*source).to_owned()).or_default();
                match *what {
                    "try" => entry.attempted = entry.attempted.max(end),
                    "ack" => entry.acked = entry.acked.max(end),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    (progress, done)
}

/// What one crash run found.
#[derive(Clone, Debug, Serialize)]
pub struct CrashRun {
    pub seed: u64,
    /// How the child ended: "aborted", "finished", "failed (exit 3)", ...
    pub child: String,
    pub rows_acknowledged: u64,
    pub violations: Vec<String>,
}

/// The parent's half: recovers `dir` (in this process), applies the oracle with what the
/// child acknowledged, completes the run and checks its end.
pub async fn after_child(
    dir: &Path,
    seed: u64,
    progress: BTreeMap<String, SourceProgress>,
) -> Vec<Breach> {
    // The parent's half runs on the honest disk: only the child's lifetime lies.
    let spec = spec(seed, &[]);
    let config = spec.workload.config();
    let mut breaches = Vec::new();
    let mut expect = Expectation {
        sources: progress.clone(),
        payload_bytes: spec.workload.payload_bytes,
        final_state: false,
        ..Expectation::default()
    };
    if let Err(b) = oracle::check(&RealFs, dir, &config, &expect).await {
        breaches.push(b);
        return breaches;
    }
    let progress = Arc::new(Mutex::new(progress));
    let ctx = Ctx::new(progress.clone(), Trace::default(), 2);
    let world = World::new(RealFs, SystemClock);
    let result = drive(world, dir, &spec.workload, &config, &ctx, true).await;
    breaches.extend(
        ctx.findings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..),
    );
    if let Err(e) = result {
        breaches.push(Breach {
            invariant: oracle::Invariant::NoUnexplainedError,
            rows: vec![],
            detail: format!("completing the run after recovery failed: {e}"),
        });
        return breaches;
    }
    expect.sources = progress.lock().unwrap_or_else(|p| p.into_inner()).clone();
    expect.final_state = true;
    if let Err(b) = oracle::check(&RealFs, dir, &config, &expect).await {
        breaches.push(b);
    }
    breaches
}
