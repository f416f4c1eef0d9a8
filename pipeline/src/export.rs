//! Incremental export (protocol "Export"): ships the published rows added since a durable
//! watermark into an export directory, one Parquet batch per export.
//!
//! Published rows form a prefix of the sequence order (segments are staged in order and their
//! numbers increase in log order), so one number says what was shipped: the watermark `W`,
//! every published row below it is in a committed batch. A batch is named by the first sequence
//! number it may hold (`batch-<W>.parquet`), so a retried export writes the same name again and
//! a crash before the watermark moves leaves nothing a reader counts. The watermark moves only
//! after the batch and its name are durable.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tally_sim::{Clock, DirEntry, Fs};

use crate::error::{Error, Result};
use crate::install::Install;
use crate::layout;
use crate::manifest::{FileEntry, Manifest};
use crate::pipeline::Pipeline;
use crate::seqalloc;
use crate::table::{self, SEQ_COLUMN, TableReader, Written};

/// The watermark file of an export directory.
pub const WATERMARK: &str = "WATERMARK";
/// Footer keys of a batch: the sequence range it covers, `[start, end)`.
pub const KEY_EXPORT_START: &str = "tally.export.start";
pub const KEY_EXPORT_END: &str = "tally.export.end";

/// The file name of the batch whose rows start at sequence number `start`.
pub fn batch_name(start: u64) -> String {
    format!("batch-{start:020}.parquet")
}

/// The start of a batch file's name, if it is one.
pub fn parse_batch_name(name: &str) -> Option<u64> {
    name.strip_prefix("batch-")?
        .strip_suffix(".parquet")?
        .parse()
        .ok()
}

/// What one export did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// The table version exported from.
    pub manifest_version: u64,
    pub watermark_before: u64,
    pub watermark_after: u64,
    pub rows: u64,
    /// The batch written, if there were new rows.
    pub batch: Option<String>,
    /// Published files read, and skipped without a read because every row of theirs is below
    /// the watermark (already shipped): their `tally_seq` range, recorded in the commit that
    /// added them, says so.
    pub files_read: usize,
    pub files_skipped: usize,
    /// Leftovers of an interrupted export removed first (batches at or above the watermark,
    /// temp files).
    pub leftovers_removed: Vec<String>,
}

