//! An open pipeline within a process lifetime, with the tasks that live as long as it: its
//! background maintenance and the second, read-only handle.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tally_pipeline::{Config, Pipeline};
use tally_sim::{Clock, Fs, World};

use super::drive::{Ctx, export_now, ingest_source};
use super::live::{drain_check, read_along};
use crate::workload::{Entry, Resume, Workload};

/// An open pipeline, its maintenance task and its second read-only handle.
pub(super) struct Lifetime<F: Fs, C: Clock> {
    pub pipeline: Pipeline<F, C>,
    maintenance: Option<tokio::task::JoinHandle<tally_pipeline::Result<()>>>,
    reader: Option<(Arc<AtomicBool>, tokio::task::JoinHandle<()>)>,
}

impl<F: Fs, C: Clock> Lifetime<F, C> {
    /// Opens (recovers) the store, checks that nothing half-done is left, and starts the
    /// tasks the workload asks for.
    pub async fn open(
        world: &World<F, C>,
        root: &Path,
        config: &Config,
        workload: &Workload,
        ctx: &Ctx,
    ) -> Result<Self, String> {
        let life = ctx.life;
        let (pipeline, report) = Pipeline::open(world.clone(), root, config.clone())
            .await
            .map_err(|e| format!("open: {e}"))?;
        for line in report.to_string().lines() {
            ctx.trace.line(format!("L{life} recovery: {line}"));
        }
        // Whatever a crash left half done is gone before any entry point acts.
        match &ctx.disk {
            Some(disk) => drain_check(disk, root, ctx).await,
            None => drain_check(&world.fs, root, ctx).await,
        }
        let maintenance = workload
            .background_maintenance
            .then(|| pipeline.spawn_maintenance());
        let retention_ms = u64::try_from(config.recovery.retention.as_millis()).unwrap_or(u64::MAX);
        let reader = workload
            .reader
            .then(|| spawn_reader(world, root, retention_ms, ctx));
        Ok(Self {
            pipeline,
            maintenance,
            reader,
        })
    }

    /// The second lifetime's first action after open, as the workload says.
    pub async fn enter(&mut self, workload: &Workload, ctx: &Ctx) -> Result<(), String> {
        ctx.trace
            .line(format!("L{} enters through {:?}", ctx.life, workload.entry));
        match workload.entry {
            Entry::Ingest => Ok(()),
            Entry::Flush => self
                .pipeline
                .flush()
                .await
                .map(drop)
                .map_err(|e| format!("flush on entry: {e}")),
            Entry::Export => export_now(&self.pipeline, ctx).await,
        }
    }

    async fn stop_reader(&mut self) {
        if let Some((stop, task)) = self.reader.take() {
            stop.store(true, Ordering::Release);
            let _ = task.await;
        }
    }

    /// Passes `self` on when `result` is fine; otherwise stops the maintenance task (the
    /// process is ending) and returns the error.
    pub fn or_abort(mut self, result: Result<(), String>, ctx: &Ctx) -> Result<Self, String> {
        match result {
            Ok(()) => Ok(self),
            Err(e) => {
                self.pipeline.stop_maintenance();
                if let Some(task) = self.maintenance.take() {
                    task.abort();
                }
                if let Some((stop, task)) = self.reader.take() {
                    stop.store(true, Ordering::Release);
                    task.abort();
                }
                self.count_written(ctx);
                Err(e)
            }
        }
    }

    fn count_written(&self, ctx: &Ctx) {
        ctx.written
            .fetch_add(self.pipeline.stats().table_rows_written, Ordering::Relaxed);
    }

    /// Shuts the lifetime's tasks down; returns the maintenance task's error, if it had one.
    pub async fn close(mut self, ctx: &Ctx) -> Result<(), String> {
        self.pipeline.stop_maintenance();
        self.stop_reader().await;
        let result = match self.maintenance.take() {
            Some(task) => match task.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("maintenance: {e}")),
                Err(e) => Err(format!("maintenance task: {e}")),
            },
            None => Ok(()),
        };
        self.count_written(ctx);
        result
    }

    /// Ingests parts `parts` of every source. When `resuming` with `Resume::FromLedger`,
    /// parts the ledger already holds are skipped.
    pub async fn ingest(
        &mut self,
        workload: &Workload,
        ctx: &Ctx,
        parts: std::ops::Range<usize>,
        resuming: bool,
    ) -> Result<(), String> {
        let skip_acked = resuming && workload.resume == Resume::FromLedger;
        let mut tasks = Vec::new();
        for source in &workload.sources {
            let held = if skip_acked {
                self.pipeline.source_state(&source.name).await.rows
            } else {
                0
            };
            let todo: Vec<(u64, u64, bool)> = source
                .part_ranges()
                .into_iter()
                .enumerate()
                .filter(|(i, (first, rows, _))| parts.contains(i) && first + rows > held)
                .map(|(_, p)| p)
                .collect();
            let job = ingest_source(
                self.pipeline.clone(),
                source.name.clone(),
                todo,
                workload.clone(),
                ctx.clone(),
            );
            if workload.concurrent {
                tasks.push(tokio::spawn(job));
            } else {
                job.await?;
            }
        }
        first_error(tasks).await
    }
}

/// Starts the second handle on the disk the harness reads (see [`Ctx::disk`]).
fn spawn_reader<F: Fs, C: Clock>(
    world: &World<F, C>,
    root: &Path,
    retention_ms: u64,
    ctx: &Ctx,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (root, ctx2, stop2) = (root.to_path_buf(), ctx.clone(), stop.clone());
    let task = match &ctx.disk {
        Some(disk) => tokio::spawn(read_along(disk.clone(), root, retention_ms, stop2, ctx2)),
        None => tokio::spawn(read_along(
            world.fs.clone(),
            root,
            retention_ms,
            stop2,
            ctx2,
        )),
    };
    (stop, task)
}

/// Waits for every task; returns the first error in task order.
async fn first_error(
    tasks: Vec<tokio::task::JoinHandle<Result<(), String>>>,
) -> Result<(), String> {
    let mut first_error = None;
    for task in tasks {
        let result = task
            .await
            .unwrap_or_else(|e| Err(format!("ingest task: {e}")));
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
