//! The simulation harness (workloads, oracle, seeded runs, sweeps, exploration, shrinking), the
//! production commands' input readers, and the runtime each seeded run gets.

pub mod harness;
pub mod input;
pub mod production;
pub mod runtime;
