//! The pipeline handle. Each step is a module implementing its section of
//! `docs/protocol.md`: `ingest` and `group` (Ingest: group commit), `segment` (Identity, and
//! the log segments group commits append to), `stage`, `merge`, `publish`, and `maintain`
//! (the scheduler running stage and merge steps). This module holds the handle itself:
//! opening (after recovery), accessors, and the poison that stops the pipeline.
//!
//! Locks, always taken in this order and never held across a lock listed before them:
//! `maintenance` (one stage or merge at a time) → `log` (the commit leader: active segment,
//! allocator, ledger) → `published` (the current manifest; publishing is serialized), and
//! `maintenance` → `prestaged` (segment files being encoded from memory, `prestage`), which is
//! never held with `log` or `published`. The intake queue and the staging queue are plain
//! mutexes held only to push or pop, never across an await.

mod bulk;
mod config;
mod group;
mod ingest;
mod maintain;
mod merge;
mod prestage;
mod publish;
mod segment;
mod stage;
mod vacuum;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use arrow_schema::SchemaRef;
use tally_sim::{Clock, Fs, World};
use tokio::sync::Notify;

pub use self::bulk::BulkLoad;
pub use self::config::{Ack, Config, MaintenanceReport, Snapshot, Stats};
use self::ingest::Intake;
use self::segment::LogState;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::manifest::{Manifest, SourceState};
use crate::recover::{self, Claim, Recovered, RecoveryReport};
use crate::table;

struct Inner<F: Fs, C: Clock> {
    /// The root's writer lock, held for the life of the handle (of its last clone).
    _lock: F::Lock,
    world: World<F, C>,
    layout: Layout,
    config: Config,
    intake: Mutex<Intake>,
    log: tokio::sync::Mutex<LogState<F>>,
    published: tokio::sync::Mutex<Manifest>,
    maintenance: tokio::sync::Mutex<()>,
    /// Acknowledged parts waiting to be encoded into their segment's file, in log order.
    prestage_queue: Mutex<prestage::Queue>,
    prestaged: tokio::sync::Mutex<prestage::Prestaged<F>>,
    /// The first file id this process writes: files below it predate the open.
    first_file_id: u64,
    /// Under the `drain_on_ingest_only` twin, the manifest whose leftovers are still on disk.
    #[cfg(feature = "twins")]
    undrained: tokio::sync::Mutex<Option<Manifest>>,
    next_file_id: AtomicU64,
    /// Ids of removed table files this process has deleted (vacuumed): their tombstones stay
    /// in the table's state until a checkpoint drops them.
    vacuumed: Mutex<BTreeSet<u64>>,
    poison: Mutex<Option<String>>,
    wake: Notify,
    stopping: AtomicBool,
    stats: Mutex<Stats>,
}

/// A pipeline over one root directory. Cloning yields another handle to the same pipeline.
pub struct Pipeline<F: Fs, C: Clock> {
    inner: Arc<Inner<F, C>>,
}

impl<F: Fs, C: Clock> std::fmt::Debug for Pipeline<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("root", &self.inner.layout.root)
            .finish_non_exhaustive()
    }
}

impl<F: Fs, C: Clock> Clone for Pipeline<F, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<F: Fs, C: Clock> Inner<F, C> {
    /// The pipeline's state as recovery left the store.
    fn new(
        world: World<F, C>,
        layout: Layout,
        config: Config,
        lock: F::Lock,
        recovered: Recovered,
    ) -> Self {
        #[cfg(feature = "twins")]
        let undrained = config
            .twins()
            .drain_on_ingest_only
            .then(|| recovered.manifest.clone());
        let sealed = recovered
            .live_segments
            .iter()
            .map(|s| s.number)
            .collect::<BTreeSet<_>>();
        Inner {
            _lock: lock,
            layout,
            config,
            intake: Mutex::new(Intake {
                queue: Vec::new(),
                schema: recovered.schema.map(Arc::new),
            }),
            log: tokio::sync::Mutex::new(LogState {
                active: None,
                next_segment: recovered.next_segment,
                next_seq: recovered.next_seq,
                seq_reserved: recovered.seq_reserved,
                ledger: recovered.ledger,
                sealed,
                last_group_requests: 0,
            }),
            published: tokio::sync::Mutex::new(recovered.manifest),
            maintenance: tokio::sync::Mutex::new(()),
            prestage_queue: Mutex::new(prestage::Queue::default()),
            prestaged: tokio::sync::Mutex::new(prestage::Prestaged::new()),
            first_file_id: recovered.next_file_id,
            #[cfg(feature = "twins")]
            undrained: tokio::sync::Mutex::new(undrained),
            next_file_id: AtomicU64::new(recovered.next_file_id),
            vacuumed: Mutex::new(BTreeSet::new()),
            poison: Mutex::new(None),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            stats: Mutex::new(Stats::default()),
            world,
        }
    }
}

