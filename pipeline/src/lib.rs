//! The tally pipeline — ingest → stage → merge → publish → recover — written against the world
//! interface (`tally_sim::{Fs, Clock}`) so that the same code runs on the simulated disk and on
//! the real one. `docs/protocol.md` is the contract this crate implements.

pub mod commit;
pub mod damage;
pub mod delta;
pub mod error;
pub mod export;
pub mod footer;
pub mod frame;
mod fsutil;
pub mod history;
mod install;
pub mod layout;
pub mod log;
pub mod manifest;
#[cfg(any(feature = "memo", test))]
mod memo;
pub mod pipeline;
pub mod read;
pub mod recover;
pub mod seqalloc;
pub mod stats;
pub mod table;
pub mod twins;
pub mod verify;

pub use error::{Error, Result};
pub use layout::Layout;
pub use manifest::{FileEntry, Fingerprint, Manifest, SourceState, Tombstone};
pub use pipeline::{Ack, BulkLoad, Config, MaintenanceReport, Pipeline, Snapshot, Stats};
pub use recover::{RecoveryOptions, RecoveryReport};
pub use table::{SEQ_COLUMN, TableOptions};
pub use twins::Twins;
