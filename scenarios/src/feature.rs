//! The workload features a swarm profile may switch off and a focused seed may need on.

use serde::{Deserialize, Serialize};

use crate::workload::Workload;

/// A workload feature a swarm profile may switch off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feature {
    /// Sources ingested from tasks of their own, all at once.
    Concurrency,
    /// A clean restart in the middle of the first lifetime.
    Restarts,
    /// Merges (the table stays at level 0).
    Merges,
    /// Staging and merging from a background task while ingesting.
    Background,
    /// The incremental exporter.
    Exports,
    /// The second, read-only handle.
    SecondReader,
}

impl Feature {
    pub const ALL: [Feature; 6] = [
        Feature::Concurrency,
        Feature::Restarts,
        Feature::Merges,
        Feature::Background,
        Feature::Exports,
        Feature::SecondReader,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Feature::Concurrency => "concurrency",
            Feature::Restarts => "restarts",
            Feature::Merges => "merges",
            Feature::Background => "background",
            Feature::Exports => "exports",
            Feature::SecondReader => "second-reader",
        }
    }

    /// Switches the feature off in `workload`.
    pub(crate) fn switch_off(self, workload: &mut Workload) {
        match self {
            Feature::Concurrency => workload.concurrent = false,
            Feature::Restarts => workload.restart_after_parts = None,
            Feature::Merges => workload.max_level = 0,
            Feature::Background => workload.background_maintenance = false,
            Feature::Exports => workload.export = None,
            Feature::SecondReader => workload.reader = false,
        }
    }
}
