//! The world a tally pipeline runs in: a narrow filesystem interface ([`Fs`]) and a clock
//! ([`Clock`]), with two filesystems behind it.
//!
//! - [`SimFs`] is a simulated disk implementing the durability model written down in
//!   `docs/durability-model.md`: reads see every write at once, `sync` makes a file's data
//!   durable but not its name, `sync_dir` makes a directory's entries durable, and a crash keeps
//!   only what the chosen [`CrashModel`] lets survive.
//! - [`RealFs`] is the real disk, with real `fsync` of files and directories.
//!
//! Pipeline code is generic over `F: Fs` and `C: Clock` and never learns which one it got.

pub mod clock;
pub mod fs;
pub mod probe;
pub mod realfs;
pub mod simfs;

pub use clock::{Clock, SimClock, SystemClock};
pub use fs::{CreateMode, DirEntry, Fs, FsFile, Metadata, OpenMode};
pub use realfs::{RealFs, RealLock};
pub use simfs::{
    CrashModel, CrashPlan, MAX_FILE_SIZE, OpKind, OpOutcome, OpRecord, PendingOp, PendingTarget,
    PlanError, SectorFate, SimFile, SimFs, SimFsOptions, SimLock, Tear, sectors_spanned,
};

/// The world a pipeline is given: a filesystem and a clock.
#[derive(Clone, Debug)]
pub struct World<F, C> {
    pub fs: F,
    pub clock: C,
}

impl<F: Fs, C: Clock> World<F, C> {
    pub fn new(fs: F, clock: C) -> Self {
        Self { fs, clock }
    }
}
