//! Reading the files of a version: each present, exactly the size its `add` gives, a whole
//! Parquet file with a `tally_seq` long column; their values, checked for duplicates.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, Int64Array};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tally_sim::Fs;

use super::DeltaError;
use super::log::{Commit, DeltaLog, io_error};

/// A file's content hash and length.
type Key = (u128, usize);
/// A commit's actions, or why it does not parse.
type Parsed = Arc<Result<Arc<Commit>, String>>;

/// Commits parsed and files decoded earlier in a run, by content: the crash images of a run
/// hold the same commits and table files over and over, and identical bytes parse and decode
/// alike, so a hit is exactly what reading again would give.
#[derive(Default)]
pub struct DeltaCache {
    commits: Mutex<BTreeMap<Key, Parsed>>,
    files: Mutex<BTreeMap<Key, Arc<Result<Decoded, String>>>>,
}

/// What a whole Parquet file holds: its rows' `tally_seq` values, in file order.
struct Decoded {
    seqs: Vec<i64>,
}

fn key(bytes: &[u8]) -> Key {
    (twox_hash::XxHash3_128::oneshot(bytes), bytes.len())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DeltaCache {
    /// The parse of commit `bytes`, from the cache or by `parse`.
    pub(super) fn commit(
        &self,
        bytes: &[u8],
        parse: impl FnOnce() -> Result<Arc<Commit>, String>,
    ) -> Parsed {
        let key = key(bytes);
        if let Some(hit) = lock(&self.commits).get(&key) {
            return hit.clone();
        }
        let parsed = Arc::new(parse());
        lock(&self.commits).insert(key, parsed.clone());
        parsed
    }

    /// The decoded content of the file `bytes`, from the cache or decoded now.
    fn file(&self, bytes: Vec<u8>) -> Arc<Result<Decoded, String>> {
        let key = key(&bytes);
        if let Some(hit) = lock(&self.files).get(&key) {
            return hit.clone();
        }
        let decoded = Arc::new(decode(Bytes::from(bytes)));
        lock(&self.files).insert(key, decoded.clone());
        decoded
    }
}

/// Reads a Parquet file's `tally_seq` column whole.
fn decode(bytes: Bytes) -> Result<Decoded, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| e.to_string())?;
    let rows = builder.metadata().file_metadata().num_rows();
    let schema = builder.parquet_schema();
    let leaf = schema
        .columns()
        .iter()
        .position(|c| c.path().parts() == ["tally_seq"])
        .ok_or("no tally_seq column")?;
    let mask = ProjectionMask::leaves(schema, [leaf]);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| e.to_string())?;
    let mut seqs = Vec::with_capacity(usize::try_from(rows).unwrap_or(0));
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let column = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or("tally_seq is not a long column")?;
        if column.null_count() > 0 {
            return Err("a null tally_seq".into());
        }
        seqs.extend(column.values().iter().copied());
    }
    if seqs.len() as i64 != rows {
        return Err(format!(
            "the footer counts {rows} rows, {} read",
            seqs.len()
        ));
    }
    Ok(Decoded { seqs })
}

/// A version read whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionRead {
    pub version: u64,
    pub files: usize,
    /// Every row's `tally_seq`, in increasing order (no two equal).
    pub seqs: Vec<i64>,
}

/// Reads `version` of the table whose log is `log`: every file of it present, of the size its
/// `add` gives, whole, with the rows its stats count; no `tally_seq` twice.
pub async fn read_version<F: Fs>(
    fs: &F,
    root: &Path,
    log: &DeltaLog,
    version: u64,
    cache: &DeltaCache,
) -> Result<VersionRead, DeltaError> {
    let files = log.files_at(version)?;
    let mut seqs = Vec::new();
    for (path, add) in &files {
        let bad = |why: String| DeltaError::BadFile {
            version,
            path: path.clone(),
            why,
        };
        let full = resolve(root, path).map_err(bad)?;
        let bytes = match fs.read(&full).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DeltaError::MissingFile {
                    version,
                    path: path.clone(),
                });
            }
            Err(e) => return Err(io_error(&full, e)),
        };
        if bytes.len() as u64 != add.size {
            return Err(DeltaError::WrongSize {
                version,
                path: path.clone(),
                size: add.size,
                actual: bytes.len() as u64,
            });
        }
        let decoded = cache.file(bytes);
        let decoded = decoded.as_ref().as_ref().map_err(|why| bad(why.clone()))?;
        if let Some(records) = add.records
            && records != decoded.seqs.len() as u64
        {
            return Err(bad(format!(
                "its stats count {records} records, it holds {}",
                decoded.seqs.len()
            )));
        }
        seqs.extend(decoded.seqs.iter().copied());
    }
    seqs.sort_unstable();
    if let Some(twice) = seqs.windows(2).find(|w| w[0] == w[1]) {
        return Err(DeltaError::DuplicateSeq {
            version,
            seq: twice[0],
        });
    }
    Ok(VersionRead {
        version,
        files: files.len(),
        seqs,
    })
}

/// The file an `add.path` names: a relative URI under the root, percent-decoded. An absolute
/// path or URI is refused (tally writes none, and this reader reads only the root).
fn resolve(root: &Path, path: &str) -> Result<PathBuf, String> {
    if path.starts_with('/') || path.contains("://") {
        return Err("not a path relative to the table's root".into());
    }
    let mut decoded = Vec::with_capacity(path.len());
    let mut bytes = path.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            decoded.push(b);
            continue;
        }
        let hex: String = bytes.by_ref().take(2).map(char::from).collect();
        let byte = u8::from_str_radix(&hex, 16).map_err(|_| format!("bad escape %{hex}"))?;
        decoded.push(byte);
    }
    let decoded = String::from_utf8(decoded).map_err(|_| "not UTF-8".to_owned())?;
    if decoded.split('/').any(|part| part == "..") {
        return Err("leaves the table's root".into());
    }
    Ok(root.join(decoded))
}
