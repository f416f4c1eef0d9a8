//! The Delta Lake actions tally writes, as the transaction protocol spells them (camelCase
//! JSON, one action per line of a commit file). Only these are accepted when a commit is read
//! back: a line holding any other action was not written by tally.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One line of a commit file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Action {
    CommitInfo(CommitInfo),
    Protocol(Protocol),
    MetaData(MetaData),
    Add(Add),
    Remove(Remove),
    Txn(Txn),
    DomainMetadata(DomainMetadata),
}

/// Provenance of a commit. tally's first line of every commit; `tally` carries the checksum
/// of the rest of the file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitInfo {
    /// Milliseconds since the Unix epoch, on the world's clock.
    pub timestamp: i64,
    pub operation: String,
    pub operation_parameters: BTreeMap<String, String>,
    pub engine_info: String,
    pub tally: CommitSeal,
}

/// What makes a commit file checkable on its own: the CRC-32C and length of every byte after
/// the first line. A crash cannot tear a commit (it is named only after its bytes are
/// synced), so a seal that does not hold is damage, or a commit tally did not write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitSeal {
    pub format: u32,
    pub crc32c: String,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Protocol {
    pub min_reader_version: u32,
    pub min_writer_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_features: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaData {
    pub id: String,
    pub format: Format,
    /// The table's columns, `tally_seq` included, as a Delta struct type in JSON.
    pub schema_string: String,
    pub partition_columns: Vec<String>,
    pub configuration: BTreeMap<String, String>,
    pub created_time: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Format {
    pub provider: String,
    pub options: BTreeMap<String, String>,
}

/// A table file joins the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Add {
    /// Relative to the root: always `data/L<level>-<id:020>.parquet`.
    pub path: String,
    pub partition_values: BTreeMap<String, String>,
    pub size: u64,
    pub modification_time: i64,
    pub data_change: bool,
    /// JSON: `numRecords`, and the bounds and null counts of every top-level primitive column
    /// or of none (`crate::stats`); the `tally_seq` range tally reads is in `tags`.
    pub stats: String,
    pub tags: BTreeMap<String, String>,
}

/// A table file leaves the table. Its bytes stay on disk until the retention period after
/// `deletion_timestamp` has passed, for readers of older versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remove {
    pub path: String,
    pub deletion_timestamp: i64,
    pub data_change: bool,
    pub extended_file_metadata: bool,
    pub partition_values: BTreeMap<String, String>,
    pub size: u64,
    pub tags: BTreeMap<String, String>,
}

/// The rows of one source acknowledged and published: the application's transaction
/// version Delta keeps for idempotent writers (`appId` is `tally:<source>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Txn {
    pub app_id: String,
    pub version: u64,
    pub last_updated: i64,
}

/// tally's state at this version (domain `tally`): everything recovery needs beside the
/// files, as one JSON document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainMetadata {
    pub domain: String,
    pub configuration: String,
    pub removed: bool,
}

/// The rows of a table file, as `add.stats` holds them (the column statistics beside it are
/// kept as written, not parsed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub num_records: u64,
}
