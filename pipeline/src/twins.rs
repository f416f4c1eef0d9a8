//! Buggy twins: switches that each turn off one guard of the pipeline, so that the harness can
//! show it catches the class of bug the guard prevents. Setting them needs the `twins` cargo
//! feature, which only the simulation build of the harness enables; a production build has no
//! way to turn a guard off (`Config` has no `twins` field there, and every guard reads
//! [`Twins::NONE`]).

/// Which guards are off. All `false` is the real pipeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Twins {
    /// Recovery skips its fail-closed checks (published files present and agreeing with the
    /// manifest, the manifest's row counts, acknowledged frames present in the log), so a
    /// restart over lost rows reports success — the "nothing pending, complete" bug.
    pub no_restart_check: bool,
    /// Opening the store leaves a half-done step's leftovers in place; only the ingest entry
    /// point removes them, before its first commit. Every other entry point goes on over them.
    pub drain_on_ingest_only: bool,
    /// Recovery does not recognize log segments its manifest already covers (`log_through`,
    /// the step's pin): a segment whose removal a crash interrupted is rolled forward again,
    /// its rows counted a second time.
    pub replay_consumed_segments: bool,
    /// After a restart, merges consider only files written by this process: files that were
    /// immature when the previous process stopped are never merged.
    pub forget_immature_after_restart: bool,
    /// The exporter advances its watermark before the exported batch is durable.
    pub export_watermark_before_data: bool,
    /// The exporter names batches by their ordinal instead of their first sequence number, so
    /// a retried export cannot recognize the batch it already wrote.
    pub export_ordinal_batch_ids: bool,
    /// Vacuum deletes a removed table file as soon as the commit removing it is durable,
    /// whatever the retention: a reader still on an older version (a running query, time
    /// travel) finds its files gone.
    pub vacuum_ignores_retention: bool,
    /// A group commit writes its frames and acknowledges them without syncing the log first:
    /// the acknowledgement records can be durable while the rows they acknowledge are not.
    pub log_unsynced: bool,
    /// A commit is renamed into `_delta_log/` and reported published without syncing the
    /// directory: the commit, and what it made of the staged rows, can vanish in a crash.
    pub commit_dir_unsynced: bool,
    /// A failed sync of the log is taken for a successful one (fsyncgate): the group goes on
    /// to acknowledge frames whose unsynced bytes the failure lost.
    pub log_sync_failure_ignored: bool,
    /// A rollback over a damaged commit sets the damaged commits aside before the table files
    /// only they may reference: a crash in between leaves those files unreferenced by any
    /// commit, and the next open deletes them as orphans instead of keeping them aside.
    pub rollback_commits_first: bool,
    /// Recovery sets a file aside with one `rename` into the quarantine, another directory:
    /// its two halves persist apart, and a crash can leave the file under neither name.
    pub quarantine_by_rename: bool,
    /// A bulk load renames its table file into `data/` and commits it without syncing the
    /// file's bytes: the commit advancing the source's ledger can be durable while the rows it
    /// acknowledges are not.
    pub bulk_file_unsynced: bool,
    /// A bulk load takes its file's locks without draining the log first: rows streamed
    /// before it, still unstaged, are published after rows numbered above them.
    pub bulk_skips_drain: bool,
}

impl Twins {
    /// Every guard on.
    pub const NONE: Twins = Twins {
        no_restart_check: false,
        drain_on_ingest_only: false,
        replay_consumed_segments: false,
        forget_immature_after_restart: false,
        export_watermark_before_data: false,
        export_ordinal_batch_ids: false,
        vacuum_ignores_retention: false,
        log_unsynced: false,
        commit_dir_unsynced: false,
        log_sync_failure_ignored: false,
        rollback_commits_first: false,
        quarantine_by_rename: false,
        bulk_file_unsynced: false,
        bulk_skips_drain: false,
    };
}
