//! Faults applied over any world filesystem.
//!
//! So far: the negative controls. A harness that cannot fail proves nothing, so tally ships
//! disks that lie about durability; under them a correct pipeline must be *reported* as losing
//! acknowledged data.

pub mod lying;

pub use lying::{Lie, LyingFs};
