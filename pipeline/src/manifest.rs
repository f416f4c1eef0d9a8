//! The manifest: the table's state at one version of the Delta log, the single commit point
//! of published data (see `docs/protocol.md`). On disk it is the replay of the commits in
//! `_delta_log/`; this is what the pipeline holds in memory.

use std::collections::BTreeMap;

use arrow_schema::Schema;
use serde::{Deserialize, Serialize};

/// One published table file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub id: u64,
    pub level: u32,
    pub rows: u64,
    /// Smallest and largest sequence number of the file's rows (inclusive).
    pub seq_min: u64,
    pub seq_max: u64,
    pub bytes: u64,
    /// CRC-32C of the file's `bytes` bytes, computed over exactly what was written and
    /// recorded at commit; merges, exports and `verify --deep` check it before trusting the
    /// bytes. `None` in manifests of versions before it was recorded (the field is then absent
    /// from the JSON): such files are read unchecked, and `verify --deep` says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<u32>,
    /// Delta's `add.stats` of the file with column statistics (`numRecords` and the bounds and
    /// null counts of every top-level primitive column); `None` when the file has `numRecords`
    /// alone (see `crate::stats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
}

/// `<id> (level <l>, seq <min>..=<max>)`: how errors and reports name a file among others.
impl std::fmt::Display for FileEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (level {}, seq {}..={})",
            self.id, self.level, self.seq_min, self.seq_max
        )
    }
}

/// What the ledger holds for one source: the number of rows acknowledged (always a prefix of
/// the source), whether its last part was acknowledged, and the fingerprint of the content
/// those rows were taken from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    pub rows: u64,
    pub complete: bool,
    /// Bound by the source's first acknowledged part; every later part must carry the same
    /// one, so rows of two different contents never join one source. `None` when the caller
    /// does not identify content (the harness's workloads, `Pipeline::ingest_part`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
}

/// The identity of a source's content, chosen by the caller: `tally run` records the input
/// file's size in bytes and an XXH3-64 checksum of its bytes. Two fingerprints are equal only
/// if both fields are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub bytes: u64,
    pub checksum: u64,
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes, checksum {:016x}", self.bytes, self.checksum)
    }
}

impl Fingerprint {
    /// `f` for messages: the fingerprint, or that none was given.
    pub fn describe(f: Option<Fingerprint>) -> String {
        f.map_or_else(|| "not identified".into(), |f| f.to_string())
    }
}

impl SourceState {
    /// Whether the ledger holds anything of the source (rows, or its completion).
    pub fn is_known(&self) -> bool {
        self.rows > 0 || self.complete
    }

    /// Whether a part carrying `fingerprint` may continue this source: a source the ledger
    /// does not know yet takes any; a known one only its own.
    pub fn accepts(&self, fingerprint: Option<Fingerprint>) -> bool {
        !self.is_known() || self.fingerprint == fingerprint
    }
}

/// A table file a commit removed. Its bytes stay on disk for readers of older versions until
/// the retention period after its removal has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub level: u32,
    pub id: u64,
    pub bytes: u64,
    /// When the commit removing it was made: milliseconds since the Unix epoch, on the
    /// world's clock.
    pub removed_at_ms: i64,
}

impl Tombstone {
    /// Whether the retention period after the removal has passed at `now_ms`. A clock that
    /// went back only delays it.
    pub fn expired(&self, now_ms: i64, retention: std::time::Duration) -> bool {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        now_ms.saturating_sub(self.removed_at_ms) >= retention_ms
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The Delta version: commit `_delta_log/<version>.json` made this state.
    pub version: u64,
    /// The Delta table id (`metaData.id`), chosen when the table was created.
    pub table_id: String,
    pub next_file_id: u64,
    /// Every log segment numbered at or below this has been staged (segments start at 1).
    pub log_through: u64,
    /// The table's columns without the sequence column; `None` until the first batch.
    pub schema: Option<Schema>,
    /// Live files, ordered by `seq_min`.
    pub files: Vec<FileEntry>,
    /// The ledger of every published row, by source.
    pub sources: BTreeMap<String, SourceState>,
    /// Files removed by a commit whose bytes may still be on disk, oldest removal first.
    pub tombstones: Vec<Tombstone>,
    /// Tombstones of files removed at or before this (ms, the writer's clock) may be missing:
    /// a checkpoint dropped them once their retention passed. Never decreases, so that a
    /// clock gone back cannot make a later checkpoint claim to keep what an earlier one
    /// dropped. `i64::MIN` for a table replayed from commit 0.
    #[serde(default = "no_tombstone_dropped")]
    pub tombstones_dropped_through_ms: i64,
}

fn no_tombstone_dropped() -> i64 {
    i64::MIN
}

/// One of the store's directories holding files recovery may remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreDir {
    /// `_tally/`.
    Private,
    /// `_delta_log/`.
    DeltaLog,
    Data,
    /// `_tally/log/`.
    Log,
}

