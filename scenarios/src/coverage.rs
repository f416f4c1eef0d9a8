//! Coverage probes: which of the protocol's dangerous moments a run's checked crash points
//! reached, which repairs its recoveries made, and which faults hit which files.
//!
//! Three families of probes, all named as strings:
//!
//! - **protocol marks** (`commit.renamed`, `recover.torn-tail-truncated`, ...): placed in the
//!   pipeline with `tally_sim::probe!`, compiled in only in the simulation build. A mark that
//!   fires while a lifetime runs belongs to the crash point of the last mutating call before it
//!   (the disk a crash at that moment leaves), and counts once that point's image is checked;
//!   a mark before a lifetime's first mutating call belongs to its first point. A mark that
//!   fires while a check runs (recovery on a crash image, the restart and final checks, the
//!   damage probes) counts at once: the check is what reached it.
//! - **crash points** `crash:<model>:<class>`: an image checked under a crash model, taken
//!   after a mutating call on a file of a class ([`file_class`]).
//! - **faults** `fault:<effect>:<class>`: a fault the plan injected, by effect and the class of
//!   the file it hit.
//!
//! [`CATALOG`] lists every mark the pipeline has; a scenario declares the probes its default
//! sweep must reach (the `declared` module).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

use tally_faults::{Effect, FaultEvent};
use tally_sim::{CrashModel, OpKind, OpRecord};

use crate::oracle::{EXPORT_DIR, ROOT};

/// Probe name → hits.
pub type Hits = BTreeMap<String, u64>;

/// Every protocol mark in the pipeline, with the moment it marks.
pub const CATALOG: &[(&str, &str)] = &[
    (
        "segment.created",
        "a log segment's two files created and their directory synced",
    ),
    (
        "ingest.frames-written",
        "a group's log frames written, not yet synced",
    ),
    (
        "ingest.frames-synced",
        "a group's log frames synced, its ack records not yet written",
    ),
    (
        "ingest.acks-written",
        "a group's ack records written, not yet synced",
    ),
    (
        "ingest.acks-synced",
        "a group's ack records synced: its parts are acknowledged",
    ),
    (
        "bulk.committed",
        "a bulk-loaded table file's commit durable, the source's ledger advanced with it",
    ),
    (
        "bulk.completed",
        "a bulk load's commit completing its source with no new rows",
    ),
    (
        "replace.synced",
        "a replaced file (SEQ, _last_checkpoint, watermark) synced under its temp name",
    ),
    (
        "replace.renamed",
        "a replaced file renamed over the old one, its directory not yet synced",
    ),
    (
        "table.synced",
        "a table file synced under its temp name, not yet renamed",
    ),
    (
        "table.renamed",
        "a table file renamed, its directory not yet synced",
    ),
    (
        "table.installed",
        "a table file's directory synced, the file not yet committed",
    ),
    (
        "table.name-taken",
        "a table file's name found taken: the file is abandoned",
    ),
    (
        "remove.unlinked",
        "superseded files (staged segments, vacuumed tables) unlinked, their directory not yet synced",
    ),
    (
        "commit.synced",
        "a commit synced under its temp name, not yet renamed",
    ),
    (
        "commit.renamed",
        "a commit renamed to its version, _delta_log not yet synced",
    ),
    ("commit.durable", "a commit's name durable"),
    (
        "commit.version-taken",
        "a commit's version found taken: nothing committed",
    ),
    (
        "checkpoint.synced",
        "a checkpoint synced under its temp name, not yet renamed",
    ),
    (
        "checkpoint.renamed",
        "a checkpoint renamed, _delta_log not yet synced",
    ),
    (
        "checkpoint.durable",
        "a checkpoint durable, _last_checkpoint not yet pointing at it",
    ),
    (
        "export.batch-installed",
        "an export batch durable, the watermark not yet moved past it",
    ),
    (
        "export.leftover-removed",
        "an interrupted export's leftover batch removed",
    ),
    (
        "poison.commit-refused",
        "a commit refused because the pipeline is poisoned",
    ),
    (
        "poison.step-refused",
        "a maintenance step refused after waiting: the pipeline was poisoned meanwhile",
    ),
    ("recover.table-created", "recovery wrote commit 0"),
    (
        "recover.from-checkpoint",
        "recovery replayed the log from a checkpoint",
    ),
    (
        "recover.last-checkpoint-repaired",
        "recovery rewrote or removed a _last_checkpoint naming no usable checkpoint",
    ),
    (
        "recover.rolled-back",
        "recovery rolled back over a damaged commit (loss accepted)",
    ),
    (
        "recover.quarantine-copied",
        "a file being set aside copied into quarantine (no hard links), its name not yet durable",
    ),
    (
        "recover.quarantine-linked",
        "a file being set aside is durable in quarantine and not yet unlinked from its directory",
    ),
    (
        "recover.quarantined",
        "recovery moved a damaged file to quarantine",
    ),
    ("recover.temp-removed", "recovery removed a temp file"),
    (
        "recover.orphan-removed",
        "recovery removed a table file no commit references",
    ),
    (
        "recover.expired-vacuumed",
        "recovery deleted a removed table file past retention",
    ),
    (
        "recover.staged-segment-removed",
        "recovery removed a log segment a commit already covers",
    ),
    (
        "recover.torn-tail-truncated",
        "recovery truncated a torn or damaged segment tail",
    ),
    (
        "recover.unacknowledged-frame-kept",
        "recovery kept a whole frame whose ack never became durable",
    ),
    (
        "recover.seq-reservation-repaired",
        "recovery found sequence numbers at or past the durable reservation (a lying disk only)",
    ),
    (
        "recover.retried",
        "recovery retried a failed namespace operation",
    ),
    (
        "recover.retries-exhausted",
        "recovery gave up after its bounded retries",
    ),
];

