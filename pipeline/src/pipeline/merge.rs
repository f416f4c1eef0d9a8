//! Merge (protocol "Merge"): the oldest `merge_fan_in` files of the lowest level that has that
//! many, below the top, become one file a level up.

use std::sync::atomic::Ordering;

use arrow::array::RecordBatch;
use tally_sim::{Clock, Fs};

use super::Pipeline;
use crate::error::{Error, Result};
use crate::install::Install;
use crate::layout;
use crate::manifest::{FileEntry, Manifest};
use crate::table::{self, TableReader, Written};

impl<F: Fs, C: Clock> Pipeline<F, C> {
    /// Merge step. Returns whether a merge was due.
    pub(super) async fn merge_next(&self) -> Result<bool> {
        let manifest = self.inner.published.lock().await.clone();
        let Some((level, inputs)) = self.merge_plan(&manifest) else {
            return Ok(false);
        };
        let output = self.write_merged(level, &inputs).await?;
        self.publish(|m| replace_inputs(m, level, &inputs, &output))
            .await?;
        // The inputs are tombstones now: readers of the versions before may still need them.
        // They are deleted once their retention has passed.
        self.vacuum().await?;
        self.inner.stats.lock().expect("stats lock").merges += 1;
        Ok(true)
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

    /// Steps 1 and 2: the inputs' rows, in sequence order, as one new file a level up,
    /// installed once the conservation checks hold.
    async fn write_merged(&self, level: u32, inputs: &[FileEntry]) -> Result<FileEntry> {
        let layout = &self.inner.layout;
        let id = self.inner.next_file_id.fetch_add(1, Ordering::Relaxed);
        let out_level = level + 1;
        let name = layout::table_file_name(out_level, id);
        let fs = &self.inner.world.fs;
        let mut file = Install::new(fs, layout.data_dir(), &name, &self.inner.config.table);
        let mut rows_in = 0u64;
        for input in inputs {
            let rows = self.copy_input(&mut file, input).await?;
            if rows != input.rows {
                let detail = format!(
                    "merge into level {out_level}: {} holds {rows} rows, the manifest says {}",
                    layout::table_file_name(input.level, input.id),
                    input.rows
                );
                return Err(file.abandon(Error::Conservation { detail }).await);
            }
            rows_in += rows;
        }
        if file.is_empty() {
            return Err(Error::Conservation {
                detail: format!("merge into level {out_level}: the inputs hold no rows"),
            });
        }
        let metadata = table::file_metadata(id, out_level);
        let written = file
            .finish(&metadata, |w| conserved(level, inputs, rows_in, w))
            .await?;
        self.count_written(&written);
        Ok(written.entry(id, out_level))
    }

    /// Appends every row of `input` to `file`, once its bytes are those recorded at commit
    /// (a merged file is kept for good: damage merged into it could never be told apart).
    /// Returns the rows read.
    async fn copy_input(&self, file: &mut Install<'_, F>, input: &FileEntry) -> Result<u64> {
        let path = self.inner.layout.table_file(input.level, input.id);
        let fs = &self.inner.world.fs;
        let batch_rows = self.inner.config.read_batch_rows;
        let mut reader = TableReader::open_published(fs, &path, input, batch_rows).await?;
        let mut rows = 0u64;
        while let Some(batch) = reader.next().await? {
            // Every input's batches are written under the first input's schema (same
            // columns; field metadata may differ).
            let stored = match file.schema() {
                Some(schema) => schema.clone(),
                None => batch.schema(),
            };
            let batch = RecordBatch::try_new(stored, batch.columns().to_vec())
                .map_err(|e| Error::corrupt(&path, e.to_string()))?;
            rows += batch.num_rows() as u64;
            file.write(&batch).await?;
        }
        Ok(rows)
    }
}

/// Step 2's checks on the merged file before it is installed: rows read equal the inputs'
/// manifest rows and rows written; the output's sequence range is the inputs' hull; the
/// inputs' ranges are disjoint.
fn conserved(level: u32, inputs: &[FileEntry], rows_in: u64, written: &Written) -> Result<()> {
    let expected: u64 = inputs.iter().map(|f| f.rows).sum();
    let hull = (
        inputs.iter().map(|f| f.seq_min).min().unwrap_or(0),
        inputs.iter().map(|f| f.seq_max).max().unwrap_or(0),
    );
    let disjoint = inputs.windows(2).all(|w| w[0].seq_max < w[1].seq_min);
    if written.rows == rows_in
        && rows_in == expected
        && (written.seq_min, written.seq_max) == hull
        && disjoint
    {
        return Ok(());
    }
    Err(Error::Conservation {
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
    })
}

/// The manifest edit of a merge (step 3): the inputs, every one still live, are replaced by
/// the output. Runs after the output was installed: a failure leaves it an orphan, which
/// recovery removes.
fn replace_inputs(
    m: &mut Manifest,
    level: u32,
    inputs: &[FileEntry],
    output: &FileEntry,
) -> Result<()> {
    for input in inputs {
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
    m.add_new_file(output.clone());
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
}
