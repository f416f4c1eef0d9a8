//! The pipeline on a real disk: the production path of the `tally` binary, and what a program
//! embedding tally calls to do the same.
//!
//! - [`input`] reads users' files (CSV with a header line, JSON Lines, Parquet) as Arrow batches;
//! - [`run`] ingests them, each file one source, through the pipeline on `RealFs` and publishes
//!   them (`tally run`);
//! - [`check`] and [`export`] are `tally verify`/`inspect` and `tally export`.
//!
//! Nothing here knows about the simulation harness: this crate depends on the pipeline and the
//! world interface only.

use std::path::Path;

use tally_pipeline::export::ExportReport;
use tally_pipeline::verify::{StoreReport, check_store};
use tally_pipeline::{Config, Layout, Pipeline};
use tally_sim::{RealFs, SystemClock, World};

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
