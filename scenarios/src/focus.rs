//! Focused seeds: two seeds of every three of a swarm sweep of a scenario that injects faults
//! (`standard`, `journal-drain`, `incremental-export`) study one cell of the fault ×
//! file-class matrix — an I/O error, a failing fsync, a flipped bit or a changed digit, aimed
//! at one class of file — the cells taken in turn, so that 200 seeds visit each cell several
//! times.
//!
//! A uniform or swarm plan draws its faults' targets from a few broad path patterns and call
//! counts, so a cell such as "the read of a checkpoint returns a flipped bit" needs a fault
//! kind, a pattern, a count and a moment of the workload to line up: measured, 0 to 3 seeds
//! of 200 reached each such cell. A focused seed aims its one fault at the cell and shapes
//! the run so the moment comes: the fault replaces the seed's other faults (any could end the
//! lifetime first), a read cell also drops the planned crash (the scenario's aimed crash,
//! where it aims one), and a read that only happens when a store is opened gets a clean
//! restart late in the lifetime. Crash images are still checked after every call.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_faults::{CallKind, Effect, ErrorKind, Fault, Trigger};

use crate::feature::Feature;
use crate::workload::{ExportPlan, Workload};

/// The fault a focused seed aims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aimed {
    /// A write (or, for a directory, a `sync_dir`) fails with `EIO`, once.
    Error,
    /// A file's `fsync` fails and its unsynced data is lost.
    FailSync,
    /// A read returns one bit flipped.
    CorruptRead,
    /// A read returns one digit changed: JSON and text stay well-formed.
    FlipDigit,
}

impl Aimed {
    fn effect(self) -> Effect {
        match self {
            Aimed::Error => Effect::Error {
                error: ErrorKind::Eio,
                sticky: false,
            },
            Aimed::FailSync => Effect::FailSync,
            Aimed::CorruptRead => Effect::CorruptRead,
            Aimed::FlipDigit => Effect::FlipDigit,
        }
    }

    fn call(self, class: &str) -> CallKind {
        match self {
            Aimed::Error if class == "dir" => CallKind::SyncDir,
            Aimed::Error => CallKind::Write,
            Aimed::FailSync => CallKind::Sync,
            Aimed::CorruptRead | Aimed::FlipDigit => CallKind::Read,
        }
    }

    /// The name coverage probes give the effect (`fault:<name>:<class>`).
    pub fn name(self) -> &'static str {
        match self {
            Aimed::Error => "error",
            Aimed::FailSync => "fail-sync",
            Aimed::CorruptRead => "corrupt-read",
            Aimed::FlipDigit => "flip-digit",
        }
    }
}

/// One cell: the fault, the class of file (as coverage names it), the path pattern its
/// trigger names, the range its call count is drawn from, and whether the class is read
/// only when a store is opened (the marker, the sequence reservation, checkpoints, and
/// commits and acknowledgement records mostly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Focus {
    pub aimed: Aimed,
    pub class: &'static str,
    pattern: &'static str,
    n: (u64, u64),
    read_at_open: bool,
}

const fn cell(
    aimed: Aimed,
    class: &'static str,
    pattern: &'static str,
    n: (u64, u64),
    read_at_open: bool,
) -> Focus {
    Focus {
        aimed,
        class,
        pattern,
        n,
        read_at_open,
    }
}

use Aimed::{CorruptRead, Error, FailSync, FlipDigit};

