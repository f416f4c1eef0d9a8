//! The oracle: what must hold on a disk after recovery, given what was acknowledged.
//!
//! It runs the real recovery (`Pipeline::open`) on the disk it is given, reads every published
//! and staged row, and checks: every acknowledged row exactly once, any other row at most once
//! and only if its part was attempted, every value as the row's identity says, sequence
//! numbers unique, the ledger equal to the rows on disk, the store consistent with nothing left
//! over (`verify::check_store`: files exist, footers match the manifest, no orphans or temp
//! files), and a second recovery that changes nothing.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use std::path::{Path, PathBuf};
use tally_pipeline::{Config, Layout, Pipeline, read, verify};

use tally_sim::{Fs, SystemClock, World};

use super::workload::{RowRead, extra_of, parse_key, payload_of, rows_of, value_of};

/// Where a pipeline's store lives on the simulated disk.
pub const ROOT: &str = "/store";
/// Where the exporter of a run writes.
pub const EXPORT_DIR: &str = "/export";

/// The invariants the oracle checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// Recovery failed (or refused, failing closed) on a disk that a correct pipeline and
    /// disk can always recover.
    RecoverySucceeds,
    /// Every acknowledged row is present.
    AckedRowsPresent,
    /// No row is present twice.
    AtMostOnce,
    /// No row that was never ingested, and every value as ingested.
    NothingInvented,
    /// Sequence numbers are unique.
    UniqueSeq,
    /// The ledger counts exactly the rows on disk, as a prefix of each source.
    LedgerMatches,
    /// Manifest files exist, are complete and match their recorded counts; no orphans or
    /// temp files remain.
    StoreConsistent,
    /// Recovering again changes nothing.
    RecoveryIdempotent,
    /// At the end of a run every row is published and every source complete.
    RunCompletes,
    /// The workload failed without an injected fault to explain it.
    NoUnexplainedError,
    /// In sequence order, table levels never increase and files never overlap: only files of
    /// one level were ever merged together.
    LevelsHomogeneous,
    /// At the end of a run no merge is due: every level below the top holds fewer files than
    /// the fan-in (files from before a restart were considered again).
    MergesSettled,
    /// Rows written to table files in one process lifetime stay within `max_level + 1` times
    /// the table's rows.
    WriteAmplification,
    /// Opening the store removed whatever a half-done step left, before any entry point
    /// (ingest, flush, export) did anything.
    DrainedOnOpen,
    /// A second, read-only handle always sees one whole version, never an older one.
    ReaderConsistent,
    /// Every published row below the export watermark is in exactly one committed batch, as
    /// published; nothing at or above it; everything by the end.
    ExportExactlyOnce,
    /// On a damaged disk (a published file deleted, an acknowledged log truncated) recovery
    /// refuses, counting the acknowledged and the found rows.
    FailsClosed,
    /// A malformed frame after the acknowledged ones is cut and reported, the rows before it
    /// kept.
    DamageReported,
    /// An unreadable newest manifest does not stop later opens.
    SurvivesBadManifest,
    /// A repair that keeps failing is retried a bounded number of times, then reported.
    BoundedRetries,
}

