//! Read-only checks of a store: what `tally verify` and `tally inspect` report. Nothing here
//! writes; what recovery would repair on the next open is reported as pending, what it would
//! refuse is reported as a problem.

use std::collections::BTreeSet;

use arrow::array::Array;
use serde::Serialize;
use tally_sim::Fs;

use crate::delta::checkpoint;
use crate::delta::log::Listing;
use crate::error::Result;
use crate::layout::{self, Layout, SegmentFile};
use crate::log;
use crate::manifest::{FileEntry, Leftover, Manifest, StoreDir};
use crate::table::{self, SEQ_COLUMN, TableReader};

/// A live (not yet staged) log segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SegmentSummary {
    pub number: u64,
    pub parts: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// What a store holds, and whether it is consistent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreReport {
    pub manifest_version: u64,
    pub files: Vec<FileEntry>,
    pub published_rows: u64,
    pub published_bytes: u64,
    pub sources: usize,
    pub complete_sources: usize,
    pub segments: Vec<SegmentSummary>,
    pub staged_rows: u64,
    /// Inconsistencies recovery would refuse to continue over (acknowledged rows missing,
    /// files disagreeing with the manifest, duplicate sequence numbers with `deep`).
    pub problems: Vec<String>,
    /// Leftovers of an interrupted step that the next open repairs (torn tails, orphans, temp
    /// files, staged segments not yet removed, unreadable manifests to quarantine).
    pub pending_repairs: Vec<String>,
    /// Rows read when checking deeply.
    pub rows_read: Option<u64>,
    /// With `deep`, published files whose checksum was not checked because their manifest
    /// entry records none (written before checksums were recorded); and checkpoints not
    /// compared with the commits because the commits before them are gone.
    pub unchecked: Vec<String>,
}

