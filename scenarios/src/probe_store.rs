//! What the probes share: opening a copy of a run's disk with the pipeline, as a user's next
//! `tally` command would, and the configuration of `tally recover --accept-loss`.

use tally_pipeline::{Config, Pipeline, RecoveryReport, Result};
use tally_sim::{SimClock, SimFs, World};

use super::oracle::ROOT;

/// Opens the store on `disk` (recovery runs), with what recovery reported.
pub(crate) async fn open_reporting(
    disk: &SimFs,
    config: &Config,
) -> Result<(Pipeline<SimFs, SimClock>, RecoveryReport)> {
    let world = World::new(disk.clone(), SimClock::default());
    Pipeline::open(world, ROOT, config.clone()).await
}

/// Opens the store on `disk` (recovery runs).
pub(crate) async fn open(disk: &SimFs, config: &Config) -> Result<Pipeline<SimFs, SimClock>> {
    open_reporting(disk, config).await.map(|(p, _)| p)
}

/// The configuration of `tally recover --accept-loss`.
pub(crate) fn accepting_loss(config: &Config) -> Config {
    let mut config = config.clone();
    config.recovery.accept_loss = true;
    config
}
