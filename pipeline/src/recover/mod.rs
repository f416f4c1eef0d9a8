//! Recovery, run on every open (see `docs/protocol.md`, "Recover"). It finishes or rolls back
//! whatever a crash interrupted, checks that everything acknowledged is on disk, and rebuilds the
//! in-memory ledger and allocator. It reads manifests, Parquet footers and the live (unstaged)
//! log segments — never the data pages of published files — so its cost follows the amount of
//! unpublished staging and the number of files, not the size of the table.
//!
//! One module per step of the protocol: this one runs them in order (step 1, the
//! directories, is here too) and holds what they share; `manifests` (steps 2 and 3),
//! `garbage` (4), `segments` (5), `ledger` (6).

mod garbage;
mod ledger;
mod manifests;
mod quarantine;
mod report;
mod root;
mod segments;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::Duration;

use arrow_schema::Schema;
use tally_sim::{Clock, Fs};

pub(crate) use self::manifests::assess_damage;
pub use self::report::{Quarantined, RecoveryReport, TornTail};
pub use self::root::{Claim, require_store};
pub use crate::damage::{AtRisk, Damage, DamagedManifest};
use crate::error::Result;
use crate::fsutil::is_not_found;
use crate::layout::Layout;
use crate::log::PartMeta;
use crate::manifest::{Manifest, SourceState};
use crate::twins::Twins;

/// A log segment recovery kept: its parts, in log order.
#[derive(Clone, Debug)]
pub struct LiveSegment {
    pub number: u64,
    pub parts: Vec<PartMeta>,
}

/// Everything the pipeline needs to resume.
#[derive(Debug)]
pub struct Recovered {
    pub manifest: Manifest,
    /// The table schema (user columns), from the manifest or the first live frame.
    pub schema: Option<Schema>,
    /// Every acknowledged (or durably kept) row, by source: published plus live segments.
    pub ledger: BTreeMap<String, SourceState>,
    pub live_segments: Vec<LiveSegment>,
    /// First segment number never used on disk.
    pub next_segment: u64,
    pub next_seq: u64,
    /// The durable reservation: numbers below it may be stamped without reserving.
    pub seq_reserved: u64,
    pub next_file_id: u64,
    pub report: RecoveryReport,
}

/// Delta's default retention of removed files.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How recovery retries, and what it may delete.
#[derive(Clone, Copy, Debug)]
pub struct RecoveryOptions {
    /// Further attempts of a failed namespace operation (unlink, rename, hard_link, create_dir,
    /// set_len). An error no retry can cure (`PermissionDenied`, `Unsupported`) is not retried.
    /// A failed `sync` is never retried: after a failed fsync nothing can be concluded about
    /// the data, so recovery reports it and the next open starts over.
    pub retries: u32,
    pub retry_sleep: Duration,
    /// Roll back over a damaged newest manifest (set it and the table files only it may
    /// reference aside, and open the last good version), reporting the loss in
    /// [`RecoveryReport::rolled_back`]. Off, such an open refuses with `Error::Damaged`:
    /// `tally recover --accept-loss` is the deliberate way to turn it on.
    pub accept_loss: bool,
    /// How long the bytes of a table file a commit removed are kept, on the world's clock,
    /// for readers of older versions (a running query, a time-travel read). Default: 7 days,
    /// Delta's default `delta.deletedFileRetentionDuration`, so that a Delta `VACUUM` run by
    /// another engine and tally promise readers the same.
    pub retention: Duration,
}

impl Default for RecoveryOptions {
    fn default() -> Self {
        Self {
            retries: 3,
            retry_sleep: Duration::from_millis(10),
            accept_loss: false,
            retention: DEFAULT_RETENTION,
        }
    }
}

struct Recovery<'a, F: Fs, C: Clock> {
    fs: &'a F,
    clock: &'a C,
    layout: &'a Layout,
    options: RecoveryOptions,
    twins: Twins,
    report: RecoveryReport,
}

/// Runs recovery on `layout.root`, creating the store there if it is missing or empty, and
/// holding the writer lock while it runs.
pub async fn recover<F: Fs, C: Clock>(
    fs: &F,
    clock: &C,
    layout: &Layout,
    options: RecoveryOptions,
) -> Result<Recovered> {
    let _lock = claim_root(fs, clock, layout, options, Claim::CreateIfNeeded).await?;
    recover_with(fs, clock, layout, options, Twins::NONE).await
}

/// Step 0: makes sure `layout.root` is a tally store (creating it if `claim` allows) and takes
/// its writer lock, before anything in it is read or changed. Recovery runs only under it.
pub(crate) async fn claim_root<F: Fs, C: Clock>(
    fs: &F,
    clock: &C,
    layout: &Layout,
    options: RecoveryOptions,
    claim: Claim,
) -> Result<F::Lock> {
    Recovery::new(fs, clock, layout, options, Twins::NONE)
        .claim_root(claim)
        .await
}

