//! What the harness checks while a lifetime runs, rather than on a crash image: that opening
//! the store drained every half-done step (`drained-on-open`), and that a second, read-only
//! handle always sees one whole version (`reader-consistent`) — through tally's reader and
//! through the harness's external Delta reader (`delta-version-complete`, and
//! `delta-time-travel` for the version it read before).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tally_pipeline::{Layout, Manifest, read, verify};
use tally_sim::Fs;

use super::drive::Ctx;
use crate::oracle::delta::{DeltaCache, read_log, read_version};
use crate::oracle::{self, Breach, Invariant, leftovers, time_travel_breach};

/// Checks that nothing of a half-done step is left on disk.
pub(super) async fn drain_check<G: Fs>(fs: &G, root: &Path, ctx: &Ctx) {
    match verify::check_store(fs, &Layout::new(root), false).await {
        Ok(store) => {
            let left = leftovers(&store);
            if !left.is_empty() {
                ctx.find(Breach::new(
                    Invariant::DrainedOnOpen,
                    vec![],
                    format!("right after open: {}", left.join("; ")),
                ));
            }
        }
        Err(e) => ctx.find(Breach::new(
            Invariant::DrainedOnOpen,
            vec![],
            format!("right after open, the store cannot be checked: {e}"),
        )),
    }
}

/// The second handle: reads the store over and over while the lifetime runs, as another
/// process would, and checks that each read is one whole version, never older than the last.
pub(super) async fn read_along<F: Fs>(
    fs: F,
    root: PathBuf,
    retention_ms: u64,
    stop: Arc<AtomicBool>,
    ctx: Ctx,
) {
    let layout = Layout::new(root.clone());
    let (mut newest, mut reads) = (0u64, 0u64);
    let mut delta = DeltaAlong::new(retention_ms);
    while !stop.load(Ordering::Acquire) {
        // The external reader reads a copy of the disk as it is now: its reads are not calls
        // of the run (they neither shift call indexes nor take crash points), and one copy is
        // one moment, as a reader listing the log and reading files quickly would see it.
        if let Some(disk) = &ctx.disk
            && let Err(breach) = delta.step(&disk.snapshot(), &root).await
        {
            ctx.find(breach);
            return;
        }
        match read::consistent_snapshot(&fs, &layout, 8).await {
            Ok(manifest) => {
                reads += 1;
                let wrong = inconsistencies(&manifest, newest);
                if !wrong.is_empty() {
                    ctx.find(Breach::new(
                        Invariant::ReaderConsistent,
                        vec![],
                        wrong.join("; "),
                    ));
                    return;
                }
                newest = manifest.version;
            }
            Err(e @ tally_pipeline::Error::MissingRows { .. }) => {
                ctx.find(Breach::new(
                    Invariant::ReaderConsistent,
                    vec![],
                    e.to_string(),
                ));
                return;
            }
            // An I/O error (the writer crashed, or an injected fault): read again.
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_micros(700)).await;
    }
    ctx.trace.line(format!(
        "L{} reader: {reads} consistent reads, newest version {newest}; Delta reader: {} reads, {} of an older version",
        ctx.life, delta.reads, delta.travels
    ));
}

/// The second handle's external Delta reader: each step reads the newest version whole, never
/// an older one than the step before, and the version the step before read again while its
/// removed files are within retention — a query that started on it still running.
struct DeltaAlong {
    retention_ms: u64,
    cache: DeltaCache,
    /// The version the last step read.
    last: Option<u64>,
    reads: u64,
    travels: u64,
}

impl DeltaAlong {
    fn new(retention_ms: u64) -> Self {
        Self {
            retention_ms,
            cache: DeltaCache::default(),
            last: None,
            reads: 0,
            travels: 0,
        }
    }

    async fn step<G: Fs>(&mut self, fs: &G, root: &Path) -> Result<(), Breach> {
        let complete = |e: oracle::delta::DeltaError| {
            Breach::new(
                Invariant::DeltaVersionComplete,
                vec![],
                format!("the second handle's Delta reader: {e}"),
            )
        };
        let log = match read_log(fs, root, &self.cache).await.map_err(complete)? {
            Some(log) => log,
            None if self.last.is_none() => return Ok(()),
            None => return Err(complete_gone(self.last)),
        };
        let newest = log.newest();
        if let Some(last) = self.last.filter(|&last| last > newest) {
            return Err(Breach::new(
                Invariant::ReaderConsistent,
                vec![],
                format!("the Delta reader found version {newest} after version {last}"),
            ));
        }
        read_version(fs, root, &log, newest, &self.cache)
            .await
            .map_err(complete)?;
        self.reads += 1;
        if let Some(last) = self.last.filter(|&last| last < newest)
            && log.within_retention(last, self.retention_ms)
        {
            read_version(fs, root, &log, last, &self.cache)
                .await
                .map_err(|e| time_travel_breach(last, self.retention_ms, &e))?;
            self.travels += 1;
        }
        self.last = Some(newest);
        Ok(())
    }
}

/// The breach of a table gone after the reader read version `last`.
fn complete_gone(last: Option<u64>) -> Breach {
    Breach::new(
        Invariant::DeltaVersionComplete,
        vec![],
        format!("the Delta log is gone after the second handle read version {last:?}"),
    )
}

/// What is wrong with a version the second handle read after having read version `newest`.
fn inconsistencies(manifest: &Manifest, newest: u64) -> Vec<String> {
    let mut wrong = Vec::new();
    if manifest.version < newest {
        wrong.push(format!(
            "read version {} after version {newest}",
            manifest.version
        ));
    }
    if manifest.rows() != manifest.source_rows() {
        wrong.push(format!(
            "version {} lists {} rows in files but its ledger {}",
            manifest.version,
            manifest.rows(),
            manifest.source_rows()
        ));
    }
    if let Err(b) = oracle::check_levels(&manifest.files) {
        wrong.push(b.detail);
    }
    wrong
}