impl Invariant {
    pub fn name(self) -> &'static str {
        match self {
            Invariant::RecoverySucceeds => "recovery-succeeds",
            Invariant::AckedRowsPresent => "acked-rows-present",
            Invariant::AtMostOnce => "at-most-once",
            Invariant::NothingInvented => "nothing-invented",
            Invariant::UniqueSeq => "unique-seq",
            Invariant::LedgerMatches => "ledger-matches",
            Invariant::StoreConsistent => "store-consistent",
            Invariant::RecoveryIdempotent => "recovery-idempotent",
            Invariant::RunCompletes => "run-completes",
            Invariant::NoUnexplainedError => "no-unexplained-error",
            Invariant::LevelsHomogeneous => "levels-homogeneous",
            Invariant::MergesSettled => "merges-settled",
            Invariant::WriteAmplification => "write-amplification",
            Invariant::DrainedOnOpen => "drained-on-open",
            Invariant::ReaderConsistent => "reader-consistent",
            Invariant::ExportExactlyOnce => "export-exactly-once",
            Invariant::FailsClosed => "fails-closed",
            Invariant::DamageReported => "damage-reported",
            Invariant::SurvivesBadManifest => "survives-bad-manifest",
            Invariant::BoundedRetries => "bounded-retries",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken invariant: which, the rows involved (first few keys), and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Breach {
    pub invariant: Invariant,
    pub rows: Vec<String>,
    pub detail: String,
}

impl Breach {
    pub fn new(invariant: Invariant, rows: Vec<String>, detail: impl Into<String>) -> Self {
        Self {
            invariant,
            rows,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)?;
        if !self.rows.is_empty() {
            write!(f, " [rows {}]", self.rows.join(", "))?;
        }
        Ok(())
    }
}

/// Rows shown in a breach.
const SHOWN_ROWS: usize = 5;

fn first_keys<'a>(keys: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    keys.into_iter().take(SHOWN_ROWS).cloned().collect()
}

/// What a source had reached when the disk was captured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SourceProgress {
    /// Rows `0..acked` are acknowledged.
    pub acked: u64,
    /// Rows `0..attempted` were handed to `ingest` (acknowledged or not).
    pub attempted: u64,
}

/// What the oracle expects of a disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectation {
    pub sources: BTreeMap<String, SourceProgress>,
    /// Payload length bound of the workload, to recompute values.
    pub payload_bytes: u32,
    /// The run is over: every attempted row must be acknowledged, published and its source
    /// complete.
    pub final_state: bool,
    /// Extra integer columns of the workload, to recompute values.
    pub extra_columns: u32,
    /// The run's export directory, when it exports.
    pub export_dir: Option<PathBuf>,
}

/// What a passing check saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub manifest_version: u64,
    pub published_rows: u64,
    pub staged_rows: u64,
    pub max_level: u32,
    /// Recovery's report, as text.
    pub recovery: String,
}

/// Every row on disk, published rows first, and how many are staged.
/// The rows of table files already decoded in this run, by content: a published file never
/// changes once renamed into place, so the crash images of a run hold the same files over and
/// over. Identical bytes decode to identical rows, so a hit is exactly what decoding would give.
#[derive(Default)]
pub struct RowCache {
    files: std::sync::Mutex<BTreeMap<FileKey, Decoded>>,
}

/// A file's content hash and length, and the workload's payload bound and extra columns (the
/// altered rows are judged against them).
type FileKey = (u128, usize, u32, u32);
/// A file's rows, or `None` if its columns are not the workload's.
type Decoded = std::sync::Arc<Option<DecodedFile>>;

/// A decoded table file: its rows, and the keys of those whose columns differ from what the
/// workload ingests under their key (judged once: neither the rows nor the workload change).
pub struct DecodedFile {
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
        let rows = std::sync::Arc::new(rows);
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, rows.clone());
        rows
    }
}

/// Every row on disk (published rows first), how many are staged, and the keys of rows whose
/// columns differ from what the workload ingested under their key.
struct OnDisk {
    rows: Vec<RowRead>,
    staged: u64,
    altered: Vec<String>,
}

