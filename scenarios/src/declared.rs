//! The coverage probes each scenario declares: what its default sweep (seeds 0..200) must
//! reach, `--require-coverage` failing the sweep otherwise (`coverage`, docs/harness.md).

use tally_sim::CrashModel;

use crate::focus::{FOCI, Focus};
use crate::scenario::Scenario;

/// Marks every scenario's default sweep reaches: the write protocol of every step and the
/// repairs any crash leaves.
const EVERY_SCENARIO: &[&str] = &[
    "segment.created",
    "ingest.frames-written",
    "ingest.frames-synced",
    "ingest.acks-written",
    "ingest.acks-synced",
    "replace.synced",
    "replace.renamed",
    "table.synced",
    "table.renamed",
    "table.installed",
    "remove.unlinked",
    "commit.synced",
    "commit.renamed",
    "commit.durable",
    "checkpoint.synced",
    "checkpoint.renamed",
    "checkpoint.durable",
    "recover.table-created",
    "recover.from-checkpoint",
    "recover.last-checkpoint-repaired",
    "recover.temp-removed",
    "recover.orphan-removed",
    "recover.expired-vacuumed",
    "recover.staged-segment-removed",
    "recover.torn-tail-truncated",
    "recover.unacknowledged-frame-kept",
];

/// The classes of file every scenario writes, crashed after under every model.
const CRASHED_CLASSES: &[&str] = &[
    "ack",
    "checkpoint",
    "commit",
    "dir",
    "log",
    "marker",
    "seq",
    "table",
];

/// The faults every fault-injecting scenario's profile reaches.
const FAULTS: &[&str] = &[
    "fault:clock-jump",
    "fault:corrupt-read:log",
    "fault:error:commit",
    "fault:error:dir",
    "fault:error:log",
    "fault:error:table",
    "fault:fail-sync:ack",
    "fault:fail-sync:log",
];

/// What a scenario declares beyond [`EVERY_SCENARIO`] and the crash points: the marks and
/// faults of its own workload and fault profile, each reached by the default sweep's 200 seeds
/// (some by only one or two: `docs/harness.md`, "Coverage probes", lists them); what no
/// scenario reaches is listed there as a gap.
fn scenario_specific(scenario: Scenario) -> Vec<String> {
    let own: &[&str] = match scenario {
        Scenario::Standard => &[
            "poison.step-refused",
            "recover.retried",
            "recover.retries-exhausted",
        ],
        Scenario::JournalDrain => &[
            "export.batch-installed",
            "export.leftover-removed",
            "recover.quarantine-copied",
            "recover.quarantine-linked",
            "recover.quarantined",
            "recover.rolled-back",
            "recover.retried",
            "recover.retries-exhausted",
            "fault:error:ack",
            "fault:error:seq",
            "fault:fail-sync:seq",
            "fault:fail-sync:table",
        ],
        Scenario::IncrementalExport => &[
            "export.batch-installed",
            "export.leftover-removed",
            "fault:error:ack",
            "fault:error:checkpoint",
            "fault:error:export",
            "fault:fail-sync:seq",
            "fault:fail-sync:table",
        ],
        Scenario::MergeCascade => &["poison.step-refused"],
        Scenario::LedgerVsOutput => &["commit.version-taken", "table.name-taken"],
        Scenario::MultiStepPublish => &[],
        Scenario::BulkLoad => &[
            "bulk.committed",
            "bulk.completed",
            "export.batch-installed",
            "poison.step-refused",
        ],
    };
    // The scenarios whose fault profile injects errors, failing fsyncs, corrupted reads and
    // clock jumps (the others crash only).
    let injects = matches!(
        scenario,
        Scenario::Standard
            | Scenario::JournalDrain
            | Scenario::IncrementalExport
            | Scenario::BulkLoad
    );
    let unreached = |probe: &String| unreached(scenario, probe);
    let mut all: Vec<String> = own
        .iter()
        .chain(if injects { FAULTS } else { &[] })
        .map(|p| (*p).to_owned())
        .filter(|p| !unreached(p))
        .collect();
    // Their focused seeds study every cell of the fault × file-class matrix.
    if injects {
        all.extend(FOCI.iter().map(Focus::probe).filter(|p| !unreached(p)));
    }
    all
}

/// In bulk-load, a corrupted read of a log or ack file: staging takes the rows of segments this
/// process wrote from memory, so its few streamed sources' segments are read only by a
/// recovery over unstaged segments, which none of its 200 seeds' focused reads meets (a gap,
/// listed in docs/harness.md).
fn unreached(scenario: Scenario, probe: &str) -> bool {
    scenario == Scenario::BulkLoad
        && matches!(probe, "fault:corrupt-read:ack" | "fault:corrupt-read:log")
}

/// The probes `scenario` declares: the marks of every scenario, every crash model after a
/// call on every class of file the scenario writes, and its own marks and faults.
pub fn probes(scenario: Scenario) -> Vec<String> {
    let mut classes = CRASHED_CLASSES.to_vec();
    if matches!(
        scenario,
        Scenario::JournalDrain | Scenario::IncrementalExport
    ) {
        classes.push("export");
    }
    // Its bad-manifest probe crashes the rollback after every call (`probe_rollback`).
    if scenario == Scenario::JournalDrain {
        classes.push("quarantine");
    }
    let crashes = CrashModel::ALL.into_iter().flat_map(|model| {
        classes
            .iter()
            .map(move |class| format!("crash:{}:{class}", model.name()))
    });
    let mut all: Vec<String> = EVERY_SCENARIO
        .iter()
        .map(|m| (*m).to_owned())
        .chain(crashes)
        .chain(scenario_specific(scenario))
        .collect();
    all.sort();
    all.dedup();
    all
}
