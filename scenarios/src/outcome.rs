//! Recovery outcomes at pinned crash points, in a stable text form for snapshot tests: what
//! recovery found and repaired after a crash at one chosen call of a run's first lifetime.
//!
//! A crash point is pinned by the call it follows — the `n`-th call of one kind on a path
//! matching a glob — rather than by its index, so that a pin keeps meaning the same moment of
//! the protocol when unrelated calls come and go. The text holds no timestamps and no paths
//! outside the simulated disk, and lists everything in a fixed order.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tally_faults::FaultFs;
use tally_pipeline::{Config, Manifest, Pipeline, RecoveryReport, SourceState, export, layout};
use tally_sim::{OpRecord, SimClock, SimFs, World};

use super::oracle::{EXPORT_DIR, ROOT};
use super::run::{Ctx, RunSpec, drive, point_seed};
use super::trace::Trace;

/// A crash point: right after the `n`-th (1-based) call named `op` (`rename`, `sync_dir`,
/// `unlink`, `create`, `write`, `sync`, ...) whose path, or rename target, matches `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    pub op: &'static str,
    pub path: &'static str,
    pub n: u64,
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} #{} on {}", self.op, self.n, self.path)
    }
}

/// What recovery made of a crash image, as text. Produced by [`recovery_outcome`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryOutcome(pub String);

impl fmt::Display for RecoveryOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Matching calls seen so far, and the pinned one's record and crash image once seen.
type Captured = (u64, Option<(OpRecord, SimFs)>);

fn matches(pattern: &glob::Pattern, op: &OpRecord) -> bool {
    let options = glob::MatchOptions {
        require_literal_separator: false,
        ..glob::MatchOptions::new()
    };
    pattern.matches_with(&op.path, options)
        || op
            .to
            .as_deref()
            .is_some_and(|t| pattern.matches_with(t, options))
}

/// Runs the first lifetime of `spec` (without its own crash), takes the crash image right
/// after the call `pin` names under the spec's model, recovers it with the real recovery and
/// describes the outcome. Call it inside [`crate::runtime::run_seeded`].
pub async fn recovery_outcome(spec: &RunSpec, pin: &Pin) -> Result<RecoveryOutcome, String> {
    let config = spec.config()?;
    let (op, image) = capture_pinned(spec, pin, &config).await?;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "scenario {} seed {} model {}{}",
        spec.scenario,
        spec.seed,
        spec.model,
        spec.twin.map(|t| format!(" twin {t}")).unwrap_or_default()
    );
    let _ = writeln!(w, "crash after {pin}: {op}");
    let world = World::new(image.clone(), SimClock::default());
    let (pipeline, report) = match Pipeline::open(world, ROOT, config).await {
        Ok(opened) => opened,
        Err(e) => {
            let _ = writeln!(w, "recovery refused: {e}");
            return Ok(RecoveryOutcome(out));
        }
    };
    let manifest = pipeline.manifest().await;
    write_manifest(w, &manifest);
    let ledger = pipeline.ledger().await;
    write_rows(w, &report, &ledger);
    write_repairs(w, &report, manifest.next_file_id);
    if spec.workload.export.is_some() {
        write_export(w, &image).await;
    }
    Ok(RecoveryOutcome(out))
}

/// Runs the first lifetime of `spec` without its crash, and takes the crash image right after
/// the call `pin` names: the call's record and the image.
async fn capture_pinned(
    spec: &RunSpec,
    pin: &Pin,
    config: &Config,
) -> Result<(OpRecord, SimFs), String> {
    let pattern = glob::Pattern::new(pin.path).map_err(|e| format!("{pin}: {e}"))?;
    let disk = SimFs::new();
    let mut plan = spec.plan.clone();
    plan.crash = None;
    let faulty = FaultFs::new(disk.clone(), plan).map_err(|e| e.to_string())?;
    let captured: Arc<Mutex<Captured>> = Arc::default();
    {
        let captured = captured.clone();
        let (op_name, n, model, seed) = (pin.op, pin.n, spec.model, spec.seed);
        disk.set_observer(move |disk, op| {
            if op.kind.name() != op_name || !matches(&pattern, op) {
                return;
            }
            let mut c = captured.lock().unwrap_or_else(|p| p.into_inner());
            c.0 += 1;
            if c.0 == n {
                // The count passes `n` once: the pinned image is taken once.
                debug_assert!(c.1.is_none(), "the pinned call captured twice");
                c.1 = Some((op.clone(), disk.crash(model, point_seed(seed, 1, op.index))));
            }
        });
    }
    let ctx = Ctx::new(Arc::default(), Trace::default(), 1);
    let world = World::new(faulty.clone(), faulty.clock(SimClock::default()));
    let ran = drive(world, Path::new(ROOT), &spec.workload, config, &ctx, false).await;
    disk.set_observer(|_, _| {});
    let (seen, point) = std::mem::take(&mut *captured.lock().unwrap_or_else(|p| p.into_inner()));
    point.ok_or_else(|| {
        format!(
            "the run made {seen} calls matching {pin} (first lifetime {})",
            ran.err().unwrap_or_else(|| "ended normally".into())
        )
    })
}

