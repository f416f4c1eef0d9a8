//! Readers: the published rows of a snapshot, and the staged rows of live log segments.

use arrow::array::RecordBatch;
use tally_sim::Fs;

use crate::error::{Error, Result};
use crate::layout::{self, Layout, SegmentFile};
use crate::log;
use crate::manifest::FileEntry;
use crate::pipeline::with_seq;
use crate::table::{self, TableReader};

/// Streams every row of `files` (in the order given; a manifest lists them by sequence number)
/// to `each`, batch by batch, with the sequence column.
pub async fn published_rows<F: Fs>(
    fs: &F,
    layout: &Layout,
    files: &[FileEntry],
    batch_rows: usize,
    mut each: impl FnMut(&FileEntry, RecordBatch) -> Result<()>,
) -> Result<()> {
    for file in files {
        let path = layout.table_file(file.level, file.id);
        let mut reader = TableReader::open(fs, &path, batch_rows).await?;
        while let Some(batch) = reader.next().await? {
            each(file, batch)?;
        }
    }
    Ok(())
}

/// Streams the rows of every log segment numbered above `log_through` (the staged but not
/// yet published rows), with the sequence column. Reads only each segment's valid prefix.
pub async fn staged_rows<F: Fs>(
    fs: &F,
    layout: &Layout,
    log_through: u64,
    mut each: impl FnMut(&log::PartMeta, RecordBatch) -> Result<()>,
) -> Result<()> {
    for entry in fs.list_dir(&layout.log_dir()).await? {
        let Some(SegmentFile::Log(number)) = layout::parse_segment_name(&entry.name) else {
            continue;
        };
        if number <= log_through {
            continue;
        }
        let path = layout.segment_log(number);
        let bytes = fs.read(&path).await?;
        let scan = log::scan_log(&bytes, number);
        for part in scan.items.iter().filter(|p| p.meta.rows > 0) {
            let batch = log::decode_batch(&bytes[part.ipc.clone()])
                .map_err(|e| Error::corrupt(&path, e.to_string()))?;
            let stored = table::stored_schema(&batch.schema());
            each(&part.meta, with_seq(&batch, part.meta.seq_start, &stored)?)?;
        }
    }
    Ok(())
}
