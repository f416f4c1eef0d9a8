//! Bulk load (protocol "Bulk load"): the rows of a durable source — an input that can be read
//! again from any row, such as a file — written straight into level-0 table files, each one
//! committed with the source's ledger advanced by its rows. No log frame is written and
//! nothing is read back: until the commit that publishes them, the input is the durable copy
//! of the rows, and a crash loses nothing that reading it again from the ledger's row count
//! does not restore.
//!
//! From its first row to its commit, a file holds the `maintenance` lock (no stage step runs,
//! so no rows numbered after the file's are published before it) and the `log` lock (no group
//! commit takes numbers meanwhile), and the log holds nothing unstaged when it starts: rows are
//! published in the order of their sequence numbers, which the exporter's watermark relies on.

use std::ops::Range;
use std::sync::atomic::Ordering;

use arrow::array::RecordBatch;
use tally_sim::{Clock, Fs};
use tokio::sync::MutexGuard;

use super::Pipeline;
use super::config::Ack;
use super::group::source_changed;
use super::segment::LogState;
use crate::error::{Error, Result};
use crate::install::Install;
use crate::manifest::{FileEntry, Fingerprint, Manifest, SourceState};
use crate::table;

/// A bulk load of one source, from the row its ledger holds. Rows are given in order with
/// [`BulkLoad::write`]; a file is committed whenever it reaches the segment size, and by
/// [`BulkLoad::commit`].
pub struct BulkLoad<'p, F: Fs, C: Clock> {
    pipeline: &'p Pipeline<F, C>,
    source: String,
    fingerprint: Option<Fingerprint>,
    /// The source's rows acknowledged so far, this load's included.
    state: SourceState,
    file: Option<OpenFile<'p, F>>,
}

/// The table file being written, and the locks it holds until its commit.
struct OpenFile<'p, F: Fs> {
    _steps: MutexGuard<'p, ()>,
    log: MutexGuard<'p, LogState<F>>,
    install: Install<'p, F>,
    id: u64,
    first_row: u64,
    rows: u64,
    /// In-memory size of the batches written: the file is committed past `segment_bytes`.
    bytes: u64,
    seq: Range<u64>,
}

impl<F: Fs, C: Clock> Pipeline<F, C> {
    /// Starts a bulk load of `source`, whose content the caller identifies with `fingerprint`
    /// (refused with [`Error::SourceChanged`] if the ledger bound another one to it).
    pub async fn bulk_load(
        &self,
        source: &str,
        fingerprint: Option<Fingerprint>,
    ) -> Result<BulkLoad<'_, F, C>> {
        self.check_poison()?;
        #[cfg(feature = "twins")]
        self.drain_if_deferred().await?;
        let state = self.source_state(source).await;
        if !state.accepts(fingerprint) {
            return Err(source_changed(source, state, fingerprint));
        }
        Ok(BulkLoad {
            pipeline: self,
            source: source.to_owned(),
            fingerprint,
            state,
            file: None,
        })
    }

    /// Takes the locks a bulk file holds, once the log holds nothing unstaged: every row
    /// numbered before the file's is then published before it.
    async fn bulk_locks(&self) -> Result<(MutexGuard<'_, ()>, MutexGuard<'_, LogState<F>>)> {
        let skips_drain = self.inner.config.twins().bulk_skips_drain;
        loop {
            if !skips_drain {
                self.stage_all().await?;
            }
            let steps = self.inner.maintenance.lock().await;
            let log = self.inner.log.lock().await;
            let drained = log.sealed.is_empty() && log.active.as_ref().is_none_or(|a| a.parts == 0);
            if drained || skips_drain {
                self.check_poison()?;
                return Ok((steps, log));
            }
            // A group commit slipped in between the flush and the locks: flush it too.
        }
    }
}

impl<F: Fs, C: Clock> std::fmt::Debug for BulkLoad<'_, F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkLoad")
            .field("source", &self.source)
            .field("acknowledged", &self.state)
            .field("file_rows", &self.file.as_ref().map(|file| file.rows))
            .finish_non_exhaustive()
    }
}

