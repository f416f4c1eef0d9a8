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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Simulator {
    pub scenario: String,
    pub jobs1: SweepSpeed,
    pub jobs2: SweepSpeed,
    pub explore: ExploreSpeed,
    pub breakdown: Breakdown,
}
