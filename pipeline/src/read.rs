//! Readers: the published rows of a snapshot, and the staged rows of live log segments.

use arrow::array::RecordBatch;
use tally_sim::Fs;

use crate::damage::DamagedManifest;
use crate::error::{Error, Result};
use crate::layout::{self, Layout, SegmentFile};
use crate::log;
use crate::manifest::{FileEntry, Manifest};
use crate::table::{self, TableReader, with_seq};

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

/// The state after the newest readable commit of the Delta log, read without changing
/// anything, and the commits that cannot be read (newest first; then the state is the last
/// good version's).
pub async fn newest_valid_manifest<F: Fs>(
    fs: &F,
    layout: &Layout,
) -> Result<(Manifest, Vec<DamagedManifest>)> {
    let replayed = crate::delta::replay(fs, layout).await?;
    Ok((replayed.table, replayed.damaged))
}

/// The state after the newest readable commit, read without changing anything.
pub async fn newest_manifest<F: Fs>(fs: &F, layout: &Layout) -> Result<Manifest> {
    Ok(newest_valid_manifest(fs, layout).await?.0)
}

/// What a second, read-only handle sees of a store another handle (or process) is writing:
/// the newest version, once every file it lists was found whole (footer agreeing with the
/// log). A writer deletes a file only after a commit removed it (and its retention passed),
/// so a file missing from the version read means the store moved on: the handle reads again,
/// up to `attempts` times. A file missing while the version stays put is lost rows, and an
/// error.
pub async fn consistent_snapshot<F: Fs>(
    fs: &F,
    layout: &Layout,
    attempts: u32,
) -> Result<Manifest> {
    let mut attempt = 0;
    loop {
        let manifest = newest_manifest(fs, layout).await?;
        let (mut missing, mut found) = (Vec::new(), 0);
        for file in &manifest.files {
            let path = layout.table_file(file.level, file.id);
            let why = match table::read_footer(fs, &path).await {
                Ok(footer) => footer.disagreement(file),
                Err(e) => Some(e.to_string()),
            };
            match why {
                None => found += file.rows,
                Some(why) => missing.push(format!(
                    "{}: {why}",
                    layout::table_file_name(file.level, file.id)
                )),
            }
        }
        if missing.is_empty() {
            return Ok(manifest);
        }
        let now = newest_manifest(fs, layout).await?;
        attempt += 1;
        if now.version == manifest.version || attempt >= attempts {
            return Err(Error::MissingRows {
                acknowledged: manifest.rows(),
                found,
                detail: format!(
                    "a reader of version {} (newest now {}) found {}",
                    manifest.version,
                    now.version,
                    missing.join("; ")
                ),
            });
        }
    }
}
