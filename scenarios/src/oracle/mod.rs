//! The oracle: what must hold on a disk after recovery, given what was acknowledged.
//!
//! It runs the real recovery (`Pipeline::open`) on the disk it is given, reads every published
//! and staged row, and checks each invariant in a fixed order, reporting the first broken one.
//! One function enforces each clause:
//!
//! | invariant | clause | function |
//! |---|---|---|
//! | `delta-version-complete` | before recovery, the newest Delta version reads whole | `external::newest_version_complete` |
//! | `recovery-succeeds` | recovery opens the disk | `recovery::recovery_succeeds` |
//! | `repairs-explained` | no repair only a lying disk explains, unless a control makes it lie | `recovery::repairs_explained` |
//! | `no-panic` | the run ends without a panic (an assertion firing) | `run::run_guarded` |
//! | `store-consistent` | every published and staged row can be read | `on_disk::read_rows` |
//! | `nothing-invented` | every batch has the workload's columns | `on_disk::read_rows` |
//! | `nothing-invented` | no row that was never handed to `ingest` | `rows::nothing_invented` |
//! | `nothing-invented` | every row with the values it was handed | `rows::values_as_ingested` |
//! | `at-most-once` | no row twice | `rows::at_most_once` |
//! | `acked-rows-present` | every acknowledged row present (not at the end) | `rows::acked_rows_present` |
//! | `run-completes` | at the end, every attempted row present | `rows::all_rows_present_at_end` |
//! | `unique-seq` | no sequence number given twice | `rows::unique_seq` |
//! | `ledger-matches` | per source, the ledger counts the rows on disk | `ledger::ledger_counts_disk` |
//! | `ledger-matches` | per source, at least the acknowledged rows | `ledger::ledger_holds_acked` |
//! | `ledger-matches` | per source, the content fingerprint its parts were ingested with | `ledger::ledger_keeps_fingerprint` |
//! | `run-completes` | at the end, every source complete with all its rows | `ledger::source_complete_at_end` |
//! | `delta-version-complete` | after recovery, the newest Delta version reads whole | `external::newest_version_complete` |
//! | `delta-rows-match` | after recovery, the newest Delta version is the pipeline's, with exactly its published rows | `external::delta_rows_match` |
//! | `levels-homogeneous` | levels never increase in sequence order, no overlap | [`check_levels`] |
//! | `merges-settled` | at the end, no merge due | `levels::merges_settled` |
//! | `delta-time-travel` | at the end, every version within retention reads whole | `external::versions_within_retention_complete` |
//! | `export-exactly-once` | the export can be read, with the workload's columns | `export::read_export` |
//! | `export-exactly-once` | no row in two batches | `export::exported_at_most_once` |
//! | `export-exactly-once` | every exported row as published | `export::exported_as_published` |
//! | `export-exactly-once` | nothing committed at or above the watermark | `export::nothing_committed_at_or_above` |
//! | `export-exactly-once` | every published row below the watermark (at the end, every one) exported | `export::published_rows_exported` |
//! | `run-completes` | at the end, nothing staged | `rows::nothing_staged_at_end` |
//! | `store-consistent` | `verify::check_store` finds no problem and no leftover | `store::store_consistent` |
//! | `recovery-idempotent` | a second recovery reports nothing and changes no byte | `recovery::recovery_idempotent` |
//!
//! The order is part of the verdict: a disk breaking several invariants is reported by the
//! first in this table. The invariants checked outside the oracle — while a lifetime runs
//! (`drained-on-open`, `reader-consistent`), at the end of a run (`write-amplification`), of
//! the workload (`no-unexplained-error`) and by the probes — are named by [`Invariant`] too.

pub mod delta;
mod expect;
mod export;
mod external;
mod invariant;
mod ledger;
mod levels;
mod on_disk;
mod recovery;
mod rows;
mod store;
#[cfg(test)]
mod tests;

use std::path::Path;

use tally_pipeline::Config;
use tally_sim::{Fs, SimClock, World};

pub use expect::{Expectation, Seen, SourceProgress};
pub(crate) use external::time_travel_breach;
pub use invariant::{Breach, Invariant};
pub use levels::check_levels;
pub use on_disk::RowCache;
pub(crate) use store::leftovers;

/// Where a pipeline's store lives on the simulated disk.
pub const ROOT: &str = "/store";
/// Where the exporter of a run writes.
pub const EXPORT_DIR: &str = "/export";

/// Recovers the store at `root` with the real recovery code and checks everything against
/// `expect`. The store is changed (recovered): on a simulated disk, pass a copy.
pub async fn check<F: Fs>(
    fs: &F,
    root: &Path,
    config: &Config,
    expect: &Expectation,
) -> Result<Seen, Breach> {
    check_cached(fs, root, config, expect, &RowCache::default()).await
}

/// [`check`], with the rows of table files decoded before taken from `cache`.
pub async fn check_cached<F: Fs>(
    fs: &F,
    root: &Path,
    config: &Config,
    expect: &Expectation,
    cache: &RowCache,
) -> Result<Seen, Breach> {
    let world = World::new(fs.clone(), SimClock::default());
    // What an engine reading the disk sees, before recovery touches it.
    external::newest_version_complete(fs, root, &cache.delta, "before recovery").await?;
    let (pipeline, report) = recovery::recovery_succeeds(world.clone(), root, config).await?;
    recovery::repairs_explained(&report, expect)?;
    let on_disk = on_disk::read_rows(fs, root, &pipeline, expect, cache).await?;
    rows::check_rows(&on_disk.rows, &on_disk.altered, expect)?;
    ledger::check_ledger(&on_disk.rows, &pipeline.ledger().await, expect)?;
    let manifest = pipeline.manifest().await;
    let delta = external::newest_version_complete(fs, root, &cache.delta, "after recovery").await?;
    let newest = delta.as_ref().map(|(_, read)| read);
    external::delta_rows_match(newest, manifest.version, on_disk.published())?;
    check_levels(&manifest.files)?;
    if expect.final_state {
        levels::merges_settled(&manifest.files, config)?;
        if let Some((log, _)) = &delta {
            let retention =
                u64::try_from(config.recovery.retention.as_millis()).unwrap_or(u64::MAX);
            external::versions_within_retention_complete(fs, root, log, retention, &cache.delta)
                .await?;
        }
    }
    if let Some(dir) = &expect.export_dir {
        export::check_export(fs, dir, on_disk.published(), expect).await?;
    }
    if expect.final_state {
        rows::nothing_staged_at_end(on_disk.staged)?;
    }
    // The store is checked, and recovered again, as the next process would find it: with
    // this one's pipeline gone.
    drop(pipeline);
    store::store_consistent(fs, root).await?;
    recovery::recovery_idempotent(fs, world, root, config).await?;
    Ok(Seen {
        manifest_version: manifest.version,
        published_rows: manifest.rows(),
        staged_rows: on_disk.staged,
        max_level: manifest.files.iter().map(|f| f.level).max().unwrap_or(0),
        recovery: report.to_string(),
    })
}