/// The class of the file (or directory) at `path`, for crash-point and fault probes.
pub fn file_class(path: &str) -> &'static str {
    if path.starts_with(EXPORT_DIR) {
        return "export";
    }
    let Some(rest) = path.strip_prefix(ROOT) else {
        // The store's ancestors, created and synced when the store is.
        return if ROOT.starts_with(path) {
            "dir"
        } else {
            "other"
        };
    };
    let rest = rest.trim_start_matches('/');
    let name = rest.rsplit('/').next().unwrap_or(rest);
    match rest.split('/').next().unwrap_or("") {
        "" => "dir",
        "data" if rest == "data" => "dir",
        "data" => "table",
        "_delta_log" if rest == "_delta_log" => "dir",
        "_delta_log" if name.contains("checkpoint") => "checkpoint",
        "_delta_log" => "commit",
        "_tally" => private_class(rest),
        _ => "other",
    }
}

fn private_class(rest: &str) -> &'static str {
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [_] | [_, "log" | "quarantine"] => "dir",
        [_, "log", name] if name.ends_with(".ack") => "ack",
        [_, "log", _] => "log",
        [_, "quarantine", _] => "quarantine",
        [_, name] if name.starts_with("SEQ") => "seq",
        [_, name] if name.starts_with("TALLY") => "marker",
        _ => "other",
    }
}

/// The probe of an image checked under `model` after the mutating call `op`. A link or rename
/// into the quarantine is of class `quarantine` (setting a file aside is the step it takes).
pub fn crash_probe(model: CrashModel, op: &OpRecord) -> String {
    let class = match op.to.as_deref().map(file_class) {
        Some("quarantine") => "quarantine",
        _ => file_class(&op.path),
    };
    format!("crash:{}:{class}", model.name())
}

/// The probe of a fault event, if it is an injection (not a crash or a control).
pub fn fault_probe(event: &FaultEvent) -> Option<String> {
    let effect = match event.injected.as_ref()? {
        // A failing fsync aimed at another call is an I/O error there.
        Effect::FailSync if event.op == OpKind::Sync => "fail-sync",
        Effect::FailSync | Effect::Error { .. } => "error",
        Effect::CorruptRead => "corrupt-read",
        Effect::FlipDigit => "flip-digit",
        Effect::ClockJump { .. } => return Some("fault:clock-jump".to_owned()),
    };
    Some(format!("fault:{effect}:{}", file_class(&event.path)))
}

/// Where a run's marks go: to the crash point being captured while a lifetime runs, else
/// straight to the run's hits.
#[derive(Default)]
pub(crate) struct Recorder {
    pub hits: Hits,
    /// Marks since the lifetime's capture began and not yet given to a point: the capture
    /// takes them (see `run::capture`).
    pub capturing: Option<Vec<&'static str>>,
}

pub(crate) type SharedRecorder = Arc<Mutex<Recorder>>;

impl Recorder {
    pub fn count(&mut self, probe: impl Into<String>) {
        *self.hits.entry(probe.into()).or_default() += 1;
    }
}

/// Installs `recorder` as this thread's sink of protocol marks until the guard drops.
pub(crate) fn install(recorder: &SharedRecorder) -> Installed {
    let recorder = recorder.clone();
    let previous = tally_sim::probe::set_sink(Some(std::rc::Rc::new(move |name| {
        let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
        match r.capturing.as_mut() {
            Some(pending) => pending.push(name),
            None => r.count(name),
        }
    })));
    debug_assert!(previous.is_none(), "one run at a time on a thread");
    Installed
}

/// Removes the sink when dropped.
pub(crate) struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        tally_sim::probe::set_sink(None);
    }
}

/// What a sweep's seeds reached: every probe hit, with its hits and the seeds that hit it,
/// against the probes the scenario declares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageReport {
    pub declared: Vec<String>,
    pub hits: Hits,
    /// Seeds that hit each probe.
    pub seeds: Hits,
    pub missed: Vec<String>,
}