/// A file recovery removes (protocol "Recover", step 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leftover {
    /// `*.tmp`: a write that never reached its rename.
    Temp,
    /// A table file no commit of the log references, live or removed: the output of a step
    /// that never committed.
    Unreferenced { id: u64 },
    /// A table file a commit removed, past its retention period: vacuumed.
    Expired { id: u64 },
    /// A log segment file at or below `log_through`: already staged.
    Staged,
}

impl Leftover {
    pub fn describe(self) -> &'static str {
        match self {
            Leftover::Temp => "a temp file",
            Leftover::Unreferenced { .. } => "referenced by no commit",
            Leftover::Expired { .. } => "removed by a commit and past its retention",
            Leftover::Staged => "a log segment already staged",
        }
    }
}

impl Manifest {
    /// Adds a table file just written. Its id was never used: ids are taken in order and
    /// published in order.
    pub(crate) fn add_new_file(&mut self, entry: FileEntry) {
        assert!(
            entry.id >= self.next_file_id,
            "file id {} below the manifest's next id {}",
            entry.id,
            self.next_file_id
        );
        self.next_file_id = self.next_file_id.max(entry.id + 1);
        self.files.push(entry);
        self.files.sort_by_key(|f| f.seq_min);
    }

    /// Advances `source`'s published rows by rows `first_row..first_row + rows` of content
    /// `fingerprint` (the source complete when `last`). Refused, with what refused it, unless
    /// the rows continue the published ones and the content is the source's.
    pub(crate) fn continue_source(
        &mut self,
        source: &str,
        (first_row, rows): (u64, u64),
        fingerprint: Option<Fingerprint>,
        last: bool,
    ) -> std::result::Result<(), String> {
        let state = self.sources.entry(source.to_owned()).or_default();
        if first_row != state.rows || !state.accepts(fingerprint) {
            return Err(format!(
                "source {source:?}: rows from {first_row} (content {}) do not continue the {} published rows (content {})",
                Fingerprint::describe(fingerprint),
                state.rows,
                Fingerprint::describe(state.fingerprint)
            ));
        }
        state.fingerprint = fingerprint;
        state.rows += rows;
        state.complete |= last;
        Ok(())
    }

    /// Whether the file `name` in `dir` is a leftover under this manifest. A removed file is
    /// one only once `expired` says its retention has passed.
    pub fn leftover(
        &self,
        dir: StoreDir,
        name: &str,
        expired: impl Fn(&Tombstone) -> bool,
    ) -> Option<Leftover> {
        if crate::layout::is_own_temp(name) {
            return Some(Leftover::Temp);
        }
        match dir {
            StoreDir::Private | StoreDir::DeltaLog => None,
            StoreDir::Data => {
                let (level, id) = crate::layout::parse_table_file_name(name)?;
                if self.files.iter().any(|f| f.level == level && f.id == id) {
                    return None;
                }
                match self.tombstone(level, id) {
                    Some(t) if expired(t) => Some(Leftover::Expired { id }),
                    Some(_) => None,
                    None => Some(Leftover::Unreferenced { id }),
                }
            }
            StoreDir::Log => match crate::layout::parse_segment_name(name)? {
                crate::layout::SegmentFile::Log(n) | crate::layout::SegmentFile::Ack(n) => {
                    (n <= self.log_through).then_some(Leftover::Staged)
                }
            },
        }
    }

    /// The removal of table file `(level, id)`, if a commit removed it.
    pub fn tombstone(&self, level: u32, id: u64) -> Option<&Tombstone> {
        self.tombstones
            .iter()
            .find(|t| t.level == level && t.id == id)
    }

