//! The simulator's figures as `tally bench` reports them: measured by the simulation build
//! (`simulation::bench`), read back as JSON by the normal build's report.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepSpeed {
    pub jobs: usize,
    pub seeds: u64,
    pub crash_points: u64,
    pub seconds: f64,
    pub seeds_per_second: f64,
    pub crash_points_per_second: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExploreSpeed {
    pub states: u64,
    pub seconds: f64,
    pub states_per_second: f64,
}

/// Microseconds per crash point, by part (one job).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Breakdown {
    pub seeds: u64,
    pub crash_points: u64,
    /// Running the workload itself (both lifetimes, tracing every call), spread over its
    /// crash points.
    pub workload_us: f64,
    /// Copying the disk.
    pub clone_us: f64,
    /// Applying the crash model to the copy.
    pub crash_image_us: f64,
    /// Opening the pipeline on the image: recovery.
    pub recovery_us: f64,
    /// The oracle: reading every row, the ledger, levels, the store check, a second recovery
    /// and its idempotence.
    pub oracle_us: f64,
    pub total_us: f64,
}

/// One `tally sweep --json F` of a binary, run as a child process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepRun {
    pub crash_points: u64,
    /// The sweep's own timing of its seeds (its JSON's `seconds`: no doublecheck, no
    /// process start or report).
    pub seconds: f64,
    /// The child process from start to exit, everything included.
    pub wall_seconds: f64,
    pub crash_points_per_second: f64,
}

/// Several default sweeps of one binary, and their spread.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DefaultSweep {
    pub binary: String,
    /// Seeds the sweep ran (its JSON's `seeds`): `0..300` unless a test narrowed them.
    pub seeds: String,
    /// Jobs the sweep chose (one per core unless told).
    pub jobs: usize,
    pub runs: Vec<SweepRun>,
    /// Of the runs' crash points/s.
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// (max − min) / median.
    pub spread: f64,
    /// `median / jobs`.
    pub median_per_core: f64,
    pub median_wall_seconds: f64,
}

/// The default sweep as users run it (`cargo sim sweep`), of this binary and optionally of a
/// baseline binary, their runs alternated so that both see the same machine.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DefaultSweeps {
    /// The arguments each child was given.
    pub command: String,
    pub current: DefaultSweep,
    pub baseline: Option<Baseline>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Baseline {
    pub sweep: DefaultSweep,
    /// Median crash points/s, current ÷ baseline.
    pub ratio: f64,
    /// Run i of the current binary ÷ run i of the baseline, which ran right after it: load
    /// from the rest of the machine changes between pairs more than within one.
    pub pair_ratios: Vec<f64>,
    /// Median wall seconds, baseline ÷ current: the same comparison by time, which stays
    /// meaningful when the two ran different work.
    pub wall_ratio: f64,
    /// Every run of both reported the same crash points.
    pub same_work: bool,
    /// What differed when `same_work` is false (empty otherwise).
    pub note: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Simulator {
    pub scenario: String,
    pub default_sweep: DefaultSweeps,
    pub jobs1: SweepSpeed,
    pub jobs2: SweepSpeed,
    pub explore: ExploreSpeed,
    pub breakdown: Breakdown,
}