async fn read_rows<F: Fs>(
    fs: &F,
    root: &Path,
    pipeline: &Pipeline<F, SystemClock>,
    expect: &Expectation,
    cache: &RowCache,
) -> Result<OnDisk, Breach> {
    let layout = Layout::new(root);
    let manifest = pipeline.manifest().await;
    let mut rows = Vec::new();
    let mut altered = Vec::new();
    let mut bad_columns = false;
    let mut bad_files = false;
    let unreadable = |what: &'static str| {
        move |e: tally_pipeline::Error| {
            Breach::new(
                Invariant::StoreConsistent,
                vec![],
                format!("reading {what} rows: {e}"),
            )
        }
    };
    for file in &manifest.files {
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
        let decoded = match cache.get(key) {
            Some(hit) => hit,
            None => {
                let mut decoded = Some(Vec::new());
                read::published_rows(fs, &layout, std::slice::from_ref(file), 256, |_, b| {
                    match (rows_of(&b), decoded.as_mut()) {
                        (Some(read), Some(all)) => all.extend(read),
                        _ => decoded = None,
                    }
                    Ok(())
                })
                .await
                .map_err(unreadable("published"))?;
                cache.put(
                    key,
                    decoded.map(|rows| DecodedFile {
                        altered: altered_keys(&rows, expect),
                        rows,
                    }),
                )
            }
        };
        match decoded.as_ref() {
            Some(file) => {
                rows.extend(file.rows.iter().cloned());
                altered.extend(file.altered.iter().cloned());
            }
            None => bad_files = true,
        }
    }
    let published = rows.len();
    read::staged_rows(fs, &layout, manifest.log_through, |_, b| {
        match rows_of(&b) {
            Some(read) => rows.extend(read),
            None => bad_columns = true,
        }
        Ok(())
    })
    .await
    .map_err(unreadable("staged"))?;
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

