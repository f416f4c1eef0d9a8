//! The simulation harness: workloads, the oracle, seeded runs with a crash check after every
//! call, sweeps, exhaustive exploration and shrinking.

pub mod crashtest;
pub mod explore;
pub mod oracle;
pub mod outcome;
pub mod probe;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod sweep;
pub mod trace;
pub mod twin;
pub mod workload;
