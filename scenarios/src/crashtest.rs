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
use tally_faults::{Backend, Control, FaultFs};
use tally_sim::{CrashModel, Fs, RealFs, SimFs, SystemClock, World};

use super::fidelity::{self, Fidelity};
use super::mirror::{MirrorFs, RealLies};
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
///
/// With `fidelity`, every call is mirrored onto a simulated disk ([`MirrorFs`]), and at the
/// crash (or the lifetime's end) the simulated disk's images are written to that file for the
/// parent's comparison ([`fidelity`]). The lying `controls` then lie on the real disk only,
/// beneath the mirror, so that the simulated disk holds what the pipeline was told is durable.
pub async fn child(
    dir: &Path,
    seed: u64,
    controls: &[Control],
    fidelity: Option<&Path>,
) -> Result<(), String> {
    let Some(out) = fidelity else {
        let fs = FaultFs::new(RealFs, spec(seed, controls).plan).map_err(|e| e.to_string())?;
        return lifetime(fs, dir, seed, |_| {}).await;
    };
    let lies = RealLies {
        sync: controls.contains(&Control::LyingSync),
        sync_dir: controls.contains(&Control::LyingSyncDir),
    };
    let others: Vec<Control> = controls
        .iter()
        .copied()
        .filter(|c| !matches!(c, Control::LyingSync | Control::LyingSyncDir))
        .collect();
    let mirror = MirrorFs::new(RealFs, simulated_ancestors(dir).await?, lies);
    let fs = FaultFs::new(mirror.clone(), spec(seed, &others).plan).map_err(|e| e.to_string())?;
    let (at_crash, out) = (mirror.clone(), out.to_owned());
    let (dir_owned, out_owned) = (dir.to_owned(), out.clone());
    let result = lifetime(fs, dir, seed, move |_| {
        write_expected(&at_crash, &dir_owned, &out_owned);
    })
    .await;
    write_expected(&mirror, dir, &out);
    result
}

/// A simulated disk holding `dir`'s ancestors durably, as the real disk holds them.
async fn simulated_ancestors(dir: &Path) -> Result<SimFs, String> {
    let sim = SimFs::new();
    let parent = dir.parent().ok_or("the run's directory has no parent")?;
    sim.create_dir_all(parent)
        .await
        .map_err(|e| e.to_string())?;
    for ancestor in parent.ancestors() {
        sim.sync_dir(ancestor).await.map_err(|e| e.to_string())?;
    }
    Ok(sim)
}

/// Writes the simulated disk's images of this moment for the parent, before the process
/// aborts or exits.
#[allow(
    clippy::disallowed_methods,
    reason = "the child's report to its parent, outside the disk under test"
)]
fn write_expected(mirror: &MirrorFs<RealFs>, dir: &Path, out: &Path) {
    let mut expected = fidelity::expected(mirror.sim(), dir);
    expected.indeterminate = mirror
        .in_flight()
        .map(|call| format!("the call {call} was half made when the process stopped"));
    expected.divergences = mirror.divergences();
    let json = serde_json::to_vec(&expected).expect("images serialize");
    if let Err(e) = std::fs::write(out, json) {
        eprintln!("writing {}: {e}", out.display());
    }
}

/// The first lifetime on `fs`, whose planned crash runs `at_crash` and then aborts.
async fn lifetime<F: Backend>(
    fs: FaultFs<F>,
    dir: &Path,
    seed: u64,
    at_crash: impl Fn(u64) + Send + Sync + 'static,
) -> Result<(), String> {
    let spec = spec(seed, &[]);
    fs.on_crash(move |call| {
        at_crash(call);
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
    /// With `--fidelity`: what the real disk kept beside the simulated disk's prediction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fidelity: Option<Fidelity>,
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

/// After the power loss, before recovery touches it: what the real disk kept under `dir`
/// beside the images the child wrote to `expected` at its crash.
#[allow(
    clippy::disallowed_methods,
    reason = "the child's report to its parent, outside the disk under test"
)]
pub async fn fidelity_after_power_loss(dir: &Path, expected: &Path) -> Result<Fidelity, String> {
    let text = std::fs::read(expected).map_err(|e| {
        format!(
            "the child wrote no images of the simulated disk ({}: {e})",
            expected.display()
        )
    })?;
    let expected: fidelity::Expected = serde_json::from_slice(&text)
        .map_err(|e| format!("reading {}: {e}", expected.display()))?;
    let kept = fidelity::kept(&RealFs, dir)
        .await
        .map_err(|e| format!("reading what {} kept: {e}", dir.display()))?;
    Ok(fidelity::compare(&expected, &kept))
}
