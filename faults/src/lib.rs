//! Faults applied over any world filesystem.
//!
//! A [`FaultPlan`] says, as data, what goes wrong in a run: a process crash at a chosen call,
//! injected errors (transient or sticky), failing fsyncs that lose data, corrupted reads and
//! clock jumps, and the negative controls — disks that break a durability promise, under which
//! a harness that works must report lost data. [`FaultFs`] applies a plan over any backend.
//! [`SlowSyncFs`] makes syncs take time, so that concurrent tasks overlap; [`CountingFs`]
//! counts syncs and bytes written, for benchmarks.

#[macro_use]
mod delegate;
pub mod counting;
pub mod faultfs;
pub mod generate;
pub mod latency;
pub mod plan;

pub use counting::{CountingFile, CountingFs, Counts};
pub use faultfs::{Backend, FaultClock, FaultEvent, FaultFile, FaultFs};
pub use latency::{SlowSyncFile, SlowSyncFs};
pub use plan::{
    CallKind, Control, Crash, Effect, ErrorKind, Fault, FaultPlan, Latency, Moment, Trigger,
};
