//! Staging from memory (protocol "Stage", "From memory"): the parts a group commit made durable
//! are queued with their batches, and encoded into their segment's level-0 file while later
//! groups are still arriving, so that staging a sealed segment neither reads the log back nor
//! encodes it all after its last acknowledgement.
//!
//! The queue holds only acknowledged parts, in log order, each segment's parts followed by its
//! seal: a segment's file is complete exactly when its seal has been taken from the queue. A
//! segment this process did not write (left by an earlier run) has no file here, and is staged
//! from the log.
//!
//! A file whose encoding failed, or was cancelled half way (its drainer's future dropped), is
//! marked broken before every write and unmarked after: a broken file is dropped at staging
//! time and its segment staged from the log, which is still the durable copy of its rows. At
//! its seal a file's last rows are encoded and drained, so a sealed file waiting to be staged
//! holds no rows in memory.
//!
//! A process that stops without a flush leaves its files' temps behind; the next open removes
//! them (reported as temp files removed) and stages the segments from their logs.
//!
//! The file is written under the temp name of an id taken when its first part arrived, and
//! installed under that id — or under a new one if a merge published a file with a higher id
//! meanwhile: the ids a table adds only grow.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use arrow::array::RecordBatch;
use tally_sim::{Clock, Fs};

use super::Pipeline;
use crate::error::Result;
use crate::install::Install;
use crate::layout;
use crate::log::PartMeta;
use crate::manifest::FileEntry;
use crate::table::{self, TableWriter};

/// What group commits hand to staging, in log order.
pub(super) enum Queued {
    /// An acknowledged part of `segment`, with its rows (none for an empty part).
    Part {
        segment: u64,
        meta: PartMeta,
        batch: Option<RecordBatch>,
    },
    /// `segment` was sealed holding `parts` parts.
    Sealed { segment: u64, parts: u64 },
}

/// The queue, behind a plain mutex never held across an await.
#[derive(Default)]
pub(super) struct Queue {
    items: VecDeque<Queued>,
    /// In-memory size of the queued batches: past the segment size, callers encode them.
    bytes: u64,
}

impl Queue {
    pub(super) fn push(&mut self, item: Queued) {
        if let Queued::Part {
            batch: Some(batch), ..
        } = &item
        {
            self.bytes += batch.get_array_memory_size() as u64;
        }
        self.items.push_back(item);
    }

    fn pop(&mut self) -> Option<Queued> {
        let item = self.items.pop_front()?;
        if let Queued::Part {
            batch: Some(batch), ..
        } = &item
        {
            self.bytes -= batch.get_array_memory_size() as u64;
        }
        Some(item)
    }

    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// A segment's level-0 file being encoded from its acknowledged parts.
pub(super) struct SegmentFile<F: Fs> {
    /// The id whose temp name the file is written under.
    id: u64,
    temp: PathBuf,
    /// Created by the first part with rows.
    writer: Option<TableWriter<F>>,
    parts: Vec<PartMeta>,
    rows: u64,
    sealed: bool,
    /// A write to it failed or was cancelled: its content is unknown, and it is never installed.
    broken: bool,
}

/// Every segment file being encoded, by segment number (the active one, and sealed ones not
/// staged yet).
pub(super) type Prestaged<F> = BTreeMap<u64, SegmentFile<F>>;

impl<F: Fs, C: Clock> Pipeline<F, C> {
    /// Queues what a group commit made durable, and wakes the maintenance task to encode it.
    pub(super) fn queue_for_staging(&self, items: impl IntoIterator<Item = Queued>) {
        let mut queue = self
            .inner
            .prestage_queue
            .lock()
            .expect("prestage queue lock");
        for item in items {
            queue.push(item);
        }
        drop(queue);
        self.inner.wake.notify_one();
    }

    /// Encodes every queued part into its segment's file.
    pub(super) async fn encode_queued(&self) -> Result<()> {
        let mut files = self.inner.prestaged.lock().await;
        self.encode_queued_into(&mut files, None).await
    }

    /// Backpressure: a caller finding more than a segment's worth of batches queued encodes
    /// them itself before its own part is queued, so memory stays bounded by the segment size
    /// whether or not a maintenance task runs.
    pub(super) async fn keep_up_with_staging(&self) -> Result<()> {
        let behind = {
            let queue = self
                .inner
                .prestage_queue
                .lock()
                .expect("prestage queue lock");
            queue.bytes() > self.inner.config.segment_bytes
        };
        if behind {
            self.encode_queued().await?;
        }
        Ok(())
    }