/// The recovered manifest: its version, and every table file it lists.
fn write_manifest(w: &mut String, manifest: &Manifest) {
    let _ = writeln!(
        w,
        "version {}, segments staged through {}",
        manifest.version, manifest.log_through
    );
    for f in &manifest.files {
        let _ = writeln!(
            w,
            "  {} level {} rows {} seq {}..={}",
            layout::table_file_name(f.level, f.id),
            f.level,
            f.rows,
            f.seq_min,
            f.seq_max
        );
    }
}

/// The rows recovery found, and the ledger of every source.
fn write_rows(w: &mut String, report: &RecoveryReport, ledger: &BTreeMap<String, SourceState>) {
    let _ = writeln!(
        w,
        "rows recovered: {} published, {} staged in {} live segments",
        report.published_rows, report.staged_rows, report.live_segments
    );
    for (source, state) in ledger {
        let _ = writeln!(
            w,
            "  source {source}: {} rows{}",
            state.rows,
            if state.complete { ", complete" } else { "" }
        );
    }
}

/// Every repair recovery made, in a fixed order; `none` when it made none.
fn write_repairs(w: &mut String, report: &RecoveryReport, next_file_id: u64) {
    let _ = writeln!(w, "repairs:");
    let mut repairs = 0;
    for t in &report.torn_tails {
        repairs += 1;
        let _ = writeln!(
            w,
            "  truncated {}: {} frames, {} bytes{}",
            t.file,
            t.frames,
            t.bytes,
            t.malformed
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
    }
    if report.unacknowledged_parts_kept > 0 {
        repairs += 1;
        let _ = writeln!(
            w,
            "  kept {} unacknowledged parts ({} rows) that reached the disk whole",
            report.unacknowledged_parts_kept, report.unacknowledged_rows_kept
        );
    }
    let (back, forward) = rolled(report, next_file_id);
    for (what, list) in [
        ("rolled back", &back),
        ("rolled forward", &forward),
        ("vacuumed", &report.vacuumed),
    ] {
        let mut list = list.clone();
        list.sort();
        for name in list {
            repairs += 1;
            let _ = writeln!(w, "  {what}: {name}");
        }
    }
    for q in &report.quarantined {
        repairs += 1;
        let _ = writeln!(
            w,
            "  quarantined {} as {}: {}",
            q.file, q.moved_to, q.reason
        );
    }
    if let Some((reserved, next)) = report.seq_reservation_repaired {
        repairs += 1;
        let _ = writeln!(w, "  sequence reservation {reserved} raised to {next}");
    }
    if repairs == 0 {
        let _ = writeln!(w, "  none");
    }
}

/// The files recovery removed, as (rolled back, rolled forward). An unreferenced table file at
/// or above the manifest's next id is a step's output that was never published (rolled back);
/// below it, an input a published step superseded (rolled forward).
fn rolled(report: &RecoveryReport, next_file_id: u64) -> (Vec<String>, Vec<String>) {
    let (mut back, mut forward) = (Vec::new(), Vec::new());
    for name in &report.orphans_removed {
        let id = name
            .rsplit('/')
            .next()
            .and_then(layout::parse_table_file_name)
            .map(|(_, id)| id);
        if id.is_some_and(|id| id >= next_file_id) {
            back.push(name.clone());
        } else {
            forward.push(name.clone());
        }
    }
    back.extend(report.temp_files_removed.iter().cloned());
    back.extend(report.empty_segment_files_removed.iter().cloned());
    forward.extend(report.staged_segments_removed.iter().cloned());
    (back, forward)
}

/// The export directory of the image: its watermark and committed batches.
async fn write_export(w: &mut String, image: &SimFs) {
    let dir = Path::new(EXPORT_DIR);
    match export::committed_batches(image, dir).await {
        Err(tally_pipeline::Error::Io { source })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            let _ = writeln!(w, "export directory not created yet");
        }
        Ok((watermark, batches)) => {
            let names: Vec<String> = batches
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            let _ = writeln!(
                w,
                "export watermark {watermark}, committed batches: {}",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            );
        }
        Err(e) => {
            let _ = writeln!(w, "export unreadable: {e}");
        }
    }
}
