//! Faults applied over any world filesystem.
//!
//! So far: the negative controls — a harness that cannot fail proves nothing, so tally ships
//! disks that lie about durability; under them a correct pipeline must be *reported* as losing
//! acknowledged data — and a disk whose syncs take time, so that concurrent tasks overlap.

#[macro_use]
mod delegate;
pub mod latency;
pub mod lying;

pub use latency::{SlowSyncFile, SlowSyncFs};
pub use lying::{Lie, LyingFs};
