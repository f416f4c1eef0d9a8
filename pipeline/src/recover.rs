//! Recovery, run on every open (see `docs/protocol.md`, "Recover"). It finishes or rolls back
//! whatever a crash interrupted, checks that everything acknowledged is on disk, and rebuilds the
//! in-memory ledger and allocator. It reads manifests, Parquet footers and the live (unstaged)
//! log segments — never the data pages of published files — so its cost follows the amount of
//! unpublished staging and the number of files, not the size of the table.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

use arrow_schema::Schema;
use serde::Serialize;
use tally_sim::{Clock, Fs, FsFile, OpenMode};

use crate::error::{Error, Result};
use crate::layout::{self, Layout, SegmentFile};
use crate::log::{self, PartMeta};
use crate::manifest::{Leftover, Manifest, SourceState, StoreDir};
use crate::seqalloc;
use crate::table;
use crate::twins::Twins;

/// A torn or damaged tail cut off a log or ack file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TornTail {
    /// Path relative to the root.
    pub file: String,
    /// Frames lost (a best-effort count walked through the tail's length fields).
    pub frames: u64,
    pub bytes: u64,
    /// Why the prefix ended where it did, when it was not a plain torn write.
    pub malformed: Option<String>,
}

/// A file set aside because it could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    pub file: String,
    pub moved_to: String,
    pub reason: String,
}

/// What recovery found and what it changed. Paths are relative to the root and lists are in
/// name order, so a report is stable across runs and machines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RecoveryReport {
    pub manifest_version: u64,
    pub published_files: usize,
    pub published_rows: u64,
    /// Log segments not yet staged, and the rows they hold.
    pub live_segments: usize,
    pub staged_rows: u64,
    /// Frames that reached the disk whole but whose acknowledgement was never recorded; they
    /// are kept (their rows are stored once, and a retry of the part is then a no-op).
    pub unacknowledged_parts_kept: u64,
    pub unacknowledged_rows_kept: u64,
    pub torn_tails: Vec<TornTail>,
    pub quarantined: Vec<Quarantined>,
    pub temp_files_removed: Vec<String>,
    /// Table files no manifest references (outputs of a step that never published).
    pub orphans_removed: Vec<String>,
    /// Log segments a manifest already covers (a step that published but did not clean up).
    pub staged_segments_removed: Vec<String>,
    pub old_manifests_removed: Vec<String>,
    /// Segment files left by a crash while a segment was being created (no data in them).
    pub empty_segment_files_removed: Vec<String>,
    /// `(durable reservation, next number used)` when the disk held sequence numbers at or
    /// above the reservation.
    pub seq_reservation_repaired: Option<(u64, u64)>,
}

impl RecoveryReport {
    /// Recovery changed nothing on disk.
    pub fn is_clean(&self) -> bool {
        self.torn_tails.is_empty()
            && self.quarantined.is_empty()
            && self.temp_files_removed.is_empty()
            && self.orphans_removed.is_empty()
            && self.staged_segments_removed.is_empty()
            && self.old_manifests_removed.is_empty()
            && self.empty_segment_files_removed.is_empty()
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "manifest version {}: {} files, {} published rows; {} live segments, {} staged rows",
            self.manifest_version,
            self.published_files,
            self.published_rows,
            self.live_segments,
            self.staged_rows
        )?;
        if self.unacknowledged_parts_kept > 0 {
            writeln!(
                f,
                "kept {} unacknowledged parts ({} rows) that reached the disk whole",
                self.unacknowledged_parts_kept, self.unacknowledged_rows_kept
            )?;
        }
        for t in &self.torn_tails {
            write!(
                f,
                "truncated {}: dropped {} frames ({} bytes)",
                t.file, t.frames, t.bytes
            )?;
            match &t.malformed {
                Some(why) => writeln!(f, " — {why}")?,
                None => writeln!(f)?,
            }
        }
        for q in &self.quarantined {
            writeln!(f, "quarantined {} as {}: {}", q.file, q.moved_to, q.reason)?;
        }
        for (what, list) in [
            ("removed temp file", &self.temp_files_removed),
            ("removed orphan", &self.orphans_removed),
            ("removed staged segment file", &self.staged_segments_removed),
            ("removed old manifest", &self.old_manifests_removed),
            (
                "removed empty segment file",
                &self.empty_segment_files_removed,
            ),
        ] {
            for name in list {
                writeln!(f, "{what} {name}")?;
            }
        }
        if let Some((reserved, next)) = self.seq_reservation_repaired {
            writeln!(
                f,
                "sequence reservation {reserved} was below numbers on disk; continuing at {next}"
            )?;
        }
        Ok(())
    }
}

