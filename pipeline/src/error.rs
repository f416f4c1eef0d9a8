//! The pipeline's errors. Every variant names what it is about (a path, a source, counts), so
//! that a message alone tells an operator what went wrong and what to do.

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed. The message of `source` already names the operation and
    /// the path.
    #[error("{source}")]
    Io {
        #[from]
        source: io::Error,
    },

    /// A batch's columns differ from the table's. Nothing of the batch was written.
    #[error(
        "schema mismatch for source {source_id:?}: the table has {expected}, the batch has {found}"
    )]
    SchemaMismatch {
        source_id: String,
        expected: String,
        found: String,
    },

    /// A batch was refused before anything was written (reserved column name, no columns, ...).
    #[error("batch of source {source_id:?} refused: {reason}")]
    InvalidBatch { source_id: String, reason: String },

    /// A part of a source would leave a hole after the rows acknowledged so far.
    #[error(
        "source {source_id:?}: part starting at row {first_row} leaves a gap; {acknowledged} rows of it are acknowledged"
    )]
    SourceGap {
        source_id: String,
        first_row: u64,
        acknowledged: u64,
    },

    /// A part's content fingerprint differs from the one the ledger bound to its source:
    /// the source's content changed since rows of it were acknowledged. Nothing was written.
    #[error(
        "source {source_id:?} changed: {acknowledged} rows of it{complete} were acknowledged from content ({recorded}), \
         this part comes from content ({given}). Nothing of it was written. Way out: restore the original content to resume, \
         or ingest the new content as a new source"
    )]
    SourceChanged {
        source_id: String,
        acknowledged: u64,
        complete: &'static str,
        recorded: String,
        given: String,
    },

    /// A file the pipeline owns is malformed in a way recovery cannot set aside.
    #[error("{path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },

    /// Arrow or Parquet refused to encode or decode.
    #[error("{context}: {detail}")]
    Format { context: String, detail: String },

    /// Acknowledged rows are not on disk. Recovery refuses to continue over the loss (and a
    /// reader refuses to read past it). Recovery may already have changed the disk by then —
    /// removed leftovers, cut torn tails, set aside unreadable files — but never the only
    /// copy of an acknowledged row.
    #[error(
        "acknowledged rows are missing: {detail}. The ledger acknowledges {acknowledged} rows, the disk holds {found}. \
         Recovery deleted nothing that held the only copy of an acknowledged row (it may already have removed leftovers, \
         cut torn tails and set aside unreadable files). Way out: restore the missing files from a backup and open again, or re-ingest the \
         affected sources into a new root."
    )]
    MissingRows {
        acknowledged: u64,
        found: u64,
        detail: String,
    },

    /// A commit of the Delta log — the store's commit point — cannot be read. Opening refuses rather
    /// than roll back to the version before it, which would forget acknowledged rows; the
    /// value says what a rollback would lose and the way out (`tally recover --accept-loss`).
    /// Nothing on disk was changed.
    #[error("{0}")]
    Damaged(Box<crate::damage::Damage>),

    /// A published table file's bytes are not those recorded at commit (checksum or length),
    /// or its pages do not decode. Nothing was read from it into a new file.
    #[error(
        "{path}: {detail}. Its bytes are not those published, and tally cannot rebuild a table file. \
         Way out: restore this file from a backup and run again (merges and exports that read it refuse until then)."
    )]
    DamagedTable { path: PathBuf, detail: String },

    /// A runtime conservation check failed (merge rows in != rows out, overlapping sequence
    /// ranges, ...). Nothing was published.
    #[error("conservation check failed, nothing published: {detail}")]
    Conservation { detail: String },

    /// Another process (or another handle in this one) holds the root's writer lock. Nothing
    /// was read or changed.
    #[error(
        "another tally process is writing to {root}; a store has one writer at a time. \
         Wait for it to finish (or stop it), then run again"
    )]
    Locked { root: PathBuf },

    /// The root is not a tally store and tally will not make it one (or a reader was pointed
    /// at a path holding no store). Nothing was changed.
    #[error("{root} {detail}")]
    NotAStore { root: PathBuf, detail: String },

    /// A symbolic link where the store keeps its own files and directories. Tally never
    /// creates one and never follows one: recovery could delete or move files outside the
    /// store. Nothing was changed.
    #[error(
        "{path} is a symbolic link; tally never follows a link in its store, since recovery could \
         delete or move the files it points at. Replace it with a real directory or file, or open another root"
    )]
    Symlink { path: PathBuf },

    /// An earlier write or sync failed; the pipeline accepts no more work until it is reopened
    /// (which runs recovery).
    #[error("the pipeline stopped after an earlier failure ({cause}); reopen it to recover")]
    Poisoned { cause: String },
}

impl Error {
    pub fn format(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Error::Format {
            context: context.into(),
            detail: err.to_string(),
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }
}
