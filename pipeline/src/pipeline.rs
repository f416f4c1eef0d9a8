//! The pipeline handle: ingest with group commit, staging, merging and publishing, each
//! implementing its section of `docs/protocol.md`.
//!
//! Locks, always taken in this order and never held across a lock listed before them:
//! `maintenance` (one stage or merge at a time) → `log` (the commit leader: active segment,
//! allocator, ledger) → `published` (the current manifest; publishing is serialized). The
//! intake queue is a plain mutex held only to push or drain requests, never across an await.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use arrow_schema::{Field, Schema, SchemaRef};
use serde::Serialize;
use tally_sim::{Clock, CreateMode, Fs, FsFile, World};
use tokio::sync::{Notify, oneshot};

use crate::error::{Error, Result};
use crate::layout::{self, Layout};
use crate::log::{self, AckRecord, PartMeta};
use crate::manifest::{FileEntry, Manifest, SourceState};
use crate::recover::{self, RecoveryOptions, RecoveryReport};
use crate::seqalloc;
use crate::table::{self, SEQ_COLUMN, TableOptions, TableReader, TableWriter};

/// Tuning of a pipeline. Every field has a production default; tests shrink them to reach
/// rotation, reservation and merges with few rows.
#[derive(Clone, Debug)]
pub struct Config {
    /// A log segment is sealed (and later staged into one level-0 file) once it holds this
    /// many bytes: the target size of level-0 files, before compression.
    pub segment_bytes: u64,
    /// Sequence numbers reserved per durable reservation.
    pub seq_block: u64,
    /// Files of one level merged together (at least 2).
    pub merge_fan_in: usize,
    /// Highest level; files there are never merged. Bytes written per row are bounded by
    /// `max_level + 1` table writes.
    pub max_level: u32,
    pub table: TableOptions,
    /// Rows per batch when reading table files.
    pub read_batch_rows: usize,
    pub recovery: RecoveryOptions,
    /// Guards turned off, for the harness's buggy twins (test builds only).
    #[cfg(feature = "twins")]
    pub twins: crate::twins::Twins,
}

impl Config {
    /// The guards turned off: none, unless a test build set some.
    pub fn twins(&self) -> crate::twins::Twins {
        #[cfg(feature = "twins")]
        return self.twins;
        #[cfg(not(feature = "twins"))]
        crate::twins::Twins::NONE
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            seq_block: 1 << 20,
            merge_fan_in: 4,
            max_level: 3,
            table: TableOptions::default(),
            read_batch_rows: 64 * 1024,
            recovery: RecoveryOptions::default(),
            #[cfg(feature = "twins")]
            twins: crate::twins::Twins::NONE,
        }
    }
}

/// The answer to an ingest: when it is `Ok`, the rows it counts as written are durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ack {
    pub source: String,
    /// Rows of this part stored by this call.
    pub rows_written: u64,
    /// Rows of this part that were already acknowledged (a retry or a re-run): not stored again.
    pub rows_already_acknowledged: u64,
    /// Sequence numbers given to the rows written.
    pub seq: Option<Range<u64>>,
    /// The source's last part is acknowledged.
    pub source_complete: bool,
}

/// The published table at one manifest version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Snapshot {
    pub version: u64,
    pub files: Vec<FileEntry>,
    pub rows: u64,
}

/// Counters for benchmarks and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Group commits that wrote to the log (each costs two fsyncs: log and ack file).
    pub group_commits: u64,
    /// Parts written by those commits.
    pub parts_committed: u64,
    pub segments_staged: u64,
    pub merges: u64,
    pub manifests_published: u64,
    /// Bytes of table files written (staging and merging).
    pub table_bytes_written: u64,
    /// Rows written into table files (staging and merging): with the table's row count, the
    /// write amplification, at most `max_level + 1`.
    pub table_rows_written: u64,
}

/// What one `maintain` or `flush` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceReport {
    pub segments_staged: u64,
    pub merges: u64,
    pub manifest_version: u64,
}

