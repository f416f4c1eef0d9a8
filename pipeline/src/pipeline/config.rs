//! The pipeline's tuning and the values its API returns.

use std::ops::Range;

use serde::Serialize;

use crate::manifest::FileEntry;
use crate::recover::RecoveryOptions;
use crate::table::TableOptions;

/// Tuning of a pipeline. Every field has a production default; tests shrink them to reach
/// rotation, reservation and merges with few rows.
#[derive(Clone, Debug)]
pub struct Config {
    /// A log segment is sealed (and later staged into one level-0 file) once it holds this
    /// many bytes: the target size of level-0 files, before compression.
    pub segment_bytes: u64,
    /// Sequence numbers reserved per durable reservation.
    pub seq_block: u64,
    /// Files of one level merged together (at least 2).
    pub merge_fan_in: usize,
    /// Highest level; files there are never merged. Bytes written per row are bounded by
    /// `max_level + 1` table writes.
    pub max_level: u32,
    pub table: TableOptions,
    /// Rows per batch when reading table files.
    pub read_batch_rows: usize,
    pub recovery: RecoveryOptions,
    /// A checkpoint is written after every commit whose version is a multiple of this (0:
    /// never), so that opening the store reads at most this many commits after the newest
    /// checkpoint. Default 10, Delta's `delta.checkpointInterval`.
    pub checkpoint_interval: u64,
    /// Guards turned off, for the harness's buggy twins (test builds only).
    #[cfg(feature = "twins")]
    pub twins: crate::twins::Twins,
}

impl Config {
    /// The guards turned off: none, unless a test build set some.
    pub fn twins(&self) -> crate::twins::Twins {
        #[cfg(feature = "twins")]
        return self.twins;
        #[cfg(not(feature = "twins"))]
        crate::twins::Twins::NONE
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            seq_block: 1 << 20,
            merge_fan_in: 4,
            max_level: 3,
            table: TableOptions::default(),
            read_batch_rows: 64 * 1024,
            recovery: RecoveryOptions::default(),
            checkpoint_interval: 10,
            #[cfg(feature = "twins")]
            twins: crate::twins::Twins::NONE,
        }
    }
}

/// The answer to an ingest: when it is `Ok`, the rows it counts as written are durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ack {
    pub source: String,
    /// Rows of this part stored by this call.
    pub rows_written: u64,
    /// Rows of this part that were already acknowledged (a retry or a re-run): not stored again.
    pub rows_already_acknowledged: u64,
    /// Sequence numbers given to the rows written.
    pub seq: Option<Range<u64>>,
    /// The source's last part is acknowledged.
    pub source_complete: bool,
}

/// The published table at one manifest version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Snapshot {
    pub version: u64,
    pub files: Vec<FileEntry>,
    pub rows: u64,
}

/// Counters for benchmarks and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Group commits that wrote to the log (each costs two fsyncs: log and ack file).
    pub group_commits: u64,
    /// Parts written by those commits.
    pub parts_committed: u64,
    pub segments_staged: u64,
    /// Of those, segments read back from the log (left by an earlier run); the others were
    /// encoded from memory as they filled.
    pub segments_staged_from_log: u64,
    /// Table files a bulk load wrote and committed (each with its source's ledger).
    pub bulk_files: u64,
    pub merges: u64,
    pub manifests_published: u64,
    /// Checkpoints written (one every `checkpoint_interval` commits).
    pub checkpoints_written: u64,
    /// Removed table files deleted once their retention passed.
    pub files_vacuumed: u64,
    /// Bytes of table files written (staging, bulk loads and merging).
    pub table_bytes_written: u64,
    /// Rows written into table files (staging and merging): with the table's row count, the
    /// write amplification, at most `max_level + 1`.
    pub table_rows_written: u64,
}

/// What one `maintain` or `flush` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceReport {
    pub segments_staged: u64,
    pub merges: u64,
    pub manifest_version: u64,
}