/// A log segment recovery kept: its parts, in log order.
#[derive(Clone, Debug)]
pub struct LiveSegment {
    pub number: u64,
    pub parts: Vec<PartMeta>,
}

/// Everything the pipeline needs to resume.
#[derive(Debug)]
pub struct Recovered {
    pub manifest: Manifest,
    /// The table schema (user columns), from the manifest or the first live frame.
    pub schema: Option<Schema>,
    /// Every acknowledged (or durably kept) row, by source: published plus live segments.
    pub ledger: BTreeMap<String, SourceState>,
    pub live_segments: Vec<LiveSegment>,
    /// First segment number never used on disk.
    pub next_segment: u64,
    pub next_seq: u64,
    /// The durable reservation: numbers below it may be stamped without reserving.
    pub seq_reserved: u64,
    pub next_file_id: u64,
    pub report: RecoveryReport,
}

/// How recovery retries.
#[derive(Clone, Copy, Debug)]
pub struct RecoveryOptions {
    /// Further attempts of a failed namespace operation (unlink, rename, create_dir, set_len).
    /// A failed `sync` is never retried: after a failed fsync nothing can be concluded about
    /// the data, so recovery reports it and the next open starts over.
    pub retries: u32,
    pub retry_sleep: Duration,
}

impl Default for RecoveryOptions {
    fn default() -> Self {
        Self {
            retries: 3,
            retry_sleep: Duration::from_millis(10),
        }
    }
}

struct Recovery<'a, F: Fs, C: Clock> {
    fs: &'a F,
    clock: &'a C,
    layout: &'a Layout,
    options: RecoveryOptions,
    twins: Twins,
    report: RecoveryReport,
}

fn is_not_found(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound
}

/// Runs recovery on `layout.root`.
pub async fn recover<F: Fs, C: Clock>(
    fs: &F,
    clock: &C,
    layout: &Layout,
    options: RecoveryOptions,
) -> Result<Recovered> {
    recover_with(fs, clock, layout, options, Twins::NONE).await
}

/// Recovery with some guards turned off (`twins`); the pipeline passes its config's.
pub(crate) async fn recover_with<F: Fs, C: Clock>(
    fs: &F,
    clock: &C,
    layout: &Layout,
    options: RecoveryOptions,
    twins: Twins,
) -> Result<Recovered> {
    let mut r = Recovery {
        fs,
        clock,
        layout,
        options,
        twins,
        report: RecoveryReport::default(),
    };
    r.run().await
}

/// Step 4 of recovery alone: removes the leftovers of half-done steps under `manifest`. Only
/// the `drain_on_ingest_only` twin needs it on its own (real recovery runs it on open).
#[cfg(feature = "twins")]
pub(crate) async fn drain<F: Fs, C: Clock>(
    fs: &F,
    clock: &C,
    layout: &Layout,
    options: RecoveryOptions,
    manifest: &Manifest,
) -> Result<RecoveryReport> {
    let mut r = Recovery {
        fs,
        clock,
        layout,
        options,
        twins: Twins::NONE,
        report: RecoveryReport::default(),
    };
    r.remove_garbage(manifest).await?;
    Ok(r.report)
}

