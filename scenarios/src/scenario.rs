//! Named scenarios: a workload and a fault plan, both derived from a seed. Besides `standard`,
//! each scenario drives the pipeline into the situation of one real incident (`docs/scenarios.md`)
//! and comes with the buggy twins that show the harness catches that incident's bug class.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_faults::generate::{Mix, Profile, generate};
use tally_faults::{CallKind, Control, Crash, Latency, Moment, Trigger};
use tally_sim::CrashModel;

use super::focus::Focus;
use super::run::RunSpec;
use super::swarm::{Feature, Swarm};
use super::twin::Twin;
use super::workload::{Entry, ExportPlan, Probe, Resume, SourcePlan, Workload};

/// A named scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// Concurrent ingest of a few sources, background staging and merging through at least two
    /// levels, a clean restart half the time, one crash, and injected errors, failing fsyncs,
    /// corrupted log reads and clock jumps.
    Standard,
    /// Incident 000: a crash between an output's rename and the removal of its staging input,
    /// a restart with nothing new to ingest, and the disk damaged after the fact.
    LedgerVsOutput,
    /// Incident 001: a multi-file step crashed midway, met by whichever entry point comes
    /// first; an unreadable manifest; a repair that keeps failing.
    JournalDrain,
    /// Incident 002: a flush publishing many manifest versions in a row, crashed between them
    /// and during recovery, read all along by a second handle.
    MultiStepPublish,
    /// Incident 003: an exporter shipping rows past a durable watermark while merges rewrite
    /// the files it reads, crashed anywhere in its steps.
    IncrementalExport,
    /// Incident 004: many small sources cascading through several merge levels, crashed
    /// between writing a merge output and publishing it.
    MergeCascade,
    /// `tally run`'s path: sources bulk-loaded straight into committed table files beside
    /// streamed ones, with exports and background merges, crashed anywhere.
    BulkLoad,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::Standard,
        Scenario::LedgerVsOutput,
        Scenario::JournalDrain,
        Scenario::MultiStepPublish,
        Scenario::IncrementalExport,
        Scenario::MergeCascade,
        Scenario::BulkLoad,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Standard => "standard",
            Scenario::LedgerVsOutput => "ledger-vs-output",
            Scenario::JournalDrain => "journal-drain",
            Scenario::MultiStepPublish => "multi-step-publish",
            Scenario::IncrementalExport => "incremental-export",
            Scenario::MergeCascade => "merge-cascade",
            Scenario::BulkLoad => "bulk-load",
        }
    }

    /// The incident the scenario comes from (`seeds/NNN`), if any.
    pub fn incident(self) -> Option<&'static str> {
        match self {
            Scenario::Standard | Scenario::BulkLoad => None,
            Scenario::LedgerVsOutput => Some("000"),
            Scenario::JournalDrain => Some("001"),
            Scenario::MultiStepPublish => Some("002"),
            Scenario::IncrementalExport => Some("003"),
            Scenario::MergeCascade => Some("004"),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Scenario::Standard => {
                "concurrent ingest, background staging and merges (two or more levels), restarts, one crash and injected I/O faults"
            }
            Scenario::LedgerVsOutput => {
                "crash between a table file's rename and its staging segment's removal, restart with nothing new; a damaged disk must be refused with counts"
            }
            Scenario::JournalDrain => {
                "a multi-file step crashed midway must be finished or rolled back before any entry point (ingest, flush, export) acts; bad manifests and failing repairs"
            }
            Scenario::MultiStepPublish => {
                "a flush publishing several manifest versions crashed between them and during recovery, read throughout by a second handle"
            }
            Scenario::IncrementalExport => {
                "an exporter shipping rows past a durable watermark while merges run: every published row exported exactly once"
            }
            Scenario::MergeCascade => {
                "many small sources cascading through merge levels, crashed between a merge output and its publish: orphans collected, immature files merged after restart"
            }
            Scenario::BulkLoad => {
                "sources bulk-loaded into committed table files (tally run's path) beside streamed ones, exported and merged: each row once, published in sequence order"
            }
        }
    }

    /// The buggy twins of the scenario: each must be caught.
    pub fn twins(self) -> &'static [Twin] {
        match self {
            Scenario::Standard => &[
                Twin::LogUnsynced,
                Twin::CommitDirUnsynced,
                Twin::LogSyncFailureIgnored,
            ],
            Scenario::LedgerVsOutput => &[Twin::LyingSync, Twin::NoRestartCheck],
            Scenario::JournalDrain => &[
                Twin::DrainOnIngestOnly,
                Twin::RollbackCommitsFirst,
                Twin::QuarantineByRename,
            ],
            Scenario::MultiStepPublish => {
                &[Twin::ReplayConsumedSegments, Twin::VacuumIgnoresRetention]
            }
            Scenario::IncrementalExport => &[Twin::WatermarkBeforeData, Twin::OrdinalBatchIds],
            Scenario::MergeCascade => &[Twin::ForgetImmature],
            Scenario::BulkLoad => &[Twin::BulkFileUnsynced, Twin::BulkSkipsDrain],
        }
    }

    /// The run of `seed`: workload, crash model and fault plan, all drawn from the seed.
    /// `model` and `controls` override what the seed would choose.
    pub fn spec(self, seed: u64, model: Option<CrashModel>, controls: &[Control]) -> RunSpec {
        self.spec_with(seed, model, controls, None, false)
    }

    /// The run of `seed`, as a buggy twin when `twin` is given, under the seed's swarm profile
    /// when `swarm` (otherwise uniform: what the seed ran before swarm profiles existed).
    pub fn spec_with(
        self,
        seed: u64,
        model: Option<CrashModel>,
        controls: &[Control],
        twin: Option<Twin>,
        swarm: bool,
    ) -> RunSpec {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let swarm = swarm.then(|| Swarm::draw(seed, self.needs()));
        // Drawn when the caller picks none, even if swarm picks it, so every later draw stays
        // what it was before swarm profiles existed.
        let model = model.unwrap_or_else(|| {
            let drawn = CrashModel::ALL[rng.gen_range(0..CrashModel::ALL.len())];
            swarm.as_ref().map_or(drawn, |s| s.model)
        });
        let mut workload = Workload::standard(rng.r#gen());
        // Drawn in this order so that `standard` runs stay what they always were.
        let plan_seed = rng.r#gen();
        let mut shape = ChaCha8Rng::seed_from_u64(rng.r#gen());
        let (aim, faults) = self.shape(&mut workload, &mut shape);
        // Only a scenario that injects faults studies one (an aimed crash stays, but a read
        // cell drops it, as in `standard`).
        let swarm = swarm.map(|mut s| {
            s.focus = Focus::of(seed).filter(|_| faults);
            if let Some(focus) = s.focus {
                s.off.retain(|feature| !focus.needs().contains(feature));
            }
            s
        });
        if let Some(swarm) = &swarm {
            swarm.apply(&mut workload);
        }
        let mut profile = profile(&workload, model, aim.is_empty(), faults, controls, twin);
        if let Some(swarm) = &swarm {
            profile.mix = swarm.mix.clone();
            profile.corruptible = swarm.corruptible.clone();
        }
        let mut plan = generate(plan_seed, &profile);
        if !aim.is_empty() {
            plan.crash = Some(aimed_crash(aim, model, &mut shape));
        }
        if let Some(focus) = swarm.as_ref().and_then(|s| s.focus) {
            // Another fault could end the lifetime before the cell's moment, and so could the
            // planned crash before a read cell's moment (reads come late: at a restart, in a
            // merge); crash images are still checked after every call.
            if focus.drops_crash() {
                plan.crash = None;
            }
            plan.faults = vec![focus.fault(seed)];
        }
        RunSpec {
            scenario: self.name().to_owned(),
            seed,
            model,
            workload,
            plan,
            twin,
            swarm: swarm.map(|s| s.to_string()),
        }
    }

    /// The workload features the scenario is about: a swarm profile never switches them off.
    pub fn needs(self) -> &'static [Feature] {
        match self {
            Scenario::Standard | Scenario::LedgerVsOutput | Scenario::BulkLoad => &[],
            Scenario::JournalDrain => &[Feature::Exports],
            Scenario::MultiStepPublish => &[Feature::SecondReader],
            Scenario::IncrementalExport => {
                &[Feature::Exports, Feature::Merges, Feature::Background]
            }
            Scenario::MergeCascade => &[Feature::Merges, Feature::Background],
        }
    }

    /// Shapes the standard workload into the scenario's, drawing from `shape`; returns where
    /// the scenario aims its crash (empty: anywhere, as `standard` does) and whether it
    /// injects errors as well.
    fn shape(self, workload: &mut Workload, shape: &mut ChaCha8Rng) -> (&'static [Aim], bool) {
        match self {
            Scenario::Standard => (&[], true),
            Scenario::LedgerVsOutput => {
                workload.background_maintenance = false;
                workload.restart_after_parts = None;
                workload.resume = Resume::RerunAll;
                workload.concurrent = shape.gen_bool(0.5);
                workload.probes = vec![Probe::Damage, Probe::ForeignFile];
                (LEDGER_VS_OUTPUT, false)
            }
            Scenario::JournalDrain => {
                workload.export = Some(ExportPlan {
                    every_parts: shape.gen_range(2..=4),
                    flush_first: false,
                });
                workload.entry = Entry::ALL[shape.gen_range(0..Entry::ALL.len())];
                workload.probes = vec![Probe::MalformedManifest];
                (JOURNAL_DRAIN, true)
            }
            Scenario::MultiStepPublish => {
                workload.background_maintenance = false;
                workload.restart_after_parts = None;
                workload.reader = true;
                workload.segment_bytes = shape.gen_range(700..=1400);
                (MULTI_STEP_PUBLISH, false)
            }
            Scenario::IncrementalExport => {
                workload.export = Some(ExportPlan {
                    every_parts: shape.gen_range(1..=3),
                    flush_first: false,
                });
                workload.background_maintenance = true;
                (INCREMENTAL_EXPORT, true)
            }
            Scenario::MergeCascade => {
                workload.sources = (0..shape.gen_range(6..=12))
                    .map(|i| SourcePlan {
                        name: format!("s{i}"),
                        parts: (0..shape.gen_range(2..=4))
                            .map(|_| shape.gen_range(1..=4))
                            .collect(),
                    })
                    .collect();
                workload.segment_bytes = shape.gen_range(450..=900);
                workload.merge_fan_in = shape.gen_range(2..=3);
                workload.max_level = shape.gen_range(3..=4);
                workload.background_maintenance = true;
                workload.restart_after_parts = shape.gen_bool(0.5).then_some(1);
                (MERGE_CASCADE, false)
            }
            Scenario::BulkLoad => {
                // At least one source bulk-loaded, and mostly one streamed beside them.
                let n = workload.sources.len();
                let streamed = shape.gen_range(0..=n.min(2)).min(n - 1);
                workload.bulk_sources = workload.sources[streamed..]
                    .iter()
                    .map(|s| s.name.clone())
                    .collect();
                workload.export = shape.gen_bool(0.5).then(|| ExportPlan {
                    every_parts: shape.gen_range(1..=3),
                    flush_first: false,
                });
                (&[], true)
            }
        }
    }

    /// The small form of the scenario, for exhaustive exploration: no faults, no concurrency.
    pub fn small(self, model: CrashModel) -> RunSpec {
        let mut workload = Workload::small();
        match self {
            Scenario::Standard => {}
            Scenario::LedgerVsOutput => {
                workload.resume = Resume::RerunAll;
                workload.probes = vec![Probe::Damage, Probe::ForeignFile];
            }
            Scenario::JournalDrain => {
                workload.export = Some(ExportPlan {
                    every_parts: 2,
                    flush_first: true,
                });
                workload.entry = Entry::Flush;
                workload.probes = vec![Probe::MalformedManifest];
            }
            Scenario::MultiStepPublish => {
                workload.segment_bytes = 700;
            }
            Scenario::IncrementalExport => {
                workload.export = Some(ExportPlan {
                    every_parts: 1,
                    flush_first: true,
                });
            }
            Scenario::MergeCascade => {
                // Eight level-0 files cascade 8 → 4 → 2 → 1.
                workload.sources = (0..8)
                    .map(|i| SourcePlan {
                        name: format!("m{i}"),
                        parts: vec![1],
                    })
                    .collect();
                workload.segment_bytes = 300;
                workload.max_level = 3;
            }
            Scenario::BulkLoad => {
                workload.bulk_sources = vec!["b".into()];
            }
        }
        RunSpec {
            scenario: self.name().to_owned(),
            seed: 0,
            model,
            workload,
            plan: Default::default(),
            twin: None,
            swarm: None,
        }
    }
}

