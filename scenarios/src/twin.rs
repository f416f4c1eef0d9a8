//! Buggy twins: a scenario run with one guard of the pipeline turned off, or with the disk
//! lying, to show that the harness catches the class of bug the incident behind the scenario
//! had. Fault-layer twins work in every build; pipeline-switch twins need the simulation build,
//! the only one compiled with the pipeline's `twins` feature.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tally_faults::Control;
use tally_pipeline::Config;

/// A buggy twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Twin {
    /// The disk acknowledges fsync without making data durable: the staging output can be
    /// renamed into place, the segment unlinked, and a crash leave the output empty.
    LyingSync,
    /// Recovery without its fail-closed checks.
    NoRestartCheck,
    /// Only the ingest entry point drains a half-done step.
    DrainOnIngestOnly,
    /// Recovery rolls forward segments its manifest already covers.
    ReplayConsumedSegments,
    /// The exporter moves its watermark before the batch is durable.
    WatermarkBeforeData,
    /// The exporter names batches by ordinal instead of start sequence number.
    OrdinalBatchIds,
    /// Files that were immature at a restart are never merged again.
    ForgetImmature,
    /// Vacuum deletes removed files at once, whatever the retention.
    VacuumIgnoresRetention,
    /// Planted mutant: a group commit acknowledges frames it never synced.
    LogUnsynced,
    /// Planted mutant: a commit's rename is never made durable by a directory sync.
    CommitDirUnsynced,
    /// Planted mutant: a failed fsync of the log is taken for a successful one.
    LogSyncFailureIgnored,
    /// Planted mutant: a rollback sets the damaged commits aside before the table files only
    /// they reference.
    RollbackCommitsFirst,
    /// Planted mutant: recovery moves a file into the quarantine with one `rename`.
    QuarantineByRename,
    /// Planted mutant: a bulk load commits its table file without syncing the file's bytes.
    BulkFileUnsynced,
    /// Planted mutant: a bulk load starts its file without draining the log first.
    BulkSkipsDrain,
}