impl<F: Fs, C: Clock> Recovery<'_, F, C> {
    /// Retries an idempotent namespace operation a bounded number of times.
    async fn retry<T, Fut>(&self, mut op: impl FnMut() -> Fut) -> io::Result<T>
    where
        Fut: Future<Output = io::Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.options.retries && !is_not_found(&e) => {
                    attempt += 1;
                    tracing::warn!(attempt, error = %e, "recovery step failed; retrying");
                    self.clock.sleep(self.options.retry_sleep).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Unlinks `path`; a file already gone counts as done (recovery may be re-running).
    async fn remove(&self, path: &Path) -> io::Result<()> {
        match self.retry(|| self.fs.unlink(path)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other,
        }
    }

    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.layout.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    async fn ensure_dir(&self, dir: &Path) -> Result<bool> {
        if self.fs.exists(dir).await? {
            return Ok(false);
        }
        self.retry(|| self.fs.create_dir_all(dir)).await?;
        Ok(true)
    }

    async fn quarantine(&mut self, dir: &Path, name: &str, reason: String) -> Result<()> {
        let qdir = self.layout.quarantine_dir();
        if self.ensure_dir(&qdir).await? {
            self.fs.sync_dir(&self.layout.root).await?;
        }
        let taken = self.fs.list_dir(&qdir).await?;
        let mut n = 0;
        let target = loop {
            let candidate = format!("{name}.{n}");
            if !taken.iter().any(|e| e.name == candidate) {
                break candidate;
            }
            n += 1;
        };
        let from = dir.join(name);
        let to = qdir.join(&target);
        self.retry(|| self.fs.rename(&from, &to)).await?;
        self.fs.sync_dir(&qdir).await?;
        self.fs.sync_dir(dir).await?;
        tracing::warn!(file = %from.display(), %reason, "quarantined");
        self.report.quarantined.push(Quarantined {
            file: self.relative(&from),
            moved_to: self.relative(&to),
            reason,
        });
        Ok(())
    }

    async fn run(&mut self) -> Result<Recovered> {
        let root = self.layout.root.clone();
        // 1. Directories.
        let missing = crate::commit::missing_dirs(self.fs, &root).await?;
        if !missing.is_empty() {
            self.retry(|| self.fs.create_dir_all(&root)).await?;
            crate::commit::sync_new_dirs(self.fs, &missing).await?;
        }
        let mut root_changed = false;
        for dir in [self.layout.log_dir(), self.layout.data_dir()] {
            root_changed |= self.ensure_dir(&dir).await?;
        }
        if root_changed {
            self.fs.sync_dir(&root).await?;
        }

        // 2. Manifests, newest first.
        let manifest = self.pick_manifest().await?;
        self.report.manifest_version = manifest.version;
        self.report.published_files = manifest.files.len();
        self.report.published_rows = manifest.rows();

        // 3. Every file of the manifest is there and its footer agrees.
        self.check_published(&manifest).await?;

        // 4. Garbage.
        let max_orphan_id = if self.twins.drain_on_ingest_only {
            0
        } else {
            self.remove_garbage(&manifest).await?
        };

        // 5. Live segments.
        let live_segments = self.recover_segments(&manifest).await?;

        // 6. Ledger and allocator.
        let mut ledger = manifest.sources.clone();
        let mut max_seq = manifest.files.iter().map(|f| f.seq_max).max();
        let mut schema = manifest.schema.clone();
        for segment in &live_segments {
            // The twin counts a segment the manifest already covers as new rows.
            let replayed = segment.number <= manifest.log_through;
            for part in &segment.parts {
                let state = ledger.entry(part.source.clone()).or_default();
                if !replayed && (part.first_row != state.rows || state.complete) {
                    return Err(Error::corrupt(
                        self.layout.segment_log(segment.number),
                        format!(
                            "part of source {:?} starts at row {} but {} rows{} are recorded before it",
                            part.source,
                            part.first_row,
                            state.rows,
                            if state.complete { " (complete)" } else { "" }
                        ),
                    ));
                }
                state.rows += part.rows;
                state.complete |= part.last;
                self.report.staged_rows += part.rows;
                if part.rows > 0 {
                    max_seq = max_seq.max(Some(part.seq_end() - 1));
                }
            }
        }
        if schema.is_none() {
            schema = self.first_live_schema(&live_segments).await?;
        }
        let seq_reserved = self.read_seq_reservation().await?;
        let next_seq = match max_seq {
            Some(max) if max >= seq_reserved => {
                self.report.seq_reservation_repaired = Some((seq_reserved, max + 1));
                max + 1
            }
            _ => seq_reserved,
        };

        self.report.live_segments = live_segments.len();
        let next_segment = live_segments
            .last()
            .map_or(manifest.log_through, |s| s.number)
            .max(manifest.log_through)
            + 1;
        let next_file_id = manifest.next_file_id.max(max_orphan_id + 1);
        Ok(Recovered {
            schema,
            ledger,
            live_segments,
            next_segment,
            next_seq,
            seq_reserved,
            next_file_id,
            report: std::mem::take(&mut self.report),
            manifest,
        })
    }

    async fn pick_manifest(&mut self) -> Result<Manifest> {
        let root = self.layout.root.clone();
        let versions = crate::read::manifest_versions(self.fs, self.layout).await?;
        let mut current: Option<Manifest> = None;
        let mut removed_any = false;
        for version in versions {
            let name = layout::manifest_name(version);
            if let Some(m) = &current {
                // Keep the version before the current one; older ones are superseded.
                if version + 1 < m.version {
                    self.remove(&root.join(&name)).await?;
                    self.report.old_manifests_removed.push(name);
                    removed_any = true;
                }
                continue;
            }
            let bytes = self.fs.read(&root.join(&name)).await?;
            match Manifest::decode_version(&bytes, version) {
                Ok(m) => current = Some(m),
                Err(reason) => self.quarantine(&root, &name, reason).await?,
            }
        }
        if removed_any {
            self.fs.sync_dir(&root).await?;
        }
        Ok(current.unwrap_or_else(Manifest::empty))
    }

    async fn check_published(&self, manifest: &Manifest) -> Result<()> {
        if self.twins.no_restart_check {
            return Ok(());
        }
        let source_rows = manifest.source_rows();
        if manifest.rows() != source_rows {
            return Err(Error::MissingRows {
                acknowledged: source_rows,
                found: manifest.rows(),
                detail: format!(
                    "manifest version {} lists files holding {} rows but its ledger records {}",
                    manifest.version,
                    manifest.rows(),
                    source_rows
                ),
            });
        }
        let mut missing = Vec::new();
        let mut found = 0;
        for entry in &manifest.files {
            let path = self.layout.table_file(entry.level, entry.id);
            let name = self.relative(&path);
            match table::read_footer(self.fs, &path).await {
                Ok(footer) => match footer.disagreement(entry) {
                    None => found += entry.rows,
                    Some(why) => missing.push(format!("{name}: {why}")),
                },
                Err(Error::Io { source }) if is_not_found(&source) => {
                    missing.push(format!("{name} ({} rows) is missing", entry.rows));
                }
                Err(Error::Corrupt { detail, .. }) => {
                    missing.push(format!(
                        "{name} ({} rows) is unreadable: {detail}",
                        entry.rows
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::MissingRows {
            acknowledged: manifest.rows(),
            found,
            detail: format!(
                "manifest version {}: {}",
                manifest.version,
                missing.join("; ")
            ),
        })
    }

    /// Removes temp files, unreferenced table files and staged segments. Returns the highest
    /// table file id seen among orphans (0 if none), so that ids are never reused.
    async fn remove_garbage(&mut self, manifest: &Manifest) -> Result<u64> {
        let manifest_quarantined = !self.report.quarantined.is_empty();
        let mut max_orphan_id = 0;
        for (kind, dir) in [
            (StoreDir::Root, self.layout.root.clone()),
            (StoreDir::Data, self.layout.data_dir()),
            (StoreDir::Log, self.layout.log_dir()),
        ] {
            let mut changed = false;
            for entry in self.fs.list_dir(&dir).await? {
                let leftover = match manifest.leftover(kind, &entry.name) {
                    Some(leftover) if !entry.is_dir => leftover,
                    _ => continue,
                };
                let path = dir.join(&entry.name);
                if leftover == Leftover::Staged && self.twins.replay_consumed_segments {
                    continue;
                }
                if let Leftover::Unreferenced { id } = leftover {
                    max_orphan_id = max_orphan_id.max(id);
                    if manifest_quarantined {
                        // A newer manifest was unreadable: this file may hold rows only it
                        // published. Keep it for an operator instead of deleting it.
                        let reason = "unreferenced while a newer manifest was quarantined";
                        self.quarantine(&dir, &entry.name, reason.to_string())
                            .await?;
                        continue;
                    }
                }
                self.remove(&path).await?;
                changed = true;
                let name = self.relative(&path);
                match leftover {
                    Leftover::Temp => self.report.temp_files_removed.push(name),
                    Leftover::Unreferenced { .. } => self.report.orphans_removed.push(name),
                    Leftover::Staged => self.report.staged_segments_removed.push(name),
                }
            }
            if changed {
                self.fs.sync_dir(&dir).await?;
            }
        }
        Ok(max_orphan_id)
    }

    async fn recover_segments(&mut self, manifest: &Manifest) -> Result<Vec<LiveSegment>> {
        let logs = self.layout.log_dir();
        let mut numbers: Vec<u64> = self
            .fs
            .list_dir(&logs)
            .await?
            .iter()
            .filter_map(|e| match layout::parse_segment_name(&e.name) {
                Some(SegmentFile::Log(n) | SegmentFile::Ack(n)) => Some(n),
                None => None,
            })
            .filter(|&n| n > manifest.log_through || self.twins.replay_consumed_segments)
            .collect();
        numbers.dedup();
        let mut live = Vec::new();
        for number in numbers {
            if let Some(segment) = self.recover_segment(number).await? {
                live.push(segment);
            }
        }
        // Everything counted as present must be durable, names included; this also makes the
        // removals above durable.
        self.fs.sync_dir(&logs).await?;
        Ok(live)
    }

    async fn read_if_exists(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        read_if_exists(self.fs, path).await
    }

    /// Makes a segment file's valid prefix durable: a torn or damaged tail is truncated (and
    /// reported), then the file is synced — it may hold pending writes recovery now counts on.
    async fn settle<T>(&mut self, path: &Path, len: u64, scan: &log::Scanned<T>) -> Result<()> {
        let file = self.fs.open(path, OpenMode::Write).await?;
        if scan.valid_len < len {
            self.retry(|| file.set_len(scan.valid_len)).await?;
            self.report.torn_tails.push(TornTail {
                file: self.relative(path),
                frames: scan.tail_frames.max(1),
                bytes: len - scan.valid_len,
                malformed: scan.malformed.clone(),
            });
        }
        file.sync().await?;
        Ok(())
    }

    async fn recover_segment(&mut self, number: u64) -> Result<Option<LiveSegment>> {
        let log_path = self.layout.segment_log(number);
        let ack_path = self.layout.segment_ack(number);
        let log_bytes = self.read_if_exists(&log_path).await?;
        let ack_bytes = self.read_if_exists(&ack_path).await?;

        let acks = ack_bytes.as_deref().map(|b| log::scan_ack(b, number));
        let records = acks.as_ref().map_or(&[][..], |a| &a.items[..]);
        let acked_rows: u64 = records.iter().map(|r| r.meta.rows).sum();

        let scan = log_bytes.as_deref().map(|b| log::scan_log(b, number));
        let header_ok = scan.as_ref().is_some_and(|s| s.header_ok);
        if !header_ok {
            if !records.is_empty() && !self.twins.no_restart_check {
                return Err(Error::MissingRows {
                    acknowledged: acked_rows,
                    found: 0,
                    detail: format!(
                        "{} acknowledges {} parts but {} is {}",
                        self.relative(&ack_path),
                        records.len(),
                        self.relative(&log_path),
                        if log_bytes.is_none() {
                            "missing"
                        } else {
                            "unreadable"
                        }
                    ),
                });
            }
            // A crash while the segment was being created: nothing was ever acknowledged in it.
            for (path, present) in [
                (&ack_path, ack_bytes.is_some()),
                (&log_path, log_bytes.is_some()),
            ] {
                if present {
                    self.remove(path).await?;
                    self.report
                        .empty_segment_files_removed
                        .push(self.relative(path));
                }
            }
            return Ok(None);
        }
        let scan = scan.expect("header_ok implies a scan");
        let log_len = log_bytes.as_ref().map_or(0, |b| b.len() as u64);

        // Every acknowledged part must be a whole frame of the valid prefix.
        let unmatched: Vec<&log::AckRecord> = records.iter().filter(|r| !scan.holds(r)).collect();
        if !unmatched.is_empty() && !self.twins.no_restart_check {
            let lost: u64 = unmatched.iter().map(|r| r.meta.rows).sum();
            let first = unmatched[0];
            return Err(Error::MissingRows {
                acknowledged: acked_rows,
                found: acked_rows - lost,
                detail: format!(
                    "{} acknowledges {} parts ({} rows) that {} does not hold whole; the first is source {:?} rows {}..{} at offset {}",
                    self.relative(&ack_path),
                    unmatched.len(),
                    lost,
                    self.relative(&log_path),
                    first.meta.source,
                    first.meta.first_row,
                    first.meta.first_row + first.meta.rows,
                    first.log_offset
                ),
            });
        }

        self.settle(&log_path, log_len, &scan).await?;
        if let (Some(acks), Some(bytes)) = (&acks, &ack_bytes) {
            if acks.header_ok {
                self.settle(&ack_path, bytes.len() as u64, acks).await?;
            } else {
                // Torn while being created, before any acknowledgement.
                self.remove(&ack_path).await?;
                self.report
                    .empty_segment_files_removed
                    .push(self.relative(&ack_path));
            }
        }

        for part in &scan.items {
            let acked = records.iter().any(|r| r.log_offset == part.frame.offset);
            if !acked {
                self.report.unacknowledged_parts_kept += 1;
                self.report.unacknowledged_rows_kept += part.meta.rows;
            }
        }
        Ok(Some(LiveSegment {
            number,
            parts: scan.items.into_iter().map(|p| p.meta).collect(),
        }))
    }

    async fn first_live_schema(&self, live: &[LiveSegment]) -> Result<Option<Schema>> {
        let Some(segment) = live.iter().find(|s| !s.parts.is_empty()) else {
            return Ok(None);
        };
        let path = self.layout.segment_log(segment.number);
        let bytes = self.fs.read(&path).await?;
        let scan = log::scan_log(&bytes, segment.number);
        let Some(part) = scan.items.first() else {
            return Ok(None);
        };
        let schema = log::decode_schema(&bytes[part.ipc.clone()])
            .map_err(|e| Error::corrupt(&path, e.to_string()))?;
        let user: Vec<_> = schema
            .fields()
            .iter()
            .filter(|f| f.name() != table::SEQ_COLUMN)
            .cloned()
            .collect();
        Ok(Some(Schema::new(user)))
    }

    async fn read_seq_reservation(&mut self) -> Result<u64> {
        let path = self.layout.root.join(layout::SEQ_FILE);
        match self.read_if_exists(&path).await? {
            None => Ok(0),
            Some(bytes) => match seqalloc::decode(&bytes) {
                Ok(reserved) => Ok(reserved),
                Err(reason) => {
                    let root = self.layout.root.clone();
                    self.quarantine(&root, layout::SEQ_FILE, reason).await?;
                    Ok(0)
                }
            },
        }
    }
}

/// Reads a whole file, or `None` if it does not exist.
pub(crate) async fn read_if_exists<F: Fs>(fs: &F, path: &Path) -> Result<Option<Vec<u8>>> {
    match fs.read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