impl<F: Fs, C: Clock> Pipeline<F, C> {
    /// Opens the pipeline at `root`, running recovery first. A missing or empty root becomes
    /// a new store; anything else must already be one (`Error::NotAStore`). The handle holds
    /// the root's writer lock until its last clone is dropped: while it lives, another open of
    /// the root fails with `Error::Locked`.
    pub async fn open(
        world: World<F, C>,
        root: impl Into<PathBuf>,
        config: Config,
    ) -> Result<(Self, RecoveryReport)> {
        Self::open_claiming(world, root.into(), config, Claim::CreateIfNeeded).await
    }

    /// [`Pipeline::open`], for a store that must already exist: a missing root, an empty
    /// directory or anything else that is not a tally store is refused with
    /// `Error::NotAStore`, and nothing is created.
    pub async fn open_existing(
        world: World<F, C>,
        root: impl Into<PathBuf>,
        config: Config,
    ) -> Result<(Self, RecoveryReport)> {
        Self::open_claiming(world, root.into(), config, Claim::Existing).await
    }

    async fn open_claiming(
        world: World<F, C>,
        root: PathBuf,
        config: Config,
        claim: Claim,
    ) -> Result<(Self, RecoveryReport)> {
        assert!(config.merge_fan_in >= 2, "merge_fan_in must be at least 2");
        assert!(config.seq_block >= 1, "seq_block must be at least 1");
        let layout = Layout::new(root);
        // Before recovery reads or changes anything: the root is ours, and only ours.
        let lock =
            recover::claim_root(&world.fs, &world.clock, &layout, config.recovery, claim).await?;
        let recovered = recover::recover_with(
            &world.fs,
            &world.clock,
            &layout,
            config.recovery,
            config.twins(),
        )
        .await?;
        let report = recovered.report.clone();
        let inner = Inner::new(world, layout, config, lock, recovered);
        Ok((
            Self {
                inner: Arc::new(inner),
            },
            report,
        ))
    }

    pub fn root(&self) -> &std::path::Path {
        &self.inner.layout.root
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn world(&self) -> &World<F, C> {
        &self.inner.world
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// Holds off stage and merge steps (and other holders) while the guard lives.
    pub(crate) async fn hold_steps(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.maintenance.lock().await
    }

    /// Fails if the pipeline stopped (a failed write or sync left its state unknown).
    pub(crate) fn check_running(&self) -> Result<()> {
        self.check_poison()
    }

    pub fn stats(&self) -> Stats {
        *self.inner.stats.lock().expect("stats lock")
    }

    /// The table's columns (without the sequence column), once the first batch fixed them.
    pub fn schema(&self) -> Option<SchemaRef> {
        self.inner
            .intake
            .lock()
            .expect("intake lock")
            .schema
            .clone()
    }

    /// What the ledger holds for `source`.
    pub async fn source_state(&self, source: &str) -> SourceState {
        let log = self.inner.log.lock().await;
        log.ledger.get(source).copied().unwrap_or_default()
    }

    /// The whole ledger: every source with acknowledged rows.
    pub async fn ledger(&self) -> BTreeMap<String, SourceState> {
        self.inner.log.lock().await.ledger.clone()
    }

    /// The current manifest version and its files.
    pub async fn snapshot(&self) -> Snapshot {
        let manifest = self.inner.published.lock().await;
        Snapshot {
            version: manifest.version,
            files: manifest.files.clone(),
            rows: manifest.rows(),
        }
    }

    /// A copy of the current manifest.
    pub async fn manifest(&self) -> Manifest {
        self.inner.published.lock().await.clone()
    }

    /// Why the pipeline stopped, if it did.
    fn poisoned(&self) -> Option<String> {
        self.inner.poison.lock().expect("poison lock").clone()
    }

    fn check_poison(&self) -> Result<()> {
        match self.poisoned() {
            Some(cause) => Err(Error::Poisoned { cause }),
            None => Ok(()),
        }
    }

    fn poison(&self, cause: &Error) {
        let mut poison = self.inner.poison.lock().expect("poison lock");
        if poison.is_none() {
            tracing::error!(error = %cause, "pipeline stopped");
            *poison = Some(cause.to_string());
        }
    }

    fn count_written(&self, written: &table::Written) {
        let mut stats = self.inner.stats.lock().expect("stats lock");
        stats.table_bytes_written += written.bytes;
        stats.table_rows_written += written.rows;
    }

    /// Under the `drain_on_ingest_only` twin, removes the leftovers recovery left in place.
    #[cfg(feature = "twins")]
    async fn drain_if_deferred(&self) -> Result<()> {
        let mut undrained = self.inner.undrained.lock().await;
        if let Some(manifest) = undrained.as_ref() {
            let w = &self.inner.world;
            recover::drain(
                &w.fs,
                &w.clock,
                &self.inner.layout,
                self.inner.config.recovery,
                manifest,
            )
            .await?;
            *undrained = None;
        }
        Ok(())
    }
}
