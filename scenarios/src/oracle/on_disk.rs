//! Reading every row a recovered store holds — published, then staged — with the rows of each
//! table file decoded once per run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tally_pipeline::{FileEntry, Layout, Pipeline, read};
use tally_sim::{Fs, SimClock};

use super::expect::Expectation;
use super::invariant::{Breach, Invariant};
use crate::workload::{RowRead, extra_of, payload_of, rows_of, value_of};

/// The rows of table files already decoded in this run, by content: a published file never
/// changes once renamed into place, so the crash images of a run hold the same files over and
/// over. Identical bytes decode to identical rows, so a hit is exactly what decoding would give.
#[derive(Default)]
pub struct RowCache {
    files: Mutex<BTreeMap<FileKey, Decoded>>,
    /// The external Delta reader's commits and files, likewise.
    pub(super) delta: super::delta::DeltaCache,
}

/// A file's content hash and length, and the workload's payload bound and extra columns (the
/// altered rows are judged against them).
type FileKey = (u128, usize, u32, u32);
/// A file's rows, or `None` if its columns are not the workload's.
type Decoded = Arc<Option<DecodedFile>>;

/// A decoded table file: its rows, and the keys of those whose columns differ from what the
/// workload ingests under their key (judged once: neither the rows nor the workload change).
struct DecodedFile {
    rows: Vec<RowRead>,
    altered: Vec<String>,
}

impl RowCache {
    fn get(&self, key: FileKey) -> Option<Decoded> {
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned()
    }

    fn put(&self, key: FileKey, rows: Option<DecodedFile>) -> Decoded {
        let rows = Arc::new(rows);
        let earlier = self
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, rows.clone());
        // A run's checks run one after another, and each looks a file up before decoding it.
        debug_assert!(earlier.is_none(), "a table file decoded twice in one run");
        rows
    }
}

/// Every row on disk (published rows first), how many are staged, and the keys of rows whose
/// columns differ from what the workload ingested under their key.
pub(super) struct OnDisk {
    pub rows: Vec<RowRead>,
    pub staged: u64,
    pub altered: Vec<String>,
}

impl OnDisk {
    /// The published rows: all but the staged ones at the end.
    pub fn published(&self) -> &[RowRead] {
        &self.rows[..self.rows.len() - self.staged as usize]
    }
}

/// Reads every row of the store `pipeline` has open. A file or segment that cannot be read
/// breaks `store-consistent`; a batch without the workload's columns, `nothing-invented`.
pub(super) async fn read_rows<F: Fs>(
    fs: &F,
    root: &Path,
    pipeline: &Pipeline<F, SimClock>,
    expect: &Expectation,
    cache: &RowCache,
) -> Result<OnDisk, Breach> {
    let layout = Layout::new(root);
    let manifest = pipeline.manifest().await;
    let mut rows = Vec::new();
    let mut altered = Vec::new();
    let mut bad_files = false;
    for file in &manifest.files {
        match decoded(fs, &layout, file, expect, cache).await?.as_ref() {
            Some(file) => {
                rows.extend(file.rows.iter().cloned());
                altered.extend(file.altered.iter().cloned());
            }
            None => bad_files = true,
        }
    }
    let published = rows.len();
    let bad_columns = read_staged(fs, &layout, manifest.log_through, &mut rows).await?;
    altered.extend(altered_keys(&rows[published..], expect));
    if bad_columns || bad_files {
        return Err(Breach::new(
            Invariant::NothingInvented,
            vec![],
            "a batch without the workload's columns",
        ));
    }
    Ok(OnDisk {
        staged: (rows.len() - published) as u64,
        rows,
        altered,
    })
}

/// The rows of published `file`: from `cache` when a file of the same bytes was decoded
/// before in this run, otherwise decoded and cached.
async fn decoded<F: Fs>(
    fs: &F,
    layout: &Layout,
    file: &FileEntry,
    expect: &Expectation,
    cache: &RowCache,
) -> Result<Decoded, Breach> {
    let path = layout.table_file(file.level, file.id);
    let bytes = fs
        .read(&path)
        .await
        .map_err(|e| unreadable("published")(e.into()))?;
    let key = (
        twox_hash::XxHash3_128::oneshot(&bytes),
        bytes.len(),
        expect.payload_bytes,
        expect.extra_columns,
    );
    if let Some(hit) = cache.get(key) {
        return Ok(hit);
    }
    let mut decoded = Some(Vec::new());
    read::published_rows(fs, layout, std::slice::from_ref(file), 256, |_, b| {
        match (rows_of(&b), decoded.as_mut()) {
            (Some(read), Some(all)) => all.extend(read),
            _ => decoded = None,
        }
        Ok(())
    })
    .await
    .map_err(unreadable("published"))?;
    Ok(cache.put(
        key,
        decoded.map(|rows| DecodedFile {
            altered: altered_keys(&rows, expect),
            rows,
        }),
    ))
}

/// Appends the rows staged in log segments after `log_through` to `rows`; true when a batch
/// lacks the workload's columns.
async fn read_staged<F: Fs>(
    fs: &F,
    layout: &Layout,
    log_through: u64,
    rows: &mut Vec<RowRead>,
) -> Result<bool, Breach> {
    let mut bad_columns = false;
    read::staged_rows(fs, layout, log_through, |_, b| {
        match rows_of(&b) {
            Some(read) => rows.extend(read),
            None => bad_columns = true,
        }
        Ok(())
    })
    .await
    .map_err(unreadable("staged"))?;
    Ok(bad_columns)
}

/// The breach of a read that failed: the store does not hold what its manifest says.
fn unreadable(what: &'static str) -> impl Fn(tally_pipeline::Error) -> Breach {
    move |e| {
        Breach::new(
            Invariant::StoreConsistent,
            vec![],
            format!("reading {what} rows: {e}"),
        )
    }
}

/// The keys of `rows` whose columns differ from what the workload ingests under their key.
pub(super) fn altered_keys(rows: &[RowRead], expect: &Expectation) -> Vec<String> {
    rows.iter()
        .filter(|row| {
            row.value != value_of(&row.key)
                || row.payload != payload_of(&row.key, expect.payload_bytes)
                || row.extra.len() != expect.extra_columns as usize
                || (0..expect.extra_columns).any(|i| row.extra[i as usize] != extra_of(&row.key, i))
        })
        .map(|row| row.key.clone())
        .collect()
}
