//! The invariants the oracle checks, and a breach of one: which, the rows involved, what was
//! seen.

use std::fmt;

use serde::Serialize;

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
    /// An unreadable newest manifest refuses the open, naming it, the last good version and
    /// the files a rollback would lose, and changes nothing; accepting the loss rolls back,
    /// reporting it, and later opens work.
    BadManifestRefused,
    /// A crash at any call of a rollback over an unreadable newest manifest leaves a store
    /// that refuses (the damage in place) or opens at the last good version; accepting the
    /// loss then opens at it; every file the rollback sets aside is in quarantine, unchanged.
    RollbackCrashSafe,
    /// A flipped bit in a data page of a published table file is reported by `verify --deep`
    /// and refused by the merge that reads it, naming the file; nothing is merged from it.
    DamagedTableRefused,
    /// A repair that keeps failing is retried a bounded number of times, then reported.
    BoundedRetries,
    /// The newest version an external Delta reader finds — on a crash image before recovery
    /// touches it, and after recovery — reads whole: every file present, of its size, whole,
    /// no `tally_seq` twice.
    DeltaVersionComplete,
    /// After recovery, the newest Delta version is the one the pipeline opened, and it holds
    /// exactly the rows the pipeline says are published.
    DeltaRowsMatch,
    /// Every version whose removed files are all within the retention reads whole (time
    /// travel), and a version the second handle read stays readable while it is.
    DeltaTimeTravel,
    /// Recovery makes no repair that only a lying disk explains (sequence numbers used at or
    /// past the durable reservation: a synced SEQ write lost) unless a control makes it lie.
    RepairsExplained,
    /// The run ended without a panic: no assertion of the pipeline, its recovery or the
    /// harness fired.
    NoPanic,
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
            Invariant::BadManifestRefused => "bad-manifest-refused",
            Invariant::RollbackCrashSafe => "rollback-crash-safe",
            Invariant::DamagedTableRefused => "damaged-table-refused",
            Invariant::BoundedRetries => "bounded-retries",
            Invariant::DeltaVersionComplete => "delta-version-complete",
            Invariant::DeltaRowsMatch => "delta-rows-match",
            Invariant::DeltaTimeTravel => "delta-time-travel",
            Invariant::RepairsExplained => "repairs-explained",
            Invariant::NoPanic => "no-panic",
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
pub(super) const SHOWN_ROWS: usize = 5;

/// The first [`SHOWN_ROWS`] of `keys`, as a breach shows them.
pub(super) fn first_keys<'a>(keys: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    keys.into_iter().take(SHOWN_ROWS).cloned().collect()
}

/// Holds when no row is in `keys`; otherwise a breach of `invariant` showing the first few,
/// with `detail` given how many there are.
pub(super) fn no_rows(
    invariant: Invariant,
    keys: &[String],
    detail: impl FnOnce(usize) -> String,
) -> Result<(), Breach> {
    if keys.is_empty() {
        return Ok(());
    }
    Err(Breach::new(invariant, first_keys(keys), detail(keys.len())))
}