/// A call a scenario aims its crash at: the `n`-th (`1..=max_n`) call of `kind` on `path`.
struct Aim {
    kind: CallKind,
    path: &'static str,
    moment: Moment,
    max_n: u64,
}

const fn aim(kind: CallKind, path: &'static str, moment: Moment, max_n: u64) -> Aim {
    Aim {
        kind,
        path,
        moment,
        max_n,
    }
}

/// Around a staging output's rename and its segment's removal.
const LEDGER_VS_OUTPUT: &[Aim] = &[
    aim(CallKind::Rename, "*/data/L0-*", Moment::After, 3),
    aim(CallKind::SyncDir, "*/data", Moment::Before, 3),
    aim(
        CallKind::RenameNoReplace,
        "*/_delta_log/*",
        Moment::After,
        3,
    ),
    aim(CallKind::Unlink, "*/log/*", Moment::Before, 4),
    aim(CallKind::Unlink, "*/log/*", Moment::After, 4),
    aim(CallKind::SyncDir, "*/log", Moment::Before, 4),
];

/// Inside multi-file steps: between an output's rename, the manifest and the removals.
const JOURNAL_DRAIN: &[Aim] = &[
    aim(CallKind::Rename, "*/data/*", Moment::After, 4),
    aim(
        CallKind::RenameNoReplace,
        "*/_delta_log/*",
        Moment::After,
        4,
    ),
    aim(CallKind::Unlink, "*/data/*", Moment::Before, 4),
    aim(CallKind::Unlink, "*/data/*", Moment::After, 4),
    aim(CallKind::Unlink, "*/log/*", Moment::After, 4),
    aim(CallKind::Rename, "*/export/*", Moment::After, 3),
];