/// Recovery with some guards turned off (`twins`); the pipeline passes its config's. The
/// caller holds the root's claim ([`claim_root`]).
pub(crate) async fn recover_with<F: Fs, C: Clock>(
    fs: &F,
    clock: &C,
    layout: &Layout,
    options: RecoveryOptions,
    twins: Twins,
) -> Result<Recovered> {
    Recovery::new(fs, clock, layout, options, twins).run().await
}

/// Step 4 of recovery alone: removes the leftovers of half-done steps under `manifest`. Only
/// the `drain_on_ingest_only` twin needs it on its own (real recovery runs it on open).
#[cfg(feature = "twins")]
pub(crate) async fn drain<F: Fs, C: Clock>(
    fs: &F,
    clock: &C,
    layout: &Layout,
    options: RecoveryOptions,
    manifest: &Manifest,
) -> Result<RecoveryReport> {
    let mut r = Recovery::new(fs, clock, layout, options, Twins::NONE);
    r.remove_garbage(manifest).await?;
    Ok(r.report)
}

impl<'a, F: Fs, C: Clock> Recovery<'a, F, C> {
    fn new(
        fs: &'a F,
        clock: &'a C,
        layout: &'a Layout,
        options: RecoveryOptions,
        twins: Twins,
    ) -> Self {
        Self {
            fs,
            clock,
            layout,
            options,
            twins,
            report: RecoveryReport::default(),
        }
    }
}

impl<F: Fs, C: Clock> Recovery<'_, F, C> {
    async fn run(&mut self) -> Result<Recovered> {
        // 0. (done by the caller, `claim_root`) The root is ours, and locked.
        // 1. Directories.
        self.ensure_store_dirs().await?;

        // 2. The Delta log, replayed from commit 0 (written now if missing).
        let manifest = self.pick_manifest().await?;
        self.report.manifest_version = manifest.version;
        self.report.published_files = manifest.files.len();
        self.report.published_rows = manifest.rows();

        // 3. The manifest's rows agree with its ledger, and every file of it is there and its
        // footer agrees.
        self.check_published(&manifest).await?;

        // 4. Garbage.
        let max_orphan_id = if self.twins.drain_on_ingest_only {
            0
        } else {
            self.remove_garbage(&manifest).await?
        };

        // 5. Live segments.
        let live_segments = self.recover_segments(&manifest).await?;

        // 6. Ledger and allocator.
        self.resume(manifest, live_segments, max_orphan_id).await
    }

    /// Step 1: `_delta_log/`, `data/` and `_tally/log/` exist, durably (step 0 made the
    /// root, `_tally/` and its marker).
    async fn ensure_store_dirs(&self) -> Result<()> {
        let mut root_changed = false;
        for dir in [self.layout.delta_log_dir(), self.layout.data_dir()] {
            root_changed |= self.ensure_dir(&dir).await?;
        }
        if root_changed {
            self.fs.sync_dir(&self.layout.root).await?;
        }
        if self.ensure_dir(&self.layout.log_dir()).await? {
            self.fs.sync_dir(&self.layout.private_dir()).await?;
        }
        Ok(())
    }

    /// Retries an idempotent namespace operation a bounded number of times; an error no retry
    /// can cure ([`is_permanent`]) is returned at once.
    async fn retry<T, Fut>(&self, mut op: impl FnMut() -> Fut) -> io::Result<T>
    where
        Fut: Future<Output = io::Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e)
                    if attempt < self.options.retries && !is_not_found(&e) && !is_permanent(&e) =>
                {
                    tally_sim::probe!("recover.retried");
                    attempt += 1;
                    tracing::warn!(attempt, error = %e, "recovery step failed; retrying");
                    self.clock.sleep(self.options.retry_sleep).await;
                }
                Err(e) => {
                    if attempt == self.options.retries
                        && attempt > 0
                        && !is_not_found(&e)
                        && !is_permanent(&e)
                    {
                        tally_sim::probe!("recover.retries-exhausted");
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Unlinks `path`; a file already gone counts as done (recovery may be re-running).
    async fn remove(&self, path: &Path) -> io::Result<()> {
        match self.retry(|| self.fs.unlink(path)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other,
        }
    }

    fn relative(&self, path: &Path) -> String {
        self.layout.relative(path)
    }

    async fn ensure_dir(&self, dir: &Path) -> Result<bool> {
        if self.fs.exists(dir).await? {
            return Ok(false);
        }
        self.retry(|| self.fs.create_dir_all(dir)).await?;
        Ok(true)
    }
}

/// An error that a retry cannot cure: the filesystem refuses the operation itself (a hard link
/// on vfat or exFAT is `EPERM`).
fn is_permanent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported
    )
}
