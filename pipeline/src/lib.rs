//! The tally pipeline, written against the world interface (`tally_sim::{Fs, Clock}`) so that
//! the same code runs on the simulated disk and on the real one.
//!
//! So far it holds the durable-commit primitive every later stage is built on.

pub mod commit;