    /// Encodes queued parts until the queue is empty, or until the seal of segment `until`.
    /// Refused once the pipeline is poisoned (checked before every item, under the lock: a
    /// drainer that waited for it must not go on over a failure).
    async fn encode_queued_into(&self, files: &mut Prestaged<F>, until: Option<u64>) -> Result<()> {
        loop {
            self.check_poison()?;
            let next = self
                .inner
                .prestage_queue
                .lock()
                .expect("prestage queue lock")
                .pop();
            match next {
                None => return Ok(()),
                Some(Queued::Part {
                    segment,
                    meta,
                    batch,
                }) => self.encode_part(files, segment, meta, batch).await,
                Some(Queued::Sealed { segment, parts }) => {
                    self.seal_file(files, segment, parts).await;
                    if until == Some(segment) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Runs one write to `file`, marking it broken for as long as the write is under way: a
    /// failure, or the future dropped half way, leaves it broken.
    async fn write_to(
        file: &mut SegmentFile<F>,
        write: impl AsyncFnOnce(&mut SegmentFile<F>) -> Result<()>,
    ) {
        if file.broken {
            return;
        }
        file.broken = true;
        match write(file).await {
            Ok(()) => file.broken = false,
            Err(e) => tracing::warn!(
                error = %e,
                temp = %file.temp.display(),
                "encoding a segment's table file from memory failed; the segment will be staged from its log"
            ),
        }
    }

    async fn encode_part(
        &self,
        files: &mut Prestaged<F>,
        segment: u64,
        meta: PartMeta,
        batch: Option<RecordBatch>,
    ) {
        // Parts arrive in log order: never for a segment sealed already, nor before a later one.
        assert!(
            files.last_key_value().is_none_or(|(&last, file)| {
                last < segment || (last == segment && !file.sealed)
            }),
            "a part of segment {segment} queued after segment {:?}",
            files.last_key_value().map(|(n, f)| (n, f.sealed))
        );
        let file = files.entry(segment).or_insert_with(|| {
            let id = self.inner.next_file_id.fetch_add(1, Ordering::Relaxed);
            let name = layout::table_file_name(0, id);
            SegmentFile {
                id,
                temp: layout::temp_path(&self.inner.layout.data_dir().join(name)),
                writer: None,
                parts: Vec::new(),
                rows: 0,
                sealed: false,
                broken: false,
            }
        });
        if let Some(batch) = batch {
            assert_eq!(
                batch.num_rows() as u64,
                meta.rows,
                "a part's batch and its rows"
            );
            let (fs, options) = (&self.inner.world.fs, &self.inner.config.table);
            let seq_start = meta.seq_start;
            Self::write_to(file, async |file: &mut SegmentFile<F>| {
                let stored = match &file.writer {
                    Some(writer) => writer.schema().clone(),
                    None => table::stored_schema(&batch.schema()),
                };
                let rows = table::with_seq(&batch, seq_start, &stored)?;
                TableWriter::write_creating(&mut file.writer, fs, &file.temp, &rows, options)
                    .await?;
                file.rows += rows.num_rows() as u64;
                Ok(())
            })
            .await;
        }
        // Counted even when the file is broken: the seal's part count is checked against it.
        file.parts.push(meta);
    }

    /// Marks `segment`'s file complete (every part the segment holds was queued before its
    /// seal), with its last rows encoded and drained.
    async fn seal_file(&self, files: &mut Prestaged<F>, segment: u64, parts: u64) {
        let Some(file) = files.get_mut(&segment) else {
            // A segment sealed with no part (nothing to stage from memory) is staged from the log.
            assert_eq!(
                parts, 0,
                "segment {segment} sealed, none of its parts queued"
            );
            return;
        };
        assert_eq!(
            file.parts.len() as u64,
            parts,
            "segment {segment} sealed with {parts} parts, {} queued",
            file.parts.len()
        );
        file.sealed = true;
        if file.writer.is_some() {
            Self::write_to(file, async |file: &mut SegmentFile<F>| {
                let writer = file.writer.as_mut().expect("checked above");
                writer.write_pending().await
            })
            .await;
        }
    }

    /// The encoded file of sealed segment `number`, once every queued part is encoded; `None`
    /// if this process did not write the segment.
    pub(super) async fn take_prestaged(&self, number: u64) -> Result<Option<SegmentFile<F>>> {
        let mut files = self.inner.prestaged.lock().await;
        self.encode_queued_into(&mut files, Some(number)).await?;
        // Segments are staged in order: an older one still here was never sealed.
        assert!(
            files
                .first_key_value()
                .is_none_or(|(&first, _)| first >= number),
            "segment {number} staged before segment {:?}",
            files.first_key_value().map(|(n, _)| n)
        );
        let file = match files.remove(&number) {
            Some(file) if file.sealed => file,
            Some(_) => panic!("segment {number} staged before its seal was queued"),
            None => return Ok(None),
        };
        if file.broken {
            // Its temp goes with it; recovery removes one an unlink here leaves behind.
            drop(file.writer);
            let _ = self.inner.world.fs.unlink(&file.temp).await;
            return Ok(None);
        }
        Ok(Some(file))
    }

    /// Step 3 for a segment encoded from memory: its file finished under a new id and
    /// installed. Returns its entry (none when its parts hold no rows) and its parts.
    pub(super) async fn install_prestaged(
        &self,
        number: u64,
        file: SegmentFile<F>,
    ) -> Result<(Option<FileEntry>, Vec<PartMeta>)> {
        let SegmentFile {
            id,
            temp,
            writer,
            parts,
            rows,
            ..
        } = file;
        let logged: u64 = parts.iter().map(|p| p.rows).sum();
        assert_eq!(
            rows, logged,
            "segment {number}: rows encoded and rows logged"
        );
        let Some(writer) = writer else {
            return Ok((None, parts));
        };
        let layout = &self.inner.layout;
        // Under the `maintenance` lock, which every step adding a file holds: the table's next
        // id cannot move until this file is published.
        let next = self.inner.published.lock().await.next_file_id;
        let id = if id >= next {
            id
        } else {
            self.inner.next_file_id.fetch_add(1, Ordering::Relaxed)
        };
        let name = layout::table_file_name(0, id);
        let (fs, options) = (&self.inner.world.fs, &self.inner.config.table);
        let install = Install::adopt(fs, layout.data_dir(), &name, options, temp, writer);
        let conserved = |written: &table::Written| {
            written.holds_rows(logged, || format!("staging segment {number} from memory"))
        };
        let written = install
            .finish(&table::file_metadata(id, 0), conserved)
            .await?;
        self.count_written(&written);
        Ok((Some(written.entry(id, 0)), parts))
    }
}