impl Twin {
    pub const ALL: [Twin; 15] = [
        Twin::LyingSync,
        Twin::NoRestartCheck,
        Twin::DrainOnIngestOnly,
        Twin::ReplayConsumedSegments,
        Twin::WatermarkBeforeData,
        Twin::OrdinalBatchIds,
        Twin::ForgetImmature,
        Twin::VacuumIgnoresRetention,
        Twin::LogUnsynced,
        Twin::CommitDirUnsynced,
        Twin::LogSyncFailureIgnored,
        Twin::RollbackCommitsFirst,
        Twin::QuarantineByRename,
        Twin::BulkFileUnsynced,
        Twin::BulkSkipsDrain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Twin::LyingSync => "lying-sync",
            Twin::NoRestartCheck => "no-restart-check",
            Twin::DrainOnIngestOnly => "drain-on-ingest-only",
            Twin::ReplayConsumedSegments => "replay-consumed-segments",
            Twin::WatermarkBeforeData => "watermark-before-data",
            Twin::OrdinalBatchIds => "ordinal-batch-ids",
            Twin::ForgetImmature => "forget-immature",
            Twin::VacuumIgnoresRetention => "vacuum-ignores-retention",
            Twin::LogUnsynced => "log-unsynced",
            Twin::CommitDirUnsynced => "commit-dir-unsynced",
            Twin::LogSyncFailureIgnored => "log-sync-failure-ignored",
            Twin::RollbackCommitsFirst => "rollback-commits-first",
            Twin::QuarantineByRename => "quarantine-by-rename",
            Twin::BulkFileUnsynced => "bulk-file-unsynced",
            Twin::BulkSkipsDrain => "bulk-skips-drain",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Twin::LyingSync => {
                "fault layer: fsync returns success without making data durable (the reorder behind the lost rows)"
            }
            Twin::NoRestartCheck => {
                "pipeline switch: recovery skips its fail-closed checks and reports success over lost rows"
            }
            Twin::DrainOnIngestOnly => {
                "pipeline switch: only ingest removes a half-done step's leftovers; flush and export run over them"
            }
            Twin::ReplayConsumedSegments => {
                "pipeline switch: recovery does not see that its manifest already covers a segment and rolls it forward again"
            }
            Twin::WatermarkBeforeData => {
                "pipeline switch: the exporter advances its watermark before the batch is durable"
            }
            Twin::OrdinalBatchIds => {
                "pipeline switch: export batches are named by ordinal, so a retried export writes its rows again"
            }
            Twin::ForgetImmature => {
                "pipeline switch: after a restart, files written before it are never considered for merging"
            }
            Twin::VacuumIgnoresRetention => {
                "pipeline switch: vacuum deletes a removed file as soon as its removal is committed, while readers of older versions are owed it"
            }
            Twin::LogUnsynced => {
                "planted mutant: a group commit writes and acknowledges its frames without syncing the log (the acknowledgement records are synced)"
            }
            Twin::CommitDirUnsynced => {
                "planted mutant: a commit is renamed into _delta_log/ and reported published without the directory sync that makes the rename durable"
            }
            Twin::LogSyncFailureIgnored => {
                "planted mutant: a failed fsync of the log is taken for a successful one, and the frames whose bytes it lost are acknowledged (needs a failing-fsync fault)"
            }
            Twin::RollbackCommitsFirst => {
                "planted mutant: a rollback over a damaged commit sets the commit aside before the table files only it references, so a crash in between leaves them to be deleted as orphans"
            }
            Twin::QuarantineByRename => {
                "planted mutant: recovery moves a file into the quarantine with one rename between two directories, whose halves persist apart: a crash can leave it under neither name"
            }
            Twin::BulkFileUnsynced => {
                "planted mutant: a bulk load renames its table file into data/ and commits it, advancing the source's ledger, without syncing the file's bytes"
            }
            Twin::BulkSkipsDrain => {
                "planted mutant: a bulk load starts its file without draining the log, so its rows can be published before streamed rows numbered below them"
            }
        }
    }

    /// The disk misbehaviour a fault-layer twin adds to the plan.
    pub fn controls(self) -> Vec<Control> {
        match self {
            Twin::LyingSync => vec![Control::LyingSync],
            _ => Vec::new(),
        }
    }

    /// Turns this twin's guard off in `config`. Fails in a build without the pipeline's
    /// `twins` feature (every build but the simulation one).
    pub fn apply(self, config: &mut Config) -> Result<(), String> {
        if self == Twin::LyingSync {
            return Ok(());
        }
        #[cfg(madsim)]
        {
            let twins = &mut config.twins;
            match self {
                Twin::NoRestartCheck => twins.no_restart_check = true,
                Twin::DrainOnIngestOnly => twins.drain_on_ingest_only = true,
                Twin::ReplayConsumedSegments => twins.replay_consumed_segments = true,
                Twin::WatermarkBeforeData => twins.export_watermark_before_data = true,
                Twin::OrdinalBatchIds => twins.export_ordinal_batch_ids = true,
                Twin::ForgetImmature => twins.forget_immature_after_restart = true,
                Twin::VacuumIgnoresRetention => twins.vacuum_ignores_retention = true,
                Twin::LogUnsynced => twins.log_unsynced = true,
                Twin::CommitDirUnsynced => twins.commit_dir_unsynced = true,
                Twin::LogSyncFailureIgnored => twins.log_sync_failure_ignored = true,
                Twin::RollbackCommitsFirst => twins.rollback_commits_first = true,
                Twin::QuarantineByRename => twins.quarantine_by_rename = true,
                Twin::BulkFileUnsynced => twins.bulk_file_unsynced = true,
                Twin::BulkSkipsDrain => twins.bulk_skips_drain = true,
                Twin::LyingSync => {}
            }
            Ok(())
        }
        #[cfg(not(madsim))]
        {
            let _ = config;
            Err(format!(
                "twin {self} switches a pipeline guard off, which only the simulation build can: use `cargo sim`"
            ))
        }
    }
}

impl fmt::Display for Twin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Twin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Twin::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Twin::ALL.iter().map(|t| t.name()).collect();
                format!("unknown twin {s:?}; expected one of {}", names.join(", "))
            })
    }
}
