//! What decides a run, and how its crash images are taken.

use serde::{Deserialize, Serialize};
use tally_faults::{FaultPlan, plan::model_name};
use tally_pipeline::Config;
use tally_sim::CrashModel;

use crate::twin::Twin;
use crate::workload::Workload;

/// Everything that decides a run. Derived from a seed by a scenario, or read from a file
/// (a shrunk plan) by `replay --plan`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    pub scenario: String,
    /// Seeds the runtime's scheduling and the crash images' choices.
    pub seed: u64,
    /// The crash model of every crash image and of the plan's crash.
    #[serde(with = "model_name")]
    pub model: CrashModel,
    pub workload: Workload,
    pub plan: FaultPlan,
    /// A buggy twin: the run is expected to fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twin: Option<Twin>,
    /// The swarm profile the seed drew (`crate::swarm`), as the trace prints it; `None` for a
    /// uniform run. The workload, model and plan above already are what it made them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<String>,
}

impl RunSpec {
    /// The pipeline configuration of the run: the workload's, with the twin's guard off.
    pub fn config(&self) -> Result<Config, String> {
        let mut config = self.workload.config();
        if let Some(twin) = self.twin {
            twin.apply(&mut config)?;
        }
        Ok(config)
    }
}

/// How crash images are taken at each crash point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Images {
    /// One image per point: the run's model, its choices drawn from the run's seed.
    Sampled,
    /// Every persistence variant the model allows, bounded as [`crate::explore::variants`]
    /// says.
    Exhaustive,
    /// As `Sampled`, but each point's check stops at `Depth`: what the parts of a check cost,
    /// measured by running the same seeds to each depth (`tally bench`). Such a run checks
    /// less than a real one and says nothing about correctness.
    Measure(Depth),
}

/// How far a [`Images::Measure`] run takes each crash point; the full check follows the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Depth {
    /// Count the point only.
    Count,
    /// Copy the disk, as every image does.
    Clone,
    /// Take the crash image under the run's model.
    Image,
    /// Take the image and run recovery on it (open the pipeline), nothing else.
    Recover,
}