/// The keys of `rows` whose columns differ from what the workload ingests under their key.
fn altered_keys(rows: &[RowRead], expect: &Expectation) -> Vec<String> {
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

/// Checks the rows read against the expectation. `altered` holds the keys of the rows whose
/// columns differ from what the workload ingests under their key ([`altered_keys`]).
fn check_rows(rows: &[RowRead], altered: &[String], expect: &Expectation) -> Result<(), Breach> {
    let mut invented = Vec::new();
    // Row numbers present, per source: rows present twice and rows missing are found from
    // these without making the key of every expected row.
    let mut present: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for row in rows {
        match parse_key(&row.key) {
            Some((source, n)) if expect.sources.get(source).is_some_and(|p| n < p.attempted) => {
                present.entry(source).or_default().push(n);
            }
            _ => invented.push(row.key.clone()),
        }
    }
    if !invented.is_empty() {
        return Err(Breach::new(
            Invariant::NothingInvented,
            first_keys(&invented),
            format!("{} rows that were never ingested", invented.len()),
        ));
    }
    if !altered.is_empty() {
        return Err(Breach::new(
            Invariant::NothingInvented,
            first_keys(altered),
            format!(
                "{} rows whose values differ from those ingested",
                altered.len()
            ),
        ));
    }
    let mut twice = Vec::new();
    for (source, numbers) in &mut present {
        numbers.sort_unstable();
        for run in numbers.chunk_by(|a, b| a == b) {
            if run.len() > 1 {
                twice.push(super::workload::key(source, run[0]));
            }
        }
        numbers.dedup();
    }
    if !twice.is_empty() {
        twice.sort_unstable();
        return Err(Breach::new(
            Invariant::AtMostOnce,
            first_keys(&twice),
            format!("{} rows present more than once", twice.len()),
        ));
    }
    let mut lost = Vec::new();
    let mut lost_count = 0u64;
    for (source, progress) in &expect.sources {
        let wanted = if expect.final_state {
            progress.attempted
        } else {
            progress.acked
        };
        // Sorted, distinct, and all below `attempted`.
        let numbers = present.get(source.as_str()).map_or(&[][..], Vec::as_slice);
        let found = numbers.partition_point(|&n| n < wanted);
        if found as u64 == wanted {
            continue;
        }
        lost_count += wanted - found as u64;
        let mut next = numbers.iter().peekable();
        for n in 0..wanted {
            if lost.len() >= SHOWN_ROWS {
                break;
            }
            if next.next_if_eq(&&n).is_none() {
                lost.push(super::workload::key(source, n));
            }
        }
    }
    if lost_count > 0 {
        let (invariant, what) = if expect.final_state {
            (
                Invariant::RunCompletes,
                "rows of the run missing at its end",
            )
        } else {
            (Invariant::AckedRowsPresent, "acknowledged rows missing")
        };
        return Err(Breach::new(invariant, lost, format!("{lost_count} {what}")));
    }
    let mut seqs: BTreeMap<u64, &str> = BTreeMap::new();
    for row in rows {
        if let Some(other) = seqs.insert(row.seq, &row.key) {
            return Err(Breach::new(
                Invariant::UniqueSeq,
                vec![other.to_owned(), row.key.clone()],
                format!("sequence number {} given to two rows", row.seq),
            ));
        }
    }
    Ok(())
}

/// Checks the ledger: per source, the rows on disk are exactly rows `0..ledger.rows`, and the
/// ledger holds at least the acknowledged rows.
fn check_ledger(
    rows: &[RowRead],
    ledger: &BTreeMap<String, tally_pipeline::SourceState>,
    expect: &Expectation,
) -> Result<(), Breach> {
    let mut on_disk: BTreeMap<&str, u64> = BTreeMap::new();
    for row in rows {
        if let Some((source, _)) = parse_key(&row.key) {
            *on_disk.entry(source).or_default() += 1;
        }
    }
    let names = ledger
        .keys()
        .map(String::as_str)
        .chain(on_disk.keys().copied())
        .collect::<std::collections::BTreeSet<_>>();
    for name in names {
        let counted = ledger.get(name).map_or(0, |s| s.rows);
        let found = on_disk.get(name).copied().unwrap_or(0);
        if counted != found {
            return Err(Breach::new(
                Invariant::LedgerMatches,
                vec![],
                format!("source {name}: the ledger counts {counted} rows, the disk holds {found}"),
            ));
        }
        let acked = expect.sources.get(name).map_or(0, |p| p.acked);
        if counted < acked {
            return Err(Breach::new(
                Invariant::LedgerMatches,
                vec![],
                format!(
                    "source {name}: the ledger counts {counted} rows, {acked} were acknowledged"
                ),
            ));
        }
        if expect.final_state {
            let attempted = expect.sources.get(name).map_or(0, |p| p.attempted);
            let complete = ledger.get(name).is_some_and(|s| s.complete);
            if !complete || counted != attempted {
                return Err(Breach::new(
                    Invariant::RunCompletes,
                    vec![],
                    format!(
                        "source {name}: at the end the ledger counts {counted} of {attempted} rows, complete: {complete}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// In sequence order, levels never increase and ranges never overlap.
pub fn check_levels(files: &[tally_pipeline::FileEntry]) -> Result<(), Breach> {
    let mut sorted: Vec<_> = files.iter().collect();
    sorted.sort_by_key(|f| f.seq_min);
    for w in sorted.windows(2) {
        if w[0].level < w[1].level || w[0].seq_max >= w[1].seq_min {
            return Err(Breach::new(
                Invariant::LevelsHomogeneous,
                vec![],
                format!(
                    "file {} (level {}, seq {}..={}) precedes file {} (level {}, seq {}..={})",
                    w[0].id,
                    w[0].level,
                    w[0].seq_min,
                    w[0].seq_max,
                    w[1].id,
                    w[1].level,
                    w[1].seq_min,
                    w[1].seq_max
                ),
            ));
        }
    }
    Ok(())
}

/// No level below the top holds enough files for a merge.
fn check_settled(files: &[tally_pipeline::FileEntry], config: &Config) -> Result<(), Breach> {
    for level in 0..config.max_level {
        let n = files.iter().filter(|f| f.level == level).count();
        if n >= config.merge_fan_in {
            return Err(Breach::new(
                Invariant::MergesSettled,
                vec![],
                format!(
                    "after the final flush level {level} still holds {n} files (fan-in {})",
                    config.merge_fan_in
                ),
            ));
        }
    }
    Ok(())
}

/// The export directory against the published rows: every published row below the watermark
/// in exactly one committed batch, with its published values and sequence number; no
/// committed row at or above the watermark; at the end, everything exported.
async fn check_export<F: Fs>(
    fs: &F,
    dir: &Path,
    published: &[RowRead],
    expect: &Expectation,
) -> Result<(), Breach> {
    let breach =
        |rows: Vec<String>, detail: String| Breach::new(Invariant::ExportExactlyOnce, rows, detail);
    let mut exported: Vec<RowRead> = Vec::new();
    let mut bad_columns = false;
    let watermark = if fs.exists(dir).await.unwrap_or(false) {
        tally_pipeline::export::read_committed(fs, dir, 256, |_, batch| {
            match rows_of(&batch) {
                Some(rows) => exported.extend(rows),
                None => bad_columns = true,
            }
            Ok(())
        })
        .await
        .map_err(|e| breach(vec![], format!("reading the export: {e}")))?
    } else {
        0
    };
    if bad_columns {
        return Err(breach(
            vec![],
            "an export batch without the workload's columns".into(),
        ));
    }
    let by_seq: BTreeMap<u64, &RowRead> = published.iter().map(|r| (r.seq, r)).collect();
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    for row in &exported {
        *seen.entry(&row.key).or_default() += 1;
    }
    let twice: Vec<String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| (*k).to_owned())
        .collect();
    if !twice.is_empty() {
        return Err(breach(
            first_keys(&twice),
            format!("{} rows exported more than once", twice.len()),
        ));
    }
    let foreign: Vec<String> = exported
        .iter()
        .filter(|r| by_seq.get(&r.seq).is_none_or(|p| **p != **r))
        .map(|r| r.key.clone())
        .collect();
    if !foreign.is_empty() {
        return Err(breach(
            first_keys(&foreign),
            format!(
                "{} exported rows are not published as exported (value or sequence number differ)",
                foreign.len()
            ),
        ));
    }
    let above: Vec<String> = exported
        .iter()
        .filter(|r| r.seq >= watermark)
        .map(|r| r.key.clone())
        .collect();
    if !above.is_empty() {
        return Err(breach(
            first_keys(&above),
            format!(
                "{} committed export rows are at or above the watermark {watermark}",
                above.len()
            ),
        ));
    }
    let bound = if expect.final_state {
        u64::MAX
    } else {
        watermark
    };
    let missing: Vec<String> = published
        .iter()
        .filter(|r| r.seq < bound && !seen.contains_key(r.key.as_str()))
        .map(|r| r.key.clone())
        .collect();
    if !missing.is_empty() {
        let what = if expect.final_state {
            "published rows never exported by the end of the run".to_owned()
        } else {
            format!("published rows below the watermark {watermark} are in no committed batch")
        };
        return Err(breach(
            first_keys(&missing),
            format!("{} {what}", missing.len()),
        ));
    }
    Ok(())
}

/// Every file under `dir` (path and bytes) and every directory (`None`), sorted.
/// Every path under `dir` with the file's bytes (`None` for a directory), sorted by path.
async fn tree<F: Fs>(
    fs: &F,
    dir: &Path,
) -> Result<Vec<(std::ffi::OsString, Option<Vec<u8>>)>, Breach> {
    let failed = |e: std::io::Error| {
        Breach::new(
            Invariant::RecoveryIdempotent,
            vec![],
            format!("listing the store: {e}"),
        )
    };
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs.list_dir(&dir).await.map_err(failed)? {
            let path = dir.join(&entry.name);
            if entry.is_dir {
                out.push((path.clone().into_os_string(), None));
                stack.push(path);
            } else {
                let bytes = fs.read(&path).await.map_err(failed)?;
                out.push((path.into_os_string(), Some(bytes)));
            }
        }
    }
    // Keyed by the path's bytes, not `Path`: comparing bytes is far cheaper than comparing
    // components.
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Recovers the store at `root` with the real recovery code and checks everything against
/// `expect`. The store is changed (recovered): on a simulated disk, pass a copy.
pub async fn check<F: Fs>(
    fs: &F,
    root: &Path,
    config: &Config,
    expect: &Expectation,
) -> Result<Seen, Breach> {
    check_cached(fs, root, config, expect, &RowCache::default()).await
}

/// [`check`], with the rows of table files decoded before taken from `cache`.
pub async fn check_cached<F: Fs>(
    fs: &F,
    root: &Path,
    config: &Config,
    expect: &Expectation,
    cache: &RowCache,
) -> Result<Seen, Breach> {
    let world = World::new(fs.clone(), SystemClock);
    let (pipeline, report) = Pipeline::open(world.clone(), root, config.clone())
        .await
        .map_err(|e| Breach::new(Invariant::RecoverySucceeds, vec![], e.to_string()))?;
    let OnDisk {
        rows,
        staged: staged_rows,
        altered,
    } = read_rows(fs, root, &pipeline, expect, cache).await?;
    check_rows(&rows, &altered, expect)?;
    check_ledger(&rows, &pipeline.ledger().await, expect)?;
    let manifest = pipeline.manifest().await;
    check_levels(&manifest.files)?;
    if expect.final_state {
        check_settled(&manifest.files, config)?;
    }
    if let Some(dir) = &expect.export_dir {
        let published = &rows[..rows.len() - staged_rows as usize];
        check_export(fs, dir, published, expect).await?;
    }
    if expect.final_state && staged_rows > 0 {
        return Err(Breach::new(
            Invariant::RunCompletes,
            vec![],
            format!("{staged_rows} rows still staged after the final flush"),
        ));
    }
    drop(pipeline);
    let store = verify::check_store(fs, &Layout::new(root), false)
        .await
        .map_err(|e| Breach::new(Invariant::StoreConsistent, vec![], e.to_string()))?;
    if !store.problems.is_empty() || !store.pending_repairs.is_empty() {
        let all: Vec<String> = store
            .problems
            .iter()
            .chain(&store.pending_repairs)
            .cloned()
            .collect();
        return Err(Breach::new(
            Invariant::StoreConsistent,
            vec![],
            all.join("; "),
        ));
    }
    let before = tree(fs, root).await?;
    let (again, second) = Pipeline::open(world, root, config.clone())
        .await
        .map_err(|e| {
            Breach::new(
                Invariant::RecoveryIdempotent,
                vec![],
                format!("second recovery failed: {e}"),
            )
        })?;
    drop(again);
    if !second.is_clean() || tree(fs, root).await? != before {
        return Err(Breach::new(
            Invariant::RecoveryIdempotent,
            vec![],
            format!(
                "the second recovery changed the disk: {}",
                second.to_string().trim()
            ),
        ));
    }
    Ok(Seen {
        manifest_version: manifest.version,
        published_rows: manifest.rows(),
        staged_rows,
        max_level: manifest.files.iter().map(|f| f.level).max().unwrap_or(0),
        recovery: report.to_string(),
    })
}

/// Each check can fail: the oracle is fed rows that break exactly one invariant.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::key;

    fn row(source: &str, n: u64, seq: u64) -> RowRead {
        let key = key(source, n);
        RowRead {
            value: value_of(&key),
            payload: payload_of(&key, 8),
            key,
            seq,
            extra: vec![],
        }
    }

    fn expect(acked: u64, attempted: u64) -> Expectation {
        Expectation {
            sources: BTreeMap::from([("s".to_owned(), SourceProgress { acked, attempted })]),
            payload_bytes: 8,
            final_state: false,
            ..Expectation::default()
        }
    }

    fn good() -> Vec<RowRead> {
        (0..4).map(|n| row("s", n, 10 + n)).collect()
    }

    /// The row checks as the oracle runs them.
    fn judge(rows: &[RowRead], e: &Expectation) -> Result<(), Breach> {
        check_rows(rows, &altered_keys(rows, e), e)
    }

    fn invariant(result: Result<(), Breach>) -> Invariant {
        result.expect_err("the check must fail").invariant
    }

    #[test]
    fn intact_rows_pass() {
        judge(&good(), &expect(4, 4)).unwrap();
        judge(&good()[..3], &expect(3, 4)).unwrap();
    }

    #[test]
    fn a_lost_acknowledged_row_is_caught() {
        let mut rows = good();
        rows.remove(1);
        let breach = judge(&rows, &expect(4, 4)).unwrap_err();
        assert_eq!(breach.invariant, Invariant::AckedRowsPresent);
        assert_eq!(breach.rows, vec!["s#1"]);
    }

    #[test]
    fn lost_rows_are_counted_and_the_first_named() {
        let rows: Vec<RowRead> = (0..20)
            .filter(|n| n % 3 == 0)
            .map(|n| row("s", n, n))
            .collect();
        let breach = judge(&rows, &expect(20, 20)).unwrap_err();
        assert_eq!(breach.invariant, Invariant::AckedRowsPresent);
        assert_eq!(breach.rows, vec!["s#1", "s#2", "s#4", "s#5", "s#7"]);
        assert!(breach.detail.starts_with("13 "), "{}", breach.detail);
    }

    #[test]
    fn a_key_no_workload_makes_is_invented_even_if_it_names_a_row() {
        let mut rows = good();
        let mut odd = row("s", 1, 99);
        odd.key = "s#01".to_owned();
        odd.value = value_of(&odd.key);
        odd.payload = payload_of(&odd.key, 8);
        rows[1] = odd;
        assert_eq!(
            invariant(judge(&rows, &expect(4, 4))),
            Invariant::NothingInvented
        );
    }

    #[test]
    fn a_duplicate_row_is_caught() {
        let mut rows = good();
        rows.push(row("s", 2, 99));
        rows.push(row("s", 2, 98));
        rows.push(row("s", 0, 97));
        let breach = judge(&rows, &expect(4, 4)).unwrap_err();
        assert_eq!(breach.invariant, Invariant::AtMostOnce);
        assert_eq!(breach.rows, vec!["s#0", "s#2"]);
    }

    #[test]
    fn an_invented_row_is_caught() {
        let mut rows = good();
        rows.push(row("s", 7, 99));
        assert_eq!(
            invariant(judge(&rows, &expect(4, 4))),
            Invariant::NothingInvented
        );
        let mut rows = good();
        rows.push(row("other", 0, 99));
        assert_eq!(
            invariant(judge(&rows, &expect(4, 4))),
            Invariant::NothingInvented
        );
    }

    #[test]
    fn an_altered_value_is_caught() {
        let mut rows = good();
        rows[2].value ^= 1;
        assert_eq!(
            invariant(judge(&rows, &expect(4, 4))),
            Invariant::NothingInvented
        );
        let mut rows = good();
        rows[0].payload.push('x');
        assert_eq!(
            invariant(judge(&rows, &expect(4, 4))),
            Invariant::NothingInvented
        );
    }

    #[test]
    fn a_reused_sequence_number_is_caught() {
        let mut rows = good();
        rows[3].seq = rows[0].seq;
        assert_eq!(invariant(judge(&rows, &expect(4, 4))), Invariant::UniqueSeq);
    }

    #[test]
    fn an_unfinished_run_is_caught_at_its_end() {
        let mut e = expect(3, 4);
        e.final_state = true;
        assert_eq!(invariant(judge(&good()[..3], &e)), Invariant::RunCompletes);
    }

    #[test]
    fn a_ledger_that_disagrees_with_the_disk_is_caught() {
        use tally_pipeline::SourceState;
        let ledger =
            |rows, complete| BTreeMap::from([("s".to_owned(), SourceState { rows, complete })]);
        check_ledger(&good(), &ledger(4, false), &expect(4, 4)).unwrap();
        for wrong in [3, 5] {
            assert_eq!(
                invariant(check_ledger(&good(), &ledger(wrong, false), &expect(3, 4))),
                Invariant::LedgerMatches
            );
        }
        assert_eq!(
            invariant(check_ledger(&good()[..2], &ledger(2, false), &expect(3, 4))),
            Invariant::LedgerMatches,
            "a ledger below what was acknowledged"
        );
        let mut e = expect(4, 4);
        e.final_state = true;
        assert_eq!(
            invariant(check_ledger(&good(), &ledger(4, false), &e)),
            Invariant::RunCompletes,
            "a source not complete at the end"
        );
    }
}