impl CoverageReport {
    /// Sums the probes of `runs` (one map per seed) against `declared`.
    pub fn of<'a>(declared: Vec<String>, runs: impl IntoIterator<Item = &'a Hits>) -> Self {
        let (mut hits, mut seeds) = (Hits::new(), Hits::new());
        for run in runs {
            for (probe, &n) in run.iter().filter(|(_, n)| **n > 0) {
                *hits.entry(probe.clone()).or_default() += n;
                *seeds.entry(probe.clone()).or_default() += 1;
            }
        }
        let missed = missed(&declared, &hits)
            .into_iter()
            .map(str::to_owned)
            .collect();
        CoverageReport {
            declared,
            hits,
            seeds,
            missed,
        }
    }

    /// One line per probe hit or declared, then the verdict line.
    pub fn text(&self, seeds_run: usize) -> String {
        let mut names: BTreeSet<&String> = self.hits.keys().collect();
        names.extend(&self.declared);
        let mut out = String::from("coverage probes (hits, seeds that hit it):\n");
        for name in names {
            let hits = self.hits.get(name).copied().unwrap_or(0);
            let seeds = self.seeds.get(name).copied().unwrap_or(0);
            let mark = match (self.declared.contains(name), hits) {
                (true, 0) => "  MISSED",
                (false, _) => "  (not declared)",
                _ => "",
            };
            out += &format!("  {name:<44} {hits:>8} {seeds:>6}/{seeds_run}{mark}\n");
        }
        let hit = self.declared.len() - self.missed.len();
        out += &format!(
            "coverage: {hit} of {} declared probes hit{}\n",
            self.declared.len(),
            if self.missed.is_empty() {
                String::new()
            } else {
                format!("; never hit: {}", self.missed.join(", "))
            }
        );
        out
    }
}

/// The probes `hits` lacks of `declared`.
pub fn missed<'a>(declared: &'a [String], hits: &Hits) -> Vec<&'a str> {
    declared
        .iter()
        .filter(|p| hits.get(*p).is_none_or(|&n| n == 0))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_classed_by_their_place_in_the_store() {
        let cases = [
            ("/store", "dir"),
            ("/store/data", "dir"),
            ("/store/data/L0-00000000000000000001.parquet.tmp", "table"),
            ("/store/_delta_log", "dir"),
            ("/store/_delta_log/00000000000000000003.json", "commit"),
            ("/store/_delta_log/_commit_3.json.tmp", "commit"),
            (
                "/store/_delta_log/00000000000000000004.checkpoint.parquet",
                "checkpoint",
            ),
            ("/store/_delta_log/_last_checkpoint", "checkpoint"),
            ("/store/_tally", "dir"),
            ("/store/_tally/log", "dir"),
            ("/store/_tally/log/00000000000000000002.log", "log"),
            ("/store/_tally/log/00000000000000000002.ack", "ack"),
            ("/store/_tally/SEQ", "seq"),
            ("/store/_tally/SEQ.tmp", "seq"),
            ("/store/_tally/TALLY", "marker"),
            ("/store/_tally/quarantine", "dir"),
            (
                "/store/_tally/quarantine/00000000000000000003.json.0",
                "quarantine",
            ),
            ("/export/batch-0.parquet", "export"),
        ];
        for (path, class) in cases {
            assert_eq!(file_class(path), class, "{path}");
        }
    }

    #[test]
    fn a_fault_is_probed_by_what_it_did_to_the_call() {
        let event = |op, path: &str, injected| FaultEvent {
            call: 7,
            op,
            path: path.to_owned(),
            what: String::new(),
            injected,
        };
        let probe = |op, path, injected| fault_probe(&event(op, path, injected));
        let log = "/store/_tally/log/00000000000000000001.log";
        assert_eq!(
            probe(OpKind::Sync, log, Some(Effect::FailSync)).as_deref(),
            Some("fault:fail-sync:log")
        );
        // Aimed at a rename, a failing fsync is an I/O error.
        assert_eq!(
            probe(
                OpKind::Rename,
                "/store/data/x.parquet",
                Some(Effect::FailSync)
            )
            .as_deref(),
            Some("fault:error:table")
        );
        assert_eq!(
            probe(OpKind::Read, log, Some(Effect::CorruptRead)).as_deref(),
            Some("fault:corrupt-read:log")
        );
        let jump = Effect::ClockJump { seconds: -5 };
        assert_eq!(
            probe(OpKind::Write, log, Some(jump)).as_deref(),
            Some("fault:clock-jump")
        );
        // A crash, a control's doing, a corruption drawn but not applied: no fault probe.
        assert_eq!(probe(OpKind::Write, log, None), None);
    }

    #[test]
    fn a_declared_probe_without_hits_is_missed() {
        let declared = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let hits = Hits::from([("a".to_owned(), 2), ("c".to_owned(), 0)]);
        assert_eq!(missed(&declared, &hits), ["b", "c"]);
    }
}