struct Request {
    source: String,
    first_row: u64,
    last: bool,
    batch: RecordBatch,
    /// The batch encoded by the caller before queueing, so encoding runs outside the leader.
    frame: log::DataFrame,
    reply: oneshot::Sender<Result<Ack>>,
}

/// A request's answer within a group commit; `None` when the group failed before reaching it
/// (it then shares the group's error).
type Answer = Option<Result<Ack>>;

struct Intake {
    queue: Vec<Request>,
    /// The table's columns, fixed by the first batch (or by what recovery found).
    schema: Option<SchemaRef>,
}

struct ActiveSegment<F: Fs> {
    number: u64,
    log: F::File,
    ack: F::File,
    log_len: u64,
    ack_len: u64,
    parts: u64,
}

struct LogState<F: Fs> {
    active: Option<ActiveSegment<F>>,
    next_segment: u64,
    next_seq: u64,
    seq_reserved: u64,
    /// Every acknowledged row by source (published and staged).
    ledger: BTreeMap<String, SourceState>,
    /// Segments holding data not yet staged, in order (sealed, or left by an earlier run).
    sealed: BTreeSet<u64>,
}

struct Inner<F: Fs, C: Clock> {
    world: World<F, C>,
    layout: Layout,
    config: Config,
    intake: Mutex<Intake>,
    log: tokio::sync::Mutex<LogState<F>>,
    published: tokio::sync::Mutex<Manifest>,
    maintenance: tokio::sync::Mutex<()>,
    /// The first file id this process writes: files below it predate the open.
    first_file_id: u64,
    /// Under the `drain_on_ingest_only` twin, the manifest whose leftovers are still on disk.
    #[cfg(feature = "twins")]
    undrained: tokio::sync::Mutex<Option<Manifest>>,
    next_file_id: AtomicU64,
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

fn user_schema_of(schema: &Schema) -> Schema {
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), f.is_nullable()))
            .collect::<Vec<_>>(),
    )
}

fn describe(schema: &Schema) -> String {
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            format!(
                "{}: {}{}",
                f.name(),
                f.data_type(),
                if f.is_nullable() { "" } else { " not null" }
            )
        })
        .collect();
    format!("({})", columns.join(", "))
}

/// Appends the sequence column (`seq_start`, `seq_start + 1`, ...) to a user batch.
pub fn with_seq(batch: &RecordBatch, seq_start: u64, stored: &SchemaRef) -> Result<RecordBatch> {
    let rows = batch.num_rows() as u64;
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(UInt64Array::from_iter_values(
        seq_start..seq_start + rows,
    )));
    RecordBatch::try_new(stored.clone(), columns)
        .map_err(|e| Error::format("adding the sequence column", e))
}