/// Between the manifest versions of one flush.
const MULTI_STEP_PUBLISH: &[Aim] = &[
    aim(
        CallKind::RenameNoReplace,
        "*/_delta_log/*",
        Moment::After,
        8,
    ),
    aim(
        CallKind::RenameNoReplace,
        "*/_delta_log/*",
        Moment::Before,
        8,
    ),
    aim(CallKind::SyncDir, "/store/_delta_log", Moment::After, 10),
    aim(CallKind::Unlink, "*/log/*", Moment::Before, 6),
    aim(CallKind::Unlink, "*/data/*", Moment::Before, 6),
];

/// Inside the exporter's steps.
const INCREMENTAL_EXPORT: &[Aim] = &[
    aim(CallKind::Rename, "*/export/batch-*", Moment::After, 4),
    aim(CallKind::Rename, "*/export/batch-*", Moment::Before, 4),
    aim(CallKind::SyncDir, "*/export", Moment::After, 6),
    aim(CallKind::Rename, "*/export/WATERMARK*", Moment::After, 4),
    aim(CallKind::Unlink, "*/export/*", Moment::After, 2),
    aim(CallKind::Create, "*/export/*", Moment::After, 6),
];

/// Between a merge output and its publish.
const MERGE_CASCADE: &[Aim] = &[
    aim(CallKind::Rename, "*/data/L[1-9]-*", Moment::After, 6),
    aim(CallKind::SyncDir, "*/data", Moment::After, 10),
    aim(
        CallKind::Create,
        "*/_delta_log/_commit_*",
        Moment::Before,
        10,
    ),
    aim(CallKind::Unlink, "*/data/L*", Moment::Before, 6),
];