/// The cells, in the order seeds visit them. Sync patterns include temp names (a file is
/// synced under its temp name, then renamed); read patterns name files that exist when read,
/// so the fault is not spent on a lookup of a missing file (the first open of a store looks
/// for `SEQ` and finds none: its cell aims at the second read, at the restart; the first
/// export finds no watermark). The harness's own checks of a store just opened read it
/// beside the fault layer: they are not calls a trigger counts. A changed digit is aimed only at
/// the files whose bodies are text (commits, `_last_checkpoint`, the marker): `SEQ` and the
/// export watermark are binary with a checksum, which a flipped bit already tests.
pub const FOCI: [Focus; 28] = [
    cell(Error, "log", "*/_tally/log/*.log", (1, 3), false),
    cell(FailSync, "log", "*/_tally/log/*.log", (1, 3), false),
    cell(CorruptRead, "log", "*/_tally/log/*.log", (1, 2), false),
    cell(Error, "ack", "*/_tally/log/*.ack", (1, 3), false),
    cell(FailSync, "ack", "*/_tally/log/*.ack", (1, 3), false),
    cell(CorruptRead, "ack", "*/_tally/log/*.ack", (1, 1), true),
    cell(Error, "seq", "*/_tally/SEQ*", (1, 2), false),
    cell(FailSync, "seq", "*/_tally/SEQ*", (1, 2), false),
    cell(CorruptRead, "seq", "*/_tally/SEQ", (2, 2), true),
    cell(Error, "marker", "*/_tally/TALLY*", (1, 1), false),
    cell(FailSync, "marker", "*/_tally/TALLY*", (1, 1), false),
    cell(CorruptRead, "marker", "*/_tally/TALLY", (1, 1), true),
    cell(FlipDigit, "marker", "*/_tally/TALLY", (1, 1), true),
    cell(Error, "commit", "*/_delta_log/*.json*", (1, 4), false),
    cell(FailSync, "commit", "*/_delta_log/*.json*", (1, 4), false),
    cell(CorruptRead, "commit", "*/_delta_log/0*.json", (1, 3), true),
    cell(FlipDigit, "commit", "*/_delta_log/0*.json", (1, 3), true),
    cell(
        Error,
        "checkpoint",
        "*/_delta_log/*checkpoint*",
        (1, 2),
        false,
    ),
    cell(
        FailSync,
        "checkpoint",
        "*/_delta_log/*checkpoint*",
        (1, 2),
        false,
    ),
    cell(
        CorruptRead,
        "checkpoint",
        "*/_delta_log/*.checkpoint.parquet",
        (1, 1),
        true,
    ),
    cell(
        FlipDigit,
        "checkpoint",
        "*/_delta_log/_last_checkpoint",
        (1, 1),
        true,
    ),
    cell(Error, "table", "*/data/*", (1, 4), false),
    cell(FailSync, "table", "*/data/*", (1, 4), false),
    cell(CorruptRead, "table", "*/data/*.parquet", (1, 3), false),
    cell(Error, "export", "/export/*", (1, 2), false),
    cell(FailSync, "export", "/export/*", (1, 2), false),
    cell(CorruptRead, "export", "/export/WATERMARK", (2, 3), false),
    cell(Error, "dir", "*", (1, 6), false),
];

/// The random stream a focused seed's call count is drawn from: apart from every other draw.
const FOCUS_STREAM: u64 = 0x0046_4f43_5553;

impl Focus {
    /// The cell seed `seed` studies: two seeds of every three take the cells in turn, the
    /// third (`seed % 3 == 2`) none.
    pub fn of(seed: u64) -> Option<Focus> {
        let focused = seed / 3 * 2 + seed % 3;
        (seed % 3 != 2).then(|| FOCI[(focused % FOCI.len() as u64) as usize])
    }

    /// Whether a seed of this cell runs without its planned crash: a read cell's moment comes
    /// late (a restart, a merge), and with the crash kept 2 of its 11 cells went unreached in
    /// 200 seeds; a write cell's moment comes early enough to keep it (every one reached), and
    /// a run that ends in a crash costs less per crash point than one that runs to its end.
    pub fn drops_crash(&self) -> bool {
        matches!(self.aimed, Aimed::CorruptRead | Aimed::FlipDigit)
    }

    /// The probe a fault of this cell counts under.
    pub fn probe(&self) -> String {
        format!("fault:{}:{}", self.aimed.name(), self.class)
    }

    /// The seed's one fault: the `n`-th call of the cell's kind on its pattern.
    pub fn fault(&self, seed: u64) -> Fault {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(FOCUS_STREAM);
        Fault {
            at: Trigger::Nth {
                kind: self.aimed.call(self.class),
                path: self.pattern.to_owned(),
                n: rng.gen_range(self.n.0..=self.n.1),
            },
            effect: self.aimed.effect(),
        }
    }

    /// The workload features the cell needs: a swarm profile keeps them on.
    pub fn needs(&self) -> &'static [Feature] {
        if self.read_at_open {
            &[Feature::Restarts, Feature::Background]
        } else if self.class == "export" {
            &[Feature::Exports]
        } else {
            &[]
        }
    }

    /// Shapes `workload` so the cell's moment comes. A class read only when a store is opened
    /// gets a clean restart before the last part of the shortest source (as late as a
    /// restart can be) and background maintenance, which commits while ingesting, so the
    /// store has checkpoints, commits, a reservation, a marker and unstaged segments to read
    /// when it reopens. An export cell gets an export every two parts, each after a flush (so
    /// the first already writes a batch and the watermark), if the workload had none.
    pub fn shape(&self, workload: &mut Workload) {
        if self.read_at_open {
            let min_parts = workload.sources.iter().map(|s| s.parts.len()).min();
            if let Some(parts) = min_parts.filter(|&n| n > 1) {
                workload.restart_after_parts = Some(parts - 1);
            }
            workload.background_maintenance = true;
        }
        if self.class == "export" && workload.export.is_none() {
            workload.export = Some(ExportPlan {
                every_parts: 2,
                flush_first: true,
            });
        }
    }
}