impl<F: Fs, C: Clock> Pipeline<F, C> {
    /// Opens (creating if needed) the pipeline at `root`, running recovery first.
    pub async fn open(
        world: World<F, C>,
        root: impl Into<PathBuf>,
        config: Config,
    ) -> Result<(Self, RecoveryReport)> {
        assert!(config.merge_fan_in >= 2, "merge_fan_in must be at least 2");
        assert!(config.seq_block >= 1, "seq_block must be at least 1");
        let layout = Layout::new(root);
        let recovered = recover::recover_with(
            &world.fs,
            &world.clock,
            &layout,
            config.recovery,
            config.twins(),
        )
        .await?;
        #[cfg(feature = "twins")]
        let undrained = config
            .twins()
            .drain_on_ingest_only
            .then(|| recovered.manifest.clone());
        let report = recovered.report.clone();
        let sealed = recovered
            .live_segments
            .iter()
            .map(|s| s.number)
            .collect::<BTreeSet<_>>();
        let inner = Inner {
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
            }),
            published: tokio::sync::Mutex::new(recovered.manifest),
            maintenance: tokio::sync::Mutex::new(()),
            first_file_id: recovered.next_file_id,
            #[cfg(feature = "twins")]
            undrained: tokio::sync::Mutex::new(undrained),
            next_file_id: AtomicU64::new(recovered.next_file_id),
            poison: Mutex::new(None),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            stats: Mutex::new(Stats::default()),
            world,
        };
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

    /// Ingests a whole source in one batch: once acknowledged, re-ingesting it is a no-op.
    pub async fn ingest(&self, source: &str, batch: RecordBatch) -> Result<Ack> {
        self.ingest_part(source, 0, batch, true).await
    }

    /// Ingests rows `first_row..first_row + batch.num_rows()` of `source`. Rows the ledger
    /// already holds are skipped (so a retry or a re-run stores nothing twice); a part that
    /// starts beyond the rows acknowledged so far is refused. `last` marks the source complete.
    /// Returns once the written rows are durable.
    pub async fn ingest_part(
        &self,
        source: &str,
        first_row: u64,
        batch: RecordBatch,
        last: bool,
    ) -> Result<Ack> {
        self.check_poison()?;
        #[cfg(feature = "twins")]
        self.drain_if_deferred().await?;
        let refuse = |reason: String| Error::InvalidBatch {
            source_id: source.to_string(),
            reason,
        };
        if source.is_empty() || source.len() > log::MAX_SOURCE_LEN {
            return Err(refuse(format!(
                "a source id must be 1 to {} bytes",
                log::MAX_SOURCE_LEN
            )));
        }
        if batch.num_columns() == 0 {
            return Err(refuse("a batch needs at least one column".into()));
        }
        if batch.schema().field_with_name(SEQ_COLUMN).is_ok() {
            return Err(refuse(format!("the column name {SEQ_COLUMN} is reserved")));
        }
        let user = Arc::new(user_schema_of(&batch.schema()));
        let batch = RecordBatch::try_new(user.clone(), batch.columns().to_vec())
            .map_err(|e| refuse(e.to_string()))?;
        let frame = log::DataFrame::encode(&batch, source.len())?;
        let (reply, answer) = oneshot::channel();
        {
            let mut intake = self.inner.intake.lock().expect("intake lock");
            match &intake.schema {
                Some(table) if table.fields() != user.fields() => {
                    return Err(Error::SchemaMismatch {
                        source_id: source.to_string(),
                        expected: describe(table),
                        found: describe(&user),
                    });
                }
                Some(_) => {}
                None => intake.schema = Some(user),
            }
            intake.queue.push(Request {
                source: source.to_string(),
                first_row,
                last,
                batch,
                frame,
                reply,
            });
        }
        // Become the leader, unless a leader already committed this request meanwhile.
        let mut log = self.inner.log.lock().await;
        let mut answer = answer;
        if let Ok(result) = answer.try_recv() {
            return result;
        }
        let group = std::mem::take(&mut self.inner.intake.lock().expect("intake lock").queue);
        self.commit_group(&mut log, group).await;
        drop(log);
        answer
            .await
            .unwrap_or_else(|_| Err(Error::format("ingest", "the commit leader vanished")))
    }

    async fn commit_group(&self, log: &mut LogState<F>, group: Vec<Request>) {
        if let Some(cause) = self.poisoned() {
            for request in group {
                let _ = request.reply.send(Err(Error::Poisoned {
                    cause: cause.clone(),
                }));
            }
            return;
        }
        let mut overlay: BTreeMap<String, SourceState> = BTreeMap::new();
        let mut frames: Vec<log::DataFrame> = Vec::new();
        let mut frames_len = 0u64;
        let mut acks = Vec::new();
        let mut replies: Vec<(oneshot::Sender<Result<Ack>>, Answer)> = Vec::new();
        let mut parts = 0u64;
        let mut failure: Option<Error> = None;
        for request in group {
            if failure.is_some() {
                replies.push((request.reply, None));
                continue;
            }
            let state = overlay
                .get(&request.source)
                .or_else(|| log.ledger.get(&request.source))
                .copied()
                .unwrap_or_default();
            let rows = request.batch.num_rows() as u64;
            let end = request.first_row + rows;
            let already = |state: SourceState| Ack {
                source: request.source.clone(),
                rows_written: 0,
                rows_already_acknowledged: rows,
                seq: None,
                source_complete: state.complete,
            };
            // A part wholly acknowledged is a no-op — unless it is the last part of a source
            // whose rows are all in but whose completion was never recorded (the run died
            // between its last two parts): then an empty part records the completion.
            let completes = request.last && end == state.rows;
            if state.complete || (end <= state.rows && !completes) {
                replies.push((request.reply, Some(Ok(already(state)))));
                continue;
            }
            if request.first_row > state.rows {
                let err = Error::SourceGap {
                    source_id: request.source.clone(),
                    first_row: request.first_row,
                    acknowledged: state.rows,
                };
                replies.push((request.reply, Some(Err(err))));
                continue;
            }
            let skip = state.rows - request.first_row;
            let take = rows - skip;
            let mut frame = if skip == 0 {
                request.frame
            } else {
                let rest = request.batch.slice(skip as usize, take as usize);
                match log::DataFrame::encode(&rest, request.source.len()) {
                    Ok(frame) => frame,
                    Err(e) => {
                        replies.push((request.reply, Some(Err(e))));
                        continue;
                    }
                }
            };
            let seq_start = match self.place(log, take).await {
                Ok(seq_start) => seq_start,
                Err(e) => {
                    failure = Some(e);
                    replies.push((request.reply, None));
                    continue;
                }
            };
            let active = log.active.as_ref().expect("placed above");
            let meta = PartMeta {
                source: request.source.clone(),
                first_row: state.rows,
                seq_start,
                rows: take,
                last: request.last,
            };
            let log_offset = active.log_len + frames_len;
            let frame_crc = frame.seal(&meta);
            frames_len += frame.bytes().len() as u64;
            frames.push(frame);
            log::encode_ack(
                &mut acks,
                &AckRecord {
                    log_offset,
                    frame_crc,
                    meta,
                },
            );
            parts += 1;
            overlay.insert(
                request.source.clone(),
                SourceState {
                    rows: state.rows + take,
                    complete: request.last,
                },
            );
            replies.push((
                request.reply,
                Some(Ok(Ack {
                    source: request.source,
                    rows_written: take,
                    rows_already_acknowledged: skip,
                    seq: (take > 0).then_some(seq_start..seq_start + take),
                    source_complete: request.last,
                })),
            ));
        }
        if failure.is_none() && !frames.is_empty() {
            if let Err(e) = self.write_group(log, frames, &acks, parts).await {
                failure = Some(e);
            }
        }
        if let Some(e) = failure {
            self.poison(&e);
            let cause = e.to_string();
            for (reply, result) in replies {
                // Refusals stand; everything else in the group shares its failure.
                let result = match result {
                    Some(Err(refused)) => Err(refused),
                    Some(Ok(_)) | None => Err(Error::Poisoned {
                        cause: cause.clone(),
                    }),
                };
                let _ = reply.send(result);
            }
            return;
        }
        log.ledger.extend(overlay);
        if parts > 0 {
            let mut stats = self.inner.stats.lock().expect("stats lock");
            stats.group_commits += 1;
            stats.parts_committed += parts;
        }
        for (reply, result) in replies {
            let _ = reply.send(result.expect("every request of a successful group has an answer"));
        }
        let full = log
            .active
            .as_ref()
            .is_some_and(|a| a.log_len >= self.inner.config.segment_bytes);
        if full {
            self.seal(log);
        }
    }

    /// Steps 4 and 5 of a group commit: frames (in one write), sync, ledger records, sync.
    async fn write_group(
        &self,
        log: &mut LogState<F>,
        frames: Vec<log::DataFrame>,
        acks: &[u8],
        parts: u64,
    ) -> Result<()> {
        let active = log
            .active
            .as_mut()
            .expect("a group with frames has a segment");
        let frames = match <[_; 1]>::try_from(frames) {
            // A group of one part (the common case under a single caller) is written as the
            // caller encoded it.
            Ok([one]) => one.into_bytes(),
            Err(many) => {
                let mut joined =
                    Vec::with_capacity(many.iter().map(|f| f.bytes().len()).sum::<usize>());
                for frame in &many {
                    joined.extend_from_slice(frame.bytes());
                }
                joined
            }
        };
        let frames = &frames[..];
        active.log.write_at(active.log_len, frames).await?;
        active.log.sync().await?;
        active.ack.write_at(active.ack_len, acks).await?;
        active.ack.sync().await?;
        active.log_len += frames.len() as u64;
        active.ack_len += acks.len() as u64;
        active.parts += parts;
        Ok(())
    }

    /// Readies the next part of a group: its `rows` sequence numbers covered by a durable
    /// reservation, and a segment open to hold it. Returns the part's first sequence number.
    async fn place(&self, log: &mut LogState<F>, rows: u64) -> Result<u64> {
        self.reserve_seq(log, rows).await?;
        if log.active.is_none() {
            log.active = Some(self.open_segment(log).await?);
        }
        let seq_start = log.next_seq;
        log.next_seq += rows;
        Ok(seq_start)
    }

    /// Makes sure `rows` numbers from `next_seq` on are covered by a durable reservation.
    async fn reserve_seq(&self, log: &mut LogState<F>, rows: u64) -> Result<()> {
        let needed = log.next_seq + rows;
        if needed <= log.seq_reserved {
            return Ok(());
        }
        let reserved = needed + self.inner.config.seq_block;
        crate::commit::replace_file(
            &self.inner.world.fs,
            &self.inner.layout.root,
            layout::SEQ_FILE,
            &seqalloc::encode(reserved),
        )
        .await?;
        log.seq_reserved = reserved;
        Ok(())
    }

    /// Segment creation (protocol "Ingest", step 3): each file is created exclusively with its
    /// header synced, then the directory entries are made durable, before any part is written.
    async fn open_segment(&self, log: &mut LogState<F>) -> Result<ActiveSegment<F>> {
        let number = log.next_segment;
        log.next_segment += 1;
        let layout = &self.inner.layout;
        let (log_file, log_len) = self
            .create_with_header(&layout.segment_log(number), &log::log_header(number))
            .await?;
        let (ack_file, ack_len) = self
            .create_with_header(&layout.segment_ack(number), &log::ack_header(number))
            .await?;
        self.inner.world.fs.sync_dir(&layout.log_dir()).await?;
        Ok(ActiveSegment {
            number,
            log: log_file,
            ack: ack_file,
            log_len,
            ack_len,
            parts: 0,
        })
    }

    async fn create_with_header(
        &self,
        path: &std::path::Path,
        header: &[u8],
    ) -> Result<(F::File, u64)> {
        let file = self
            .inner
            .world
            .fs
            .create(path, CreateMode::Exclusive)
            .await?;
        file.write_at(0, header).await?;
        file.sync().await?;
        Ok((file, header.len() as u64))
    }

    fn seal(&self, log: &mut LogState<F>) {
        if let Some(active) = log.active.take() {
            log.sealed.insert(active.number);
            self.inner.wake.notify_one();
        }
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

    /// Seals the active segment (if it holds data), then stages and merges until nothing is
    /// due. When it returns `Ok`, every row acknowledged before the call is published.
    pub async fn flush(&self) -> Result<MaintenanceReport> {
        self.check_poison()?;
        {
            let mut log = self.inner.log.lock().await;
            if log.active.as_ref().is_some_and(|a| a.parts > 0) {
                self.seal(&mut log);
            }
        }
        self.maintain().await
    }

    /// Stages every sealed segment and runs merges until none is due.
    pub async fn maintain(&self) -> Result<MaintenanceReport> {
        self.check_poison()?;
        let _one_at_a_time = self.inner.maintenance.lock().await;
        let mut report = MaintenanceReport::default();
        loop {
            let step = async {
                if self.stage_next().await? {
                    report.segments_staged += 1;
                    return Ok(true);
                }
                if self.merge_next().await? {
                    report.merges += 1;
                    return Ok(true);
                }
                Ok::<_, Error>(false)
            }
            .await;
            match step {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    self.poison(&e);
                    return Err(e);
                }
            }
        }
        report.manifest_version = self.inner.published.lock().await.version;
        Ok(report)
    }

    /// Runs `maintain` whenever a segment is sealed, until `stop_maintenance`. Errors stop the
    /// pipeline (it is poisoned) and end the task.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<Result<()>> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                this.inner.wake.notified().await;
                if this.inner.stopping.load(Ordering::Acquire) {
                    return Ok(());
                }
                this.maintain().await?;
            }
        })
    }

    pub fn stop_maintenance(&self) {
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// Stage step (protocol "Stage") for the oldest sealed segment. Returns whether there was one.
    async fn stage_next(&self) -> Result<bool> {
        let Some(number) = self.inner.log.lock().await.sealed.first().copied() else {
            return Ok(false);
        };
        let fs = &self.inner.world.fs;
        let layout = &self.inner.layout;
        let log_path = layout.segment_log(number);
        let ack_path = layout.segment_ack(number);
        let bytes = fs.read(&log_path).await?;
        let scan = log::scan_log(&bytes, number);
        if !scan.header_ok || scan.malformed.is_some() || scan.valid_len != bytes.len() as u64 {
            return Err(Error::corrupt(
                &log_path,
                format!(
                    "a sealed segment no longer scans whole ({} of {} bytes valid{})",
                    scan.valid_len,
                    bytes.len(),
                    scan.malformed.map(|m| format!(", {m}")).unwrap_or_default()
                ),
            ));
        }
        let rows: u64 = scan.items.iter().map(|p| p.meta.rows).sum();
        let mut entry = None;
        if rows > 0 {
            let id = self.inner.next_file_id.fetch_add(1, Ordering::Relaxed);
            let final_path = layout.table_file(0, id);
            let temp = layout::temp_path(&final_path);
            let mut writer: Option<TableWriter<F>> = None;
            for part in scan.items.iter().filter(|p| p.meta.rows > 0) {
                let batch = log::decode_batch(&bytes[part.ipc.clone()])
                    .map_err(|e| Error::corrupt(&log_path, e.to_string()))?;
                if batch.num_rows() as u64 != part.meta.rows {
                    return Err(Error::corrupt(
                        &log_path,
                        format!(
                            "frame at offset {} records {} rows but holds {}",
                            part.frame.offset,
                            part.meta.rows,
                            batch.num_rows()
                        ),
                    ));
                }
                let stored = match &writer {
                    Some(w) => w.schema().clone(),
                    None => table::stored_schema(&batch.schema()),
                };
                let batch = with_seq(&batch, part.meta.seq_start, &stored)?;
                TableWriter::write_creating(
                    &mut writer,
                    fs,
                    &temp,
                    &batch,
                    &self.inner.config.table,
                )
                .await?;
            }
            let written = writer.expect("rows > 0").finish(id, 0).await?;
            if written.rows != rows {
                let _ = fs.unlink(&temp).await;
                return Err(Error::Conservation {
                    detail: format!(
                        "staging segment {number}: {rows} rows logged, {} written",
                        written.rows
                    ),
                });
            }
            fs.rename(&temp, &final_path).await?;
            fs.sync_dir(&layout.data_dir()).await?;
            self.count_written(&written);
            entry = Some(FileEntry {
                id,
                level: 0,
                rows,
                seq_min: written.seq_min,
                seq_max: written.seq_max,
                bytes: written.bytes,
            });
        }
        let schema = self.schema();
        let parts: Vec<PartMeta> = scan.items.into_iter().map(|p| p.meta).collect();
        self.publish(|m| {
            if m.log_through >= number {
                return Err(Error::Conservation {
                    detail: format!(
                        "segment {number} staged twice (manifest covers segments through {})",
                        m.log_through
                    ),
                });
            }
            for part in &parts {
                let state = m.sources.entry(part.source.clone()).or_default();
                if part.first_row != state.rows {
                    return Err(Error::Conservation {
                        detail: format!(
                            "source {:?}: staged part starts at row {} but {} rows are published",
                            part.source, part.first_row, state.rows
                        ),
                    });
                }
                state.rows += part.rows;
                state.complete |= part.last;
            }
            if let Some(entry) = &entry {
                m.next_file_id = m.next_file_id.max(entry.id + 1);
                m.files.push(entry.clone());
                m.files.sort_by_key(|f| f.seq_min);
            }
            m.log_through = number;
            if m.schema.is_none() {
                m.schema = schema.as_deref().cloned();
            }
            Ok(())
        })
        .await?;
        // The manifest is durable: the segment is garbage now.
        for path in [&ack_path, &log_path] {
            match fs.unlink(path).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        fs.sync_dir(&layout.log_dir()).await?;
        self.inner.log.lock().await.sealed.remove(&number);
        self.inner.stats.lock().expect("stats lock").segments_staged += 1;
        Ok(true)
    }

    fn count_written(&self, written: &table::Written) {
        let mut stats = self.inner.stats.lock().expect("stats lock");
        stats.table_bytes_written += written.bytes;
        stats.table_rows_written += written.rows;
    }

    /// The oldest `merge_fan_in` files of the lowest level that has that many, below the top.
    fn merge_plan(&self, manifest: &Manifest) -> Option<(u32, Vec<FileEntry>)> {
        let config = &self.inner.config;
        let forget = config.twins().forget_immature_after_restart;
        (0..config.max_level).find_map(|level| {
            let mut at_level: Vec<FileEntry> = manifest
                .files
                .iter()
                .filter(|f| f.level == level)
                .filter(|f| !forget || f.id >= self.inner.first_file_id)
                .cloned()
                .collect();
            at_level.sort_by_key(|f| f.seq_min);
            (at_level.len() >= config.merge_fan_in).then(|| {
                at_level.truncate(config.merge_fan_in);
                (level, at_level)
            })
        })
    }

    /// Merge step (protocol "Merge"). Returns whether a merge was due.
    async fn merge_next(&self) -> Result<bool> {
        let manifest = self.inner.published.lock().await.clone();
        let Some((level, inputs)) = self.merge_plan(&manifest) else {
            return Ok(false);
        };
        let fs = &self.inner.world.fs;
        let layout = &self.inner.layout;
        let id = self.inner.next_file_id.fetch_add(1, Ordering::Relaxed);
        let out_level = level + 1;
        let final_path = layout.table_file(out_level, id);
        let temp = layout::temp_path(&final_path);

        let mut writer: Option<TableWriter<F>> = None;
        let mut rows_in = 0u64;
        for input in &inputs {
            let path = layout.table_file(input.level, input.id);
            let mut reader =
                TableReader::open(fs, &path, self.inner.config.read_batch_rows).await?;
            let mut rows_this = 0u64;
            while let Some(batch) = reader.next().await? {
                // Every input's batches are written under the first input's schema (same
                // columns; field metadata may differ).
                let stored = match &writer {
                    Some(w) => w.schema().clone(),
                    None => batch.schema(),
                };
                let batch = RecordBatch::try_new(stored, batch.columns().to_vec())
                    .map_err(|e| Error::corrupt(&path, e.to_string()))?;
                rows_this += batch.num_rows() as u64;
                TableWriter::write_creating(
                    &mut writer,
                    fs,
                    &temp,
                    &batch,
                    &self.inner.config.table,
                )
                .await?;
            }
            if rows_this != input.rows {
                let _ = fs.unlink(&temp).await;
                return Err(Error::Conservation {
                    detail: format!(
                        "merge into level {out_level}: {} holds {rows_this} rows, the manifest says {}",
                        layout::table_file_name(input.level, input.id),
                        input.rows
                    ),
                });
            }
            rows_in += rows_this;
        }
        let Some(w) = writer else {
            return Err(Error::Conservation {
                detail: format!("merge into level {out_level}: the inputs hold no rows"),
            });
        };
        let written = w.finish(id, out_level).await?;
        let expected: u64 = inputs.iter().map(|f| f.rows).sum();
        let hull = (
            inputs.iter().map(|f| f.seq_min).min().unwrap_or(0),
            inputs.iter().map(|f| f.seq_max).max().unwrap_or(0),
        );
        let disjoint = inputs.windows(2).all(|w| w[0].seq_max < w[1].seq_min);
        if written.rows != rows_in
            || rows_in != expected
            || (written.seq_min, written.seq_max) != hull
            || !disjoint
        {
            let _ = fs.unlink(&temp).await;
            return Err(Error::Conservation {
                detail: format!(
                    "merge of {} level-{level} files: manifest rows {expected}, rows read {rows_in}, rows written {}, \
                     output seq {}..={} vs inputs {}..={}, inputs disjoint: {disjoint}",
                    inputs.len(),
                    written.rows,
                    written.seq_min,
                    written.seq_max,
                    hull.0,
                    hull.1
                ),
            });
        }
        fs.rename(&temp, &final_path).await?;
        fs.sync_dir(&layout.data_dir()).await?;
        self.count_written(&written);
        let output = FileEntry {
            id,
            level: out_level,
            rows: written.rows,
            seq_min: written.seq_min,
            seq_max: written.seq_max,
            bytes: written.bytes,
        };
        self.publish(|m| {
            for input in &inputs {
                if !m.files.contains(input) {
                    return Err(Error::Conservation {
                        detail: format!(
                            "merge input {} is no longer live at level {level}",
                            layout::table_file_name(input.level, input.id)
                        ),
                    });
                }
            }
            m.files.retain(|f| !inputs.contains(f));
            m.files.push(output.clone());
            m.files.sort_by_key(|f| f.seq_min);
            m.next_file_id = m.next_file_id.max(id + 1);
            // Level homogeneity: in sequence order, levels never increase.
            if m.files
                .windows(2)
                .any(|w| w[0].level < w[1].level || w[0].seq_max >= w[1].seq_min)
            {
                return Err(Error::Conservation {
                    detail: "after the merge, files would overlap or levels interleave".into(),
                });
            }
            Ok(())
        })
        .await?;
        for input in &inputs {
            match fs.unlink(&layout.table_file(input.level, input.id)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        fs.sync_dir(&layout.data_dir()).await?;
        self.inner.stats.lock().expect("stats lock").merges += 1;
        Ok(true)
    }

    /// Publish step: writes manifest version `v + 1` (protocol "Publish"). Serialized by the
    /// `published` lock. A failure poisons the pipeline: the manifest's fate is then unknown.
    async fn publish(&self, edit: impl FnOnce(&mut Manifest) -> Result<()>) -> Result<u64> {
        let mut current = self.inner.published.lock().await;
        let mut next = current.clone();
        edit(&mut next)?;
        next.version = current.version + 1;
        let fs = &self.inner.world.fs;
        let layout = &self.inner.layout;
        let written = async {
            let name = layout::manifest_name(next.version);
            crate::commit::replace_file(fs, &layout.root, &name, &next.encode()).await
        }
        .await;
        if let Err(e) = written {
            let e = Error::from(e);
            self.poison(&e);
            return Err(e);
        }
        let version = next.version;
        *current = next;
        if version >= 2 {
            // Keep the previous version; older ones are superseded. Not synced: should the
            // unlink be lost, recovery removes the file again.
            let _ = fs.unlink(&layout.manifest(version - 2)).await;
        }
        self.inner
            .stats
            .lock()
            .expect("stats lock")
            .manifests_published += 1;
        Ok(version)
    }
}
