//! Stage (protocol "Stage"): the oldest sealed segment becomes one level-0 table file, a
//! manifest publishes it with the segment's ledger records, and the segment is removed. A
//! segment this process wrote was encoded from memory as it filled (`prestage.rs`); one left by
//! an earlier run is read back from the log.

use std::sync::atomic::Ordering;

use tally_sim::{Clock, Fs};

use super::Pipeline;
use crate::error::{Error, Result};
use crate::install::{self, Install};
use crate::log::{self, LogScan, PartMeta};
use crate::manifest::{FileEntry, Manifest};
use crate::table;

impl<F: Fs, C: Clock> Pipeline<F, C> {
    /// Stage step for the oldest sealed segment. Returns whether there was one.
    pub(super) async fn stage_next(&self) -> Result<bool> {
        let Some(number) = self.inner.log.lock().await.sealed.first().copied() else {
            return Ok(false);
        };
        let (entry, parts) = match self.take_prestaged(number).await? {
            Some(file) => self.install_prestaged(number, file).await?,
            None => self.stage_from_log(number).await?,
        };
        self.publish_staged(number, entry, &parts).await?;
        // The manifest is durable: the segment is garbage now.
        let layout = &self.inner.layout;
        let segment = [layout.segment_ack(number), layout.segment_log(number)];
        install::remove_superseded(&self.inner.world.fs, &layout.log_dir(), &segment).await?;
        self.inner.log.lock().await.sealed.remove(&number);
        self.inner.stats.lock().expect("stats lock").segments_staged += 1;
        Ok(true)
    }

    /// Steps 1 to 3 for a segment this process did not write (left by an earlier run): its
    /// rows read back from the log.
    async fn stage_from_log(&self, number: u64) -> Result<(Option<FileEntry>, Vec<PartMeta>)> {
        let (bytes, scan) = self.read_sealed(number).await?;
        let rows: u64 = scan.items.iter().map(|p| p.meta.rows).sum();
        // Step 2: a segment of empty parts (completions only) adds no file.
        let entry = if rows > 0 {
            Some(self.write_level0(number, &bytes, &scan, rows).await?)
        } else {
            None
        };
        self.inner
            .stats
            .lock()
            .expect("stats lock")
            .segments_staged_from_log += 1;
        Ok((entry, scan.items.into_iter().map(|p| p.meta).collect()))
    }

    /// Step 1: the sealed segment's bytes and frames; it must scan whole, since nothing may
    /// have changed it since it was sealed.
    async fn read_sealed(&self, number: u64) -> Result<(Vec<u8>, LogScan)> {
        let log_path = self.inner.layout.segment_log(number);
        let bytes = self.inner.world.fs.read(&log_path).await?;
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
        Ok((bytes, scan))
    }

    /// Step 3: the segment's `rows` (more than 0) as a new level-0 file, installed.
    async fn write_level0(
        &self,
        number: u64,
        bytes: &[u8],
        scan: &LogScan,
        rows: u64,
    ) -> Result<FileEntry> {
        let layout = &self.inner.layout;
        let log_path = layout.segment_log(number);
        let id = self.inner.next_file_id.fetch_add(1, Ordering::Relaxed);
        let name = crate::layout::table_file_name(0, id);
        let fs = &self.inner.world.fs;
        let mut file = Install::new(fs, layout.data_dir(), &name, &self.inner.config.table);
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
            let stored = match file.schema() {
                Some(schema) => schema.clone(),
                None => table::stored_schema(&batch.schema()),
            };
            file.write(&table::with_seq(&batch, part.meta.seq_start, &stored)?)
                .await?;
        }
        let conserved = |written: &table::Written| {
            written.holds_rows(rows, || format!("staging segment {number}"))
        };
        let written = file.finish(&table::file_metadata(id, 0), conserved).await?;
        self.count_written(&written);
        Ok(written.entry(id, 0))
    }

    /// Step 4: a manifest that adds the file (if any), the segment's ledger records, and
    /// `log_through = number`.
    async fn publish_staged(
        &self,
        number: u64,
        entry: Option<FileEntry>,
        parts: &[PartMeta],
    ) -> Result<()> {
        let schema = self.schema();
        self.publish(|m| {
            add_staged(m, number, entry.as_ref(), parts)?;
            if m.schema.is_none() {
                m.schema = schema.as_deref().cloned();
            }
            Ok(())
        })
        .await?;
        Ok(())
    }
}

/// The manifest edit of a stage step. Fails (nothing is published) if the segment was staged
/// already or its parts do not continue the published rows of their sources.
fn add_staged(
    m: &mut Manifest,
    number: u64,
    entry: Option<&FileEntry>,
    parts: &[PartMeta],
) -> Result<()> {
    if m.log_through >= number {
        return Err(Error::Conservation {
            detail: format!(
                "segment {number} staged twice (manifest covers segments through {})",
                m.log_through
            ),
        });
    }
    for part in parts {
        let rows = (part.first_row, part.rows);
        m.continue_source(&part.source, rows, part.fingerprint, part.last)
            .map_err(|refused| Error::Conservation {
                detail: format!("staged part of {refused}"),
            })?;
    }
    if let Some(entry) = entry {
        m.add_new_file(entry.clone());
    }
    m.log_through = number;
    Ok(())
}
