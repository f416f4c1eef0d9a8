//! An external reader of the store as a Delta Lake table, written from the Delta transaction
//! protocol alone: it shares no code with the pipeline's `delta` module or `Manifest`, so that
//! what it sees is what another engine pointed at the store would see, not what tally thinks
//! it wrote.
//!
//! It lists `_delta_log/`, parses every commit `<version:020>.json` from 0 as JSON lines
//! (`serde_json::Value`, no typed actions), replays `add` and `remove` by path to the file set
//! of a version (the newest, or any older one: time travel), and reads each file of that set
//! with the `parquet` crate: present, exactly `add.size` bytes, a whole Parquet file whose row
//! count is the one `add.stats` gives, with a `tally_seq` column. It returns the `tally_seq`
//! values. Checkpoints are ignored: tally never deletes a commit, so every version can be
//! replayed from commit 0 (a log that does not start at 0 is an error here).
//!
//! - `log`: listing and parsing the log, the file set and removals of a version;
//! - `files`: reading the files of a version, with their decoded values cached by content.

mod files;
mod log;
#[cfg(test)]
mod tests;

use std::fmt;

pub use files::{DeltaCache, VersionRead, read_version};
pub use log::{CLOCK_SLACK_MS, DeltaLog, read_log};

/// Why the reader cannot read a version whole. Every one of these is an error an engine
/// reports too (a torn commit, a gap in the log, a missing or short file), or a table this
/// reader, and engines without the feature, must refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeltaError {
    /// A file or directory could not be read.
    Io { path: String, error: String },
    /// A commit is missing while a later one exists (or commit 0 is missing).
    Gap { missing: u64, newest: u64 },
    /// A commit is not JSON lines of actions (a torn write, garbage).
    Commit { version: u64, why: String },
    /// No `protocol` or no `metaData` action at or before the version.
    NoMetadata { version: u64, what: &'static str },
    /// The table needs a reader feature this reader does not have.
    Unsupported { version: u64, why: String },
    /// A file of the version is not on disk.
    MissingFile { version: u64, path: String },
    /// A file of the version does not have the size its `add` gives: torn, or replaced.
    WrongSize {
        version: u64,
        path: String,
        size: u64,
        actual: u64,
    },
    /// A file of the version is not a Parquet file with a `tally_seq` long column, or holds
    /// another number of rows than its `add.stats` says.
    BadFile {
        version: u64,
        path: String,
        why: String,
    },
    /// Two rows of the version have one `tally_seq`.
    DuplicateSeq { version: u64, seq: i64 },
}

impl fmt::Display for DeltaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeltaError::Io { path, error } => write!(f, "reading {path}: {error}"),
            DeltaError::Gap { missing, newest } => {
                write!(f, "commit {missing} is missing, commit {newest} is there")
            }
            DeltaError::Commit { version, why } => write!(f, "commit {version}: {why}"),
            DeltaError::NoMetadata { version, what } => {
                write!(f, "no {what} action at or before version {version}")
            }
            DeltaError::Unsupported { version, why } => {
                write!(f, "version {version} cannot be read: {why}")
            }
            DeltaError::MissingFile { version, path } => {
                write!(f, "version {version}: {path} is missing")
            }
            DeltaError::WrongSize {
                version,
                path,
                size,
                actual,
            } => write!(
                f,
                "version {version}: {path} has {actual} bytes, its add says {size}"
            ),
            DeltaError::BadFile { version, path, why } => {
                write!(f, "version {version}: {path}: {why}")
            }
            DeltaError::DuplicateSeq { version, seq } => {
                write!(f, "version {version} holds tally_seq {seq} twice")
            }
        }
    }
}

impl std::error::Error for DeltaError {}
