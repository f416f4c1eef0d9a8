//! The workload driver: one process lifetime of a workload — open (recovering), the second
//! lifetime's entry action, ingest, a clean restart if the workload has one, the final flush
//! and export — on any world: the simulated disk of a run, or the real one of a crash test.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tally_pipeline::{Ack, Config, Pipeline, export};
use tally_sim::{Clock, Fs, SimFs, World};

use super::lifetime::Lifetime;
use super::lock;
use crate::oracle::{Breach, EXPORT_DIR, SourceProgress};
use crate::trace::Trace;
use crate::workload::Workload;

/// Per-source progress, shared by the workload's tasks and the per-call observer.
pub(crate) type Progress = Arc<Mutex<BTreeMap<String, SourceProgress>>>;

/// What the tasks of one process lifetime share with the run.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub progress: Progress,
    pub trace: Trace,
    /// Invariants broken while the lifetime ran (not at crash points).
    pub findings: Arc<Mutex<Vec<Breach>>>,
    /// Rows written to table files in this lifetime, by every pipeline it opened.
    pub written: Arc<AtomicU64>,
    pub life: u32,
    /// The simulated disk under the lifetime's fault layer: what the harness's own reads (the
    /// drain check, the second handle) go through, so that the plan's faults never hit them
    /// (they take indices in the disk's op log all the same). `None` on the real disk.
    pub disk: Option<SimFs>,
}

impl Ctx {
    pub fn new(progress: Progress, trace: Trace, life: u32) -> Self {
        Self {
            progress,
            trace,
            findings: Arc::default(),
            written: Arc::default(),
            life,
            disk: None,
        }
    }

    pub(super) fn find(&self, breach: Breach) {
        self.trace.line(format!("L{} found {breach}", self.life));
        lock(&self.findings).push(breach);
    }
}

/// How long a lifetime may take (virtual time under simulation) before it is declared hung.
const LIFETIME_LIMIT: Duration = Duration::from_secs(3600);

/// Runs the workload in one process lifetime: open (recovering), in the second lifetime do
/// the workload's entry action first, ingest every source's parts (from their own tasks when
/// the workload is concurrent, exporting as the workload says), restart cleanly if the
/// workload says so, flush, export a last time. `resuming` is the second lifetime: parts are
/// skipped or re-run as the workload's `resume` says. Returns the first error; invariants
/// broken along the way go to `ctx.findings`.
pub(crate) async fn drive<F: Fs, C: Clock>(
    world: World<F, C>,
    root: &Path,
    workload: &Workload,
    config: &Config,
    ctx: &Ctx,
    resuming: bool,
) -> Result<(), String> {
    let life = ctx.life;
    let work = async {
        let lifetime = ingest_all(&world, root, workload, config, ctx, resuming).await?;
        finish(lifetime, workload, ctx).await
    };
    match tokio::time::timeout(LIFETIME_LIMIT, work).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "lifetime {life} hung for {LIFETIME_LIMIT:?} of (virtual) time"
        )),
    }
}

/// Opens the store and ingests every part the lifetime has to, across the workload's clean
/// restart if it has one (first lifetime only); returns the pipeline open after the last part.
async fn ingest_all<F: Fs, C: Clock>(
    world: &World<F, C>,
    root: &Path,
    workload: &Workload,
    config: &Config,
    ctx: &Ctx,
    resuming: bool,
) -> Result<Lifetime<F, C>, String> {
    let split = match (resuming, workload.restart_after_parts) {
        (false, Some(n)) => n,
        _ => usize::MAX,
    };
    let mut lifetime = Lifetime::open(world, root, config, workload, ctx).await?;
    if resuming {
        let entered = lifetime.enter(workload, ctx).await;
        lifetime = lifetime.or_abort(entered, ctx)?;
    }
    let ingested = lifetime.ingest(workload, ctx, 0..split, resuming).await;
    lifetime = lifetime.or_abort(ingested, ctx)?;
    if split != usize::MAX {
        lifetime.close(ctx).await?;
        ctx.trace.line(format!("L{} clean restart", ctx.life));
        lifetime = Lifetime::open(world, root, config, workload, ctx).await?;
        let ingested = lifetime
            .ingest(workload, ctx, split..usize::MAX, false)
            .await;
        lifetime = lifetime.or_abort(ingested, ctx)?;
    }
    Ok(lifetime)
}

/// The end of a lifetime's work: the final flush, a last export if the workload exports, and
/// a clean close.
async fn finish<F: Fs, C: Clock>(
    mut lifetime: Lifetime<F, C>,
    workload: &Workload,
    ctx: &Ctx,
) -> Result<(), String> {
    let flushed = lifetime
        .pipeline
        .flush()
        .await
        .map_err(|e| format!("flush: {e}"));
    let report = match flushed {
        Ok(report) => report,
        Err(e) => return lifetime.or_abort(Err(e), ctx).map(drop),
    };
    ctx.trace.line(format!(
        "L{} flush: {} staged, {} merges, version {}",
        ctx.life, report.segments_staged, report.merges, report.manifest_version
    ));
    if workload.export.is_some() {
        let exported = export_now(&lifetime.pipeline, ctx).await;
        lifetime = lifetime.or_abort(exported, ctx)?;
    }
    lifetime.close(ctx).await
}

