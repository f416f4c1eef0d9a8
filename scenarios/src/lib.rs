//! The simulation harness: workloads, the oracle, seeded runs with a crash check after every
//! call, sweeps, exhaustive exploration, shrinking, real-disk crash runs, the incident
//! scenarios with their buggy twins, and the runtime each seeded run gets.
//!
//! A test depends on this crate to run the pipeline under simulation; the `tally` binary
//! (`scenarios/cli`) is a thin command line over it.

pub mod coverage;
pub mod crashtest;
pub mod declared;
pub mod explore;
pub mod feature;
pub mod fidelity;
pub mod focus;
pub mod mirror;
pub mod oracle;
pub mod outcome;
pub mod probe;
pub mod probe_foreign;
pub mod probe_rollback;
mod probe_store;
pub mod run;
pub mod runtime;
pub mod scenario;
pub mod shard;
pub mod shrink;
pub mod swarm;
pub mod sweep;
pub mod trace;
pub mod twin;
pub mod workload;