impl std::fmt::Display for ExportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.batch {
            Some(batch) => write!(
                f,
                "exported {} rows (sequence {}..{}) from version {} into {batch}; read {} files, skipped {} below the watermark",
                self.rows,
                self.watermark_before,
                self.watermark_after,
                self.manifest_version,
                self.files_read,
                self.files_skipped
            )?,
            None => write!(
                f,
                "nothing new to export (watermark {}, version {})",
                self.watermark_before, self.manifest_version
            )?,
        }
        if !self.leftovers_removed.is_empty() {
            write!(
                f,
                "; removed {} leftovers of an interrupted export: {}",
                self.leftovers_removed.len(),
                self.leftovers_removed.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Reads the watermark of export directory `dir`: 0 when there is none yet. A damaged
/// watermark is an error: guessing would ship rows twice or not at all.
pub async fn read_watermark<F: Fs>(fs: &F, dir: &Path) -> Result<u64> {
    let path = dir.join(WATERMARK);
    match crate::fsutil::read_if_exists(fs, &path).await? {
        None => Ok(0),
        Some(bytes) => seqalloc::decode(&bytes).map_err(|why| {
            Error::corrupt(
                &path,
                format!(
                    "the export watermark is unreadable ({why}); move the export directory aside and export again from the start"
                ),
            )
        }),
    }
}

/// The committed batches of export directory `dir`, by start: those below the watermark.
/// What a consumer of the export reads.
pub async fn committed_batches<F: Fs>(fs: &F, dir: &Path) -> Result<(u64, Vec<PathBuf>)> {
    let watermark = read_watermark(fs, dir).await?;
    let mut starts: Vec<u64> = fs
        .list_dir(dir)
        .await?
        .iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| parse_batch_name(&e.name))
        .filter(|&start| start < watermark)
        .collect();
    starts.sort_unstable();
    Ok((
        watermark,
        starts
            .into_iter()
            .map(|s| dir.join(batch_name(s)))
            .collect(),
    ))
}

/// Exports every published row at or above the watermark of `dir` (created if missing) into
/// one new batch, then advances the watermark. Stage and merge steps wait while it reads, so
/// the files of the snapshot it exports stay on disk.
pub async fn export<F: Fs, C: Clock>(
    pipeline: &Pipeline<F, C>,
    dir: &Path,
) -> Result<ExportReport> {
    pipeline.check_running()?;
    let _steps = pipeline.hold_steps().await;
    let fs = &pipeline.world().fs;
    let twins = pipeline.config().twins();
    // Step 1.
    let missing = crate::commit::missing_dirs(fs, dir).await?;
    if !missing.is_empty() {
        fs.create_dir_all(dir).await?;
        crate::commit::sync_new_dirs(fs, &missing).await?;
    }
    let watermark = read_watermark(fs, dir).await?;
    let mut report = ExportReport {
        watermark_before: watermark,
        watermark_after: watermark,
        ..ExportReport::default()
    };
    // Step 2.
    let ordinal_ids = twins.export_ordinal_batch_ids;
    let entries = remove_leftovers(fs, dir, watermark, ordinal_ids, &mut report).await?;
    // Step 3.
    let manifest = pipeline.manifest().await;
    report.manifest_version = manifest.version;
    let Some(high) = manifest.files.iter().map(|f| f.seq_max + 1).max() else {
        return Ok(report);
    };
    if high <= watermark {
        return Ok(report);
    }
    let name = if ordinal_ids {
        let ordinal = entries
            .iter()
            .filter(|e| parse_batch_name(&e.name).is_some())
            .count();
        batch_name(ordinal as u64)
    } else {
        batch_name(watermark)
    };
    if twins.export_watermark_before_data {
        crate::commit::replace_file(fs, dir, WATERMARK, &seqalloc::encode(high)).await?;
    }
    // Steps 4 and 5.
    report.files_read = manifest
        .files
        .iter()
        .filter(|f| f.seq_max >= watermark)
        .count();
    report.files_skipped = manifest.files.len() - report.files_read;
    let rows = write_batch(pipeline, &manifest, dir, &name, watermark..high).await?;
    tally_sim::probe!("export.batch-installed");
    if !twins.export_watermark_before_data {
        // Step 6. The batch and its name are durable: only now may the watermark pass its
        // rows.
        crate::commit::replace_file(fs, dir, WATERMARK, &seqalloc::encode(high)).await?;
    }
    report.watermark_after = high;
    report.rows = rows;
    report.batch = Some(name);
    Ok(report)
}

/// Step 2: an interrupted export left a batch at or above the watermark (uncommitted) or a
/// temp file: they are removed, durably, before anything is written. Returns the listing of
/// `dir` taken before.
async fn remove_leftovers<F: Fs>(
    fs: &F,
    dir: &Path,
    watermark: u64,
    ordinal_ids: bool,
    report: &mut ExportReport,
) -> Result<Vec<DirEntry>> {
    let entries = fs.list_dir(dir).await?;
    for entry in entries.iter().filter(|e| !e.is_dir) {
        let uncommitted =
            parse_batch_name(&entry.name).is_some_and(|start| start >= watermark && !ordinal_ids);
        if uncommitted || layout::is_temp(&entry.name) {
            tally_sim::probe!("export.leftover-removed");
            fs.unlink(&dir.join(&entry.name)).await?;
            report.leftovers_removed.push(entry.name.clone());
        }
    }
    if !report.leftovers_removed.is_empty() {
        fs.sync_dir(dir).await?;
    }
    Ok(entries)
}

/// Steps 4 and 5: every published row numbered in `range` (`W..H`) into batch `dir/name`,
/// installed once the counts hold. Returns the rows written.
async fn write_batch<F: Fs, C: Clock>(
    pipeline: &Pipeline<F, C>,
    manifest: &Manifest,
    dir: &Path,
    name: &str,
    range: Range<u64>,
) -> Result<u64> {
    let (watermark, high) = (range.start, range.end);
    let fs = &pipeline.world().fs;
    let mut batch = Install::new(fs, dir.to_path_buf(), name, &pipeline.config().table);
    let mut expected = 0u64;
    for file in manifest.files.iter().filter(|f| f.seq_max >= watermark) {
        let rows = copy_from(pipeline, &mut batch, file, watermark).await?;
        if file.seq_min >= watermark && rows != file.rows {
            let detail = format!(
                "export: {} holds {rows} rows, the log says {}",
                layout::table_file_name(file.level, file.id),
                file.rows
            );
            return Err(batch.abandon(Error::Conservation { detail }).await);
        }
        expected += rows;
    }
    if batch.is_empty() {
        return Err(Error::Conservation {
            detail: format!("export: no published rows at or above {watermark} below {high}"),
        });
    }
    let metadata = [
        (KEY_EXPORT_START, watermark.to_string()),
        (KEY_EXPORT_END, high.to_string()),
    ];
    let conserved = |written: &Written| {
        if written.rows == expected && written.seq_min >= watermark && written.seq_max < high {
            return Ok(());
        }
        Err(Error::Conservation {
            detail: format!(
                "export: {expected} rows read, {} written, sequence {}..={} outside {watermark}..{high}",
                written.rows, written.seq_min, written.seq_max
            ),
        })
    };
    Ok(batch.finish(&metadata, conserved).await?.rows)
}

/// Appends the rows of `file` numbered from `watermark` on to `batch`. Rows of a file wholly
/// above the watermark all go out; a file straddling it (a merge joined shipped and new rows)
/// contributes its rows from the watermark on. Returns the rows appended.
async fn copy_from<F: Fs, C: Clock>(
    pipeline: &Pipeline<F, C>,
    batch: &mut Install<'_, F>,
    file: &FileEntry,
    watermark: u64,
) -> Result<u64> {
    let fs = &pipeline.world().fs;
    let path = pipeline.layout().table_file(file.level, file.id);
    // Nothing of a damaged file leaves the store.
    let batch_rows = pipeline.config().read_batch_rows;
    let mut reader = TableReader::open_published(fs, &path, file, batch_rows).await?;
    let mut rows = 0u64;
    while let Some(rows_read) = reader.next().await? {
        let seqs = crate::table::seq_column(&rows_read)
            .ok_or_else(|| Error::corrupt(&path, format!("no {SEQ_COLUMN} column")))?;
        let from = seqs.values().partition_point(|&s| (s as u64) < watermark);
        let rest = rows_read.slice(from, rows_read.num_rows() - from);
        rows += rest.num_rows() as u64;
        if rest.num_rows() == 0 {
            continue;
        }
        batch.write(&rest).await?;
    }
    Ok(rows)
}

/// Streams the rows of every committed batch of `dir` to `each`, in sequence order.
pub async fn read_committed<F: Fs>(
    fs: &F,
    dir: &Path,
    batch_rows: usize,
    mut each: impl FnMut(&Path, arrow::array::RecordBatch) -> Result<()>,
) -> Result<u64> {
    let (watermark, batches) = committed_batches(fs, dir).await?;
    for path in &batches {
        let mut reader = TableReader::open(fs, path, batch_rows).await?;
        while let Some(batch) = reader.next().await? {
            table::seq_bounds(&batch)?;
            each(path, batch)?;
        }
    }
    Ok(watermark)
}