/// What the fault plan of a run of `workload` is generated from: a crash anywhere when `crash`
/// (the scenario aims none), injected errors when `faults`, the controls given and the twin's.
fn profile(
    workload: &Workload,
    model: CrashModel,
    crash: bool,
    faults: bool,
    controls: &[Control],
    twin: Option<Twin>,
) -> Profile {
    let parts: u64 = workload.sources.iter().map(|s| s.parts.len() as u64).sum();
    let mut controls = controls.to_vec();
    if let Some(twin) = twin {
        controls.extend(twin.controls());
    }
    Profile {
        expected_calls: parts * 30,
        crash,
        model: Some(model),
        faults,
        corruptible: vec!["*/log/*.log".into()],
        controls,
        latency: Some(Latency {
            percent: 25,
            max_micros: 300,
        }),
        mix: Mix::UNIFORM,
    }
}

/// The crash at one of `aims`, which one and its call count drawn from `shape` (after the
/// scenario's shape: the order of draws is what keeps a seed's run the same).
fn aimed_crash(aims: &[Aim], model: CrashModel, shape: &mut ChaCha8Rng) -> Crash {
    let aim = &aims[shape.gen_range(0..aims.len())];
    Crash {
        at: Trigger::Nth {
            kind: aim.kind,
            path: aim.path.to_owned(),
            n: shape.gen_range(1..=aim.max_n),
        },
        moment: aim.moment,
        model,
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!(
                    "unknown scenario {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}