impl<'p, F: Fs, C: Clock> BulkLoad<'p, F, C> {
    /// The source's rows acknowledged so far, this load's commits included.
    pub fn acknowledged(&self) -> SourceState {
        self.state
    }

    /// Writes rows `first_row..first_row + batch.num_rows()` of the source. Rows already
    /// acknowledged are skipped; a batch starting beyond the rows given so far is refused.
    /// Returns the acknowledgement of a file this batch completed and committed, if any.
    pub async fn write(&mut self, first_row: u64, batch: RecordBatch) -> Result<Option<Ack>> {
        let p = self.pipeline;
        p.check_poison()?;
        if self.state.complete {
            // Every row of a complete source is acknowledged, as in a group commit.
            return Ok(None);
        }
        let (user, batch) = super::ingest::validate(&self.source, batch)?;
        if first_row + batch.num_rows() as u64 <= self.next_row() {
            return Ok(None);
        }
        p.fix_schema(&self.source, &user)?;
        if self.file.is_none() {
            self.open_file().await?;
            if self.state.complete {
                self.file = None;
                return Ok(None);
            }
        }
        let next = self.next_row();
        if first_row > next {
            self.drop_empty_file();
            return Err(Error::SourceGap {
                source_id: self.source.clone(),
                acknowledged: next,
                first_row,
            });
        }
        let skip = (next - first_row).min(batch.num_rows() as u64) as usize;
        let batch = batch.slice(skip, batch.num_rows() - skip);
        if batch.num_rows() == 0 {
            self.drop_empty_file();
            return Ok(None);
        }
        let written = self.write_rows(batch).await;
        if let Err(e) = &written {
            // A failed write leaves the file's fate to recovery, as a failed stage step does.
            p.poison(e);
        }
        written
    }

    /// Releases an open file no row was written to (and its locks).
    fn drop_empty_file(&mut self) {
        if self.file.as_ref().is_some_and(|f| f.rows == 0) {
            self.file = None;
        }
    }

    /// Appends `batch` (rows from the next one on) to the open file, committing it once full.
    async fn write_rows(&mut self, batch: RecordBatch) -> Result<Option<Ack>> {
        let p = self.pipeline;
        let file = self.file.as_mut().expect("opened by the caller");
        let rows = batch.num_rows() as u64;
        p.reserve_seq(&mut file.log, rows).await?;
        let seq_start = file.log.next_seq;
        file.log.next_seq += rows;
        // Every number stamped is below the durable reservation (as in a group commit).
        assert!(file.log.next_seq <= file.log.seq_reserved);
        assert_eq!(
            seq_start, file.seq.end,
            "a bulk file's numbers are contiguous"
        );
        file.seq.end = file.log.next_seq;
        let stored = match file.install.schema() {
            Some(schema) => schema.clone(),
            None => table::stored_schema(&batch.schema()),
        };
        file.install
            .write(&table::with_seq(&batch, seq_start, &stored)?)
            .await?;
        file.rows += rows;
        file.bytes += batch.get_array_memory_size() as u64;
        if file.bytes >= p.inner.config.segment_bytes {
            return self.commit_file(false).await.map(Some);
        }
        Ok(None)
    }

    /// Commits what was written since the last commit, with the source complete when `last`;
    /// returns the acknowledgement of the rows it made durable.
    pub async fn commit(mut self, last: bool) -> Result<Ack> {
        self.pipeline.check_poison()?;
        if self.file.is_some() {
            return self.commit_file(last).await;
        }
        let mut ack = Ack {
            source: self.source.clone(),
            rows_written: 0,
            rows_already_acknowledged: 0,
            seq: None,
            source_complete: self.state.complete,
        };
        if last && !self.state.complete {
            // The source's end with no new rows (an empty input, or a crash after its last
            // file): a commit that only completes it.
            let (_steps, mut log) = self.pipeline.bulk_locks().await?;
            let state = self.publish_bulk(None, last).await?;
            tally_sim::probe!("bulk.completed");
            log.ledger.insert(self.source.clone(), state);
            ack.source_complete = true;
        }
        Ok(ack)
    }

