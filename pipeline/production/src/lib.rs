//! The pipeline on a real disk: the production path of the `tally` binary, and what a program
//! embedding tally calls to do the same.
//!
//! - [`input`] reads users' files (CSV with a header line, JSON Lines, Parquet) as Arrow batches;
//! - [`run`] ingests them, each file one source, through the pipeline on `RealFs` and publishes
//!   them (`tally run`);
//! - [`check`] and [`export`] are `tally verify`/`inspect` and `tally export`; [`versions`] is
//!   the version list of `tally inspect`, [`vacuum`] is `tally vacuum`.
//!
//! Nothing here knows about the simulation harness: this crate depends on the pipeline and the
//! world interface only.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use tally_pipeline::export::ExportReport;
use tally_pipeline::history::VersionSummary;
use tally_pipeline::verify::{StoreReport, check_store};
use tally_pipeline::{Config, Layout, Pipeline};
use tally_sim::{Fs, RealFs, SystemClock, World};

pub mod identity;
pub mod input;
pub mod progress;
pub mod run;

pub use progress::Progress;
pub use run::{RunError, RunOptions, RunSummary, SourceOutcome, run};

/// `tally verify` / `tally inspect`: a read-only report of the store at `root`. A root that
/// is not a tally store is an error (`Error::NotAStore`), never an empty report; nothing is
/// created and no lock is taken.
pub async fn check(root: &Path, deep: bool) -> Result<StoreReport, tally_pipeline::Error> {
    check_store(&RealFs, &Layout::new(root), deep).await
}

/// `tally export`: opens the existing store at `root` (recovering it, as every open does,
/// under its writer lock; a root that is not a store is refused, never created) and exports
/// the rows published since the watermark of `to` into one new batch there.
pub async fn export(root: &Path, to: &Path) -> Result<ExportReport, tally_pipeline::Error> {
    let world = World::new(RealFs, SystemClock);
    let (pipeline, _) = Pipeline::open_existing(world, root, Config::default()).await?;
    tally_pipeline::export::export(&pipeline, to).await
}

/// The versions of the store at `root`, oldest first (`tally inspect`): read-only, no lock.
pub async fn versions(root: &Path) -> Result<Vec<VersionSummary>, tally_pipeline::Error> {
    let layout = Layout::new(root);
    tally_pipeline::recover::require_store(&RealFs, &layout).await?;
    tally_pipeline::history::versions(&RealFs, &layout).await
}

/// What `tally vacuum` did.
#[derive(Clone, Debug, Serialize)]
pub struct VacuumReport {
    pub retention_secs: u64,
    /// Removed table files deleted (their retention had passed), relative to the root.
    pub deleted: Vec<String>,
    /// Removed table files kept for readers of older versions, and when the first of them
    /// may go (milliseconds since the Unix epoch).
    pub kept: usize,
    pub next_deletion_ms: Option<i64>,
}

/// `tally vacuum`: opens the existing store at `root` with `retention` (Delta's 7 days when
/// `None`) and deletes the removed table files older than it. Opening runs recovery, whose
/// step 4 is this deletion; versions whose files it deletes can no longer be read back.
pub async fn vacuum(
    root: &Path,
    retention: Option<Duration>,
) -> Result<VacuumReport, tally_pipeline::Error> {
    let mut config = Config::default();
    if let Some(retention) = retention {
        config.recovery.retention = retention;
    }
    let retention = config.recovery.retention;
    let world = World::new(RealFs, SystemClock);
    let (pipeline, recovered) = Pipeline::open_existing(world, root, config).await?;
    let table = pipeline.manifest().await;
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let layout = Layout::new(root);
    let mut kept = Vec::new();
    for t in &table.tombstones {
        if RealFs.exists(&layout.table_file(t.level, t.id)).await? {
            kept.push(t.removed_at_ms.saturating_add(retention_ms));
        }
    }
    Ok(VacuumReport {
        retention_secs: retention.as_secs(),
        deleted: recovered.vacuumed,
        kept: kept.len(),
        next_deletion_ms: kept.into_iter().min(),
    })
}
