//! What recovery reports: what it found and what it changed on disk.

use std::fmt;

use serde::Serialize;

use crate::damage::Damage;

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
    /// Table files no commit references (outputs of a step that never committed).
    pub orphans_removed: Vec<String>,
    /// Table files a commit removed whose retention has passed: deleted (not a repair).
    pub vacuumed: Vec<String>,
    /// Log segments a manifest already covers (a step that published but did not clean up).
    pub staged_segments_removed: Vec<String>,
    /// No commit existed: recovery created the table (commit 0). Not a repair.
    pub table_created: bool,
    /// Segment files left by a crash while a segment was being created (no data in them).
    pub empty_segment_files_removed: Vec<String>,
    /// `(durable reservation, next number used)` when the disk held sequence numbers at or
    /// above the reservation.
    pub seq_reservation_repaired: Option<(u64, u64)>,
    /// A commit was damaged and the loss accepted (`RecoveryOptions::accept_loss`):
    /// what the rollback lost. Its files and manifests are in `quarantined`.
    pub rolled_back: Option<Damage>,
    /// The checkpoint the log was replayed from (`None`: from commit 0). Not a repair.
    pub checkpoint: Option<u64>,
    /// `_last_checkpoint` named no usable checkpoint (a bad or missing one, an older one, or
    /// it was unreadable) and was rewritten or removed: what it said and what it says now.
    /// Engines reading the table fail on a hint naming a bad or missing checkpoint until then.
    pub last_checkpoint_repaired: Option<String>,
}

impl RecoveryReport {
    /// Recovery changed nothing on disk.
    pub fn is_clean(&self) -> bool {
        self.torn_tails.is_empty()
            && self.rolled_back.is_none()
            && self.quarantined.is_empty()
            && self.temp_files_removed.is_empty()
            && self.orphans_removed.is_empty()
            && self.staged_segments_removed.is_empty()
            && self.empty_segment_files_removed.is_empty()
            && self.last_checkpoint_repaired.is_none()
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "version {}: {} files, {} published rows; {} live segments, {} staged rows",
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
        if let Some(d) = &self.rolled_back {
            writeln!(
                f,
                "rolled back to version {} over the damaged {}; lost {}",
                d.last_good_version,
                d.damaged_list(),
                d.loss()
            )?;
        }
        for q in &self.quarantined {
            writeln!(f, "quarantined {} as {}: {}", q.file, q.moved_to, q.reason)?;
        }
        for (what, list) in [
            ("removed temp file", &self.temp_files_removed),
            ("removed orphan", &self.orphans_removed),
            ("removed staged segment file", &self.staged_segments_removed),
            ("vacuumed", &self.vacuumed),
            (
                "removed empty segment file",
                &self.empty_segment_files_removed,
            ),
        ] {
            for name in list {
                writeln!(f, "{what} {name}")?;
            }
        }
        if let Some(repair) = &self.last_checkpoint_repaired {
            writeln!(f, "{}: {repair}", crate::layout::LAST_CHECKPOINT)?;
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