impl fmt::Display for Focus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} ({})",
            self.aimed.name(),
            self.class,
            self.pattern
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{FOCI, Focus};
    use crate::coverage::file_class;
    use tally_faults::CallKind;
    use tally_faults::faultfs::matches;

    #[test]
    fn two_hundred_seeds_visit_every_cell_at_least_four_times() {
        for cell in FOCI {
            let visits = (0..200).filter(|&s| Focus::of(s) == Some(cell)).count();
            assert!(visits >= 4, "{cell} visited {visits} times");
        }
        let unfocused = (0..200).filter(|&s| Focus::of(s).is_none()).count();
        assert_eq!(unfocused, 66, "a third of the seeds keep their own plan");
    }

    #[test]
    fn every_cell_pattern_names_files_of_its_class() {
        let files = [
            "/store/_tally/log/00000000000000000001.log",
            "/store/_tally/log/00000000000000000001.ack",
            "/store/_tally/SEQ",
            "/store/_tally/SEQ.tmp",
            "/store/_tally/TALLY",
            "/store/_tally/TALLY.tmp",
            "/store/_delta_log/00000000000000000003.json",
            "/store/_delta_log/_commit_00000000000000000003.json.tmp",
            "/store/_delta_log/00000000000000000004.checkpoint.parquet",
            "/store/_delta_log/_checkpoint_00000000000000000004.parquet.tmp",
            "/store/_delta_log/_last_checkpoint",
            "/store/data/part-1.parquet",
            "/export/batch-00000000000000000001.parquet",
            "/export/WATERMARK",
        ];
        // The store's directories: what a `sync_dir` (the error cell of `dir`) is called on.
        let dirs = [
            "/store",
            "/store/_delta_log",
            "/store/_tally/log",
            "/store/data",
        ];
        for cell in FOCI {
            let on_dirs = cell.aimed.call(cell.class) == CallKind::SyncDir;
            let pattern = glob::Pattern::new(cell.pattern).unwrap();
            let named: Vec<&str> = (if on_dirs { &dirs[..] } else { &files[..] })
                .iter()
                .copied()
                .filter(|p| matches(&pattern, std::path::Path::new(p)))
                .collect();
            assert!(!named.is_empty(), "{cell} names no file");
            for path in named {
                assert_eq!(file_class(path), cell.class, "{cell} names {path}");
            }
        }
    }

    #[test]
    fn a_focused_seed_runs_its_one_fault_and_a_read_cell_no_planned_crash() {
        use crate::scenario::Scenario;
        let injecting = [
            Scenario::Standard,
            Scenario::JournalDrain,
            Scenario::IncrementalExport,
        ];
        for (scenario, seed) in injecting
            .into_iter()
            .flat_map(|s| (0..60).map(move |n| (s, n)))
        {
            let spec = scenario.spec_with(seed, None, &[], None, true);
            match Focus::of(seed) {
                Some(focus) => {
                    assert_eq!(spec.plan.faults, vec![focus.fault(seed)], "seed {seed}");
                    let uniform = scenario.spec_with(seed, None, &[], None, false);
                    if focus.drops_crash() {
                        assert_eq!(spec.plan.crash, None, "seed {seed}");
                    } else if uniform.plan.crash.is_some() {
                        assert!(spec.plan.crash.is_some(), "seed {seed} keeps its crash");
                    }
                    let line = spec.swarm.expect("a swarm profile");
                    assert!(line.contains(&format!("focus {focus}")), "{line}");
                    if focus.needs().contains(&super::Feature::Restarts) {
                        assert!(spec.workload.restart_after_parts.is_some(), "seed {seed}");
                        assert!(!line.contains("off restarts") && !line.contains(",restarts"));
                    }
                }
                None => assert!(!spec.swarm.expect("a swarm profile").contains("focus")),
            }
            // Uniform runs never focus.
            let uniform = scenario.spec_with(seed, None, &[], None, false);
            assert_eq!(uniform, scenario.spec(seed, None, &[]));
        }
    }

    #[test]
    fn the_scenarios_that_only_crash_are_never_focused() {
        use crate::scenario::Scenario;
        for scenario in [
            Scenario::LedgerVsOutput,
            Scenario::MultiStepPublish,
            Scenario::MergeCascade,
        ] {
            for seed in 0..30 {
                let spec = scenario.spec_with(seed, None, &[], None, true);
                assert!(!spec.swarm.expect("a swarm profile").contains("focus"));
            }
        }
    }
}