    fn next_row(&self) -> u64 {
        self.state.rows + self.file.as_ref().map_or(0, |f| f.rows)
    }

    /// Opens the next file with its locks, and reads the source's ledger again under them:
    /// another caller may have acknowledged rows of the source since this load read it.
    async fn open_file(&mut self) -> Result<()> {
        let p = self.pipeline;
        let (steps, log) = p.bulk_locks().await?;
        let state = log.ledger.get(&self.source).copied().unwrap_or_default();
        if !state.accepts(self.fingerprint) {
            return Err(source_changed(&self.source, state, self.fingerprint));
        }
        self.state = state;
        let id = p.inner.next_file_id.fetch_add(1, Ordering::Relaxed);
        let name = crate::layout::table_file_name(0, id);
        let mut install = Install::new(
            &p.inner.world.fs,
            p.inner.layout.data_dir(),
            &name,
            &p.inner.config.table,
        );
        if p.inner.config.twins().bulk_file_unsynced {
            install = install.without_sync();
        }
        let seq = log.next_seq..log.next_seq;
        self.file = Some(OpenFile {
            _steps: steps,
            log,
            install,
            id,
            first_row: state.rows,
            rows: 0,
            bytes: 0,
            seq,
        });
        Ok(())
    }

    /// Installs the open file and commits it with the ledger advanced; the locks are released
    /// once the commit is durable and the ledger in memory agrees with it.
    async fn commit_file(&mut self, last: bool) -> Result<Ack> {
        let p = self.pipeline;
        let mut file = self.file.take().expect("a file is open");
        let (expected, source) = (file.rows, &self.source);
        let conserved = |written: &table::Written| {
            written.holds_rows(expected, || format!("bulk load of {source:?}"))
        };
        let metadata = table::file_metadata(file.id, 0);
        let written = match file.install.finish(&metadata, conserved).await {
            Ok(written) => written,
            Err(e) => {
                p.poison(&e);
                return Err(e);
            }
        };
        p.count_written(&written);
        let entry = written.entry(file.id, 0);
        debug_assert_eq!(entry.seq_min..entry.seq_max + 1, file.seq);
        let state = self
            .publish_bulk(Some((&entry, file.first_row)), last)
            .await?;
        tally_sim::probe!("bulk.committed");
        file.log.ledger.insert(self.source.clone(), state);
        p.inner.stats.lock().expect("stats lock").bulk_files += 1;
        Ok(Ack {
            source: self.source.clone(),
            rows_written: entry.rows,
            rows_already_acknowledged: 0,
            seq: Some(file.seq.clone()),
            source_complete: state.complete,
        })
    }

    /// The commit of a bulk file (if any) and the source's ledger advanced by its rows.
    async fn publish_bulk(
        &mut self,
        file: Option<(&FileEntry, u64)>,
        last: bool,
    ) -> Result<SourceState> {
        let (source, fingerprint) = (self.source.clone(), self.fingerprint);
        let schema = self.pipeline.schema();
        let mut published = SourceState::default();
        self.pipeline
            .publish(|m| {
                published = add_bulk(m, &source, fingerprint, file, last)?;
                if m.schema.is_none() {
                    m.schema = schema.as_deref().cloned();
                }
                Ok(())
            })
            .await?;
        self.state = published;
        Ok(published)
    }
}

/// The manifest edit of a bulk commit; returns the source's state it publishes. Fails
/// (nothing is published) if the rows do not continue the source's published rows.
fn add_bulk(
    m: &mut Manifest,
    source: &str,
    fingerprint: Option<Fingerprint>,
    file: Option<(&FileEntry, u64)>,
    last: bool,
) -> Result<SourceState> {
    let published = m.sources.get(source).map_or(0, |s| s.rows);
    let rows = file.map_or((published, 0), |(entry, first)| (first, entry.rows));
    m.continue_source(source, rows, fingerprint, last)
        .map_err(|refused| Error::Conservation {
            detail: format!("bulk {refused}"),
        })?;
    if let Some((entry, _)) = file {
        m.add_new_file(entry.clone());
    }
    Ok(m.sources[source])
}