/// One export into the run's export directory, traced.
pub(super) async fn export_now<F: Fs, C: Clock>(
    pipeline: &Pipeline<F, C>,
    ctx: &Ctx,
) -> Result<(), String> {
    match export::export(pipeline, Path::new(EXPORT_DIR)).await {
        Ok(report) => {
            ctx.trace.line(format!("L{} export: {report}", ctx.life));
            Ok(())
        }
        Err(e) => {
            ctx.trace.line(format!("L{} export failed: {e}", ctx.life));
            Err(format!("export: {e}"))
        }
    }
}

/// Ingests `parts` (`(first_row, rows, last)`) of `source` in order, recording each attempt
/// before the call and each acknowledgement after it, and exporting after every few parts
/// when the workload exports.
pub(super) async fn ingest_source<F: Fs, C: Clock>(
    pipeline: Pipeline<F, C>,
    source: String,
    parts: Vec<(u64, u64, bool)>,
    workload: Workload,
    ctx: Ctx,
) -> Result<(), String> {
    for (done, (first, rows, last)) in parts.into_iter().enumerate() {
        ingest_part(&pipeline, &source, (first, rows, last), &workload, &ctx).await?;
        if let Some(plan) = workload.export
            && (done as u32 + 1) % plan.every_parts.max(1) == 0
        {
            if plan.flush_first {
                pipeline
                    .flush()
                    .await
                    .map_err(|e| format!("flush before export: {e}"))?;
            }
            export_now(&pipeline, &ctx).await?;
        }
    }
    Ok(())
}

/// One part: attempted before the call, acknowledged once the call returns, traced.
async fn ingest_part<F: Fs, C: Clock>(
    pipeline: &Pipeline<F, C>,
    source: &str,
    (first, rows, last): (u64, u64, bool),
    workload: &Workload,
    ctx: &Ctx,
) -> Result<(), String> {
    let (life, end) = (ctx.life, first + rows);
    record(&ctx.progress, source, |p| {
        p.attempted = p.attempted.max(end)
    });
    ctx.trace
        .line(format!("L{life} try {source} rows {first}..{end}"));
    let fingerprint = Some(crate::workload::fingerprint(source));
    let batch = workload.batch(source, first, rows);
    let result = if workload.is_bulk(source) {
        bulk_part(pipeline, source, fingerprint, first, batch, last).await
    } else {
        pipeline
            .ingest_part_of(source, fingerprint, first, batch, last)
            .await
    };
    match result {
        Ok(ack) => {
            record(&ctx.progress, source, |p| p.acked = p.acked.max(end));
            let seq = ack
                .seq
                .map_or("-".to_owned(), |s| format!("{}..{}", s.start, s.end));
            ctx.trace.line(format!(
                "L{life} ack {source} rows {first}..{end}: {} written, {} already held, seq {seq}{}",
                ack.rows_written,
                ack.rows_already_acknowledged,
                if ack.source_complete { ", complete" } else { "" }
            ));
            Ok(())
        }
        Err(e) => {
            ctx.trace.line(format!(
                "L{life} ingest {source} rows {first}..{end} failed: {e}"
            ));
            Err(format!("ingest {source} rows {first}..{end}: {e}"))
        }
    }
}

/// One part through the bulk path, in two writes (so that a file can span writes, and roll
/// over between them), then its commit: acknowledged as one, like a streamed part.
async fn bulk_part<F: Fs, C: Clock>(
    pipeline: &Pipeline<F, C>,
    source: &str,
    fingerprint: Option<tally_pipeline::Fingerprint>,
    first: u64,
    batch: arrow::array::RecordBatch,
    last: bool,
) -> tally_pipeline::Result<Ack> {
    let rows = batch.num_rows();
    let half = rows / 2;
    let mut load = pipeline.bulk_load(source, fingerprint).await?;
    let mut acks = Vec::new();
    for (offset, len) in [(0, half), (half, rows - half)] {
        let piece = batch.slice(offset, len);
        acks.extend(load.write(first + offset as u64, piece).await?);
    }
    acks.push(load.commit(last).await?);
    let written: u64 = acks.iter().map(|a| a.rows_written).sum();
    let seqs = acks.iter().filter_map(|a| a.seq.clone());
    let seq = seqs.reduce(|a, b| a.start.min(b.start)..a.end.max(b.end));
    Ok(Ack {
        source: source.to_owned(),
        rows_written: written,
        rows_already_acknowledged: rows as u64 - written,
        seq,
        source_complete: acks.last().is_some_and(|a| a.source_complete),
    })
}

/// Updates the progress of `source`. A part is attempted before it can be acknowledged, so
/// acknowledged rows never outrun attempted ones.
fn record(progress: &Progress, source: &str, update: impl FnOnce(&mut SourceProgress)) {
    let mut all = lock(progress);
    let entry = all.entry(source.to_owned()).or_default();
    update(entry);
    debug_assert!(
        entry.acked <= entry.attempted,
        "source {source}: {} rows acknowledged, {} attempted",
        entry.acked,
        entry.attempted
    );
}
