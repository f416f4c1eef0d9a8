//! What the oracle is told to expect of a disk, and what a passing check saw.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

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
    /// A negative control makes the disk lie (a sync that syncs nothing, a rename ahead of its
    /// data): repairs only a lying disk explains are then expected, not violations.
    pub disk_may_lie: bool,
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