impl StoreReport {
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the store at `layout` without changing it. With `deep`, also reads every published
/// and staged row and checks that sequence numbers are unique and within their file's range.
/// A root that is not a tally store (missing, empty, foreign, no marker) is
/// `Error::NotAStore`: never reported as an empty, consistent store.
pub async fn check_store<F: Fs>(fs: &F, layout: &Layout, deep: bool) -> Result<StoreReport> {
    let mut report = StoreReport::default();
    crate::recover::require_store(fs, layout).await?;
    let (manifest, damaged) = newest_manifest(fs, layout, &mut report).await?;
    report.manifest_version = manifest.version;
    report.files = manifest.files.clone();
    report.published_rows = manifest.rows();
    report.published_bytes = manifest.files.iter().map(|f| f.bytes).sum();
    report.sources = manifest.sources.len();
    report.complete_sources = manifest.sources.values().filter(|s| s.complete).count();
    if let Err(why) = manifest.check_files() {
        report
            .problems
            .push(format!("version {}: {why}", manifest.version));
    }
    if manifest.rows() != manifest.source_rows() {
        report.problems.push(format!(
            "version {} lists files holding {} rows but its ledger records {}",
            manifest.version,
            manifest.rows(),
            manifest.source_rows()
        ));
    }
    for file in &manifest.files {
        let path = layout.table_file(file.level, file.id);
        let name = layout::table_file_name(file.level, file.id);
        match table::read_footer(fs, &path).await {
            Ok(footer) => {
                if let Some(why) = footer.disagreement(file) {
                    report.problems.push(format!("{name}: {why}"));
                }
                if footer.bytes != file.bytes {
                    report.problems.push(format!(
                        "{name}: {} bytes on disk, the manifest says {}",
                        footer.bytes, file.bytes
                    ));
                }
            }
            Err(e) => report
                .problems
                .push(format!("{name} ({} rows): {e}", file.rows)),
        }
    }
    for pair in manifest.files.windows(2) {
        if pair[0].seq_max >= pair[1].seq_min {
            report.problems.push(format!(
                "files {} and {} have overlapping sequence ranges",
                pair[0].id, pair[1].id
            ));
        }
    }
    let checkpoints = check_garbage(fs, layout, &manifest, damaged, &mut report).await?;
    check_checkpoints(fs, layout, checkpoints, &mut report).await?;
    check_segments(fs, layout, &manifest, &mut report).await?;
    if deep {
        deep_check(fs, layout, &manifest, &mut report).await?;
    }
    Ok(report)
}

/// The newest readable manifest, and whether newer ones are damaged. A damaged newest
/// manifest is a problem (opening refuses over it), reported with what a rollback would lose.
async fn newest_manifest<F: Fs>(
    fs: &F,
    layout: &Layout,
    report: &mut StoreReport,
) -> Result<(Manifest, bool)> {
    let (manifest, damaged) = crate::read::newest_valid_manifest(fs, layout).await?;
    if damaged.is_empty() {
        return Ok((manifest, false));
    }
    let damage = crate::recover::assess_damage(fs, layout, &manifest, damaged).await?;
    report.problems.push(damage.to_string());
    Ok((manifest, true))
}

/// Leftovers the next open removes. Under a damaged newest manifest the table files the
/// readable one does not reference are not leftovers but rows at risk (reported with the
/// damage).
async fn check_garbage<F: Fs>(
    fs: &F,
    layout: &Layout,
    manifest: &Manifest,
    damaged: bool,
    report: &mut StoreReport,
) -> Result<Listing> {
    // The checkpoints and the hint, noted from the same listing of `_delta_log/`.
    let mut checkpoints = Listing::default();
    for (kind, dir) in [
        (StoreDir::Private, layout.private_dir()),
        (StoreDir::DeltaLog, layout.delta_log_dir()),
        (StoreDir::Data, layout.data_dir()),
        (StoreDir::Log, layout.log_dir()),
    ] {
        let prefix = format!("{}/", layout.relative(&dir));
        for entry in list_if_exists(fs, &dir).await? {
            if kind == StoreDir::DeltaLog {
                if let Some(v) = layout::parse_checkpoint_name(&entry.name) {
                    checkpoints.checkpoints.push(v);
                }
                checkpoints.last_checkpoint |= entry.name == layout::LAST_CHECKPOINT;
            }
            // Removed files past their retention are not reported: deleting them is routine.
            let leftover = manifest.leftover(kind, &entry.name, |_| false);
            if damaged && matches!(leftover, Some(Leftover::Unreferenced { .. })) {
                continue;
            }
            if let Some(leftover) = leftover {
                report.pending_repairs.push(format!(
                    "{prefix}{} is {}: it will be removed",
                    entry.name,
                    leftover.describe()
                ));
            }
        }
    }
    checkpoints.checkpoints.sort_unstable();
    Ok(checkpoints)
}

/// Every checkpoint: one that cannot be used is a pending repair (the next open sets it
/// aside), and so is a `_last_checkpoint` not naming the newest usable one; a usable one must
/// hold the table the commits through its version make (less the tombstones it may drop),
/// or it is a problem. One pass over the commits, whatever the number of checkpoints.
async fn check_checkpoints<F: Fs>(
    fs: &F,
    layout: &Layout,
    listing: Listing,
    report: &mut StoreReport,
) -> Result<()> {
    let mut replayed: Option<Manifest> = None;
    let mut newest = None;
    for version in listing.checkpoints {
        let name = format!(
            "{}/{}",
            layout::DELTA_LOG_DIR,
            layout::checkpoint_name(version)
        );
        let c = match checkpoint::read(fs, layout, version).await? {
            Ok(c) => c,
            Err(why) => {
                report.pending_repairs.push(format!(
                    "{name} cannot be used ({why}): it will be set aside"
                ));
                continue;
            }
        };
        let seal = c.seal.clone();
        let start = replayed.take();
        let first = start.as_ref().map_or(0, |t| t.version + 1);
        if !fs.exists(&layout.commit(first)).await? {
            // The commits before it cleaned up (another engine's log cleanup: tally deletes
            // no commit): nothing to compare it with.
            report.unchecked.push(format!(
                "{name}: not compared with the commits, commit {first} is gone"
            ));
        } else {
            let commits = crate::delta::log::replay_commits(fs, layout, start, version).await?;
            if commits.created && commits.table.version == version {
                if let Some(why) = disagreement(&c, &commits.table) {
                    report.problems.push(format!("{name}: {why}"));
                }
                replayed = Some(commits.table);
            } else {
                report.problems.push(format!(
                    "{name} cannot be checked: the commits through {version} do not replay"
                ));
            }
        }
        newest = Some(seal);
    }
    let hint = match listing.last_checkpoint {
        true => checkpoint::read_hint(fs, layout).await?,
        false => None,
    };
    if hint != newest.as_ref().map(checkpoint::hint_bytes) {
        report.pending_repairs.push(format!(
            "{}/{} does not name the newest usable checkpoint: it will be rewritten",
            layout::DELTA_LOG_DIR,
            layout::LAST_CHECKPOINT
        ));
    }
    Ok(())
}

/// How a checkpoint differs from the replay of the commits through its version, if it does.
/// It may lack only tombstones removed at or before its seal's `tombstones_kept_after_ms`.
fn disagreement(c: &checkpoint::Checkpoint, commits: &Manifest) -> Option<String> {
    let mut expected = commits.clone();
    let kept_after = c.seal.tombstones_kept_after_ms;
    expected.tombstones_dropped_through_ms = c.table.tombstones_dropped_through_ms;
    expected
        .tombstones
        .retain(|t| t.removed_at_ms > kept_after || c.table.tombstone(t.level, t.id) == Some(t));
    (expected != c.table).then(|| {
        format!(
            "holds a table ({} files, {} rows, {} tombstones) that the commits through {} do \
             not make ({} files, {} rows, {} tombstones)",
            c.table.files.len(),
            c.table.rows(),
            c.table.tombstones.len(),
            commits.version,
            expected.files.len(),
            expected.rows(),
            expected.tombstones.len()
        )
    })
}

async fn check_segments<F: Fs>(
    fs: &F,
    layout: &Layout,
    manifest: &Manifest,
    report: &mut StoreReport,
) -> Result<()> {
    let mut numbers = Vec::new();
    for entry in fs.list_dir(&layout.log_dir()).await? {
        match layout::parse_segment_name(&entry.name) {
            // Already staged: reported by `check_garbage`.
            Some(SegmentFile::Log(n) | SegmentFile::Ack(n)) if n <= manifest.log_through => {}
            Some(SegmentFile::Log(n) | SegmentFile::Ack(n)) => numbers.push(n),
            None => {}
        }
    }
    numbers.dedup();
    for number in numbers {
        let log_name = layout.relative(&layout.segment_log(number));
        let log_bytes = crate::fsutil::read_if_exists(fs, &layout.segment_log(number)).await?;
        let ack_bytes = crate::fsutil::read_if_exists(fs, &layout.segment_ack(number)).await?;
        let records = ack_bytes
            .as_deref()
            .map(|b| log::scan_ack(b, number).items)
            .unwrap_or_default();
        let Some(bytes) = log_bytes else {
            if !records.is_empty() {
                report.problems.push(format!(
                    "{log_name} is missing but its ack file acknowledges {} rows",
                    records.iter().map(|r| r.meta.rows).sum::<u64>()
                ));
            }
            continue;
        };
        let scan = log::scan_log(&bytes, number);
        if scan.valid_len < bytes.len() as u64 {
            report.pending_repairs.push(format!(
                "{log_name}: a torn tail of {} bytes will be truncated",
                bytes.len() as u64 - scan.valid_len
            ));
        }
        let lost: Vec<_> = records.iter().filter(|r| !scan.holds(r)).collect();
        if !lost.is_empty() {
            report.problems.push(format!(
                "{log_name}: {} acknowledged parts ({} rows) are not in the log",
                lost.len(),
                lost.iter().map(|r| r.meta.rows).sum::<u64>()
            ));
        }
        let rows: u64 = scan.items.iter().map(|p| p.meta.rows).sum();
        report.staged_rows += rows;
        report.segments.push(SegmentSummary {
            number,
            parts: scan.items.len() as u64,
            rows,
            bytes: bytes.len() as u64,
        });
    }
    Ok(())
}

/// Sequence numbers seen by a deep check, and how many were seen twice.
#[derive(Default)]
struct Seen {
    numbers: BTreeSet<u64>,
    duplicates: u64,
}

impl Seen {
    fn note(&mut self, seq: u64) {
        if !self.numbers.insert(seq) {
            self.duplicates += 1;
        }
    }
}

async fn deep_check<F: Fs>(
    fs: &F,
    layout: &Layout,
    manifest: &Manifest,
    report: &mut StoreReport,
) -> Result<()> {
    let mut seen = Seen::default();
    let mut rows_read = 0u64;
    for file in &manifest.files {
        rows_read += deep_check_file(fs, layout, file, &mut seen, report).await;
    }
    crate::read::staged_rows(fs, layout, manifest.log_through, |_, batch| {
        if let Some(seqs) = table::seq_column(&batch) {
            rows_read += seqs.len() as u64;
            seqs.values().iter().for_each(|&s| seen.note(s as u64));
        }
        Ok(())
    })
    .await?;
    if seen.duplicates > 0 {
        report.problems.push(format!(
            "{} rows share a sequence number with another row",
            seen.duplicates
        ));
    }
    report.rows_read = Some(rows_read);
    Ok(())
}

/// Reads every row of one published file, noting its sequence numbers; reports rows that
/// disagree with the manifest or fall outside the file's range. Returns the rows read.
async fn deep_check_file<F: Fs>(
    fs: &F,
    layout: &Layout,
    file: &FileEntry,
    seen: &mut Seen,
    report: &mut StoreReport,
) -> u64 {
    let path = layout.table_file(file.level, file.id);
    let name = layout::table_file_name(file.level, file.id);
    match table::check_checksum(fs, &path, file).await {
        Ok(true) => {}
        Ok(false) => report
            .unchecked
            .push(format!("{name}: no checksum recorded")),
        Err(e) => {
            // Its rows are not counted: none of them can be trusted.
            report.problems.push(format!("{name}: {e}"));
            return 0;
        }
    }
    let mut reader = match TableReader::open(fs, &path, 64 * 1024).await {
        Ok(r) => r,
        Err(e) => {
            report.problems.push(format!("{name}: {e}"));
            return 0;
        }
    };
    let mut rows = 0u64;
    let mut out_of_range = 0u64;
    loop {
        let batch = match reader.next().await {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => {
                report.problems.push(format!("{name}: {e}"));
                break;
            }
        };
        let Some(seqs) = table::seq_column(&batch) else {
            report
                .problems
                .push(format!("{name}: no {SEQ_COLUMN} column"));
            break;
        };
        rows += seqs.len() as u64;
        for i in 0..seqs.len() {
            let seq = seqs.value(i) as u64;
            if seqs.is_null(i) || seq < file.seq_min || seq > file.seq_max {
                out_of_range += 1;
            }
            seen.note(seq);
        }
    }
    if rows != file.rows {
        report.problems.push(format!(
            "{name}: {rows} rows read, the manifest says {}",
            file.rows
        ));
    }
    if out_of_range > 0 {
        report.problems.push(format!(
            "{name}: {out_of_range} sequence numbers outside {}..={}",
            file.seq_min, file.seq_max
        ));
    }
    rows
}

/// The entries of `dir`, none if it is missing (a store created by an older open may lack
/// a directory recovery creates).
async fn list_if_exists<F: Fs>(fs: &F, dir: &std::path::Path) -> Result<Vec<tally_sim::DirEntry>> {
    match fs.list_dir(dir).await {
        Ok(entries) => Ok(entries),
        Err(e) if crate::fsutil::is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}
