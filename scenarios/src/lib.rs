//! Workloads that drive tally on the simulated disk, and the `tally` command line.

pub mod demo;
pub mod harness;
pub mod input;
pub mod production;
pub mod runtime;