    /// The state of an empty table: what commit 0 holds, and what a root without a commit
    /// reads as.
    pub fn empty() -> Self {
        Self {
            version: 0,
            table_id: String::new(),
            next_file_id: 1,
            log_through: 0,
            schema: None,
            files: Vec::new(),
            sources: BTreeMap::new(),
            tombstones: Vec::new(),
            tombstones_dropped_through_ms: i64::MIN,
        }
    }

    /// Whether the files have the shape every publish keeps: in sequence order with disjoint
    /// ranges, levels never increasing along that order (so each row is written at most once
    /// per level), each file's range wide enough for its rows, every file id below
    /// `next_file_id` (so no id is handed out twice, and no published file overwritten).
    /// Returns the first departure. Costs O(files).
    pub fn check_files(&self) -> Result<(), String> {
        for f in &self.files {
            if !(f.rows > 0 && f.seq_min <= f.seq_max && f.seq_max - f.seq_min >= f.rows - 1) {
                return Err(format!("file {f} cannot hold its {} rows", f.rows));
            }
            if f.id >= self.next_file_id {
                return Err(format!(
                    "file id {} not below next_file_id {}",
                    f.id, self.next_file_id
                ));
            }
        }
        match self
            .files
            .windows(2)
            .find(|w| !(w[0].seq_max < w[1].seq_min && w[0].level >= w[1].level))
        {
            Some(w) => Err(format!(
                "files {} and {} are out of order, overlap or interleave levels",
                w[0], w[1]
            )),
            None => Ok(()),
        }
    }

    /// Panics unless the manifest has the shape every publish keeps ([`Self::check_files`])
    /// and as many rows in its files as its ledger records. Costs O(files + sources), as
    /// encoding the manifest does.
    pub fn assert_invariants(&self) {
        if let Err(why) = self.check_files() {
            panic!("manifest version {}: {why}", self.version);
        }
        assert_eq!(
            self.rows(),
            self.source_rows(),
            "manifest version {}: rows in files vs rows its ledger records",
            self.version
        );
    }

    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    pub fn source_rows(&self) -> u64 {
        self.sources.values().map(|s| s.rows).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{DataType, Field};

    fn sample() -> Manifest {
        let mut m = Manifest::empty();
        m.version = 3;
        m.schema = Some(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        m.files.push(FileEntry {
            id: 1,
            level: 0,
            rows: 10,
            seq_min: 0,
            seq_max: 9,
            bytes: 1234,
            crc32c: Some(0xdead_beef),
            stats: None,
        });
        m.sources.insert(
            "a".into(),
            SourceState {
                rows: 10,
                complete: true,
                fingerprint: None,
            },
        );
        m
    }

    #[test]
    fn leftovers_are_what_the_manifest_does_not_hold() {
        let mut m = sample();
        m.log_through = 4;
        m.tombstones.push(Tombstone {
            level: 0,
            id: 2,
            bytes: 10,
            removed_at_ms: 5,
        });
        m.tombstones.push(Tombstone {
            level: 0,
            id: 3,
            bytes: 10,
            removed_at_ms: 50,
        });
        let data = |n: &str| m.leftover(StoreDir::Data, n, |t| t.removed_at_ms < 10);
        assert_eq!(data("L0-00000000000000000001.parquet"), None, "live");
        assert_eq!(
            data("L1-00000000000000000001.parquet"),
            Some(Leftover::Unreferenced { id: 1 }),
            "same id, other level"
        );
        assert_eq!(
            data("L0-00000000000000000001.parquet.tmp"),
            Some(Leftover::Temp)
        );
        assert_eq!(
            data("L0-00000000000000000002.parquet"),
            Some(Leftover::Expired { id: 2 }),
            "removed, retention passed"
        );
        assert_eq!(
            data("L0-00000000000000000003.parquet"),
            None,
            "removed, still retained"
        );
        assert_eq!(data("notes.txt"), None, "not ours: left alone");
        let log = |n: &str| m.leftover(StoreDir::Log, n, |_| true);
        assert_eq!(log("00000000000000000004.ack"), Some(Leftover::Staged));
        assert_eq!(log("00000000000000000005.log"), None, "live segment");
        assert_eq!(m.leftover(StoreDir::Private, "SEQ", |_| true), None);
        assert_eq!(
            m.leftover(StoreDir::Private, "SEQ.tmp", |_| true),
            Some(Leftover::Temp)
        );
    }
}
