//! Runs one seeded simulation to completion on the runtime of the current build.
//!
//! Under `--cfg madsim` each run gets a fresh madsim runtime seeded with the run's seed, so the
//! seed decides task interleavings and virtual time as well as the workload. In a normal build
//! a current-thread tokio runtime runs it; the result is the same for workloads whose only I/O
//! is the simulated disk, which never waits.

use std::future::Future;

#[cfg(madsim)]
pub fn run_seeded<F: Future>(seed: u64, future: F) -> F::Output {
    madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default()).block_on(future)
}

#[cfg(not(madsim))]
pub fn run_seeded<F: Future>(_seed: u64, future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts")
        .block_on(future)
}

/// Whether this binary was built for simulation (`cargo sim ...`).
pub const SIMULATION_BUILD: bool = cfg!(madsim);
